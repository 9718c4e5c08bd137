//! The snapshot store on real files (and `MemSnapshotStore` where the rule is the same): the
//! round trip, verification of every read, retention, receiving with resume, and recovery at
//! open (leftovers removed, a corrupt newest set aside).

use raft_proto::snapshot::{SnapshotError, SnapshotStore};
use raft_types::{LogId, LogIndex, NodeId, SnapshotMeta, Term};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage_actor::file_snapshot_store::complete_name;
use storage_actor::file_system::RealFileSystem;
use storage_actor::snapshot_file::TRAILER_BYTES;
use storage_actor::{FileSnapshotStore, FileSnapshotStoreConfig, MemSnapshotStore};

const CHUNK_BYTES: usize = 1000;

fn open_store(directory: &Path) -> FileSnapshotStore {
    let mut config = FileSnapshotStoreConfig::new(directory);
    config.chunk_bytes = CHUNK_BYTES;
    FileSnapshotStore::open_on(Arc::new(RealFileSystem), config)
        .expect("the test's own directory opens")
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(Term(term), LogIndex(index))
}

fn members() -> raft_types::Membership {
    raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)])
}

/// `length` bytes derived from `seed`, never all zeros.
fn payload(seed: u64, length: usize) -> Vec<u8> {
    (0..length)
        .map(|position| ((seed * 131 + position as u64 * 7) % 251) as u8 | 1)
        .collect()
}

fn write_snapshot(store: &dyn SnapshotStore, last_log_id: LogId, bytes: &[u8]) -> SnapshotMeta {
    let mut writer = store.begin(last_log_id, members()).expect("begin succeeds");
    // In uneven pieces, so chunk boundaries fall inside writes.
    for piece in bytes.chunks(777) {
        writer.write_all(piece).expect("write succeeds");
    }
    writer.finish().expect("finish succeeds")
}

fn read_all(store: &dyn SnapshotStore, meta: &SnapshotMeta) -> std::io::Result<Vec<u8>> {
    let mut reader = store
        .read_payload(&meta.id())
        .expect("the snapshot is in the store");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .expect("readable")
        .map(|item| {
            item.expect("readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn snapshot_path(directory: &Path, meta: &SnapshotMeta) -> PathBuf {
    directory.join(complete_name(&meta.id()))
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("readable");
    bytes[offset] ^= 0x40;
    std::fs::write(path, bytes).expect("writable");
}

/// The `SnapshotError` inside an `io::Error` from a payload reader.
fn snapshot_error(error: &std::io::Error) -> &SnapshotError {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SnapshotError>())
        .unwrap_or_else(|| panic!("an io::Error wrapping a SnapshotError, got {error:?}"))
}

#[test]
fn a_snapshot_round_trips_through_the_payload_and_the_raw_file() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    assert_eq!(store.newest(), None);
    let bytes = payload(1, 10 * CHUNK_BYTES + 123);
    let meta = write_snapshot(&store, log_id(3, 120), &bytes);
    assert_eq!(meta.last_log_id, log_id(3, 120));
    assert_eq!(meta.membership, members());
    let path = snapshot_path(directory.path(), &meta);
    let file = std::fs::read(&path).expect("the snapshot has its final name");
    assert_eq!(
        meta.size_bytes,
        file.len() as u64,
        "size_bytes is the file length"
    );
    assert_eq!(
        meta.file_checksum,
        crc32c::crc32c(&file[..file.len() - TRAILER_BYTES]),
        "file_checksum is the CRC32C of every byte before the trailer"
    );
    assert_eq!(store.newest(), Some(meta.clone()));
    assert_eq!(store.list(), vec![meta.clone()]);
    assert_eq!(read_all(&store, &meta).expect("verifies"), bytes);

    let open = store.open(&meta.id()).expect("opens");
    assert_eq!(open.meta(), &meta);
    let mut raw = Vec::new();
    let mut offset = 0;
    loop {
        let piece = open.read_at(offset, 4096).expect("reads");
        if piece.is_empty() {
            break;
        }
        offset += piece.len() as u64;
        raw.extend_from_slice(&piece);
    }
    assert_eq!(raw, file, "raw reads return the file's bytes");
    assert_eq!(
        file_names(directory.path()),
        vec![complete_name(&meta.id()), "LOCK".to_string()],
        "nothing but the lock and the snapshot"
    );

    drop(store);
    let reopened = open_store(directory.path());
    assert_eq!(reopened.newest(), Some(meta.clone()), "a reopen finds it");
    assert_eq!(read_all(&reopened, &meta).expect("verifies"), bytes);
}

#[test]
fn an_empty_payload_round_trips_in_memory_too() {
    let store = MemSnapshotStore::new();
    let empty = write_snapshot(&store, log_id(1, 5), &[]);
    assert_eq!(
        read_all(&store, &empty).expect("verifies"),
        Vec::<u8>::new()
    );
    let bytes = payload(2, 200_000);
    let meta = write_snapshot(&store, log_id(2, 9), &bytes);
    assert_eq!(store.newest(), Some(meta.clone()));
    assert_eq!(read_all(&store, &meta).expect("verifies"), bytes);
}

#[test]
fn a_damaged_chunk_is_refused_by_the_payload_reader() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    let bytes = payload(3, 5 * CHUNK_BYTES);
    let meta = write_snapshot(&store, log_id(2, 50), &bytes);
    let path = snapshot_path(directory.path(), &meta);
    // Inside the third chunk's data.
    let damaged_at = meta.size_bytes as usize - TRAILER_BYTES - 2 * (CHUNK_BYTES + 8) - 100;
    flip_byte(&path, damaged_at);

    let mut reader = store
        .read_payload(&meta.id())
        .expect("the header is intact");
    let mut read = Vec::new();
    let error = reader
        .read_to_end(&mut read)
        .expect_err("a damaged chunk fails the read");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    match snapshot_error(&error) {
        SnapshotError::Corrupt {
            path: named,
            offset,
            reason,
        } => {
            assert_eq!(named, &path.display().to_string());
            assert!(*offset as usize <= damaged_at, "offset {offset}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        read.len() <= 2 * CHUNK_BYTES,
        "no byte of the damaged chunk was handed out: {} bytes read",
        read.len()
    );
    assert_eq!(
        read[..],
        bytes[..read.len()],
        "what was handed out is intact"
    );
    assert!(
        reader.read(&mut [0u8; 16]).is_err(),
        "a failed reader stays failed"
    );
}

#[test]
fn a_damaged_trailer_is_refused_and_a_reopen_falls_back_to_the_previous_snapshot() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    let older = write_snapshot(&store, log_id(2, 40), &payload(4, 3000));
    let newer_bytes = payload(5, 3000);
    let newer = write_snapshot(&store, log_id(3, 80), &newer_bytes);
    let newer_path = snapshot_path(directory.path(), &newer);
    // The trailer's file checksum.
    flip_byte(&newer_path, newer.size_bytes as usize - 10);

    let error = read_all(&store, &newer).expect_err("the trailer no longer matches");
    assert!(
        matches!(snapshot_error(&error), SnapshotError::Corrupt { reason, .. } if reason.contains("trailer") || reason.contains("file checksum")),
        "{error}"
    );

    drop(store);
    let reopened = open_store(directory.path());
    assert_eq!(
        reopened.newest(),
        Some(older.clone()),
        "the corrupt newest is skipped"
    );
    assert_eq!(reopened.list(), vec![older.clone()]);
    let names = file_names(directory.path());
    assert!(
        names.contains(&format!("{}.corrupt", complete_name(&newer.id()))),
        "the corrupt file is set aside, not deleted: {names:?}"
    );
    assert!(!names.contains(&complete_name(&newer.id())), "{names:?}");
    assert_eq!(
        read_all(&reopened, &older).expect("verifies"),
        payload(4, 3000)
    );
}

#[test]
fn retention_keeps_the_newest_two_and_an_open_reader_survives_the_deletion() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    let first_bytes = payload(6, 4 * CHUNK_BYTES);
    let first = write_snapshot(&store, log_id(1, 10), &first_bytes);
    let second = write_snapshot(&store, log_id(1, 20), &payload(7, 100));
    let open_first = store.open(&first.id()).expect("opens");
    let mut first_reader = store.read_payload(&first.id()).expect("opens");
    let mut started = vec![0u8; 10];
    first_reader.read_exact(&mut started).expect("reads");

    let third = write_snapshot(&store, log_id(2, 30), &payload(8, 100));
    assert_eq!(store.list(), vec![second.clone(), third.clone()]);
    assert_eq!(store.newest(), Some(third.clone()));
    assert!(
        !file_names(directory.path()).contains(&complete_name(&first.id())),
        "the oldest file is deleted"
    );
    assert!(matches!(
        store.open(&first.id()),
        Err(SnapshotError::NotFound(_))
    ));

    let mut rest = Vec::new();
    first_reader
        .read_to_end(&mut rest)
        .expect("an open reader keeps reading a deleted file");
    started.extend(rest);
    assert_eq!(started, first_bytes);
    let raw = open_first
        .read_at(0, first.size_bytes as usize + 100)
        .expect("an open file keeps reading");
    assert_eq!(raw.len() as u64, first.size_bytes);
}

#[test]
fn a_writer_dropped_unfinished_leaves_nothing_behind() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    let mut writer = store.begin(log_id(1, 5), members()).expect("begins");
    writer.write_all(&payload(9, 5000)).expect("writes");
    assert!(
        file_names(directory.path())
            .iter()
            .any(|name| name.ends_with(".tmp")),
        "the payload goes to a temporary file"
    );
    drop(writer);
    assert_eq!(file_names(directory.path()), vec!["LOCK".to_string()]);
    assert_eq!(store.newest(), None);
}

/// Copies `meta` from `from` into `to` chunk by chunk, as a leader's InstallSnapshot would.
fn transfer(
    from: &dyn SnapshotStore,
    to: &dyn SnapshotStore,
    meta: &SnapshotMeta,
    chunk_length: usize,
) -> Result<(), SnapshotError> {
    let file = from.open(&meta.id()).expect("opens");
    let mut offset = 0;
    while offset < meta.size_bytes {
        let data = file.read_at(offset, chunk_length).expect("reads");
        offset = to.receive(meta, offset, &data)?;
    }
    to.finish_receive(meta)
}

#[test]
fn a_received_snapshot_is_verified_and_installed() {
    let leader = MemSnapshotStore::new();
    let bytes = payload(10, 12_345);
    let meta = write_snapshot(&leader, log_id(4, 300), &bytes);
    let directory = tempfile::tempdir().expect("temporary directory");
    let follower = open_store(directory.path());
    transfer(&leader, &follower, &meta, 1024).expect("an intact transfer installs");
    assert_eq!(follower.newest(), Some(meta.clone()));
    assert_eq!(read_all(&follower, &meta).expect("verifies"), bytes);
    assert_eq!(follower.received_bytes(&meta.id()), 0, "no partial left");
    assert_eq!(
        std::fs::read(snapshot_path(directory.path(), &meta))
            .expect("installed under its final name")
            .len() as u64,
        meta.size_bytes
    );
    follower
        .finish_receive(&meta)
        .expect("finishing again (a repeated last chunk) is harmless");
}

#[test]
fn a_received_file_with_a_wrong_header_is_rejected_and_discarded() {
    let leader = MemSnapshotStore::new();
    let real = write_snapshot(&leader, log_id(4, 300), &payload(11, 3000));
    // The leader claims another last_log_id for the same bytes.
    let claimed = SnapshotMeta {
        last_log_id: log_id(4, 301),
        ..real.clone()
    };
    let file = leader.open(&real.id()).expect("opens");
    let bytes = file.read_at(0, real.size_bytes as usize).expect("reads");
    let directory = tempfile::tempdir().expect("temporary directory");
    let follower = open_store(directory.path());
    assert_eq!(
        follower.receive(&claimed, 0, &bytes).expect("stored"),
        real.size_bytes
    );
    match follower.finish_receive(&claimed) {
        Err(SnapshotError::Corrupt { reason, .. }) => {
            assert!(reason.contains("last log id"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(follower.newest(), None);
    assert_eq!(follower.received_bytes(&claimed.id()), 0);
    assert_eq!(file_names(directory.path()), vec!["LOCK".to_string()]);

    // Bytes damaged in flight: the checksum the leader named does not match.
    let mut damaged = bytes.to_vec();
    damaged[200] ^= 1;
    follower.receive(&real, 0, &damaged).expect("stored");
    assert!(matches!(
        follower.finish_receive(&real),
        Err(SnapshotError::Corrupt { .. })
    ));
    assert_eq!(follower.newest(), None);
}

#[test]
fn an_out_of_order_chunk_is_refused_and_the_transfer_resumes() {
    let leader = MemSnapshotStore::new();
    let bytes = payload(12, 5000);
    let meta = write_snapshot(&leader, log_id(2, 70), &bytes);
    let file = leader.open(&meta.id()).expect("opens");
    let raw = file.read_at(0, meta.size_bytes as usize).expect("reads");
    let follower = MemSnapshotStore::new();

    assert!(matches!(
        follower.receive(&meta, 100, &raw[100..200]),
        Err(SnapshotError::OutOfOrder {
            stored: 0,
            offset: 100,
            ..
        })
    ));
    assert_eq!(
        follower.receive(&meta, 0, &raw[..1000]).expect("stored"),
        1000
    );
    // A chunk lost in flight: the next one does not start where the stored bytes end.
    assert!(matches!(
        follower.receive(&meta, 2000, &raw[2000..3000]),
        Err(SnapshotError::OutOfOrder {
            stored: 1000,
            offset: 2000,
            ..
        })
    ));
    // A duplicate of an earlier chunk is refused too.
    assert!(matches!(
        follower.receive(&meta, 500, &raw[500..1500]),
        Err(SnapshotError::OutOfOrder { stored: 1000, .. })
    ));
    assert_eq!(follower.received_bytes(&meta.id()), 1000);
    let mut offset = 1000;
    while offset < meta.size_bytes {
        let end = (offset + 1000).min(meta.size_bytes);
        offset = follower
            .receive(&meta, offset, &raw[offset as usize..end as usize])
            .expect("resumes where the stored bytes end");
    }
    follower.finish_receive(&meta).expect("installs");
    assert_eq!(read_all(&follower, &meta).expect("verifies"), bytes);

    // A chunk past the declared size is refused and the partial discarded.
    let other = write_snapshot(&leader, log_id(2, 90), &payload(13, 100));
    let too_long = vec![1u8; other.size_bytes as usize + 1];
    assert!(matches!(
        follower.receive(&other, 0, &too_long),
        Err(SnapshotError::Corrupt { .. })
    ));
    assert_eq!(follower.received_bytes(&other.id()), 0);
}

#[test]
fn receiving_another_snapshot_discards_the_partial_one() {
    let leader = MemSnapshotStore::new();
    let first = write_snapshot(&leader, log_id(2, 70), &payload(14, 3000));
    let second = write_snapshot(&leader, log_id(3, 90), &payload(15, 3000));
    let directory = tempfile::tempdir().expect("temporary directory");
    let follower = open_store(directory.path());
    let first_raw = leader
        .open(&first.id())
        .expect("opens")
        .read_at(0, 1500)
        .expect("reads");
    follower.receive(&first, 0, &first_raw).expect("stored");
    assert_eq!(follower.received_bytes(&first.id()), 1500);

    let second_raw = leader
        .open(&second.id())
        .expect("opens")
        .read_at(0, 500)
        .expect("reads");
    follower.receive(&second, 0, &second_raw).expect("stored");
    assert_eq!(
        follower.received_bytes(&first.id()),
        0,
        "the first partial is gone"
    );
    assert_eq!(follower.received_bytes(&second.id()), 500);
    let partials: Vec<String> = file_names(directory.path())
        .into_iter()
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert_eq!(partials.len(), 1, "{partials:?}");
    // The first transfer cannot continue: its bytes are gone. A late chunk of it is refused
    // and leaves the second transfer alone.
    assert!(matches!(
        follower.receive(&first, 1500, &[1, 2, 3]),
        Err(SnapshotError::OutOfOrder { stored: 0, .. })
    ));
    assert_eq!(
        follower.received_bytes(&second.id()),
        500,
        "a late chunk of an abandoned transfer does not destroy the current one"
    );
    assert!(matches!(
        follower.finish_receive(&first),
        Err(SnapshotError::NotFound(_))
    ));
}

#[test]
fn open_removes_leftovers_keeps_unknown_files_and_applies_retention() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open_store(directory.path());
    let oldest = write_snapshot(&store, log_id(1, 10), &payload(1, 2000));
    let oldest_path = snapshot_path(directory.path(), &oldest);
    let oldest_file = std::fs::read(&oldest_path).expect("readable");
    let kept: Vec<SnapshotMeta> = (2..=3)
        .map(|index| write_snapshot(&store, log_id(1, index * 10), &payload(index, 2000)))
        .collect();
    assert!(!oldest_path.exists(), "retention deleted the oldest");
    let received = {
        let leader = MemSnapshotStore::new();
        let meta = write_snapshot(&leader, log_id(1, 40), &payload(4, 2000));
        let raw = leader
            .open(&meta.id())
            .expect("opens")
            .read_at(0, 1000)
            .expect("reads");
        store.receive(&meta, 0, &raw).expect("stored");
        meta
    };
    drop(store);
    // What a crash leaves: a writer's temporary file, the partial receive above, and the
    // oldest snapshot back (a power loss undid its unsynced deletion).
    std::fs::write(
        directory.path().join("writing-00000000000000000009.tmp"),
        b"half a snapshot",
    )
    .expect("writes");
    std::fs::write(&oldest_path, &oldest_file).expect("writes");
    // A file whose name and header disagree (index 5 named, index 10 inside).
    let misnamed = directory
        .path()
        .join(complete_name(&raft_types::SnapshotId {
            last_log_id: log_id(1, 5),
            ..oldest.id()
        }));
    std::fs::write(&misnamed, &oldest_file).expect("writes");
    std::fs::write(directory.path().join("notes.txt"), b"an operator's file").expect("writes");

    let reopened = open_store(directory.path());
    assert_eq!(reopened.list(), kept, "the two newest complete snapshots");
    assert_eq!(reopened.received_bytes(&received.id()), 0);
    let names = file_names(directory.path());
    assert!(
        !names
            .iter()
            .any(|name| name.ends_with(".tmp") || name.ends_with(".partial")),
        "{names:?}"
    );
    assert!(
        !oldest_path.exists(),
        "retention applies at open: {names:?}"
    );
    assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
    assert!(
        names.contains(&format!(
            "{}.corrupt",
            misnamed.file_name().expect("named").to_string_lossy()
        )),
        "the misnamed file is set aside: {names:?}"
    );
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let _store = open_store(directory.path());
    let mut config = FileSnapshotStoreConfig::new(directory.path());
    config.chunk_bytes = CHUNK_BYTES;
    match FileSnapshotStore::open_on(Arc::new(RealFileSystem), config) {
        Err(SnapshotError::Io { operation, .. }) => assert_eq!(operation, "lock"),
        other => panic!("expected a lock error, got {other:?}"),
    }
}

#[test]
fn in_memory_an_open_reader_survives_retention_too() {
    let store = MemSnapshotStore::new();
    let first_bytes = payload(16, 300_000);
    let first = write_snapshot(&store, log_id(1, 10), &first_bytes);
    let mut reader = store.read_payload(&first.id()).expect("opens");
    let open = store.open(&first.id()).expect("opens");
    write_snapshot(&store, log_id(1, 20), &payload(17, 10));
    write_snapshot(&store, log_id(1, 30), &payload(18, 10));
    assert!(!store.list().contains(&first), "retention deleted it");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).expect("still reads");
    assert_eq!(bytes, first_bytes);
    assert_eq!(
        open.read_at(0, usize::MAX).expect("still reads").len() as u64,
        first.size_bytes
    );
}
