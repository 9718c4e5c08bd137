//! Bounded waits: poll a condition until it holds, or fail at a deadline naming what was
//! awaited.

use std::future::Future;
use std::time::Duration;

/// Multiplies every real-time bound of [`wait_until`]: `RAFT_TEST_TIME_SCALE` (default 1), for
/// machines slower or busier than the ones the bounds were chosen on.
pub const TIME_SCALE_VARIABLE: &str = "RAFT_TEST_TIME_SCALE";

/// How often [`wait_until`] re-checks its condition.
pub const REAL_TIME_POLL: Duration = Duration::from_millis(10);

/// How often [`wait_until_async`] re-checks its condition, on the tokio clock.
pub const ASYNC_POLL: Duration = Duration::from_millis(5);

/// `bound` scaled by `RAFT_TEST_TIME_SCALE`.
pub fn scaled(bound: Duration) -> Duration {
    bound * crate::seed::env_u64(TIME_SCALE_VARIABLE, 1).max(1) as u32
}

/// Polls `condition` every [`REAL_TIME_POLL`] of real time, on this thread, until it holds.
/// On a loaded machine the thread may be descheduled past the deadline, so the condition gets
/// one last look after it; only then does the wait panic.
///
/// # Panics
///
/// When `condition` still does not hold after `within` (scaled, see [`scaled`]), naming `what`
/// and the bound.
pub fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    if poll_real_time(within, || condition().then_some(())).is_none() {
        panic!("timed out after {:?} waiting for {what}", scaled(within));
    }
}

/// Polls `look` every [`REAL_TIME_POLL`] of real time, on this thread, until it returns
/// `Some`, for at most `within` (scaled, see [`scaled`]); `None` when it never did. Like
/// [`wait_until`], it takes one last look after the deadline. For waits whose caller has
/// something to do before it fails (kill a child process, print its logs).
pub fn poll_real_time<T>(within: Duration, mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let within = scaled(within);
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = look() {
            return Some(value);
        }
        if started.elapsed() > within {
            return look();
        }
        std::thread::sleep(REAL_TIME_POLL);
    }
}

/// Polls the asynchronous `condition` every [`ASYNC_POLL`] of the tokio clock (virtual time
/// when it is paused) until it holds.
///
/// # Panics
///
/// When `condition` still does not hold after `within`, naming `what` and the bound.
pub async fn wait_until_async<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(ASYNC_POLL).await;
    }
}

/// Like [`wait_until_async`] with a condition that does not await (it reads shared state the
/// actors under test update).
pub async fn poll_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    wait_until_async(what, within, || std::future::ready(condition())).await;
}

/// A condition that did not hold within its bound (of the tokio clock: virtual time when it
/// is paused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimedOut {
    /// What was awaited.
    pub what: String,
    /// The bound.
    pub within: Duration,
    /// What the condition last observed, for the failure message.
    pub last_seen: String,
}

impl std::fmt::Display for WaitTimedOut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "timed out after {:?} of the tokio clock (virtual time when paused) waiting for {}; last seen: {}",
            self.within, self.what, self.last_seen
        )
    }
}

impl std::error::Error for WaitTimedOut {}

/// Polls `condition` every `poll` of the tokio clock until it returns `Ok`, for at most
/// `within`; `Err` carries what the condition last saw into the [`WaitTimedOut`].
pub async fn wait_for<T, F, Fut>(
    what: &str,
    within: Duration,
    poll: Duration,
    mut condition: F,
) -> Result<T, WaitTimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match condition().await {
            Ok(value) => return Ok(value),
            Err(last_seen) if tokio::time::Instant::now() >= deadline => {
                return Err(WaitTimedOut {
                    what: what.to_string(),
                    within,
                    last_seen,
                })
            }
            Err(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// Waits until `condition` holds on the value behind `state` (what actors under test record,
/// such as the events a fake consensus actor received), polling every [`ASYNC_POLL`] of the
/// tokio clock.
///
/// # Panics
///
/// When it still does not hold after `within`, naming `what` and showing the value last seen.
pub async fn wait_until_recorded<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    state: &std::sync::Mutex<T>,
    condition: impl Fn(&T) -> bool,
) {
    let look = || {
        let seen = state.lock().expect("the recorded state's lock");
        let outcome = if condition(&seen) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        };
        std::future::ready(outcome)
    };
    if let Err(timeout) = wait_for(what, within, ASYNC_POLL, look).await {
        panic!("{timeout}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn a_real_time_wait_names_what_it_awaited() {
        wait_until("the impossible", Duration::from_millis(30), || false);
    }

    #[tokio::test(start_paused = true)]
    async fn an_async_wait_runs_in_virtual_time() {
        let error = wait_for("a miracle", Duration::from_secs(60), ASYNC_POLL, || async {
            Err::<(), _>("nothing".to_string())
        })
        .await
        .unwrap_err();
        assert_eq!(error.within, Duration::from_secs(60));
        assert!(error.to_string().contains("a miracle; last seen: nothing"));
    }
}
