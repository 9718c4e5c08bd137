//! `FileLogStore`: the durable write-ahead log (segments, CRC32C framing, fdatasync, recovery).
//!
//! The byte layout is in [`crate::wal_segment`] and [`crate::wal_record`] (and
//! `docs/WAL_FORMAT.md`); recovery rules in [`crate::wal_recovery`].
//!
//! Writes go straight to the active segment with one `write` per operation (no user-space
//! buffer, so reads see them at once); `sync` is one `fdatasync` of the active segment, plus a
//! directory fsync when a segment was deleted since the last one. The active segment is
//! extended with zeros ahead of the writes (`preallocate_bytes` at a time), so most syncs
//! write data into blocks the file already has and need no journal commit for a new length
//! or new blocks; a full segment is cut back to its records when the next one starts. The
//! active segment is fdatasync'd before the next one is created, so a crash can tear only the last segment, and a
//! new segment's header is synced before anything follows it (see [`crate::wal_recovery`]).

use crate::file_system::{write_all_at, FileHandle, FileLock, FileSystem, RealFileSystem};
use crate::log_store::{check_continues, check_range, LogStore, StoredLog};
use crate::storage_error::StorageError;
use crate::wal_directory::{
    create_segment, io_error, list_segments, lock_directory, open_for_append, sync_directory,
    truncate_file,
};
use crate::wal_record::{self, read_record, RecordRead, WalRecord};
use crate::wal_recovery::{
    corruption, EntryLocation, ReplayState, SegmentEnd, SegmentPosition, SegmentSummary,
};
use crate::wal_segment::segment_path;
use raft_types::{Entry, HardState, LogId, LogIndex};
use std::collections::{btree_map, BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a [`FileLogStore`] is opened. Mirrors the `[storage]` section of the node's config.
#[derive(Clone, Debug)]
pub struct FileLogStoreConfig {
    /// The directory holding the segments; created if missing. Nothing else should live in it.
    pub directory: PathBuf,
    /// A segment is closed and a new one started once it reaches this size. Smaller segments
    /// let purging free space sooner; larger ones mean fewer files. Default 64 MiB.
    pub segment_size_bytes: u64,
    /// Records longer than this are refused when written and treated as corruption when read,
    /// so a damaged length can never make recovery allocate more. Default 64 MiB.
    pub max_record_bytes: u32,
    /// `false` skips every fdatasync. UNSAFE: a machine crash or power loss can then lose
    /// entries and votes the node has already acknowledged, which breaks Raft's safety
    /// (a vote twice in one term, a committed entry lost). For experiments only. Default `true`.
    pub fsync: bool,
    /// The active segment is extended with this many zero bytes at a time ahead of the writes
    /// (never past `segment_size_bytes`). An fdatasync that only overwrites blocks the file
    /// already has needs no file-system journal commit; on ext4 here that makes the sync of a
    /// small append about a quarter faster when three nodes sync one disk at once. The zeros
    /// are written, not `fallocate`d: unwritten extents would need the same metadata update on
    /// the first write. `0` turns it off (the file grows with each write, as on a file system
    /// that copies on write, where overwriting in place saves nothing). Default 4 MiB.
    pub preallocate_bytes: u64,
}

impl FileLogStoreConfig {
    /// The defaults, for the given directory.
    pub fn new(directory: impl Into<PathBuf>) -> FileLogStoreConfig {
        FileLogStoreConfig {
            directory: directory.into(),
            segment_size_bytes: 64 * 1024 * 1024,
            max_record_bytes: 64 * 1024 * 1024,
            fsync: true,
            preallocate_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A [`LogStore`] on disk. Open with [`FileLogStore::open`].
#[derive(Debug)]
pub struct FileLogStore {
    config: FileLogStoreConfig,
    /// The disk: the real one in production, a simulated one in power-loss tests.
    file_system: Arc<dyn FileSystem>,
    /// Every segment on disk, oldest first; the last one is the active segment.
    segments: Vec<SegmentSummary>,
    /// The active segment, opened for appending.
    active_file: Box<dyn FileHandle>,
    /// How much of the active segment a successful sync covered: after a failed write or sync
    /// the segment is cut back to it (see `poison`).
    active_durable_bytes: u64,
    /// The active segment's length on disk: its records (`length_bytes` of its summary), then
    /// preallocated zeros up to here.
    active_allocated_bytes: u64,
    hard_state: HardState,
    /// Index of `locations[0]`, or of the next append when the log is empty.
    first_index: LogIndex,
    /// Where each held entry lies, so reads need no scan and the term of any entry is known.
    locations: VecDeque<EntryLocation>,
    /// Reused for encoding, so an append allocates nothing once warmed up.
    write_buffer: Vec<u8>,
    /// A segment was deleted since the last sync: the directory must be synced too or the
    /// deletion may not survive a crash. (A created segment syncs the directory at once.)
    directory_sync_pending: bool,
    /// Set by the first failed write; see `LogStore`'s `# Correctness`.
    poisoned: bool,
    /// The open `LOCK` file holding an exclusive flock for as long as the store lives, so a
    /// second store (another node given the same directory by mistake) cannot interleave its
    /// writes with ours.
    _directory_lock: Box<dyn FileLock>,
}

impl FileLogStore {
    /// Opens (or creates) the log in `config.directory` and recovers its contents.
    ///
    /// Errors: an unreadable directory, a directory holding foreign files, a segment of an
    /// unknown format, or corruption before the tail (naming the file and offset). A torn tail
    /// is not an error: it is truncated, with a warning.
    pub fn open(config: FileLogStoreConfig) -> Result<(FileLogStore, StoredLog), StorageError> {
        FileLogStore::open_on(Arc::new(RealFileSystem), config)
    }

    /// [`FileLogStore::open`] on `file_system` instead of the real disk: the same code, on a
    /// simulated disk in the power-loss tests.
    pub fn open_on(
        file_system: Arc<dyn FileSystem>,
        config: FileLogStoreConfig,
    ) -> Result<(FileLogStore, StoredLog), StorageError> {
        let disk = file_system.as_ref();
        let directory = config.directory.clone();
        disk.create_dir_all(&directory)
            .map_err(io_error("create directory", &directory))?;
        // Before anything is read: a second store listing the directory while the first one
        // writes could see a segment being created and remove it, or truncate a record being
        // written as a torn tail.
        let directory_lock = lock_directory(disk, &directory)?;
        if config.fsync {
            // The directory may have just been created (by us, or by a process that crashed
            // before syncing it): make its own name durable before any acknowledged write can
            // depend on the files in it.
            sync_directory(disk, &directory)?;
            if let Some(parent) = directory
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                sync_directory(disk, parent)?;
            }
        }
        let sequences = list_segments(disk, &directory)?;
        let mut replay = ReplayState::new();
        for (position_in_list, &sequence) in sequences.iter().enumerate() {
            let path = segment_path(&directory, sequence);
            let bytes = disk
                .read_file(&path)
                .map_err(io_error("read segment", &path))?;
            let position = SegmentPosition {
                is_first: replay.segments.is_empty(),
                is_last: position_in_list + 1 == sequences.len(),
            };
            let end = replay.replay_segment(
                &path,
                sequence,
                &bytes,
                position,
                config.max_record_bytes,
            )?;
            match end {
                SegmentEnd::Clean | SegmentEnd::Preallocated { .. } => {}
                SegmentEnd::TornAt { offset, reason } => {
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        reason = %reason,
                        "write-ahead log: truncating a torn tail (a write the crash interrupted)"
                    );
                    truncate_file(disk, &path, offset, config.fsync)?;
                }
                SegmentEnd::HeaderIncomplete => {
                    tracing::warn!(
                        path = %path.display(),
                        "write-ahead log: removing a segment whose creation was interrupted"
                    );
                    disk.remove_file(&path)
                        .map_err(io_error("remove segment", &path))?;
                    if config.fsync {
                        sync_directory(disk, &directory)?;
                    }
                }
            }
        }
        let recovered = StoredLog {
            hard_state: replay.hard_state,
            first_index: replay.first_index,
            entries: std::mem::take(&mut replay.entries).into(),
            prev_log_id: replay.prev_log_id,
        };
        // A fresh log starts at segment 1; if the only segment was removed above (its creation
        // was cut short), its successor takes the same number.
        let first_sequence = sequences.last().copied().unwrap_or(1);
        let store = FileLogStore::resume(
            config,
            Arc::clone(&file_system),
            replay,
            directory_lock,
            first_sequence,
        )?;
        Ok((store, recovered))
    }

    /// Builds the store from a finished replay, creating segment `first_sequence` if no segment
    /// is left.
    fn resume(
        config: FileLogStoreConfig,
        file_system: Arc<dyn FileSystem>,
        replay: ReplayState,
        directory_lock: Box<dyn FileLock>,
        first_sequence: u64,
    ) -> Result<FileLogStore, StorageError> {
        let ReplayState {
            hard_state,
            first_index,
            locations,
            segments,
            ..
        } = replay;
        let mut store = match segments.last() {
            Some(active) => {
                let active_file = open_for_append(file_system.as_ref(), &active.path)?;
                // What recovery read; the sync below makes sure of it.
                let active_durable_bytes = active.length_bytes;
                // Zeros left after the records (preallocated by the last run) are used again.
                let active_allocated_bytes = active_file
                    .length()
                    .map_err(io_error("read segment length", &active.path))?
                    .max(active.length_bytes);
                let mut store = FileLogStore {
                    config,
                    file_system,
                    segments,
                    active_file,
                    active_durable_bytes,
                    active_allocated_bytes,
                    hard_state,
                    first_index,
                    locations,
                    write_buffer: Vec::new(),
                    directory_sync_pending: false,
                    poisoned: false,
                    _directory_lock: directory_lock,
                };
                // The active segment's opening hard state record may have been torn away by
                // the crash; restore the guarantee that purging older segments never loses
                // the hard state by writing the recovered one again (one small record per open).
                store.write_hard_state_record()?;
                store
            }
            None => {
                let (summary, active_file) = create_segment(
                    file_system.as_ref(),
                    &config.directory,
                    first_sequence,
                    first_index,
                    config.fsync,
                )?;
                let mut store = FileLogStore {
                    config,
                    file_system,
                    active_durable_bytes: summary.length_bytes,
                    active_allocated_bytes: summary.length_bytes,
                    segments: vec![summary],
                    active_file,
                    hard_state,
                    first_index,
                    locations,
                    write_buffer: Vec::new(),
                    directory_sync_pending: false,
                    poisoned: false,
                    _directory_lock: directory_lock,
                };
                store.write_hard_state_record()?;
                store
            }
        };
        store.sync()?;
        Ok(store)
    }

    /// The directory this store writes to.
    pub fn directory(&self) -> &Path {
        &self.config.directory
    }

    /// How many segment files the log spans now.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active_segment(&self) -> &SegmentSummary {
        self.segments
            .last()
            .expect("a store always has an active segment: open creates one")
    }

    fn active_segment_mut(&mut self) -> &mut SegmentSummary {
        self.segments
            .last_mut()
            .expect("a store always has an active segment: open creates one")
    }

    fn next_index_value(&self) -> LogIndex {
        self.first_index.plus(self.locations.len() as u64)
    }

    /// Runs one write unless the store is poisoned, and poisons it if the write fails: after a
    /// failed write the file's contents are unknown (see `LogStore`'s `# Correctness`).
    fn guarded_write<T>(
        &mut self,
        write: impl FnOnce(&mut FileLogStore) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        let result = write(self);
        if result.is_err() {
            self.poison();
        }
        result
    }

    /// Refuses all further work, and cuts the active segment back to what the last successful
    /// sync covered.
    ///
    /// Why the cut: after a failed fdatasync Linux marks the dirty pages clean without writing
    /// them ("fsyncgate"). They stay readable, so a restart of the process (no reboot) would
    /// recover entries the disk does not hold, report them durable, and a later successful sync
    /// would not write them either. Truncating drops them from the page cache: a restart then
    /// recovers only what was synced. This is best effort (the truncation can fail too, and
    /// then a reboot before the restart is the safe course; see docs/WAL_FORMAT.md).
    fn poison(&mut self) {
        self.poisoned = true;
        self.write_buffer.clear();
        if !self.config.fsync {
            return;
        }
        let durable_bytes = self.active_durable_bytes;
        let path = self.active_segment().path.clone();
        let cut = self
            .active_file
            .set_len(durable_bytes)
            .and_then(|()| self.active_file.sync_data());
        match cut {
            Ok(()) => {
                self.active_segment_mut().length_bytes = durable_bytes;
                self.active_allocated_bytes = durable_bytes;
                tracing::warn!(path = %path.display(), durable_bytes,
                    "write-ahead log: failed; cut the active segment back to its last sync");
            }
            Err(error) => tracing::error!(path = %path.display(), durable_bytes, %error,
                "write-ahead log: failed, and cutting the active segment back to its last \
                 sync failed too; reboot the machine before restarting the node"),
        }
    }

    /// Writes `write_buffer` after the active segment's records in one call and clears it.
    fn write_buffered(&mut self) -> Result<(), StorageError> {
        let start = self.active_segment().length_bytes;
        let end = start + self.write_buffer.len() as u64;
        self.preallocate_for(end)?;
        let path = active_path(&self.segments);
        write_all_at(self.active_file.as_mut(), &self.write_buffer, start)
            .map_err(io_error("write segment", path))?;
        self.write_buffer.clear();
        self.active_segment_mut().length_bytes = end;
        self.active_allocated_bytes = self.active_allocated_bytes.max(end);
        Ok(())
    }

    /// Extends the active segment with zeros, `preallocate_bytes` at a time up to the segment
    /// size, when a write would end past what it holds. The zeros become durable with the
    /// next sync, like the write after them; recovery reads a tail of zeros after the last
    /// record as space never written (`SegmentEnd::Preallocated`).
    fn preallocate_for(&mut self, end: u64) -> Result<(), StorageError> {
        let chunk = self.config.preallocate_bytes;
        if chunk == 0 || end <= self.active_allocated_bytes {
            return Ok(());
        }
        // To the next multiple of the chunk, so the file's length stays a round number.
        let target =
            ((self.active_allocated_bytes / chunk + 1) * chunk).min(self.config.segment_size_bytes);
        if target <= end {
            // The segment is about full: the write itself grows the file.
            return Ok(());
        }
        let zeros = vec![0u8; (target - self.active_allocated_bytes) as usize];
        let path = active_path(&self.segments);
        write_all_at(
            self.active_file.as_mut(),
            &zeros,
            self.active_allocated_bytes,
        )
        .map_err(io_error("preallocate segment", path))?;
        self.active_allocated_bytes = target;
        Ok(())
    }

    fn write_hard_state_record(&mut self) -> Result<(), StorageError> {
        wal_record::encode_hard_state(&self.hard_state, &mut self.write_buffer)?;
        self.write_buffered()
    }

    /// Closes the active segment once it is full: syncs it (so only the last segment can ever
    /// be torn), then starts the next one with the current hard state.
    fn roll_if_full(&mut self) -> Result<(), StorageError> {
        if self.active_segment().length_bytes < self.config.segment_size_bytes {
            return Ok(());
        }
        let used_bytes = self.active_segment().length_bytes;
        if self.active_allocated_bytes > used_bytes {
            // Only the last segment may end in zeros (recovery reads them as unused space
            // there, as damage anywhere else): cut the preallocated rest off before the next
            // segment exists. The sync below makes the new length durable first.
            let path = active_path(&self.segments);
            self.active_file
                .set_len(used_bytes)
                .map_err(io_error("truncate segment", path))?;
            self.active_allocated_bytes = used_bytes;
        }
        if self.config.fsync {
            self.sync_active_segment()?;
        }
        let sequence = self.active_segment().sequence + 1;
        let (summary, file) = create_segment(
            self.file_system.as_ref(),
            &self.config.directory,
            sequence,
            self.next_index_value(),
            self.config.fsync,
        )?;
        self.active_durable_bytes = summary.length_bytes;
        self.active_allocated_bytes = summary.length_bytes;
        self.segments.push(summary);
        self.active_file = file;
        self.write_hard_state_record()
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        check_continues(entries, self.next_index_value())?;
        self.roll_if_full()?;
        let segment_sequence = self.active_segment().sequence;
        let mut offset = self.active_segment().length_bytes;
        let mut new_locations = Vec::with_capacity(entries.len());
        for entry in entries {
            let framed_length = wal_record::encode_entry(entry, &mut self.write_buffer)?;
            if framed_length > self.config.max_record_bytes as usize {
                self.write_buffer.clear();
                return Err(StorageError::RecordTooLong {
                    index: entry.index(),
                    framed_length,
                    max_record_bytes: self.config.max_record_bytes,
                });
            }
            new_locations.push(EntryLocation {
                term: entry.term(),
                segment_sequence,
                offset,
                framed_length: u32::try_from(framed_length)
                    .expect("framed length was checked against max_record_bytes, a u32"),
            });
            offset += framed_length as u64;
        }
        self.write_buffered()?;
        self.locations.extend(new_locations);
        if let Some(last) = entries.last() {
            let active = self.active_segment_mut();
            active.highest_index_written = Some(last.index());
        }
        Ok(())
    }

    fn truncate_entries(&mut self, since: LogIndex) -> Result<(), StorageError> {
        if since >= self.next_index_value() {
            return Ok(());
        }
        self.roll_if_full()?;
        wal_record::encode_truncate(since, &mut self.write_buffer)?;
        self.write_buffered()?;
        if since < self.first_index {
            self.locations.clear();
            self.first_index = since;
        } else {
            let keep = usize::try_from(since.0 - self.first_index.0)
                .expect("fewer entries than usize::MAX are held in memory");
            self.locations.truncate(keep);
        }
        Ok(())
    }

    fn reset_log(&mut self, last_log_id: LogId) -> Result<(), StorageError> {
        self.roll_if_full()?;
        wal_record::encode_reset(last_log_id, &mut self.write_buffer)?;
        self.write_buffered()?;
        self.locations.clear();
        self.first_index = last_log_id.index.next();
        Ok(())
    }

    fn store_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.roll_if_full()?;
        self.hard_state = *hard_state;
        self.write_hard_state_record()
    }

    /// Deletes whole segments, oldest first, while every entry ever written to them lies
    /// before `before`. The active segment is never deleted.
    fn purge_segments(&mut self, before: LogIndex) -> Result<(), StorageError> {
        // What replaces a deleted segment (the active segment's header and its hard state
        // record, written when it was created) must be durable before the deletion can be.
        self.sync_to_disk()?;
        let mut removed = 0;
        while self.segments.len() - removed > 1 {
            let candidate = &self.segments[removed];
            let entirely_before = match candidate.highest_index_written {
                Some(highest) => highest < before,
                None => true,
            };
            if !entirely_before {
                break;
            }
            self.file_system
                .remove_file(&candidate.path)
                .map_err(io_error("remove segment", &candidate.path))?;
            removed += 1;
        }
        if removed == 0 {
            return Ok(());
        }
        self.segments.drain(..removed);
        self.directory_sync_pending = true;
        let oldest_kept = self.segments[0].sequence;
        while self
            .locations
            .front()
            .is_some_and(|location| location.segment_sequence < oldest_kept)
        {
            self.locations.pop_front();
            self.first_index = self.first_index.next();
        }
        Ok(())
    }

    fn sync_to_disk(&mut self) -> Result<(), StorageError> {
        if !self.config.fsync {
            return Ok(());
        }
        self.sync_active_segment()?;
        if self.directory_sync_pending {
            sync_directory(self.file_system.as_ref(), &self.config.directory)?;
            self.directory_sync_pending = false;
        }
        Ok(())
    }

    fn sync_active_segment(&mut self) -> Result<(), StorageError> {
        let active = self
            .segments
            .last()
            .expect("a store always has an active segment: open creates one");
        self.active_file
            .sync_data()
            .map_err(io_error("fdatasync segment", &active.path))?;
        self.active_durable_bytes = active.length_bytes;
        Ok(())
    }

    fn read_entry(
        &self,
        index: LogIndex,
        location: &EntryLocation,
        open_files: &mut BTreeMap<u64, Box<dyn FileHandle>>,
    ) -> Result<Entry, StorageError> {
        let path = segment_path(&self.config.directory, location.segment_sequence);
        let file = match open_files.entry(location.segment_sequence) {
            btree_map::Entry::Occupied(open) => open.into_mut(),
            btree_map::Entry::Vacant(slot) => slot.insert(
                self.file_system
                    .open_file(&path)
                    .map_err(io_error("open segment", &path))?,
            ),
        };
        let mut bytes = vec![0u8; location.framed_length as usize];
        file.read_exact_at(&mut bytes, location.offset)
            .map_err(io_error("read segment", &path))?;
        match read_record(&bytes, 0, self.config.max_record_bytes) {
            RecordRead::Record {
                record: WalRecord::Entry(entry),
                ..
            } if entry.index() == index => Ok(entry),
            other => Err(corruption(
                &path,
                location.offset,
                format!("expected the record of entry {index}, found {other:?}"),
            )),
        }
    }
}

impl LogStore for FileLogStore {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.guarded_write(|store| store.append_entries(entries))
    }

    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        self.guarded_write(|store| store.truncate_entries(since))
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.guarded_write(|store| store.store_hard_state(hard_state))
    }

    fn purge(&mut self, before: LogIndex) -> Result<(), StorageError> {
        self.guarded_write(|store| store.purge_segments(before))
    }

    fn reset(&mut self, last_log_id: LogId) -> Result<(), StorageError> {
        self.guarded_write(|store| store.reset_log(last_log_id))
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.guarded_write(|store| store.sync_to_disk())
    }

    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn first_index(&self) -> LogIndex {
        self.first_index
    }

    fn next_index(&self) -> LogIndex {
        self.next_index_value()
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.locations
            .back()
            .map(|location| LogId::new(location.term, self.next_index_value().previous()))
    }

    fn entries(&self, range: Range<LogIndex>) -> Result<Vec<Entry>, StorageError> {
        check_range(&range, self.first_index, self.next_index_value())?;
        let mut open_files = BTreeMap::new();
        let mut entries = Vec::new();
        let mut index = range.start;
        while index < range.end {
            let position = usize::try_from(index.0 - self.first_index.0)
                .expect("range checked to lie within the held entries");
            entries.push(self.read_entry(index, &self.locations[position], &mut open_files)?);
            index = index.next();
        }
        Ok(entries)
    }
}

/// The active segment's path, borrowed from the segment list alone so the active file can be
/// written while it is held.
fn active_path(segments: &[SegmentSummary]) -> &Path {
    &segments
        .last()
        .expect("a store always has an active segment: open creates one")
        .path
}
