//! Reconnection delays: capped exponential backoff with jitter.
//!
//! The delay ceiling starts at `min` and doubles after every failed attempt up to `max`; each
//! delay is drawn uniformly from `[ceiling / 2, ceiling]`. The jitter keeps the nodes of a
//! cluster that lost a peer at the same instant from reconnecting in lockstep, so each node
//! seeds its own generator differently.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    ceiling: Duration,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        assert!(
            !min.is_zero() && min <= max,
            "backoff range must be validated: min {min:?}, max {max:?}"
        );
        Backoff {
            min,
            max,
            ceiling: min,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The delay before the next attempt; each call doubles the ceiling for the following one.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = ceiling.saturating_mul(2).min(self.max);
        let floor = ceiling / 2;
        let jitter_nanos = self.rng.gen_range(0..=(ceiling - floor).as_nanos() as u64);
        floor + Duration::from_nanos(jitter_nanos)
    }

    /// After a successful connection the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.ceiling = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let min = Duration::from_millis(10);
        let max = Duration::from_millis(100);
        let mut backoff = Backoff::new(min, max, 7);
        let mut ceiling = min;
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        assert_eq!(ceiling, max);
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }
}
