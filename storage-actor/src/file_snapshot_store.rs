//! `FileSnapshotStore`: the snapshot store on a [`FileSystem`] (the real disk, or the simulated
//! one of the power-loss tests; `crate::mem_snapshot_store` runs it on a private in-memory
//! disk). One format ([`crate::snapshot_file`]), one verifier, one set of rules.
//!
//! # Directory
//!
//! ```text
//! LOCK                                                        <- flock held while the store is open
//! 00000000000000000120-00000000000000000003-1a2b3c4d.snap     <- complete: index, term, checksum
//! 00000000000000000250-00000000000000000004-5e6f7a8b.snap     <- the newest (highest index, term)
//! writing-00000000000000000007.tmp                            <- being written by `begin`
//! 00000000000000000300-00000000000000000004-0badf00d.partial  <- being received
//! 00000000000000000120-00000000000000000003-1a2b3c4d.snap.corrupt <- set aside at open
//! ```
//!
//! Names of complete snapshots sort by `last_log_id` (20 decimal digits each), so `ls` shows
//! them oldest first; the checksum tells apart two files with the same `last_log_id`.
//!
//! # How each rule of the `SnapshotStore` contract is kept
//!
//! - **Atomic and durable.** A snapshot is written (`begin`) or received (`receive`) into a
//!   file with a temporary name, synced (fdatasync), renamed to its final name, and the
//!   directory is fsync'd before it is listed. A crash before the directory sync leaves the
//!   old name (removed at the next open) or none; after it, the whole synced file.
//! - **Newest wins, two are kept.** After a snapshot is installed, every complete snapshot but
//!   the newest two (by `last_log_id`, then checksum) is deleted. The deletions are not
//!   synced: one that a power loss undoes only brings back an old, complete snapshot, and the
//!   next open deletes it again. Open files ([`SnapshotStore::open`], `read_payload`) hold
//!   their handle, so they keep reading a deleted file.
//! - **Verified before trusted.** Reads go through [`crate::snapshot_file::PayloadReader`]; a
//!   received file is verified in full ([`Verification::Full`]) before it is renamed.
//! - **Receiving resumes.** One partial file at a time, named by the snapshot id; every chunk
//!   is fdatasync'd before `receive` returns. Partial files do not survive a restart (open
//!   removes them), so their names need no directory sync.
//! - **Recovery.** Open removes `*.tmp` and `*.partial` files (with a warning), verifies the
//!   newest complete snapshot in full and the others' structure, renames a corrupt one aside
//!   (`*.corrupt`, kept for the operator) and falls back to the next, applies retention, and
//!   leaves files it does not know alone (with a warning).

use crate::file_system::{append_all, FileHandle, FileLock, FileSystem, RealFileSystem};
use crate::snapshot_file::{
    check_matches, corrupt, encode_chunk, encode_header, encode_trailer, io_error, verify,
    HandleSource, PayloadReader, SnapshotParser, SnapshotSource, Verification, MAX_CHUNK_BYTES,
};
use raft_proto::snapshot::{SnapshotError, SnapshotFile, SnapshotStore, SnapshotWriter};
use raft_types::{Bytes, LogId, LogIndex, Membership, SnapshotId, SnapshotMeta, Term};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many complete snapshots are kept: the newest, and the one before it, so a snapshot
/// being sent or read while a newer one completes is still there when it is opened again.
pub const SNAPSHOTS_KEPT: usize = 2;

const SNAPSHOT_SUFFIX: &str = ".snap";
const PARTIAL_SUFFIX: &str = ".partial";
const TEMPORARY_SUFFIX: &str = ".tmp";
const CORRUPT_SUFFIX: &str = ".corrupt";
const LOCK_FILE_NAME: &str = "LOCK";

/// How a [`FileSnapshotStore`] is opened.
#[derive(Clone, Debug)]
pub struct FileSnapshotStoreConfig {
    /// The directory holding the snapshots (the node passes `<data_dir>/snapshots`); created
    /// if missing.
    pub directory: PathBuf,
    /// The payload is written in chunks of this many bytes (the last one shorter), each with
    /// its checksum. Default 1 MiB; at most 64 MiB.
    pub chunk_bytes: usize,
}

impl FileSnapshotStoreConfig {
    /// The defaults, for `directory`.
    pub fn new(directory: impl Into<PathBuf>) -> FileSnapshotStoreConfig {
        FileSnapshotStoreConfig {
            directory: directory.into(),
            chunk_bytes: 1 << 20,
        }
    }
}

/// A [`SnapshotStore`] in a directory. Clones share the store.
#[derive(Clone, Debug)]
pub struct FileSnapshotStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    file_system: Arc<dyn FileSystem>,
    directory: PathBuf,
    chunk_bytes: usize,
    /// Numbers the temporary files of writers, so two writers never share one.
    next_temporary: AtomicU64,
    state: Mutex<StoreState>,
}

#[derive(Debug)]
struct StoreState {
    /// Every complete snapshot, oldest first.
    complete: BTreeMap<SnapshotId, SnapshotMeta>,
    /// The snapshot being received, if any.
    partial: Option<PartialReceive>,
    /// The directory's flock, held for as long as the store lives.
    _lock: Box<dyn FileLock>,
}

#[derive(Debug)]
struct PartialReceive {
    meta: SnapshotMeta,
    path: PathBuf,
    file: Box<dyn FileHandle>,
    /// Bytes `0 .. stored` are in the file, synced.
    stored: u64,
}

impl FileSnapshotStore {
    /// Opens (or creates) the store in `directory` on the real disk. See the module
    /// documentation for what recovery does.
    pub fn open(directory: impl Into<PathBuf>) -> Result<FileSnapshotStore, SnapshotError> {
        FileSnapshotStore::open_on(
            Arc::new(RealFileSystem),
            FileSnapshotStoreConfig::new(directory),
        )
    }

    /// [`FileSnapshotStore::open`] on `file_system`, with `config`.
    pub fn open_on(
        file_system: Arc<dyn FileSystem>,
        config: FileSnapshotStoreConfig,
    ) -> Result<FileSnapshotStore, SnapshotError> {
        assert!(
            (1..=MAX_CHUNK_BYTES as usize).contains(&config.chunk_bytes),
            "chunk_bytes must be 1 ..= {MAX_CHUNK_BYTES}, got {}",
            config.chunk_bytes
        );
        let directory = config.directory.clone();
        let disk = file_system.as_ref();
        disk.create_dir_all(&directory)
            .map_err(path_error("create directory", &directory))?;
        let lock = lock_directory(disk, &directory)?;
        // The directory may have just been created: make its name durable before a snapshot
        // in it is reported complete.
        sync_directory(disk, &directory)?;
        if let Some(parent) = directory
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(disk, parent)?;
        }
        let complete = recover(disk, &directory)?;
        if let Some(newest) = complete.values().next_back() {
            tracing::info!(directory = %directory.display(), newest = %newest,
                snapshots = complete.len(), "snapshot store: opened");
        }
        Ok(FileSnapshotStore {
            inner: Arc::new(StoreInner {
                file_system,
                directory,
                chunk_bytes: config.chunk_bytes,
                next_temporary: AtomicU64::new(1),
                state: Mutex::new(StoreState {
                    complete,
                    partial: None,
                    _lock: lock,
                }),
            }),
        })
    }

    /// The directory this store keeps its files in.
    pub fn directory(&self) -> &Path {
        &self.inner.directory
    }
}

impl StoreInner {
    fn state(&self) -> MutexGuard<'_, StoreState> {
        // Every change to the state is completed before anything that can panic, so the state
        // is whole even after a panic elsewhere while the lock was held.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn complete_path(&self, snapshot: &SnapshotId) -> PathBuf {
        self.directory.join(complete_name(snapshot))
    }

    /// Opens the file of complete snapshot `snapshot`.
    fn open_complete(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<(SnapshotMeta, PathBuf, Arc<HandleSource>), SnapshotError> {
        // Under the lock, so retention cannot delete the file between the lookup and the open.
        let state = self.state();
        let meta = state
            .complete
            .get(snapshot)
            .cloned()
            .ok_or(SnapshotError::NotFound(*snapshot))?;
        let path = self.complete_path(snapshot);
        let handle = self
            .file_system
            .open_file(&path)
            .map_err(path_error("open", &path))?;
        Ok((meta, path, Arc::new(HandleSource::new(handle))))
    }

    /// Renames the synced file `from` to the final name of `meta`, syncs the directory, lists
    /// the snapshot and applies retention.
    fn install(
        &self,
        state: &mut StoreState,
        from: &Path,
        meta: SnapshotMeta,
    ) -> Result<(), SnapshotError> {
        let to = self.complete_path(&meta.id());
        self.file_system
            .rename(from, &to)
            .map_err(path_error("rename", from))?;
        sync_directory(self.file_system.as_ref(), &self.directory)?;
        tracing::info!(snapshot = %meta, path = %to.display(), "snapshot store: installed");
        state.complete.insert(meta.id(), meta);
        apply_retention(
            self.file_system.as_ref(),
            &self.directory,
            &mut state.complete,
        );
        Ok(())
    }

    /// Removes the partial file, if any (best effort: open removes leftovers anyway).
    fn discard_partial(&self, state: &mut StoreState, why: &str) {
        if let Some(partial) = state.partial.take() {
            tracing::info!(snapshot = %partial.meta, stored = partial.stored, why,
                "snapshot store: discarding a partial receive");
            remove_quietly(self.file_system.as_ref(), &partial.path);
        }
    }
}

/// Deletes every snapshot but the newest [`SNAPSHOTS_KEPT`]. A failed deletion is a warning:
/// the snapshot installed just before is durable whatever happens to the old files.
fn apply_retention(
    file_system: &dyn FileSystem,
    directory: &Path,
    complete: &mut BTreeMap<SnapshotId, SnapshotMeta>,
) {
    while complete.len() > SNAPSHOTS_KEPT {
        let (oldest, _) = complete
            .pop_first()
            .expect("more than SNAPSHOTS_KEPT snapshots are listed");
        let path = directory.join(complete_name(&oldest));
        match file_system.remove_file(&path) {
            Ok(()) => tracing::info!(snapshot = %oldest, "snapshot store: deleted (retention)"),
            Err(error) => tracing::warn!(path = %path.display(), %error,
                "snapshot store: could not delete an old snapshot"),
        }
    }
}

impl SnapshotStore for FileSnapshotStore {
    fn newest(&self) -> Option<SnapshotMeta> {
        self.inner.state().complete.values().next_back().cloned()
    }

    fn list(&self) -> Vec<SnapshotMeta> {
        self.inner.state().complete.values().cloned().collect()
    }

    fn begin(
        &self,
        last_log_id: LogId,
        membership: Membership,
    ) -> Result<Box<dyn SnapshotWriter>, SnapshotError> {
        let number = self.inner.next_temporary.fetch_add(1, Ordering::Relaxed);
        let path = self
            .inner
            .directory
            .join(format!("writing-{number:020}{TEMPORARY_SUFFIX}"));
        let header = encode_header(last_log_id, &membership).map_err(|error| {
            SnapshotError::StateMachine(format!("cannot encode the snapshot header: {error}"))
        })?;
        let mut file = self
            .inner
            .file_system
            .create_new_file(&path)
            .map_err(path_error("create", &path))?;
        let mut writer = FileSnapshotWriter {
            store: Arc::clone(&self.inner),
            path,
            file: None,
            last_log_id,
            membership,
            chunk: Vec::with_capacity(self.inner.chunk_bytes),
            frame: Vec::new(),
            file_checksum: crc32c::crc32c(&header),
            payload_length: 0,
            failed: false,
            installed: false,
        };
        // From here the writer owns the temporary file: dropping it on an error removes it.
        append_all(file.as_mut(), &header).map_err(path_error("write", &writer.path))?;
        writer.file = Some(file);
        Ok(Box::new(writer))
    }

    fn open(&self, snapshot: &SnapshotId) -> Result<Arc<dyn SnapshotFile>, SnapshotError> {
        let (meta, path, source) = self.inner.open_complete(snapshot)?;
        Ok(Arc::new(OpenSnapshot {
            meta,
            path: path.display().to_string(),
            source,
        }))
    }

    fn read_payload(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Box<dyn io::Read + Send>, SnapshotError> {
        let (_, path, source) = self.inner.open_complete(snapshot)?;
        let parser = SnapshotParser::open(source, &path.display().to_string())?;
        Ok(Box::new(PayloadReader::new(parser)))
    }

    fn receive(
        &self,
        snapshot: &SnapshotMeta,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, SnapshotError> {
        let inner = &self.inner;
        let mut state = inner.state();
        if offset == 0 {
            // A transfer (of this snapshot or another) starts over. Only offset 0 drops a
            // partial file: a late chunk of an abandoned transfer, at another offset, is
            // refused below and must not destroy the transfer in progress.
            inner.discard_partial(&mut state, "a transfer starts at offset 0");
            let path = inner.directory.join(partial_name(&snapshot.id()));
            // A leftover of a discard that failed to remove it.
            remove_quietly(inner.file_system.as_ref(), &path);
            let file = inner
                .file_system
                .create_new_file(&path)
                .map_err(path_error("create", &path))?;
            state.partial = Some(PartialReceive {
                meta: snapshot.clone(),
                path,
                file,
                stored: 0,
            });
        }
        let stored = state
            .partial
            .as_ref()
            .filter(|partial| partial.meta == *snapshot)
            .map_or(0, |partial| partial.stored);
        if offset != stored || state.partial.is_none() {
            return Err(SnapshotError::OutOfOrder {
                snapshot: snapshot.id(),
                offset,
                stored,
            });
        }
        let end = offset + data.len() as u64;
        if end > snapshot.size_bytes {
            let path = partial_path_string(&state);
            inner.discard_partial(&mut state, "a chunk ran past the snapshot's size");
            return Err(corrupt(
                &path,
                offset,
                format!(
                    "a chunk of {} bytes at offset {offset} ends past the snapshot's size, {} \
                     bytes",
                    data.len(),
                    snapshot.size_bytes
                ),
            ));
        }
        let partial = state
            .partial
            .as_mut()
            .expect("a partial receive exists: created at offset 0, else offset == stored > 0");
        let written = append_all(partial.file.as_mut(), data)
            .map_err(path_error("write", &partial.path))
            .and_then(|()| {
                partial
                    .file
                    .sync_data()
                    .map_err(path_error("fdatasync", &partial.path))
            });
        if let Err(error) = written {
            // What the file holds is unknown now: start over rather than append to it.
            inner.discard_partial(&mut state, "a write failed");
            return Err(error);
        }
        partial.stored = end;
        Ok(end)
    }

    fn received_bytes(&self, snapshot: &SnapshotId) -> u64 {
        self.inner
            .state()
            .partial
            .as_ref()
            .filter(|partial| partial.meta.id() == *snapshot)
            .map_or(0, |partial| partial.stored)
    }

    fn finish_receive(&self, snapshot: &SnapshotMeta) -> Result<(), SnapshotError> {
        let inner = &self.inner;
        let mut state = inner.state();
        let partial = match state.partial.take() {
            Some(partial) if partial.meta == *snapshot => partial,
            other => {
                state.partial = other;
                // Finished already (a repeated last chunk): nothing left to do.
                if state.complete.contains_key(&snapshot.id()) {
                    return Ok(());
                }
                return Err(SnapshotError::NotFound(snapshot.id()));
            }
        };
        let PartialReceive {
            meta: _,
            path,
            file,
            stored,
        } = partial;
        let path_text = path.display().to_string();
        let verified = if stored != snapshot.size_bytes {
            Err(corrupt(
                &path_text,
                stored,
                format!(
                    "only {stored} of the snapshot's {} bytes were received",
                    snapshot.size_bytes
                ),
            ))
        } else {
            let source: Arc<dyn SnapshotSource> = Arc::new(HandleSource::new(file));
            verify(source, &path_text, Verification::Full)
                .and_then(|found| check_matches(&found, snapshot, &path_text))
        };
        if let Err(error) = verified {
            tracing::warn!(snapshot = %snapshot, %error,
                "snapshot store: a received snapshot fails verification; discarded");
            remove_quietly(inner.file_system.as_ref(), &path);
            return Err(error);
        }
        // Every chunk was synced as it arrived: only the rename is left to make durable.
        inner.install(&mut state, &path, snapshot.clone())
    }
}

fn partial_path_string(state: &StoreState) -> String {
    state
        .partial
        .as_ref()
        .map_or_else(String::new, |partial| partial.path.display().to_string())
}

/// A snapshot being written; see [`SnapshotStore::begin`].
struct FileSnapshotWriter {
    store: Arc<StoreInner>,
    path: PathBuf,
    /// `None` only while `begin` writes the header.
    file: Option<Box<dyn FileHandle>>,
    last_log_id: LogId,
    membership: Membership,
    /// Payload bytes not yet written as a chunk (fewer than `chunk_bytes`).
    chunk: Vec<u8>,
    /// Reused to frame a chunk, so a chunk is one write.
    frame: Vec<u8>,
    /// CRC32C of every byte written to the file so far.
    file_checksum: u32,
    payload_length: u64,
    /// A write failed: the file's contents are unknown, `finish` refuses.
    failed: bool,
    /// The file was renamed into place: there is nothing to remove on drop.
    installed: bool,
}

impl FileSnapshotWriter {
    fn write_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.frame.clear();
        encode_chunk(&self.chunk, &mut self.frame);
        let file = self
            .file
            .as_mut()
            .expect("begin hands out a writer only with its file");
        let written = append_all(file.as_mut(), &self.frame);
        if let Err(error) = written {
            self.failed = true;
            return Err(io::Error::new(
                error.kind(),
                format!("write {}: {error}", self.path.display()),
            ));
        }
        self.file_checksum = crc32c::crc32c_append(self.file_checksum, &self.frame);
        self.payload_length += self.chunk.len() as u64;
        self.chunk.clear();
        Ok(())
    }

    fn refuse_after_failure(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(format!(
                "{}: an earlier write failed",
                self.path.display()
            )));
        }
        Ok(())
    }
}

impl io::Write for FileSnapshotWriter {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        self.refuse_after_failure()?;
        let given = bytes.len();
        let chunk_bytes = self.store.chunk_bytes;
        while !bytes.is_empty() {
            let take = (chunk_bytes - self.chunk.len()).min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.chunk.len() == chunk_bytes {
                self.write_chunk()?;
            }
        }
        Ok(given)
    }

    /// Writes nothing: a partial chunk is written when it is full or at `finish`, so every
    /// chunk but the last has `chunk_bytes`. Nothing is durable before `finish` anyway.
    fn flush(&mut self) -> io::Result<()> {
        self.refuse_after_failure()
    }
}

impl SnapshotWriter for FileSnapshotWriter {
    fn finish(mut self: Box<Self>) -> Result<SnapshotMeta, SnapshotError> {
        let path_text = self.path.display().to_string();
        let failed_earlier = |error: io::Error| io_error("write", &path_text, error);
        self.refuse_after_failure().map_err(failed_earlier)?;
        self.write_chunk()
            .map_err(|error| io_error("write", &path_text, error))?;
        let trailer = encode_trailer(self.payload_length, self.file_checksum);
        let file = self
            .file
            .as_mut()
            .expect("begin hands out a writer only with its file");
        append_all(file.as_mut(), &trailer).map_err(path_error("write", &self.path))?;
        file.sync_data()
            .map_err(path_error("fdatasync", &self.path))?;
        let size_bytes = file
            .length()
            .map_err(path_error("read the length of", &self.path))?;
        let meta = SnapshotMeta {
            last_log_id: self.last_log_id,
            membership: std::mem::take(&mut self.membership),
            size_bytes,
            file_checksum: self.file_checksum,
        };
        let store = Arc::clone(&self.store);
        let mut state = store.state();
        store.install(&mut state, &self.path, meta.clone())?;
        self.installed = true;
        Ok(meta)
    }
}

impl Drop for FileSnapshotWriter {
    /// A writer dropped unfinished (or whose `finish` failed) leaves nothing behind.
    fn drop(&mut self) {
        if !self.installed {
            // Close it first: the file is gone for good once no handle holds it.
            self.file = None;
            remove_quietly(self.store.file_system.as_ref(), &self.path);
        }
    }
}

/// A complete snapshot opened for raw reads.
struct OpenSnapshot {
    meta: SnapshotMeta,
    path: String,
    source: Arc<HandleSource>,
}

impl SnapshotFile for OpenSnapshot {
    fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    fn read_at(&self, offset: u64, length: usize) -> Result<Bytes, SnapshotError> {
        let end = offset
            .saturating_add(length as u64)
            .min(self.meta.size_bytes);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut buffer = vec![0u8; (end - offset) as usize];
        self.source
            .read_exact_at(&mut buffer, offset)
            .map_err(|error| io_error("read", &self.path, error))?;
        Ok(Bytes::from(buffer))
    }
}

/// `<index>-<term>-<checksum>.snap`: 20 decimal digits each for index and term, so names sort
/// by `last_log_id`, and 8 hex digits of the file checksum.
pub fn complete_name(snapshot: &SnapshotId) -> String {
    format!(
        "{:020}-{:020}-{:08x}{SNAPSHOT_SUFFIX}",
        snapshot.last_log_id.index.0, snapshot.last_log_id.term.0, snapshot.file_checksum
    )
}

fn partial_name(snapshot: &SnapshotId) -> String {
    format!(
        "{:020}-{:020}-{:08x}{PARTIAL_SUFFIX}",
        snapshot.last_log_id.index.0, snapshot.last_log_id.term.0, snapshot.file_checksum
    )
}

/// The snapshot a [`complete_name`] names.
pub fn parse_complete_name(name: &str) -> Option<SnapshotId> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    let mut parts = stem.split('-');
    let (index, term, checksum) = (parts.next()?, parts.next()?, parts.next()?);
    let decimal = |text: &str| {
        (text.len() == 20 && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    let hex = (checksum.len() == 8 && checksum.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(checksum, 16).ok())
        .flatten()?;
    if parts.next().is_some() {
        return None;
    }
    Some(SnapshotId {
        last_log_id: LogId::new(Term(decimal(term)?), LogIndex(decimal(index)?)),
        file_checksum: hex,
    })
}

/// Recovery at open (see the module documentation): returns the complete snapshots.
fn recover(
    file_system: &dyn FileSystem,
    directory: &Path,
) -> Result<BTreeMap<SnapshotId, SnapshotMeta>, SnapshotError> {
    let names = file_system
        .list_directory(directory)
        .map_err(path_error("read directory", directory))?;
    let mut candidates = Vec::new();
    let mut directory_changed = false;
    for name in names {
        let path = directory.join(&name);
        if name.ends_with(TEMPORARY_SUFFIX) || name.ends_with(PARTIAL_SUFFIX) {
            tracing::warn!(path = %path.display(),
                "snapshot store: removing a snapshot left unfinished by a crash");
            file_system
                .remove_file(&path)
                .map_err(path_error("remove", &path))?;
            directory_changed = true;
        } else if let Some(snapshot) = parse_complete_name(&name) {
            candidates.push(snapshot);
        } else if name != LOCK_FILE_NAME && !name.ends_with(CORRUPT_SUFFIX) {
            tracing::warn!(path = %path.display(),
                "snapshot store: ignoring a file that is not a snapshot");
        }
    }
    // Newest first: the newest that verifies in full is the one `newest` reports.
    candidates.sort_unstable_by(|left, right| right.cmp(left));
    let mut complete = BTreeMap::new();
    for snapshot in candidates {
        let path = directory.join(complete_name(&snapshot));
        let path_text = path.display().to_string();
        let verification = if complete.is_empty() {
            Verification::Full
        } else {
            Verification::Structure
        };
        let checked = file_system
            .open_file(&path)
            .map_err(path_error("open", &path))
            .and_then(|handle| {
                let source: Arc<dyn SnapshotSource> = Arc::new(HandleSource::new(handle));
                verify(source, &path_text, verification)
            })
            .and_then(|meta| {
                // Even a structure check reads the trailer, so the checksum is the file's.
                if meta.id() == snapshot {
                    Ok(meta)
                } else {
                    Err(corrupt(
                        &path_text,
                        0,
                        format!(
                            "the file name says {snapshot}, the contents say {}",
                            meta.id()
                        ),
                    ))
                }
            });
        match checked {
            Ok(meta) => {
                complete.insert(meta.id(), meta);
            }
            Err(error @ SnapshotError::Corrupt { .. }) => {
                let aside = directory.join(format!("{}{CORRUPT_SUFFIX}", complete_name(&snapshot)));
                tracing::warn!(%error, renamed_to = %aside.display(),
                    "snapshot store: a corrupt snapshot is set aside; falling back to an older one");
                file_system
                    .rename(&path, &aside)
                    .map_err(path_error("rename", &path))?;
                directory_changed = true;
            }
            Err(other) => return Err(other),
        }
    }
    if complete.len() > SNAPSHOTS_KEPT {
        // Deletions of a retention that a crash undid.
        apply_retention(file_system, directory, &mut complete);
        directory_changed = true;
    }
    if directory_changed {
        sync_directory(file_system, directory)?;
    }
    Ok(complete)
}

/// Takes the directory's flock: a second store on the same directory would remove the first
/// one's files being written as leftovers of a crash.
fn lock_directory(
    file_system: &dyn FileSystem,
    directory: &Path,
) -> Result<Box<dyn FileLock>, SnapshotError> {
    let path = directory.join(LOCK_FILE_NAME);
    match file_system.try_lock_exclusive(&path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(io_error(
            "lock",
            &path.display().to_string(),
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "another snapshot store has this directory open",
            ),
        )),
        Err(error) => Err(io_error("lock", &path.display().to_string(), error)),
    }
}

fn sync_directory(file_system: &dyn FileSystem, directory: &Path) -> Result<(), SnapshotError> {
    file_system
        .sync_directory(directory)
        .map_err(path_error("fsync directory", directory))
}

/// Removes `path`, logging instead of failing: for files whose removal nothing depends on.
fn remove_quietly(file_system: &dyn FileSystem, path: &Path) {
    match file_system.remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(path = %path.display(), %error,
            "snapshot store: could not remove a file (the next open removes it)"),
    }
}

fn path_error<'path>(
    operation: &'static str,
    path: &'path Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'path {
    move |source| io_error(operation, &path.display().to_string(), source)
}
