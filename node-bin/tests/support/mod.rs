//! Helpers shared by this crate's test files.
pub mod exposition;
