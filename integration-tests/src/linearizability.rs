//! A linearizability checker for one read/write register (Wing & Gong's search with Lowe's
//! memoization, as in Knossos and Porcupine), for client histories recorded against a cluster.
//!
//! Each operation has the instant it was invoked and the instant its answer arrived. A write
//! whose outcome is unknown (`504`, a broken connection) has no answer: it may take effect at
//! any point after its invocation, or never. Operations that were definitely not applied
//! (`503`) or reads that failed are left out of the history.
//!
//! The search linearizes one operation at a time: an operation may go next if no other
//! pending operation was answered before it was invoked. A read must return the register's
//! current value. `(set of linearized operations, register value)` pairs already explored are
//! skipped, which keeps histories of a few thousand operations with a handful of concurrent
//! clients fast.

use std::collections::HashSet;
use std::time::Instant;

/// What a client did to the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOperation {
    /// Set the register to `value`.
    Write { value: Vec<u8> },
    /// Read the register and saw `value` (`None`: absent).
    Read { value: Option<Vec<u8>> },
}

/// One client operation on the register with its real-time interval, as the checker sees a
/// history: invoked at `invoked`, answered at `answered` (or never, for an unknown write).
#[derive(Clone, Debug)]
pub struct TimedOperation {
    pub client: usize,
    pub operation: RegisterOperation,
    pub invoked: Instant,
    /// `None`: the outcome is unknown (only for writes).
    pub answered: Option<Instant>,
}

/// Returns `Ok(())` when `history` is linearizable from an absent register, or a description
/// of the longest prefix that could be explained.
pub fn check_register(history: &[TimedOperation]) -> Result<(), String> {
    for operation in history {
        assert!(
            operation.answered.is_some()
                || matches!(operation.operation, RegisterOperation::Write { .. }),
            "only writes can have an unknown outcome"
        );
    }
    let count = history.len();
    let completed = history.iter().filter(|op| op.answered.is_some()).count();
    // Depth-first search over (linearized set, value); `path` holds the order chosen so far.
    let mut seen: HashSet<(Vec<u64>, Option<Vec<u8>>)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, Option<Vec<u8>>, usize)> =
        vec![(vec![0; count.div_ceil(64)], None, 0)];
    let mut best = 0;
    while let Some((linearized, value, completed_done)) = stack.pop() {
        if completed_done == completed {
            return Ok(());
        }
        best = best.max(completed_done);
        if !seen.insert((linearized.clone(), value.clone())) {
            continue;
        }
        let is_done = |index: usize| linearized[index / 64] & (1 << (index % 64)) != 0;
        // The earliest answer among pending operations bounds which may go next.
        let horizon = (0..count)
            .filter(|index| !is_done(*index))
            .filter_map(|index| history[index].answered)
            .min();
        for index in 0..count {
            if is_done(index) {
                continue;
            }
            let operation = &history[index];
            if horizon.is_some_and(|horizon| operation.invoked > horizon) {
                continue;
            }
            let next_value = match &operation.operation {
                RegisterOperation::Write { value: written } => Some(written.clone()),
                RegisterOperation::Read { value: seen_value } => {
                    if *seen_value != value {
                        continue;
                    }
                    value.clone()
                }
            };
            let mut next = linearized.clone();
            next[index / 64] |= 1 << (index % 64);
            let next_completed = completed_done + usize::from(operation.answered.is_some());
            stack.push((next, next_value, next_completed));
        }
    }
    Err(format!(
        "not linearizable: at most {best} of {completed} completed operations could be ordered"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(base: Instant, milliseconds: u64) -> Instant {
        base + Duration::from_millis(milliseconds)
    }

    fn write(
        base: Instant,
        client: usize,
        value: &str,
        from: u64,
        to: Option<u64>,
    ) -> TimedOperation {
        TimedOperation {
            client,
            operation: RegisterOperation::Write {
                value: value.as_bytes().to_vec(),
            },
            invoked: at(base, from),
            answered: to.map(|to| at(base, to)),
        }
    }

    fn read(
        base: Instant,
        client: usize,
        value: Option<&str>,
        from: u64,
        to: u64,
    ) -> TimedOperation {
        TimedOperation {
            client,
            operation: RegisterOperation::Read {
                value: value.map(|value| value.as_bytes().to_vec()),
            },
            invoked: at(base, from),
            answered: Some(at(base, to)),
        }
    }

    #[test]
    fn sequential_and_overlapping_histories() {
        let base = Instant::now();
        let ok = [
            read(base, 0, None, 0, 1),
            write(base, 0, "a", 2, Some(3)),
            read(base, 1, Some("a"), 4, 5),
            // Overlapping write and read: the read may see either value.
            write(base, 0, "b", 6, Some(10)),
            read(base, 1, Some("a"), 7, 8),
            read(base, 1, Some("b"), 9, 11),
        ];
        assert_eq!(check_register(&ok), Ok(()));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let base = Instant::now();
        let stale = [
            write(base, 0, "a", 0, Some(1)),
            write(base, 0, "b", 2, Some(3)),
            read(base, 1, Some("a"), 4, 5),
        ];
        assert!(check_register(&stale).is_err());
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        let base = Instant::now();
        let late = [
            write(base, 0, "a", 0, None),
            read(base, 1, None, 1, 2),
            read(base, 1, Some("a"), 10, 11),
        ];
        assert_eq!(check_register(&late), Ok(()));
        let never = [write(base, 0, "a", 0, None), read(base, 1, None, 10, 11)];
        assert_eq!(check_register(&never), Ok(()));
        let flicker = [
            write(base, 0, "a", 0, None),
            read(base, 1, Some("a"), 1, 2),
            read(base, 1, None, 3, 4),
        ];
        assert!(check_register(&flicker).is_err());
    }
}
