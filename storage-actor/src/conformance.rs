//! The conformance suite: one set of checks every [`LogStore`] must pass, one per point of the
//! trait's `# Correctness` list. A new store gets the whole suite by implementing
//! [`StoreHarness`] and calling [`run_all`] (or each check from its own `#[test]`).
//!
//! The checks panic with a message naming the broken rule; they are test code that ships in
//! the library so that stores living in other crates can run it too.

use crate::log_store::{LogStore, StoredLog};
use crate::storage_error::StorageError;
use raft_types::{Entry, EntryPayload, HardState, LogId, LogIndex, NodeId, Term};

/// Opens a store on the same underlying data every time it is called: the second call is a
/// restart. The store from the previous call is dropped before the next `open`.
pub trait StoreHarness {
    type Store: LogStore;
    fn open(&mut self) -> (Self::Store, StoredLog);
}

/// Runs every check, each on a fresh harness from `new_harness`.
pub fn run_all<H: StoreHarness>(mut new_harness: impl FnMut() -> H) {
    fresh_store_is_empty(&mut new_harness());
    append_then_read_back(&mut new_harness());
    append_out_of_order_is_refused_and_poisons(&mut new_harness());
    truncate_suffix_then_append(&mut new_harness());
    hard_state_round_trip(&mut new_harness());
    hard_state_and_appends_keep_their_order(&mut new_harness());
    reopen_restores_everything_and_continues(&mut new_harness());
    purge_keeps_everything_from_before(&mut new_harness());
    read_outside_the_log_is_refused(&mut new_harness());
    reset_then_append(&mut new_harness());
    reset_survives_reopen(&mut new_harness());
    reset_then_crash_before_sync_is_old_or_new(&mut new_harness());
    purge_after_reset(&mut new_harness());
}

/// An entry whose payload is derived from its id, so any mix-up shows.
pub fn sample_entry(term: u64, index: u64) -> Entry {
    let payload = format!("term {term} index {index} ").repeat(1 + (index % 7) as usize);
    Entry::new(
        Term(term),
        LogIndex(index),
        EntryPayload::command(payload.into_bytes()),
    )
}

/// Entries `first..=last` of `term`.
pub fn sample_entries(term: u64, first: u64, last: u64) -> Vec<Entry> {
    (first..=last)
        .map(|index| sample_entry(term, index))
        .collect()
}

/// Saves `hard_state`, appends entries `1..=last` of its term, `per_append` at a time (a
/// divisor of `last`), and syncs.
fn fill_log<S: LogStore>(store: &mut S, hard_state: &HardState, last: u64, per_append: u64) {
    assert_eq!(last % per_append, 0, "the appends cover 1..=last exactly");
    let term = hard_state.current_term.0;
    store.save_hard_state(hard_state).expect("save succeeds");
    for first in (1..=last).step_by(per_append as usize) {
        store
            .append(&sample_entries(term, first, first + per_append - 1))
            .expect("append succeeds");
    }
    store.sync().expect("sync succeeds");
}

fn read_all<S: LogStore>(store: &S) -> Vec<Entry> {
    store
        .entries(store.first_index()..store.next_index())
        .expect("reading the whole held range succeeds")
}

pub fn fresh_store_is_empty<H: StoreHarness>(harness: &mut H) {
    let (store, recovered) = harness.open();
    assert_eq!(
        recovered,
        StoredLog {
            hard_state: HardState::default(),
            first_index: LogIndex(1),
            entries: Vec::new(),
            prev_log_id: Some(LogId::ZERO),
        },
        "a fresh store recovers nothing"
    );
    assert_eq!(store.first_index(), LogIndex(1));
    assert_eq!(store.next_index(), LogIndex(1));
    assert_eq!(store.last_log_id(), None);
    assert_eq!(store.hard_state(), HardState::default());
}

pub fn append_then_read_back<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    store
        .append(&sample_entries(1, 1, 3))
        .expect("append continues the log");
    store.append(&[]).expect("an empty append is a no-op");
    store
        .append(&sample_entries(2, 4, 10))
        .expect("append continues the log");
    store.sync().expect("sync succeeds");
    assert_eq!(store.next_index(), LogIndex(11));
    assert_eq!(store.last_log_id(), Some(LogId::new(Term(2), LogIndex(10))));
    let mut expected = sample_entries(1, 1, 3);
    expected.extend(sample_entries(2, 4, 10));
    assert_eq!(read_all(&store), expected, "entries read back as appended");
    assert_eq!(
        store.entries(LogIndex(4)..LogIndex(6)).expect("in range"),
        sample_entries(2, 4, 5),
        "a sub-range reads back"
    );
}

pub fn append_out_of_order_is_refused_and_poisons<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    store
        .append(&sample_entries(1, 1, 2))
        .expect("append continues the log");
    let gap = store.append(&sample_entries(1, 4, 4));
    assert!(
        matches!(
            gap,
            Err(StorageError::AppendOutOfOrder {
                expected: LogIndex(3),
                found: LogIndex(4)
            })
        ),
        "an append leaving a gap is refused, got {gap:?}"
    );
    let after = store.append(&sample_entries(1, 3, 3));
    assert!(
        matches!(after, Err(StorageError::Poisoned)),
        "a store that failed accepts nothing more, got {after:?}"
    );
    assert!(matches!(store.sync(), Err(StorageError::Poisoned)));
}

pub fn truncate_suffix_then_append<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    store
        .append(&sample_entries(1, 1, 10))
        .expect("append continues the log");
    store.truncate(LogIndex(6)).expect("truncate succeeds");
    assert_eq!(
        store.next_index(),
        LogIndex(6),
        "§5.3: the conflicting suffix is gone"
    );
    assert_eq!(store.last_log_id(), Some(LogId::new(Term(1), LogIndex(5))));
    store
        .truncate(LogIndex(20))
        .expect("truncating past the end is a no-op");
    assert_eq!(store.next_index(), LogIndex(6));
    store
        .append(&sample_entries(2, 6, 8))
        .expect("append continues the truncated log");
    store.sync().expect("sync succeeds");
    let mut expected = sample_entries(1, 1, 5);
    expected.extend(sample_entries(2, 6, 8));
    assert_eq!(
        read_all(&store),
        expected,
        "entries below the truncation stay intact"
    );
    drop(store);
    let (store, recovered) = harness.open();
    assert_eq!(
        recovered.entries, expected,
        "the truncation survives a restart"
    );
    assert_eq!(read_all(&store), expected);
}

pub fn hard_state_round_trip<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    let voted = HardState::new(Term(5), Some(NodeId(2)));
    store.save_hard_state(&voted).expect("save succeeds");
    store.sync().expect("sync succeeds");
    assert_eq!(store.hard_state(), voted);
    drop(store);
    let (mut store, recovered) = harness.open();
    assert_eq!(
        recovered.hard_state, voted,
        "§5.2: the vote survives a restart"
    );
    let newer = HardState::new(Term(6), None);
    store.save_hard_state(&newer).expect("save succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let (_, recovered) = harness.open();
    assert_eq!(recovered.hard_state, newer, "the latest hard state wins");
}

pub fn hard_state_and_appends_keep_their_order<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    store
        .save_hard_state(&HardState::new(Term(1), Some(NodeId(1))))
        .expect("save succeeds");
    store
        .append(&sample_entries(1, 1, 3))
        .expect("append succeeds");
    store
        .save_hard_state(&HardState::new(Term(2), Some(NodeId(3))))
        .expect("save succeeds");
    store.truncate(LogIndex(2)).expect("truncate succeeds");
    store
        .append(&sample_entries(2, 2, 4))
        .expect("append succeeds");
    let last_hard_state = HardState::new(Term(3), None);
    store
        .save_hard_state(&last_hard_state)
        .expect("save succeeds");
    store
        .append(&sample_entries(3, 5, 5))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    let mut expected = sample_entries(1, 1, 1);
    expected.extend(sample_entries(2, 2, 4));
    expected.extend(sample_entries(3, 5, 5));
    drop(store);
    let (store, recovered) = harness.open();
    assert_eq!(
        recovered.hard_state, last_hard_state,
        "the hard state saved last is recovered"
    );
    assert_eq!(
        recovered.entries, expected,
        "interleaved operations replay in order"
    );
    assert_eq!(store.hard_state(), last_hard_state);
    assert_eq!(read_all(&store), expected);
}

pub fn reopen_restores_everything_and_continues<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(4), Some(NodeId(1)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 200, 20);
    drop(store);

    let (mut store, recovered) = harness.open();
    assert_eq!(recovered.hard_state, hard_state);
    assert_eq!(recovered.first_index, LogIndex(1));
    assert_eq!(
        recovered.entries,
        sample_entries(4, 1, 200),
        "every synced entry is recovered"
    );
    assert_eq!(
        recovered.last_log_id(),
        Some(LogId::new(Term(4), LogIndex(200)))
    );
    assert_eq!(store.next_index(), LogIndex(201));
    store
        .append(&sample_entries(5, 201, 230))
        .expect("a reopened store appends on");
    store.sync().expect("sync succeeds");
    drop(store);

    let (store, recovered) = harness.open();
    let mut expected = sample_entries(4, 1, 200);
    expected.extend(sample_entries(5, 201, 230));
    assert_eq!(recovered.entries, expected);
    assert_eq!(read_all(&store), expected);
}

pub fn purge_keeps_everything_from_before<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(7), Some(NodeId(3)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 400, 10);
    let before = LogIndex(250);
    store.purge(before).expect("purge succeeds");
    store.sync().expect("sync succeeds");
    let first_index = store.first_index();
    assert!(
        first_index <= before,
        "purge never removes entries at or after `before`"
    );
    assert_eq!(
        store
            .entries(before..LogIndex(401))
            .expect("kept entries are readable"),
        sample_entries(7, 250, 400)
    );
    drop(store);

    let (mut store, recovered) = harness.open();
    assert_eq!(
        recovered.hard_state, hard_state,
        "purging never loses the hard state"
    );
    assert_eq!(
        recovered.first_index, first_index,
        "a restart sees the same first index"
    );
    assert_eq!(recovered.entries, sample_entries(7, first_index.0, 400));
    let before_first = LogId::new(Term(7), first_index.previous());
    assert!(
        recovered.prev_log_id.is_none()
            || recovered.prev_log_id == Some(before_first)
            || (first_index == LogIndex(1) && recovered.prev_log_id == Some(LogId::ZERO)),
        "prev_log_id is the entry before the first one, or unknown: {:?}",
        recovered.prev_log_id
    );
    store
        .append(&sample_entries(8, 401, 401))
        .expect("a purged store appends on");
    store
        .purge(LogIndex(1000))
        .expect("purging past the end keeps the last entries' place");
    store.sync().expect("sync succeeds");
    assert_eq!(store.next_index(), LogIndex(402));
    drop(store);
    let (store, recovered) = harness.open();
    assert_eq!(
        recovered.next_index(),
        LogIndex(402),
        "the log goes on where it was"
    );
    assert_eq!(store.next_index(), LogIndex(402));
}

pub fn read_outside_the_log_is_refused<H: StoreHarness>(harness: &mut H) {
    let (mut store, _) = harness.open();
    store
        .append(&sample_entries(1, 1, 5))
        .expect("append succeeds");
    let beyond = store.entries(LogIndex(3)..LogIndex(9));
    assert!(
        matches!(beyond, Err(StorageError::IndexOutOfRange { .. })),
        "reading past the end is refused, got {beyond:?}"
    );
    store
        .append(&sample_entries(1, 6, 6))
        .expect("a refused read does not poison the store");
}

pub fn reset_then_append<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(5), Some(NodeId(2)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 10, 5);
    let snapshot = LogId::new(Term(5), LogIndex(100));
    store.reset(snapshot).expect("reset succeeds");
    assert_eq!(
        store.first_index(),
        LogIndex(101),
        "the log goes on after the snapshot"
    );
    assert_eq!(store.next_index(), LogIndex(101));
    assert_eq!(store.last_log_id(), None, "a reset log holds no entry");
    assert_eq!(
        store
            .entries(LogIndex(101)..LogIndex(101))
            .expect("the empty range is held"),
        Vec::new()
    );
    assert!(
        matches!(
            store.entries(LogIndex(5)..LogIndex(6)),
            Err(StorageError::IndexOutOfRange { .. })
        ),
        "the entries before the reset are gone"
    );
    store
        .append(&sample_entries(5, 101, 105))
        .expect("the next append is last_log_id.index + 1");
    store.sync().expect("sync succeeds");
    assert_eq!(
        store.last_log_id(),
        Some(LogId::new(Term(5), LogIndex(105)))
    );
    assert_eq!(read_all(&store), sample_entries(5, 101, 105));
    assert_eq!(
        store.hard_state(),
        hard_state,
        "a reset keeps the hard state"
    );
    drop(store);
    let (store, recovered) = harness.open();
    assert_eq!(recovered.hard_state, hard_state);
    assert_eq!(recovered.first_index, LogIndex(101));
    assert_eq!(recovered.entries, sample_entries(5, 101, 105));
    assert_eq!(recovered.prev_log_id, Some(snapshot));
    assert_eq!(store.next_index(), LogIndex(106));
}

pub fn reset_survives_reopen<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(3), Some(NodeId(1)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 20, 10);
    // A snapshot below the end of the log replaces it too: the whole log goes.
    let snapshot = LogId::new(Term(3), LogIndex(12));
    store.reset(snapshot).expect("reset succeeds");
    store.sync().expect("sync succeeds");
    drop(store);

    let (mut store, recovered) = harness.open();
    assert_eq!(recovered.hard_state, hard_state);
    assert_eq!(recovered.first_index, LogIndex(13));
    assert_eq!(
        recovered.entries,
        Vec::new(),
        "the reset survives a restart"
    );
    assert_eq!(recovered.prev_log_id, Some(snapshot));
    assert_eq!(store.next_index(), LogIndex(13));
    store
        .append(&sample_entries(4, 13, 15))
        .expect("a reopened reset log appends on");
    // A second reset, then entries after it.
    let later = LogId::new(Term(4), LogIndex(40));
    store.reset(later).expect("reset succeeds");
    store
        .append(&sample_entries(4, 41, 42))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let (_, recovered) = harness.open();
    assert_eq!(recovered.first_index, LogIndex(41));
    assert_eq!(recovered.entries, sample_entries(4, 41, 42));
    assert_eq!(recovered.prev_log_id, Some(later));
}

/// A crash of the process (the store dropped without `sync`): the log is the one before the
/// reset or the one after it, with a prefix of what was appended since, never a mix.
pub fn reset_then_crash_before_sync_is_old_or_new<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(2), Some(NodeId(3)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 10, 5);
    let snapshot = LogId::new(Term(2), LogIndex(20));
    store.reset(snapshot).expect("reset succeeds");
    store
        .append(&sample_entries(2, 21, 22))
        .expect("append succeeds");
    drop(store);
    let (_, recovered) = harness.open();
    assert_eq!(recovered.hard_state, hard_state);
    let old_log = recovered.first_index == LogIndex(1)
        && recovered.entries == sample_entries(2, 1, 10)
        && recovered.prev_log_id == Some(LogId::ZERO);
    let new_log = recovered.first_index == LogIndex(21)
        && sample_entries(2, 21, 22).starts_with(&recovered.entries)
        && recovered.prev_log_id == Some(snapshot);
    assert!(
        old_log || new_log,
        "neither the log before the reset nor the one after it: first index {}, {} entries, \
         prev {:?}",
        recovered.first_index,
        recovered.entries.len(),
        recovered.prev_log_id
    );
}

pub fn purge_after_reset<H: StoreHarness>(harness: &mut H) {
    let hard_state = HardState::new(Term(4), Some(NodeId(1)));
    let (mut store, _) = harness.open();
    fill_log(&mut store, &hard_state, 200, 10);
    let snapshot = LogId::new(Term(4), LogIndex(300));
    store.reset(snapshot).expect("reset succeeds");
    for first in (301..=400).step_by(10) {
        store
            .append(&sample_entries(4, first, first + 9))
            .expect("append succeeds");
    }
    store.sync().expect("sync succeeds");
    store
        .purge(LogIndex(301))
        .expect("purging what the reset replaced");
    store.sync().expect("sync succeeds");
    assert_eq!(
        store.first_index(),
        LogIndex(301),
        "purge never goes below the reset"
    );
    assert_eq!(read_all(&store), sample_entries(4, 301, 400));
    store
        .purge(LogIndex(350))
        .expect("purging entries after the reset");
    store.sync().expect("sync succeeds");
    let first_index = store.first_index();
    assert!(
        (LogIndex(301)..=LogIndex(350)).contains(&first_index),
        "purge keeps every entry from `before`: first index {first_index}"
    );
    drop(store);
    let (mut store, recovered) = harness.open();
    assert_eq!(
        recovered.hard_state, hard_state,
        "purging never loses the hard state"
    );
    assert_eq!(
        recovered.first_index, first_index,
        "a restart sees the same first index"
    );
    assert_eq!(recovered.entries, sample_entries(4, first_index.0, 400));
    let before_first = LogId::new(Term(4), first_index.previous());
    assert!(
        recovered.prev_log_id.is_none() || recovered.prev_log_id == Some(before_first),
        "prev_log_id is the entry before the first one, or unknown: {:?}",
        recovered.prev_log_id
    );
    store
        .append(&sample_entries(5, 401, 401))
        .expect("a purged reset log appends on");
    store.sync().expect("sync succeeds");
}
