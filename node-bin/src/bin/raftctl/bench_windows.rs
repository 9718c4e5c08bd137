//! `raftctl bench --window N`: the rate of every consecutive window of N successful requests,
//! and the last full window's as a share of the first's (`bench/sustained.sh`: does the rate
//! hold over a million puts?).

use serde_json::json;

/// The rates of consecutive windows of successful requests (`--window`).
pub(crate) struct WindowRates {
    window: u64,
    /// Requests per second of each full window, in order.
    rates: Vec<f64>,
    /// Successful requests after the last full window (not rated).
    left_over: u64,
}

/// Rates the windows of `window` completions each: a window's rate is `window` divided by the
/// time from the previous window's last completion (the start, for the first) to its own last.
pub(crate) fn window_rates(completions: &mut [u64], window: u64) -> WindowRates {
    completions.sort_unstable();
    let window_length = usize::try_from(window).unwrap_or(usize::MAX);
    let mut rates = Vec::new();
    let mut window_start = 0u64;
    for chunk in completions.chunks_exact(window_length) {
        let window_end = *chunk.last().expect("chunks are not empty");
        let seconds = (window_end.saturating_sub(window_start)).max(1) as f64 / 1e6;
        rates.push(window as f64 / seconds);
        window_start = window_end;
    }
    WindowRates {
        window,
        rates,
        left_over: (completions.len() % window_length) as u64,
    }
}

impl WindowRates {
    /// The last full window's rate as a percentage of the first's (`None` under two windows).
    pub(crate) fn last_over_first(&self) -> Option<f64> {
        match (self.rates.first(), self.rates.last()) {
            (Some(first), Some(last)) if self.rates.len() >= 2 && *first > 0.0 => {
                Some(100.0 * last / first)
            }
            _ => None,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        json!({
            "window": self.window,
            "requests_per_second": self.rates,
            "left_over": self.left_over,
            "last_over_first_percent": self.last_over_first(),
        })
    }

    pub(crate) fn print(&self) {
        println!(
            "windows of {} successful requests (requests/s):",
            self.window
        );
        for (index, rate) in self.rates.iter().enumerate() {
            let first = index as u64 * self.window + 1;
            let last = (index as u64 + 1) * self.window;
            println!("  {first:>10} .. {last:<10} {rate:>10.0}");
        }
        if self.left_over > 0 {
            println!(
                "  ({} after the last full window, not rated)",
                self.left_over
            );
        }
        match self.last_over_first() {
            Some(percent) => println!("last/first = {percent:.1} %"),
            None => println!("last/first = n/a (fewer than two full windows)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_rated_from_the_previous_window_end() {
        // Completions at 1..=10 ms; windows of 4: ends at 4 ms and 8 ms, 2 left over.
        let mut completions: Vec<u64> = (1..=10).rev().map(|ms| ms * 1000).collect();
        let windows = window_rates(&mut completions, 4);
        assert_eq!(windows.rates.len(), 2);
        assert!((windows.rates[0] - 1000.0).abs() < 1e-6);
        assert!((windows.rates[1] - 1000.0).abs() < 1e-6);
        assert_eq!(windows.left_over, 2);
        assert!((windows.last_over_first().expect("two windows") - 100.0).abs() < 1e-6);
        assert_eq!(window_rates(&mut [5, 6], 4).last_over_first(), None);
    }
}
