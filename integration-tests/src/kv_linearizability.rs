//! A linearizability checker for the whole key-value model: get, put, delete and
//! compare-and-swap (swapped, or refused with the value found), for client histories recorded
//! against a cluster.
//!
//! Linearizability is local (Herlihy and Wing): a history is linearizable exactly when its
//! restriction to each key is, so every key is checked on its own. Each key's history is
//! searched in the style of Wing and Gong with Lowe's memoization (as in Knossos and Porcupine):
//! operations are linearized one at a time, an operation may go next only if no pending
//! operation was answered before it was invoked, and `(operations linearized, value)` states
//! already explored are skipped.
//!
//! An operation whose outcome is unknown (a `504`, a broken connection: `answered` is `None`)
//! may take effect at any point after its invocation, or never. Operations definitely not
//! applied (a `503`) and reads that failed belong nowhere in a history.
//!
//! The search is exponential in the worst case. A time or state budget that runs out yields
//! [`KvVerdict::Unknown`], never a pass. A violation yields the key, the failing key's history
//! as JSON and a readable timeline around the first operation no order could explain
//! ([`KvViolation`]); [`KvViolation::write_files`] saves both for a test to point at.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a client did to one key, with what it learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KvOperation {
    /// Read the key and saw `value` (`None`: absent).
    Get { value: Option<Vec<u8>> },
    /// Set the key to `value`.
    Put { value: Vec<u8> },
    /// Removed the key; `existed` is what the answer said, `None` when no answer came.
    Delete { existed: Option<bool> },
    /// Set the key to `value` if its value was `expect` (`None`: absent).
    CompareAndSwap {
        expect: Option<Vec<u8>>,
        value: Vec<u8>,
        outcome: CasOutcome,
    },
}

/// What a compare-and-swap answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CasOutcome {
    /// It matched and wrote its value.
    Swapped,
    /// It did not match; `current` is the value it found.
    Refused { current: Option<Vec<u8>> },
    /// No answer: it may have swapped (if it matched when it took effect) or never happened.
    Unknown,
}

/// One client operation on one key with its real-time interval: invoked at `invoked`,
/// answered at `answered`, or never (its outcome is unknown).
#[derive(Clone, Debug)]
pub struct KvEvent {
    pub client: usize,
    pub key: String,
    pub operation: KvOperation,
    pub invoked: Instant,
    pub answered: Option<Instant>,
}

/// How much the search may spend on one key before it answers "unknown".
#[derive(Clone, Copy, Debug)]
pub struct SearchBudget {
    /// Wall-clock time for the whole history.
    pub time: Duration,
    /// Explored states per key (each holds a bitset of the key's operations and a value).
    pub states_per_key: usize,
}

impl Default for SearchBudget {
    fn default() -> SearchBudget {
        SearchBudget {
            time: Duration::from_secs(30),
            states_per_key: 2_000_000,
        }
    }
}

/// The checker's answer.
#[derive(Debug)]
pub enum KvVerdict {
    /// Every key's history is linearizable.
    Linearizable {
        /// Keys checked.
        keys: usize,
        /// Operations checked.
        operations: usize,
    },
    /// A key's history has no linearization.
    Violation(Box<KvViolation>),
    /// The budget ran out before a verdict; says which key and why. Never a pass.
    Unknown { key: String, reason: String },
}

/// A key whose history no order explains, with what a person needs to see why.
#[derive(Debug)]
pub struct KvViolation {
    pub key: String,
    /// The key's history as JSON: every operation with its times in milliseconds from the
    /// history's first invocation, and which one could not be placed.
    pub history_json: String,
    /// The operations around the first one no order could place, one line each.
    pub timeline: String,
}

impl KvViolation {
    /// Writes `<key>.history.json` and `<key>.timeline.txt` into `directory` (created if
    /// needed), returning their paths.
    pub fn write_files(&self, directory: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(directory)?;
        let stem: String = self
            .key
            .chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() {
                    character
                } else {
                    '_'
                }
            })
            .collect();
        let json = directory.join(format!("{stem}.history.json"));
        let timeline = directory.join(format!("{stem}.timeline.txt"));
        std::fs::write(&json, &self.history_json)?;
        std::fs::write(&timeline, &self.timeline)?;
        Ok((json, timeline))
    }
}

impl std::fmt::Display for KvViolation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "key {:?} is not linearizable:\n{}",
            self.key, self.timeline
        )
    }
}

/// Checks `history` (any keys, any order) against the key-value model, every key starting
/// absent.
pub fn check_kv(history: &[KvEvent], budget: SearchBudget) -> KvVerdict {
    let started = Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&KvEvent>> = BTreeMap::new();
    for event in history {
        by_key.entry(&event.key).or_default().push(event);
    }
    for (key, events) in &by_key {
        let remaining = budget.time.saturating_sub(started.elapsed());
        match check_key(events, budget.states_per_key, started + remaining) {
            KeyOutcome::Linearizable => {}
            KeyOutcome::OutOfBudget(reason) => {
                return KvVerdict::Unknown {
                    key: key.to_string(),
                    reason,
                }
            }
            KeyOutcome::Violation { first_unplaceable } => {
                return KvVerdict::Violation(Box::new(describe(key, events, first_unplaceable)))
            }
        }
    }
    KvVerdict::Linearizable {
        keys: by_key.len(),
        operations: history.len(),
    }
}

enum KeyOutcome {
    Linearizable,
    OutOfBudget(String),
    /// No order places every completed operation; the index is the completed operation,
    /// answered earliest, that the deepest order explored could not place.
    Violation {
        first_unplaceable: usize,
    },
}

/// The value after `operation` takes effect on `value`, or `None` when it cannot take effect
/// there (what it answered contradicts `value`).
fn step(operation: &KvOperation, value: &Option<Vec<u8>>) -> Option<Option<Vec<u8>>> {
    match operation {
        KvOperation::Get { value: seen } => (seen == value).then(|| value.clone()),
        KvOperation::Put { value: written } => Some(Some(written.clone())),
        KvOperation::Delete { existed } => match existed {
            Some(existed) if *existed != value.is_some() => None,
            _ => Some(None),
        },
        KvOperation::CompareAndSwap {
            expect,
            value: written,
            outcome,
        } => match outcome {
            CasOutcome::Swapped => (expect == value).then(|| Some(written.clone())),
            CasOutcome::Refused { current } => {
                (expect != value && current == value).then(|| value.clone())
            }
            // Taking effect now: it swaps if it matches, else it is refused (no change).
            CasOutcome::Unknown => Some(if expect == value {
                Some(written.clone())
            } else {
                value.clone()
            }),
        },
    }
}

fn check_key(events: &[&KvEvent], max_states: usize, deadline: Instant) -> KeyOutcome {
    let count = events.len();
    let completed = events
        .iter()
        .filter(|event| event.answered.is_some())
        .count();
    let words = count.div_ceil(64);
    let mut seen: HashSet<(Vec<u64>, Option<Vec<u8>>)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, Option<Vec<u8>>, usize)> = vec![(vec![0; words], None, 0)];
    // The deepest state explored (most completed operations placed), for the report.
    let mut best: (usize, Vec<u64>) = (0, vec![0; words]);
    while let Some((linearized, value, completed_done)) = stack.pop() {
        if completed_done == completed {
            return KeyOutcome::Linearizable;
        }
        if !seen.insert((linearized.clone(), value.clone())) {
            continue;
        }
        if seen.len() > max_states {
            return KeyOutcome::OutOfBudget(format!(
                "more than {max_states} states explored for {count} operations"
            ));
        }
        if seen.len().is_multiple_of(4096) && Instant::now() > deadline {
            return KeyOutcome::OutOfBudget("the time budget ran out".to_string());
        }
        if completed_done > best.0 {
            best = (completed_done, linearized.clone());
        }
        let is_done = |index: usize| linearized[index / 64] & (1 << (index % 64)) != 0;
        // The earliest answer among pending operations bounds which may go next.
        let horizon = (0..count)
            .filter(|index| !is_done(*index))
            .filter_map(|index| events[index].answered)
            .min();
        for index in 0..count {
            if is_done(index) {
                continue;
            }
            let event = events[index];
            if horizon.is_some_and(|horizon| event.invoked > horizon) {
                continue;
            }
            let Some(next_value) = step(&event.operation, &value) else {
                continue;
            };
            let mut next = linearized.clone();
            next[index / 64] |= 1 << (index % 64);
            let next_completed = completed_done + usize::from(event.answered.is_some());
            stack.push((next, next_value, next_completed));
        }
    }
    let (_, placed) = best;
    let first_unplaceable = (0..count)
        .filter(|index| placed[index / 64] & (1 << (index % 64)) == 0)
        .filter(|index| events[*index].answered.is_some())
        .min_by_key(|index| events[*index].answered)
        .expect("a violation leaves a completed operation unplaced");
    KeyOutcome::Violation { first_unplaceable }
}

/// One operation as the JSON report shows it.
#[derive(Serialize)]
struct ReportedEvent<'a> {
    client: usize,
    operation: &'a KvOperation,
    invoked_ms: f64,
    answered_ms: Option<f64>,
    first_unplaceable: bool,
}

#[derive(Serialize)]
struct ReportedHistory<'a> {
    key: &'a str,
    operations: Vec<ReportedEvent<'a>>,
}

/// Operations shown on each side of the first unplaceable one in the timeline.
const TIMELINE_CONTEXT: usize = 12;

fn describe(key: &str, events: &[&KvEvent], first_unplaceable: usize) -> KvViolation {
    let origin = events
        .iter()
        .map(|event| event.invoked)
        .min()
        .expect("a key has operations");
    let milliseconds = |instant: Instant| instant.duration_since(origin).as_secs_f64() * 1000.0;
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|index| events[*index].invoked);
    let operations = order
        .iter()
        .map(|index| ReportedEvent {
            client: events[*index].client,
            operation: &events[*index].operation,
            invoked_ms: milliseconds(events[*index].invoked),
            answered_ms: events[*index].answered.map(milliseconds),
            first_unplaceable: *index == first_unplaceable,
        })
        .collect();
    let history_json = serde_json::to_string_pretty(&ReportedHistory { key, operations })
        .expect("a history always serializes");
    let position = order
        .iter()
        .position(|index| *index == first_unplaceable)
        .expect("the unplaceable operation is in the history");
    let from = position.saturating_sub(TIMELINE_CONTEXT);
    let to = (position + TIMELINE_CONTEXT + 1).min(order.len());
    let mut timeline = format!(
        "operations {from}..{to} of {} on key {key:?}, by invocation (ms from the first):\n",
        order.len()
    );
    for (offset, index) in order[from..to].iter().enumerate() {
        let event = events[*index];
        let marker = if *index == first_unplaceable {
            ">>"
        } else {
            "  "
        };
        let answered = event.answered.map_or("        never".to_string(), |at| {
            format!("{:>13.3}", milliseconds(at))
        });
        timeline.push_str(&format!(
            "{marker} #{:<5} client {:<3} {:>10.3} .. {answered}  {}\n",
            from + offset,
            event.client,
            milliseconds(event.invoked),
            render(&event.operation)
        ));
    }
    timeline.push_str(
        ">> marks the first completed operation (by answer) that no order of the operations \
         before it can explain\n",
    );
    KvViolation {
        key: key.to_string(),
        history_json,
        timeline,
    }
}

fn render_value(value: &Option<Vec<u8>>) -> String {
    match value {
        None => "absent".to_string(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => format!("{text:?}"),
            Err(_) => format!("{} bytes", bytes.len()),
        },
    }
}

fn render(operation: &KvOperation) -> String {
    match operation {
        KvOperation::Get { value } => format!("get -> {}", render_value(value)),
        KvOperation::Put { value } => format!("put {}", render_value(&Some(value.clone()))),
        KvOperation::Delete { existed } => match existed {
            Some(existed) => format!("delete -> existed {existed}"),
            None => "delete -> unknown".to_string(),
        },
        KvOperation::CompareAndSwap {
            expect,
            value,
            outcome,
        } => {
            let outcome = match outcome {
                CasOutcome::Swapped => "swapped".to_string(),
                CasOutcome::Refused { current } => {
                    format!("refused, found {}", render_value(current))
                }
                CasOutcome::Unknown => "unknown".to_string(),
            };
            format!(
                "cas {} -> {} : {outcome}",
                render_value(expect),
                render_value(&Some(value.clone()))
            )
        }
    }
}

#[cfg(test)]
mod tests;
