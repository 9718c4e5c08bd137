//! The state-machine applier: applies committed log entries to a [`StateMachine`], in index
//! order and exactly once, answers the clients waiting on them, and serves read queries.
//!
//! The consensus actor decides *what* is committed; this crate decides *what it means*. A node
//! swaps in another state machine by implementing [`StateMachine`] and handing it to
//! [`ApplierActor::new`]; nothing else changes.
//!
//! # Layout
//!
//! - [`state_machine`]: the `StateMachine` trait, with its `# Correctness` contract.
//! - [`kv`]: the key-value vocabulary (`KvCommand`, `KvQuery`, `KvOutput`) and the helpers a
//!   client API uses to encode requests and decode answers.
//! - [`kv_store`]: `KvStore`, the default state machine (put, get, delete, compare-and-swap).
//! - [`applier_actor`]: `ApplierActor`, the actix actor handling `ApplyEntries` and `Query`.

pub mod applier_actor;
pub mod kv;
pub mod kv_store;
pub mod state_machine;

pub use applier_actor::ApplierActor;
pub use kv::{KvCommand, KvOutput, KvQuery};
pub use kv_store::KvStore;
pub use state_machine::StateMachine;
