//! The files of the write-ahead log's directory, below the [`crate::file_log_store`] logic:
//! the `LOCK` that keeps a second store out, the listing of segments (contiguous, no foreign
//! files), creating a segment with its header synced first, cutting a segment, syncing the
//! directory, and the `Io` errors that name the operation and the file.

use crate::file_system::{write_all_at, FileHandle, FileLock, FileSystem};
use crate::storage_error::StorageError;
use crate::wal_recovery::{corruption, SegmentSummary};
use crate::wal_segment::{parse_segment_name, segment_path, SegmentHeader};
use raft_types::LogIndex;
use std::io;
use std::path::Path;

/// The name of the file whose flock marks the directory as in use.
pub(crate) const LOCK_FILE_NAME: &str = "LOCK";

/// Takes an exclusive, non-blocking lock on `directory/LOCK` (a flock on the real disk). The
/// kernel releases it when the file is closed or the process dies, so a crash leaves no stale
/// lock.
pub(crate) fn lock_directory(
    file_system: &dyn FileSystem,
    directory: &Path,
) -> Result<Box<dyn FileLock>, StorageError> {
    let path = directory.join(LOCK_FILE_NAME);
    // A lock can be held for an instant by a process being spawned: between fork and exec the
    // child holds a copy of every descriptor, close-on-exec ones included. Retrying for a short
    // while tells that from a second store that really holds the directory.
    let deadline = std::time::Instant::now() + LOCK_RETRY_DURATION;
    loop {
        match file_system.try_lock_exclusive(&path) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(None) => {
                return Err(StorageError::DirectoryLocked {
                    path: directory.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(StorageError::Io {
                    operation: "lock",
                    path,
                    source,
                })
            }
        }
    }
}

/// How long `lock_directory` keeps trying before it reports `DirectoryLocked`.
const LOCK_RETRY_DURATION: std::time::Duration = std::time::Duration::from_millis(500);

/// The segment sequences in `directory`, ascending and contiguous. Refuses a directory that
/// holds other files and no segment (probably not ours).
pub(crate) fn list_segments(
    file_system: &dyn FileSystem,
    directory: &Path,
) -> Result<Vec<u64>, StorageError> {
    let listing = file_system
        .list_directory(directory)
        .map_err(io_error("read directory", directory))?;
    let mut sequences = Vec::new();
    let mut foreign = Vec::new();
    for name in listing {
        match parse_segment_name(&name) {
            Some(sequence) => sequences.push(sequence),
            None if name == LOCK_FILE_NAME => {}
            None => foreign.push(name),
        }
    }
    foreign.sort();
    if sequences.is_empty() && !foreign.is_empty() {
        return Err(StorageError::ForeignDirectory {
            path: directory.to_path_buf(),
            found: foreign.join(", "),
        });
    }
    if !foreign.is_empty() {
        tracing::warn!(
            directory = %directory.display(),
            files = %foreign.join(", "),
            "write-ahead log: ignoring files that are not segments"
        );
    }
    sequences.sort_unstable();
    for pair in sequences.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(corruption(
                &segment_path(directory, pair[1]),
                0,
                format!("segment {} is missing before it", pair[0] + 1),
            ));
        }
    }
    Ok(sequences)
}

/// Creates segment `sequence` with its header, and (with `fsync`) syncs the header and the
/// directory before anything else is written to it. Recovery relies on that: a segment whose
/// header is bad while data follows it cannot be a creation the crash interrupted, and is
/// refused as corruption instead of being removed with whatever it held.
pub(crate) fn create_segment(
    file_system: &dyn FileSystem,
    directory: &Path,
    sequence: u64,
    next_index: LogIndex,
    fsync: bool,
) -> Result<(SegmentSummary, Box<dyn FileHandle>), StorageError> {
    let path = segment_path(directory, sequence);
    let mut file = file_system
        .create_new_file(&path)
        .map_err(io_error("create segment", &path))?;
    let header = SegmentHeader {
        sequence,
        next_index: next_index.0,
    };
    let header_bytes = header.encode();
    write_all_at(file.as_mut(), &header_bytes, 0)
        .map_err(io_error("write segment header", &path))?;
    if fsync {
        file.sync_data()
            .map_err(io_error("fdatasync segment header", &path))?;
        sync_directory(file_system, directory)?;
    }
    let summary = SegmentSummary {
        sequence,
        path,
        highest_index_written: None,
        length_bytes: header_bytes.len() as u64,
    };
    Ok((summary, file))
}

pub(crate) fn open_for_append(
    file_system: &dyn FileSystem,
    path: &Path,
) -> Result<Box<dyn FileHandle>, StorageError> {
    file_system
        .open_file(path)
        .map_err(io_error("open segment", path))
}

pub(crate) fn truncate_file(
    file_system: &dyn FileSystem,
    path: &Path,
    length: u64,
    fsync: bool,
) -> Result<(), StorageError> {
    let mut file = open_for_append(file_system, path)?;
    file.set_len(length)
        .map_err(io_error("truncate segment", path))?;
    if fsync {
        file.sync_data().map_err(io_error("fsync segment", path))?;
    }
    Ok(())
}

pub(crate) fn sync_directory(
    file_system: &dyn FileSystem,
    directory: &Path,
) -> Result<(), StorageError> {
    file_system
        .sync_directory(directory)
        .map_err(io_error("fsync directory", directory))
}

/// Names the failed operation and file. The path is copied only when there is an error: the
/// write and sync of every batch pass through here.
pub(crate) fn io_error<'path>(
    operation: &'static str,
    path: &'path Path,
) -> impl FnOnce(io::Error) -> StorageError + 'path {
    move |source| StorageError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}
