//! The state-machine applier: `StateMachine` trait and the KV store (filled by issue 5).
