//! The paused actix System that in-process tests run in, and the seed report with its
//! livelock watchdog.

use std::time::Duration;
use test_support::TestId;

/// The actix System for in-process cluster tests: a current-thread tokio runtime whose clock
/// starts paused. It models time itself: the clock moves only when every actor is idle, so a
/// test of minutes of cluster time takes a moment and runs the same way each time. Use it as `#[actix_rt::test(system =
/// "integration_tests::in_process::PausedSystem")]` instead of calling `tokio::time::pause()`
/// in the test.
///
/// Why not `pause()`: tokio rounds timer deadlines up to whole milliseconds counted from the
/// moment the runtime was built, while a clock paused later sits a random fraction of a
/// millisecond past that grid. Two timers a fraction of a millisecond apart (simulated network
/// delays are drawn in nanoseconds) then fire in the same tick in one run and in different
/// ticks in the next, and the same seed no longer replays the same run. A clock paused from
/// the start has no such fraction.
pub struct PausedSystem;

impl PausedSystem {
    // The shape `#[actix_rt::test(system = ..)]` calls: `<system>::new().block_on(..)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> actix_rt::SystemRunner {
        actix_rt::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("a current-thread tokio runtime builds")
        })
    }
}

/// Reads the seed of a randomized test: `RAFT_TEST_SEED` if set (to replay a failure), else
/// `default`.
pub use test_support::seed::seed_or as test_seed;

/// Prints the seed and the exact replay command when a failing test drops it (see
/// `test_support::report`); [`seed_report`] makes one with the watchdog these tests need.
pub use test_support::report::SeedReport;

/// How much real time a test guarded by a [`seed_report`] may take before the watchdog aborts
/// the test process. Tests take well under a second; only a livelock gets near this.
pub const REAL_TIME_LIMIT: Duration = Duration::from_secs(120);

/// The report for an in-process test: prints the seed and how to replay the test if it fails;
/// keep it alive for the whole test: `let _report = seed_report(this_test!(), seed);`.
///
/// It also runs a watchdog: virtual-time bounds cannot catch a livelock in which tasks stay
/// busy at one instant (time never advances, so no deadline fires), so after
/// [`REAL_TIME_LIMIT`] of real time the watchdog prints the seed and aborts the process
/// rather than let the test hang.
pub fn seed_report(test: TestId, seed: u64) -> SeedReport {
    SeedReport::new(test, seed).with_watchdog(REAL_TIME_LIMIT)
}
