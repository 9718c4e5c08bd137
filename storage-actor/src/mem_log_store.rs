//! `MemLogStore`: the log kept in memory, for experiments (`engine = "memory"`) and tests.
//!
//! Nothing here survives the process. What survives a simulated restart inside one process is
//! a [`MemDisk`]: open a new store on the same `MemDisk` and it recovers what the old one held.
//! Every write reaches the `MemDisk` at once, so a simulated crash loses nothing that was
//! written, synced or not; a store that loses unsynced writes belongs to the test harness that
//! needs it.

use crate::log_store::{check_continues, check_range, LogStore, StoredLog};
use crate::storage_error::StorageError;
use raft_types::{Entry, HardState, LogId, LogIndex};
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

/// The "disk" of in-memory stores: shared, so a store opened later on the same `MemDisk` sees
/// what earlier ones wrote (a restart in a test).
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    contents: Arc<Mutex<MemContents>>,
}

#[derive(Debug)]
struct MemContents {
    hard_state: HardState,
    /// Index of `entries[0]`, or of the next append when empty.
    first_index: LogIndex,
    entries: VecDeque<Entry>,
    /// The id of the entry before `first_index` (see `StoredLog::prev_log_id`).
    prev_log_id: Option<LogId>,
}

impl Default for MemContents {
    fn default() -> MemContents {
        MemContents {
            hard_state: HardState::default(),
            first_index: LogIndex(1),
            entries: VecDeque::new(),
            prev_log_id: Some(LogId::ZERO),
        }
    }
}

impl MemContents {
    fn next_index(&self) -> LogIndex {
        self.first_index.plus(self.entries.len() as u64)
    }
}

/// A [`LogStore`] in memory. `sync` is free and durability ends with the process.
#[derive(Debug)]
pub struct MemLogStore {
    disk: MemDisk,
    /// Set by the first failed write; see the trait's `# Correctness`.
    poisoned: bool,
}

impl MemLogStore {
    /// A store on a fresh, empty `MemDisk`.
    pub fn new() -> MemLogStore {
        MemLogStore::open(MemDisk::default()).0
    }

    /// Opens a store on `disk`, recovering what earlier stores on it wrote.
    pub fn open(disk: MemDisk) -> (MemLogStore, StoredLog) {
        let store = MemLogStore {
            disk,
            poisoned: false,
        };
        let recovered = {
            let contents = store.contents();
            StoredLog {
                hard_state: contents.hard_state,
                first_index: contents.first_index,
                entries: contents.entries.iter().cloned().collect(),
                prev_log_id: contents.prev_log_id,
            }
        };
        (store, recovered)
    }

    fn contents(&self) -> MutexGuard<'_, MemContents> {
        // A panic while the lock was held can only come from a failed assertion in this file,
        // after which the process is going down; the contents are still consistent because
        // every mutation below completes before anything can panic.
        self.disk
            .contents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn writable(&self) -> Result<MutexGuard<'_, MemContents>, StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        Ok(self.contents())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

impl Default for MemLogStore {
    fn default() -> MemLogStore {
        MemLogStore::new()
    }
}

impl LogStore for MemLogStore {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let result = self.writable().and_then(|mut contents| {
            check_continues(entries, contents.next_index())?;
            contents.entries.extend(entries.iter().cloned());
            Ok(())
        });
        self.poison_on_error(result)
    }

    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        let result = self.writable().map(|mut contents| {
            if since < contents.first_index {
                contents.entries.clear();
                contents.first_index = since;
                contents.prev_log_id = (since.0 <= 1).then_some(LogId::ZERO);
            } else {
                let keep = usize::try_from(since.0 - contents.first_index.0).unwrap_or(usize::MAX);
                contents.entries.truncate(keep);
            }
        });
        self.poison_on_error(result)
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        let result = self.writable().map(|mut contents| {
            contents.hard_state = *hard_state;
        });
        self.poison_on_error(result)
    }

    fn purge(&mut self, before: LogIndex) -> Result<(), StorageError> {
        let result = self.writable().map(|mut contents| {
            while contents.first_index < before {
                let Some(purged) = contents.entries.pop_front() else {
                    break;
                };
                contents.prev_log_id = Some(purged.log_id);
                contents.first_index = contents.first_index.next();
            }
        });
        self.poison_on_error(result)
    }

    fn reset(&mut self, last_log_id: LogId) -> Result<(), StorageError> {
        let result = self.writable().map(|mut contents| {
            contents.entries.clear();
            contents.first_index = last_log_id.index.next();
            contents.prev_log_id = Some(last_log_id);
        });
        self.poison_on_error(result)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let result = self.writable().map(drop);
        self.poison_on_error(result)
    }

    fn hard_state(&self) -> HardState {
        self.contents().hard_state
    }

    fn first_index(&self) -> LogIndex {
        self.contents().first_index
    }

    fn next_index(&self) -> LogIndex {
        self.contents().next_index()
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.contents().entries.back().map(|entry| entry.log_id)
    }

    fn entries(&self, range: Range<LogIndex>) -> Result<Vec<Entry>, StorageError> {
        let contents = self.contents();
        check_range(&range, contents.first_index, contents.next_index())?;
        let start = range.start.0 - contents.first_index.0;
        let end = range.end.0 - contents.first_index.0;
        Ok(contents
            .entries
            .iter()
            .skip(usize::try_from(start).expect("range checked to lie within the held entries"))
            .take(
                usize::try_from(end - start).expect("range checked to lie within the held entries"),
            )
            .cloned()
            .collect())
    }
}
