//! `LinkFaults`: what can go wrong on one directed link of the simulated network.

use std::time::Duration;

/// The fault model of one directed link. Probabilities are in `[0, 1]`; each message draws
/// independently.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFaults {
    /// A disconnected link drops everything, including messages already in flight on it.
    pub connected: bool,
    /// Chance that a message is lost.
    pub drop_probability: f64,
    /// Each delivered copy is delayed by a duration drawn uniformly from
    /// `[delay_min, delay_max]`.
    pub delay_min: Duration,
    pub delay_max: Duration,
    /// Chance that a message may overtake earlier ones; otherwise the link is FIFO.
    pub reorder_probability: f64,
    /// Chance that a message is delivered twice (each copy with its own delay).
    pub duplicate_probability: f64,
}

impl LinkFaults {
    /// Connected, no loss, no delay, FIFO, no duplicates.
    pub fn reliable() -> LinkFaults {
        LinkFaults {
            connected: true,
            drop_probability: 0.0,
            delay_min: Duration::ZERO,
            delay_max: Duration::ZERO,
            reorder_probability: 0.0,
            duplicate_probability: 0.0,
        }
    }

    /// Connected with the given delay range and nothing else wrong.
    pub fn delayed(delay_min: Duration, delay_max: Duration) -> LinkFaults {
        LinkFaults {
            delay_min,
            delay_max,
            ..LinkFaults::reliable()
        }
    }

    /// Panics on a fault model that cannot be sampled; a test that builds one has a bug.
    pub fn assert_valid(&self) {
        for (name, probability) in [
            ("drop_probability", self.drop_probability),
            ("reorder_probability", self.reorder_probability),
            ("duplicate_probability", self.duplicate_probability),
        ] {
            assert!(
                (0.0..=1.0).contains(&probability),
                "{name} must be in [0, 1], got {probability}"
            );
        }
        assert!(
            self.delay_min <= self.delay_max,
            "delay_min {:?} must not exceed delay_max {:?}",
            self.delay_min,
            self.delay_max
        );
    }
}

impl Default for LinkFaults {
    fn default() -> LinkFaults {
        LinkFaults::reliable()
    }
}
