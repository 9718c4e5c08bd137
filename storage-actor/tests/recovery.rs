//! Recovery at open: a torn tail is truncated, corruption before the tail is refused with the
//! file and the byte offset, a garbage length is refused without being allocated, and the
//! directory checks (missing: created; foreign or unusable: a clear error).

use raft_types::{Entry, EntryPayload, HardState, LogIndex, NodeId, Term};
use std::fs;
use std::path::{Path, PathBuf};
use storage_actor::conformance::sample_entries;
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore, StorageError};

const ENTRY_COUNT: u64 = 5;

/// The store's defaults without preallocation, so a segment file ends where its records do
/// and the tests can cut and damage records by their offsets. Preallocated segments (zeros
/// after the records) have tests of their own below.
fn unpadded_config(directory: &Path) -> FileLogStoreConfig {
    let mut config = FileLogStoreConfig::new(directory);
    config.preallocate_bytes = 0;
    config
}

/// A log of `ENTRY_COUNT` entries, one record each, in one segment.
struct WrittenLog {
    directory: tempfile::TempDir,
    segment: PathBuf,
    /// `record_starts[i]` is the offset of entry i + 1's record; the last item is the file end.
    record_starts: Vec<u64>,
}

/// A fresh store in a temporary directory that saved and synced `hard_state`, and its segment.
fn store_with_hard_state(hard_state: HardState) -> (tempfile::TempDir, FileLogStore, PathBuf) {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let (mut store, _) =
        FileLogStore::open(unpadded_config(directory.path())).expect("fresh directory");
    store.save_hard_state(&hard_state).expect("save succeeds");
    store.sync().expect("sync succeeds");
    let segment = only_segment(directory.path());
    (directory, store, segment)
}

fn write_log() -> WrittenLog {
    let (directory, mut store, segment) =
        store_with_hard_state(HardState::new(Term(1), Some(NodeId(1))));
    let mut record_starts = vec![file_length(&segment)];
    for index in 1..=ENTRY_COUNT {
        store
            .append(&sample_entries(1, index, index))
            .expect("append succeeds");
        store.sync().expect("sync succeeds");
        record_starts.push(file_length(&segment));
    }
    WrittenLog {
        directory,
        segment,
        record_starts,
    }
}

fn only_segment(directory: &Path) -> PathBuf {
    let mut segments = segment_paths(directory);
    assert_eq!(segments.len(), 1, "one segment expected: {segments:?}");
    segments.remove(0)
}

/// Every open appends the recovered hard state to the active segment: this many bytes here.
fn reopen_record_length() -> u64 {
    let mut record = Vec::new();
    storage_actor::wal_record::encode_hard_state(
        &HardState::new(Term(1), Some(NodeId(1))),
        &mut record,
    )
    .expect("a hard state encodes") as u64
}

/// Writes 60 one-entry appends into segments of 1 KiB, so the log spans at least three.
fn write_log_over_several_segments() -> (tempfile::TempDir, FileLogStoreConfig) {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let mut config = unpadded_config(directory.path());
    config.segment_size_bytes = 1024;
    let (mut store, _) = FileLogStore::open(config.clone()).expect("fresh directory");
    for index in 1..=60 {
        store
            .append(&sample_entries(1, index, index))
            .expect("append succeeds");
    }
    store.sync().expect("sync succeeds");
    assert!(store.segment_count() >= 3);
    (directory, config)
}

/// The segment files in `directory`, oldest first.
fn segment_paths(directory: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = fs::read_dir(directory)
        .expect("directory is readable")
        .map(|item| item.expect("directory entry is readable").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "wal"))
        .collect();
    segments.sort();
    segments
}

fn file_length(path: &Path) -> u64 {
    fs::metadata(path).expect("segment exists").len()
}

fn open(directory: &Path) -> Result<FileLogStore, StorageError> {
    FileLogStore::open(unpadded_config(directory)).map(|(store, recovered)| {
        assert_eq!(
            recovered.entries,
            store
                .entries(store.first_index()..store.next_index())
                .expect("recovered entries are readable")
        );
        store
    })
}

fn expect_corruption_at(result: Result<FileLogStore, StorageError>, path: &Path, offset: u64) {
    match result {
        Err(StorageError::Corruption {
            path: error_path,
            offset: error_offset,
            reason,
        }) => {
            assert_eq!(error_path, path, "the error names the file ({reason})");
            assert_eq!(
                error_offset, offset,
                "the error names the offset ({reason})"
            );
            let message = StorageError::Corruption {
                path: error_path,
                offset: error_offset,
                reason,
            }
            .to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&format!("offset {offset}")), "{message}");
        }
        Err(other) => panic!("expected corruption at {offset}, got {other}"),
        Ok(_) => panic!("expected corruption at {offset}, the log opened"),
    }
}

#[test]
fn last_record_cut_at_every_byte_offset_recovers_by_truncation() {
    let log = write_log();
    let original = fs::read(&log.segment).expect("segment is readable");
    let last_record_start = log.record_starts[ENTRY_COUNT as usize - 1];
    let end = original.len() as u64;
    for cut in last_record_start..end {
        fs::write(&log.segment, &original[..cut as usize]).expect("segment is writable");
        let mut store = open(log.directory.path())
            .unwrap_or_else(|error| panic!("cut at {cut}: a torn tail must recover: {error}"));
        assert_eq!(
            store.next_index(),
            LogIndex(ENTRY_COUNT),
            "cut at {cut}: the torn last entry is gone, the others stay"
        );
        assert_eq!(store.hard_state(), HardState::new(Term(1), Some(NodeId(1))));
        assert_eq!(
            file_length(&log.segment),
            last_record_start + reopen_record_length(),
            "cut at {cut}: the torn bytes are truncated away (then open appends a hard state)"
        );
        store
            .append(&sample_entries(2, ENTRY_COUNT, ENTRY_COUNT))
            .expect("the recovered log appends on");
        store.sync().expect("sync succeeds");
        drop(store);
        let store = open(log.directory.path()).expect("reopens after the repair");
        assert_eq!(store.next_index(), LogIndex(ENTRY_COUNT + 1));
        drop(store);
    }
}

/// A log whose last record spans several sectors: entries 1..=3 small, entry 4 of
/// `BIG_PAYLOAD_BYTES`. Returns the directory, the segment and where entry 4's record starts.
fn write_log_ending_in_a_big_record() -> (tempfile::TempDir, PathBuf, u64) {
    let (directory, mut store, segment) =
        store_with_hard_state(HardState::new(Term(1), Some(NodeId(1))));
    store
        .append(&sample_entries(1, 1, 3))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    let big_record_start = file_length(&segment);
    let payload: Vec<u8> = (0..BIG_PAYLOAD_BYTES)
        .map(|n| (n % 251 + 1) as u8)
        .collect();
    store
        .append(&[Entry::new(
            Term(1),
            LogIndex(4),
            EntryPayload::command(payload),
        )])
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    (directory, segment, big_record_start)
}

const BIG_PAYLOAD_BYTES: usize = 3000;
const SECTOR: usize = 512;

#[test]
fn torn_tail_with_zero_sectors_and_garbage_after_it_is_truncated() {
    // Pages written back out of order: a sector in the middle of the last record never reached
    // the disk (zeros), later ones did, and the file length covers even more (garbage here).
    let (directory, segment, big_record_start) = write_log_ending_in_a_big_record();
    let mut bytes = fs::read(&segment).expect("segment is readable");
    let zero_sector = (big_record_start as usize / SECTOR + 2) * SECTOR;
    assert!(
        zero_sector + SECTOR < bytes.len(),
        "the record spans the sector"
    );
    bytes[zero_sector..zero_sector + SECTOR].fill(0);
    bytes.extend((0..700u32).map(|n| (n * 7 + 3) as u8));
    fs::write(&segment, &bytes).expect("segment is writable");

    let store = open(directory.path()).expect("a tail with a zero sector is torn, not corrupt");
    assert_eq!(store.next_index(), LogIndex(4), "the torn entry 4 is gone");
    assert_eq!(store.hard_state(), HardState::new(Term(1), Some(NodeId(1))));
    assert_eq!(
        file_length(&segment),
        big_record_start + reopen_record_length(),
        "truncated at the torn record (then open appends a hard state)"
    );
}

#[test]
fn torn_tail_whose_first_sector_is_zero_is_truncated() {
    // The record's header lies in a sector that was never written back; what follows did.
    let (directory, segment, big_record_start) = write_log_ending_in_a_big_record();
    let mut bytes = fs::read(&segment).expect("segment is readable");
    let start = big_record_start as usize;
    let sector_end = (start / SECTOR + 1) * SECTOR;
    bytes[start..sector_end].fill(0);
    fs::write(&segment, &bytes).expect("segment is writable");
    let store = open(directory.path()).expect("torn, not corrupt");
    assert_eq!(store.next_index(), LogIndex(4));
}

#[test]
fn a_complete_non_zero_last_record_that_fails_its_checksum_is_refused() {
    // No power loss leaves a whole record of non-zero bytes that fails its checksum: that is
    // damage, even at the very end of the log.
    let (directory, segment, big_record_start) = write_log_ending_in_a_big_record();
    let mut bytes = fs::read(&segment).expect("segment is readable");
    let position = big_record_start as usize + 1000;
    bytes[position] ^= 0x04;
    fs::write(&segment, &bytes).expect("segment is writable");
    expect_corruption_at(open(directory.path()), &segment, big_record_start);
}

#[test]
fn zeros_inside_a_sector_but_not_to_its_end_are_corruption() {
    // A sector is written whole or not at all: zeros in the middle of one, with the record's
    // bytes after them in the same sector, are damage.
    let (directory, segment, big_record_start) = write_log_ending_in_a_big_record();
    let mut bytes = fs::read(&segment).expect("segment is readable");
    let sector = (big_record_start as usize / SECTOR + 2) * SECTOR;
    bytes[sector + 16..sector + 400].fill(0);
    fs::write(&segment, &bytes).expect("segment is writable");
    expect_corruption_at(open(directory.path()), &segment, big_record_start);
}

#[test]
fn a_zeroed_header_followed_by_data_is_refused() {
    let log = write_log();
    let mut bytes = fs::read(&log.segment).expect("segment is readable");
    bytes[..32].fill(0);
    fs::write(&log.segment, &bytes).expect("segment is writable");
    let result = open(log.directory.path());
    expect_corruption_at(result, &log.segment, 0);
    assert!(
        log.segment.exists(),
        "the damaged segment is left for the operator"
    );
}

#[test]
fn a_zeroed_header_of_the_last_of_several_segments_is_refused() {
    let (directory, config) = write_log_over_several_segments();
    let segments = segment_paths(directory.path());
    let last = segments.last().expect("several segments");
    let mut bytes = fs::read(last).expect("segment is readable");
    bytes[..32].fill(0);
    fs::write(last, &bytes).expect("segment is writable");
    let result = FileLogStore::open(config).map(|(store, _)| store);
    expect_corruption_at(result, last, 0);
}

#[test]
fn a_garbage_header_followed_by_data_is_refused() {
    let log = write_log();
    let mut bytes = fs::read(&log.segment).expect("segment is readable");
    bytes[3] ^= 0xFF;
    fs::write(&log.segment, &bytes).expect("segment is writable");
    expect_corruption_at(open(log.directory.path()), &log.segment, 0);
}

#[test]
fn a_hard_state_whose_term_goes_backwards_is_refused() {
    let (directory, mut store, segment) =
        store_with_hard_state(HardState::new(Term(5), Some(NodeId(2))));
    let backwards_record_start = file_length(&segment);
    // The store writes what it is given; a lower term on disk can only be damage or records
    // from another log, and replay must not let it undo a vote.
    store
        .save_hard_state(&HardState::new(Term(4), Some(NodeId(3))))
        .expect("save succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let result = open(directory.path());
    expect_corruption_at(result, &segment, backwards_record_start);
}

#[test]
fn a_locked_directory_is_neither_listed_nor_repaired() {
    let log = write_log();
    let first = open(log.directory.path()).expect("the log opens");
    // While the first store runs, its directory holds what a crash would leave behind: a
    // segment being created, and a gap. A second store must not act on any of it.
    let being_created = log.directory.path().join("00000000000000000002.wal");
    fs::write(&being_created, [0u8; 10]).expect("directory is writable");
    let after_gap = log.directory.path().join("00000000000000000009.wal");
    fs::write(&after_gap, [0u8; 10]).expect("directory is writable");
    let length_before = file_length(&log.segment);
    let second = open(log.directory.path()).map(|_| ());
    assert!(
        matches!(second, Err(StorageError::DirectoryLocked { .. })),
        "the lock is taken before the segments are listed or read: {second:?}"
    );
    assert!(being_created.exists(), "the second store removed nothing");
    assert_eq!(file_length(&log.segment), length_before, "nor truncated");
    drop(first);
}

#[test]
fn flipped_byte_in_a_middle_record_is_refused_with_file_and_offset() {
    let log = write_log();
    let original = fs::read(&log.segment).expect("segment is readable");
    let middle_start = log.record_starts[2];
    let middle_end = log.record_starts[3];
    for position in middle_start..middle_end {
        let mut damaged = original.clone();
        damaged[position as usize] ^= 0x40;
        fs::write(&log.segment, &damaged).expect("segment is writable");
        expect_corruption_at(open(log.directory.path()), &log.segment, middle_start);
    }
}

#[test]
fn a_flipped_byte_in_an_early_record_is_refused() {
    // Entry 1's record of a log spanning several segments: everything after it is intact.
    let (directory, config) = write_log_over_several_segments();
    let first = segment_paths(directory.path())[0].clone();
    let original = fs::read(&first).expect("segment is readable");
    let mut hard_state_record = Vec::new();
    storage_actor::wal_record::encode_hard_state(&HardState::default(), &mut hard_state_record)
        .expect("a hard state encodes");
    let entry_record_start = 32 + hard_state_record.len() as u64;
    let mut damaged = original.clone();
    damaged[entry_record_start as usize + 12] ^= 0x01;
    fs::write(&first, &damaged).expect("segment is writable");
    let result = FileLogStore::open(config).map(|(store, _)| store);
    expect_corruption_at(result, &first, entry_record_start);
}

#[test]
fn huge_garbage_length_is_refused_without_allocating() {
    // The reader rejects the length before it allocates or reads anything by it. To prove it,
    // run the check in a child process whose address space is capped far below the garbage
    // length: allocating it would abort the child.
    if std::env::var_os(GARBAGE_LENGTH_CHILD).is_some() {
        garbage_length_is_refused();
        return;
    }
    let test_binary = std::env::current_exe().expect("the test binary knows its path");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1000000 && exec \"$0\" \"$@\"")
        .arg(test_binary)
        .args([
            "--exact",
            "huge_garbage_length_is_refused_without_allocating",
            "--test-threads=1",
        ])
        .env(GARBAGE_LENGTH_CHILD, "1")
        .status()
        .expect("the child test process starts");
    assert!(
        status.success(),
        "the child with a 1 GB address-space cap failed: {status}"
    );
}

const GARBAGE_LENGTH_CHILD: &str = "STORAGE_ACTOR_GARBAGE_LENGTH_CHILD";

fn garbage_length_is_refused() {
    let log = write_log();
    let original = fs::read(&log.segment).expect("segment is readable");
    let middle_start = log.record_starts[2] as usize;
    for garbage_length in [u32::MAX, 0xC000_0000, 64 * 1024 * 1024 + 1] {
        let mut damaged = original.clone();
        let length_bytes = garbage_length.to_le_bytes();
        damaged[middle_start..middle_start + 4].copy_from_slice(&length_bytes);
        // A valid checksum for the garbage length: only the size limit can refuse it.
        damaged[middle_start + 4..middle_start + 8]
            .copy_from_slice(&crc32c::crc32c(&length_bytes).to_le_bytes());
        fs::write(&log.segment, &damaged).expect("segment is writable");
        expect_corruption_at(
            open(log.directory.path()),
            &log.segment,
            middle_start as u64,
        );
    }
}

#[test]
fn corruption_at_the_end_of_an_older_segment_is_refused() {
    let (directory, config) = write_log_over_several_segments();
    let segments = segment_paths(directory.path());
    let first = &segments[0];
    let length = file_length(first);
    let file = fs::OpenOptions::new()
        .write(true)
        .open(first)
        .expect("segment is writable");
    file.set_len(length - 3).expect("segment can be cut");
    drop(file);
    let result = FileLogStore::open(config).map(|(store, _)| store);
    match result {
        Err(StorageError::Corruption { path, .. }) => assert_eq!(&path, first),
        Err(other) => panic!("expected corruption in {}, got {other}", first.display()),
        Ok(_) => panic!("a cut older segment must not be taken for a torn tail"),
    }
}

#[test]
fn a_missing_middle_segment_is_refused() {
    let (directory, config) = write_log_over_several_segments();
    let segments = segment_paths(directory.path());
    fs::remove_file(&segments[1]).expect("segment can be removed");
    let error = FileLogStore::open(config)
        .map(|_| ())
        .expect_err("a gap is refused");
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn a_segment_whose_creation_was_cut_short_is_removed() {
    let log = write_log();
    let next_segment = log.directory.path().join("00000000000000000002.wal");
    for contents in [vec![], vec![0u8; 10], b"RAFTWAL".to_vec(), vec![0u8; 4096]] {
        fs::write(&next_segment, &contents).expect("directory is writable");
        let store = open(log.directory.path()).expect("an empty last segment is not corruption");
        assert_eq!(store.next_index(), LogIndex(ENTRY_COUNT + 1));
        assert!(
            !next_segment.exists(),
            "the segment of {} bytes is removed",
            contents.len()
        );
    }
}

#[test]
fn the_hard_state_survives_purging_after_its_record_was_torn_away() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let mut config = unpadded_config(directory.path());
    config.segment_size_bytes = 1024;
    let voted = HardState::new(Term(1), Some(NodeId(1)));
    let (mut store, _) = FileLogStore::open(config.clone()).expect("fresh directory");
    store.save_hard_state(&voted).expect("save succeeds");
    let mut index = 1;
    while store.segment_count() < 2 {
        store
            .append(&sample_entries(1, index, index))
            .expect("append succeeds");
        index += 1;
    }
    // The entry that made the log roll is the first one of the second segment.
    let first_index_of_second_segment = LogIndex(index - 1);
    store.sync().expect("sync succeeds");
    drop(store);
    // A crash right after the second segment's header: its hard state record is torn away.
    let second_segment = directory.path().join("00000000000000000002.wal");
    let cut_file = fs::OpenOptions::new()
        .write(true)
        .open(&second_segment)
        .expect("segment is writable");
    cut_file.set_len(32 + 5).expect("segment can be cut");
    drop(cut_file);

    let (mut store, recovered) = FileLogStore::open(config.clone()).expect("torn tail recovers");
    assert_eq!(recovered.hard_state, voted);
    let next_index = store.next_index().0;
    store
        .append(&sample_entries(1, next_index, next_index + 2))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    assert_eq!(
        store.segment_count(),
        2,
        "the cut segment is still the active one"
    );
    // Deletes the first segment only: the cut second one is left alone.
    store
        .purge(first_index_of_second_segment)
        .expect("purge succeeds");
    assert!(second_segment.exists(), "the cut segment is kept");
    assert!(
        !directory.path().join("00000000000000000001.wal").exists(),
        "the first segment, the only other copy of the hard state, is deleted"
    );
    drop(store);
    let (_, recovered) = FileLogStore::open(config).expect("reopens after the purge");
    assert_eq!(
        recovered.hard_state, voted,
        "§5.2: the vote must survive, or the server could vote twice in term 1"
    );
}

#[test]
fn a_newer_format_version_is_refused() {
    let log = write_log();
    let mut bytes = fs::read(&log.segment).expect("segment is readable");
    bytes[8] = 2;
    fs::write(&log.segment, &bytes).expect("segment is writable");
    let error = open(log.directory.path()).map(|_| ()).expect_err("refused");
    assert!(
        matches!(
            error,
            StorageError::UnsupportedFormatVersion { found: 2, .. }
        ),
        "{error}"
    );
}

#[test]
fn a_directory_in_use_by_another_store_is_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let first = open(directory.path()).expect("a fresh directory opens");
    let second = open(directory.path()).map(|_| ());
    assert!(
        matches!(second, Err(StorageError::DirectoryLocked { .. })),
        "two stores on one directory would interleave their writes: {second:?}"
    );
    drop(first);
    open(directory.path()).expect("the lock is released with the store");
}

#[test]
fn a_missing_directory_is_created() {
    let parent = tempfile::tempdir().expect("a temporary directory can be created");
    let directory = parent.path().join("node-1").join("wal");
    let store = open(&directory).expect("a missing directory is created");
    assert!(directory.is_dir());
    assert_eq!(store.next_index(), LogIndex(1));
}

#[test]
fn a_foreign_directory_is_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    fs::write(directory.path().join("photos.db"), b"not ours").expect("directory is writable");
    let error = open(directory.path()).map(|_| ()).expect_err("refused");
    assert!(
        matches!(error, StorageError::ForeignDirectory { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("photos.db"), "{error}");
    assert!(
        directory.path().join("photos.db").exists(),
        "nothing of the foreign directory is touched"
    );
}

#[test]
fn an_unusable_directory_is_a_clear_error() {
    let parent = tempfile::tempdir().expect("a temporary directory can be created");
    let not_a_directory = parent.path().join("wal");
    fs::write(&not_a_directory, b"a file").expect("directory is writable");
    let error = open(&not_a_directory).map(|_| ()).expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::Io { .. }),
        "an Io error expected: {message}"
    );
    assert!(
        message.contains(&not_a_directory.display().to_string()),
        "the error names the path: {message}"
    );
}

// Preallocated segments: the store extends the active segment with zeros ahead of its writes,
// so on disk the last segment's records are followed by zeros up to its preallocated length.

/// The default (preallocating) configuration in `directory`.
fn preallocating_config(directory: &Path) -> FileLogStoreConfig {
    let config = FileLogStoreConfig::new(directory);
    assert!(config.preallocate_bytes > 0, "preallocation is the default");
    config
}

#[test]
fn zeros_after_the_last_record_are_unused_space_kept_for_the_next_writes() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let config = preallocating_config(directory.path());
    let (mut store, _) = FileLogStore::open(config.clone()).expect("fresh directory");
    store
        .save_hard_state(&HardState::new(Term(1), Some(NodeId(1))))
        .expect("save succeeds");
    store
        .append(&sample_entries(1, 1, ENTRY_COUNT))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let segment = only_segment(directory.path());
    let preallocated = file_length(&segment);
    assert_eq!(
        preallocated, config.preallocate_bytes,
        "the segment was extended ahead of its records"
    );
    let bytes = fs::read(&segment).expect("segment is readable");
    assert!(bytes[bytes.len() - 4096..].iter().all(|&byte| byte == 0));

    for round in 0..3u64 {
        let (mut store, recovered) = FileLogStore::open(config.clone())
            .unwrap_or_else(|error| panic!("round {round}: zeros are not damage: {error}"));
        let next = ENTRY_COUNT + 1 + round * 2;
        assert_eq!(recovered.entries.len() as u64, next - 1, "round {round}");
        assert_eq!(
            file_length(&segment),
            preallocated,
            "round {round}: the zeros are kept, not truncated and written again"
        );
        store
            .append(&sample_entries(2, next, next + 1))
            .expect("append succeeds");
        store.sync().expect("sync succeeds");
    }
    let (_store, recovered) = FileLogStore::open(config).expect("reopens");
    assert_eq!(recovered.entries.len() as u64, ENTRY_COUNT + 6);
    assert_eq!(file_length(&segment), preallocated);
}

#[test]
fn a_torn_last_record_in_preallocated_space_is_truncated() {
    // A power loss during a write into preallocated space: the file keeps its length, and
    // each sector the record touches holds either its new contents or its old ones (the bytes
    // before the record, then the zeros). Every such shape with at least one old sector, the
    // rest new or old, must recover the entries before the record and go on appending.
    let (directory, segment, big_record_start) = write_log_ending_in_a_big_record();
    let written = fs::read(&segment).expect("segment is readable");
    let record_start = big_record_start as usize;
    let preallocated = written.len().div_ceil(SECTOR) * SECTOR + 4 * SECTOR;
    let old_sector = |sector: usize| -> Vec<u8> {
        (sector * SECTOR..(sector + 1) * SECTOR)
            .map(|position| {
                if position < record_start {
                    written[position]
                } else {
                    0
                }
            })
            .collect()
    };
    let record_sectors = record_start / SECTOR..written.len().div_ceil(SECTOR);
    let mut shapes = Vec::new();
    for lost in record_sectors.clone() {
        // Only sector `lost` stayed old; and every sector from `lost` on stayed old.
        shapes.push((lost, vec![lost]));
        shapes.push((lost, (lost..record_sectors.end).collect::<Vec<_>>()));
    }
    for (lost, old_sectors) in shapes {
        let mut torn = written.clone();
        torn.resize(preallocated, 0);
        for &sector in &old_sectors {
            torn[sector * SECTOR..(sector + 1) * SECTOR].copy_from_slice(&old_sector(sector));
        }
        fs::write(&segment, &torn).expect("segment is writable");
        let shape = format!("sectors {old_sectors:?} old (first lost: {lost})");
        let (mut store, recovered) = FileLogStore::open(preallocating_config(directory.path()))
            .unwrap_or_else(|error| panic!("{shape}: a torn tail must recover: {error}"));
        assert_eq!(
            recovered.entries.len(),
            3,
            "{shape}: the torn entry 4 is gone"
        );
        store
            .append(&sample_entries(2, 4, 4))
            .expect("the recovered log appends on");
        store.sync().expect("sync succeeds");
        drop(store);
        let (_store, recovered) = FileLogStore::open(preallocating_config(directory.path()))
            .unwrap_or_else(|error| panic!("{shape}: reopens after the repair: {error}"));
        assert_eq!(recovered.entries.len(), 4, "{shape}");
        assert_eq!(
            recovered.entries.last().map(|entry| entry.term()),
            Some(Term(2)),
            "{shape}: what was appended after the repair is what is read"
        );
    }
}

#[test]
fn zeros_after_the_records_of_an_older_segment_are_corruption() {
    // Only the active segment is preallocated, and a full segment is cut back to its records
    // before the next one is created: zeros at the end of an older one are damage.
    let (directory, config) = write_log_over_several_segments();
    let first = segment_paths(directory.path()).remove(0);
    let length = file_length(&first);
    let mut bytes = fs::read(&first).expect("segment is readable");
    bytes.resize(length as usize + 600, 0);
    fs::write(&first, &bytes).expect("segment is writable");
    expect_corruption_at(
        FileLogStore::open(config).map(|(store, _)| store),
        &first,
        length,
    );
}

#[test]
fn a_segment_preallocated_past_a_smaller_segment_size_is_cut_when_it_rolls() {
    // A run with large segments preallocated the active one; the next run has a smaller
    // segment size, so its first write rolls: the old segment must lose its zeros first.
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let mut config = preallocating_config(directory.path());
    config.segment_size_bytes = 1024 * 1024;
    config.preallocate_bytes = 256 * 1024;
    let (mut store, _) = FileLogStore::open(config.clone()).expect("fresh directory");
    store
        .append(&sample_entries(1, 1, 20))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    drop(store);
    let first = only_segment(directory.path());
    assert_eq!(file_length(&first), 256 * 1024, "preallocated");

    config.segment_size_bytes = 1024;
    let (mut store, _) = FileLogStore::open(config.clone()).expect("reopens");
    store
        .append(&sample_entries(1, 21, 21))
        .expect("append succeeds");
    store.sync().expect("sync succeeds");
    assert!(store.segment_count() >= 2, "the first write rolled");
    drop(store);
    let bytes = fs::read(&first).expect("segment is readable");
    assert_ne!(
        bytes.last(),
        Some(&0),
        "the rolled segment ends with its last record's checksum, not zeros"
    );
    assert!(bytes.len() < 64 * 1024, "cut back to its records");
    let (_store, recovered) = FileLogStore::open(config).expect("no zeros in an older segment");
    assert_eq!(recovered.entries.len(), 21);
}
