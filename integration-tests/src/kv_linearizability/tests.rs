//! Tests of `kv_linearizability`: the model's rules, unknown outcomes, per-key independence,
//! the budget, and the violation report.

use super::*;

/// Builds histories with millisecond times from one origin.
struct History {
    origin: Instant,
    events: Vec<KvEvent>,
}

impl History {
    fn new() -> History {
        History {
            origin: Instant::now(),
            events: Vec::new(),
        }
    }

    fn at(&self, milliseconds: u64) -> Instant {
        self.origin + Duration::from_millis(milliseconds)
    }

    fn push(
        &mut self,
        client: usize,
        key: &str,
        operation: KvOperation,
        from: u64,
        to: Option<u64>,
    ) -> &mut History {
        let event = KvEvent {
            client,
            key: key.to_string(),
            operation,
            invoked: self.at(from),
            answered: to.map(|to| self.at(to)),
        };
        self.events.push(event);
        self
    }

    fn check(&self) -> KvVerdict {
        check_kv(&self.events, SearchBudget::default())
    }
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn get(value: Option<&str>) -> KvOperation {
    KvOperation::Get {
        value: value.map(bytes),
    }
}

fn put(value: &str) -> KvOperation {
    KvOperation::Put {
        value: bytes(value),
    }
}

fn cas(expect: Option<&str>, value: &str, outcome: CasOutcome) -> KvOperation {
    KvOperation::CompareAndSwap {
        expect: expect.map(bytes),
        value: bytes(value),
        outcome,
    }
}

fn is_linearizable(verdict: &KvVerdict) -> bool {
    matches!(verdict, KvVerdict::Linearizable { .. })
}

fn violation(verdict: KvVerdict) -> KvViolation {
    match verdict {
        KvVerdict::Violation(violation) => *violation,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn sequential_and_overlapping_operations_of_every_kind() {
    let mut history = History::new();
    history
        .push(0, "k", get(None), 0, Some(1))
        .push(0, "k", put("a"), 2, Some(3))
        .push(1, "k", cas(Some("a"), "b", CasOutcome::Swapped), 4, Some(5))
        .push(
            1,
            "k",
            cas(
                Some("a"),
                "c",
                CasOutcome::Refused {
                    current: Some(bytes("b")),
                },
            ),
            6,
            Some(7),
        )
        // A delete overlapping a read: the read may see either.
        .push(
            0,
            "k",
            KvOperation::Delete {
                existed: Some(true),
            },
            8,
            Some(12),
        )
        .push(1, "k", get(Some("b")), 9, Some(10))
        .push(1, "k", get(None), 13, Some(14))
        .push(
            0,
            "k",
            KvOperation::Delete {
                existed: Some(false),
            },
            15,
            Some(16),
        );
    assert!(is_linearizable(&history.check()), "{:?}", history.check());
}

#[test]
fn a_stale_read_after_a_completed_write_is_caught_with_a_timeline() {
    let mut history = History::new();
    history
        .push(0, "k", put("a"), 0, Some(1))
        .push(0, "k", put("b"), 2, Some(3))
        .push(1, "k", get(Some("a")), 4, Some(5));
    let violation = violation(history.check());
    assert_eq!(violation.key, "k");
    assert!(
        violation.timeline.contains(">> #2"),
        "the stale read is marked: {}",
        violation.timeline
    );
    let json: serde_json::Value =
        serde_json::from_str(&violation.history_json).expect("the report is JSON");
    assert_eq!(json["key"], "k");
    assert_eq!(json["operations"][2]["first_unplaceable"], true);
    let directory = tempfile::tempdir().expect("temporary directory");
    let (json_path, timeline_path) = violation
        .write_files(directory.path())
        .expect("the report is written");
    assert!(json_path.exists() && timeline_path.exists());
}

#[test]
fn compare_and_swap_answers_must_match_the_value() {
    // A swap that claims to have matched a value the key never had.
    let mut wrong_swap = History::new();
    wrong_swap.push(0, "k", put("a"), 0, Some(1)).push(
        1,
        "k",
        cas(Some("x"), "b", CasOutcome::Swapped),
        2,
        Some(3),
    );
    violation(wrong_swap.check());
    // A refusal that reports a current value the key did not hold.
    let mut wrong_refusal = History::new();
    wrong_refusal.push(0, "k", put("a"), 0, Some(1)).push(
        1,
        "k",
        cas(
            Some("x"),
            "b",
            CasOutcome::Refused {
                current: Some(bytes("z")),
            },
        ),
        2,
        Some(3),
    );
    violation(wrong_refusal.check());
    // A refusal of a CAS that matched.
    let mut matched_but_refused = History::new();
    matched_but_refused.push(0, "k", put("a"), 0, Some(1)).push(
        1,
        "k",
        cas(
            Some("a"),
            "b",
            CasOutcome::Refused {
                current: Some(bytes("a")),
            },
        ),
        2,
        Some(3),
    );
    violation(matched_but_refused.check());
    // Two concurrent swaps from the same value cannot both succeed.
    let mut double_swap = History::new();
    double_swap
        .push(0, "k", put("a"), 0, Some(1))
        .push(1, "k", cas(Some("a"), "b", CasOutcome::Swapped), 2, Some(5))
        .push(2, "k", cas(Some("a"), "c", CasOutcome::Swapped), 3, Some(6));
    violation(double_swap.check());
}

#[test]
fn unknown_outcomes_may_take_effect_late_or_never_but_not_flicker() {
    let mut late = History::new();
    late.push(0, "k", put("a"), 0, None)
        .push(1, "k", get(None), 1, Some(2))
        .push(1, "k", get(Some("a")), 10, Some(11));
    assert!(is_linearizable(&late.check()));
    let mut never = History::new();
    never
        .push(0, "k", put("a"), 0, None)
        .push(1, "k", get(None), 10, Some(11));
    assert!(is_linearizable(&never.check()));
    let mut flicker = History::new();
    flicker
        .push(0, "k", put("a"), 0, None)
        .push(1, "k", get(Some("a")), 1, Some(2))
        .push(1, "k", get(None), 3, Some(4));
    violation(flicker.check());
    // An unknown CAS swaps only where it matches.
    let mut unknown_cas = History::new();
    unknown_cas
        .push(0, "k", put("a"), 0, Some(1))
        .push(1, "k", cas(Some("a"), "b", CasOutcome::Unknown), 2, None)
        .push(2, "k", get(Some("b")), 5, Some(6));
    assert!(is_linearizable(&unknown_cas.check()));
    let mut unknown_cas_mismatch = History::new();
    unknown_cas_mismatch
        .push(0, "k", put("a"), 0, Some(1))
        .push(1, "k", cas(Some("x"), "b", CasOutcome::Unknown), 2, None)
        .push(2, "k", get(Some("b")), 5, Some(6));
    violation(unknown_cas_mismatch.check());
    // An unknown delete may have removed the key.
    let mut unknown_delete = History::new();
    unknown_delete
        .push(0, "k", put("a"), 0, Some(1))
        .push(1, "k", KvOperation::Delete { existed: None }, 2, None)
        .push(2, "k", get(None), 5, Some(6));
    assert!(is_linearizable(&unknown_delete.check()));
}

#[test]
fn keys_are_checked_independently_and_the_bad_one_is_named() {
    let mut history = History::new();
    history
        .push(0, "good", put("1"), 0, Some(1))
        .push(1, "good", get(Some("1")), 2, Some(3))
        .push(0, "bad", put("1"), 0, Some(1))
        .push(1, "bad", get(None), 2, Some(3));
    let violation = violation(history.check());
    assert_eq!(violation.key, "bad");
}

#[test]
fn an_exhausted_budget_says_unknown_never_pass() {
    // Many concurrent writes of unknown outcome, and a read of a value nobody wrote: no
    // order exists, but proving it means trying every subset of the writes, far more states
    // than the budget allows. The checker must say it does not know, not that it passed.
    let mut history = History::new();
    for client in 0..40 {
        history.push(client, "k", put(&format!("v{client}")), 0, None);
    }
    history.push(100, "k", get(Some("never written")), 1, Some(1000));
    let verdict = check_kv(
        &history.events,
        SearchBudget {
            time: Duration::from_secs(10),
            states_per_key: 1_000,
        },
    );
    assert!(
        matches!(verdict, KvVerdict::Unknown { ref key, .. } if key == "k"),
        "{verdict:?}"
    );
}
