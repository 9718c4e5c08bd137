//! The test toolkit every crate's tests share (dev-only; never a dependency of a library).
//!
//! - **Seeds** ([`seed`]): a randomized test reads its seed from `RAFT_TEST_SEED`. When the
//!   variable is set it runs that one seed (to replay a failure); otherwise its own default,
//!   a range of seeds ([`seed::seeds`]) or a fresh one.
//! - **Failure reports** ([`report`]): [`this_test!`] names the running test (package, test
//!   binary and the test's exact name, taken from the code, so the filter always matches);
//!   [`report::SeedReport`] prints the seed and the exact replay command when the test panics,
//!   and [`report::run_seeds`] runs a scenario over many seeds, reporting the one that failed.
//! - **Bounded waits** ([`wait`]): poll a condition until it holds or a deadline passes, then
//!   panic (or return an error) naming what was awaited, the bound and what was last seen.
//!   [`wait::wait_until`] polls in real time on the calling thread (process tests);
//!   [`wait::wait_until_async`] and [`wait::wait_for`] sleep on the tokio clock (actix and tokio
//!   tests, in virtual time when the clock is paused).
//! - **Logs** ([`init_tracing`]): tracing output through the test harness's capture, shown only
//!   for a failing test, filtered by `RUST_LOG` (off by default).
//!
//! ```
//! use test_support::{report::SeedReport, seed, this_test};
//!
//! let seed = seed::seed_or(7);
//! let _report = SeedReport::new(this_test!(), seed);
//! // ... a seeded scenario; a panic here prints
//! // `RAFT_TEST_SEED=7 cargo test -p <package> --test <binary> <test> -- --exact`.
//! ```

pub mod report;
pub mod seed;
pub mod wait;

pub use report::TestId;

/// Sends `tracing` output through the test harness's capture (shown only when a test fails),
/// filtered by `RUST_LOG` and off when it is unset. Safe to call from every test: only the first
/// call in a process installs the subscriber.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}
