//! Runs the conformance suite on both stores: every check once on `MemLogStore`, once on
//! `FileLogStore` (with tiny segments, so rolling and purging cross segment boundaries), and once
//! on `FileLogStore` over the simulated disk (the same code the power-loss tests run).

use std::sync::Arc;
use storage_actor::conformance::{self, StoreHarness};
use storage_actor::sim_file_system::SimFileSystem;
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore, MemDisk, MemLogStore, StoredLog};

struct MemHarness {
    disk: MemDisk,
}

impl StoreHarness for MemHarness {
    type Store = MemLogStore;
    fn open(&mut self) -> (MemLogStore, StoredLog) {
        MemLogStore::open(self.disk.clone())
    }
}

struct FileHarness {
    directory: tempfile::TempDir,
}

impl StoreHarness for FileHarness {
    type Store = FileLogStore;
    fn open(&mut self) -> (FileLogStore, StoredLog) {
        let mut config = FileLogStoreConfig::new(self.directory.path());
        config.segment_size_bytes = 2048;
        FileLogStore::open(config).expect("the test's own directory opens")
    }
}

/// `FileLogStore` on a `SimFileSystem`; reopening is a restart of the process (the simulated
/// page cache survives), so the suite's reopen checks hold as on a real disk.
struct SimHarness {
    disk: SimFileSystem,
}

impl StoreHarness for SimHarness {
    type Store = FileLogStore;
    fn open(&mut self) -> (FileLogStore, StoredLog) {
        let mut config = FileLogStoreConfig::new("/node/wal");
        config.segment_size_bytes = 2048;
        FileLogStore::open_on(Arc::new(self.disk.clone()), config)
            .expect("the simulated disk opens")
    }
}

fn sim_harness() -> SimHarness {
    SimHarness {
        disk: SimFileSystem::new(1),
    }
}

fn mem_harness() -> MemHarness {
    MemHarness {
        disk: MemDisk::default(),
    }
}

fn file_harness() -> FileHarness {
    FileHarness {
        directory: tempfile::tempdir().expect("a temporary directory can be created"),
    }
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        mod mem_log_store {
            $(#[test] fn $check() { storage_actor::conformance::$check(&mut super::mem_harness()); })*
        }
        mod file_log_store {
            $(#[test] fn $check() { storage_actor::conformance::$check(&mut super::file_harness()); })*
        }
        mod file_log_store_on_simulated_disk {
            $(#[test] fn $check() { storage_actor::conformance::$check(&mut super::sim_harness()); })*
        }
    };
}

conformance_tests!(
    fresh_store_is_empty,
    append_then_read_back,
    append_out_of_order_is_refused_and_poisons,
    truncate_suffix_then_append,
    hard_state_round_trip,
    hard_state_and_appends_keep_their_order,
    reopen_restores_everything_and_continues,
    purge_keeps_everything_from_before,
    read_outside_the_log_is_refused,
    reset_then_append,
    reset_survives_reopen,
    reset_then_crash_before_sync_is_old_or_new,
    purge_after_reset,
);

#[test]
fn run_all_passes_on_both_stores() {
    conformance::run_all(mem_harness);
    conformance::run_all(file_harness);
}

#[test]
fn file_store_rolls_segments_and_purge_deletes_whole_ones() {
    let mut harness = file_harness();
    let (mut store, _) = harness.open();
    for first in (1..=400).step_by(10) {
        store
            .append(&conformance::sample_entries(1, first, first + 9))
            .expect("append succeeds");
    }
    store.sync().expect("sync succeeds");
    let segments_before_purge = store.segment_count();
    assert!(
        segments_before_purge > 5,
        "2 KiB segments roll many times, got {segments_before_purge}"
    );
    store
        .purge(raft_types::LogIndex(300))
        .expect("purge succeeds");
    assert!(store.segment_count() < segments_before_purge);
    assert!(store.first_index() > raft_types::LogIndex(1));
    let files = std::fs::read_dir(store.directory())
        .expect("directory is readable")
        .filter(|item| {
            let path = item.as_ref().expect("directory entry is readable").path();
            path.extension().is_some_and(|extension| extension == "wal")
        })
        .count();
    assert_eq!(
        files,
        store.segment_count(),
        "deleted segments are gone from disk"
    );
}
