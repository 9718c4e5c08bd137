//! The consensus actor: owns a `raft-core` instance and routes its commands to the ports (filled by issue 5).
