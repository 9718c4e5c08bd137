//! `node-bin`: configuration, wiring and the client API of a Raft node (filled by issue 5).
