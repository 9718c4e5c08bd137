//! `SimFileSystem`: an in-memory [`FileSystem`] that models the page cache, so tests can cut
//! the power under the real write-ahead log and see what a disk would have kept.
//!
//! # The model
//!
//! Every file has its *live* contents (what reads see: the page cache) and its *durable*
//! contents (what the disk holds: as of the last successful `sync_data`). Every directory has
//! live entries and durable ones (as of its last `sync_directory`): a file created, removed or
//! renamed since is, after a power loss, as it was before (a rename across two directories
//! needs both synced). A directory's own entry lives in its
//! parent, so a directory created and never synced into its parent vanishes with its files.
//!
//! [`SimFileSystem::power_loss`] keeps what was synced and, of what was not, one of (seeded):
//!
//! - nothing;
//! - a prefix of the unsynced bytes, when they were appended after the durable ones;
//! - any subset of the [`SECTOR_BYTES`]-sized sectors where live and durable differ, each the
//!   new or the old version (pages written back in any order), with a file length anywhere
//!   between the durable and the live one. A sector past the durable end reads as zeros in its
//!   old version.
//!
//! Faults ([`SimFault`]) are armed on a later operation: EIO on a write or a sync, ENOSPC, a
//! short write. A failed sync does what Linux does (the "fsyncgate" behaviour PostgreSQL met):
//! the dirty pages are marked clean without reaching the disk, so reads still see them, a later
//! successful sync does not write them, and a power loss loses them.
//!
//! [`SimFileSystem::power_off_after`] turns the power off after a number of operations: from then
//! on every call fails with EIO and changes nothing, as a machine that lost power does nothing
//! more; [`SimFileSystem::power_loss`] then computes what the disk holds and turns it back on.
//! Handles and locks taken before a crash are dead afterwards.
//!
//! As on Linux, removing or renaming a file changes only its directory entry: a handle opened
//! before keeps reading (and writing) the same file until the next crash. A file that no
//! directory names any more, live or durable, is freed once its last handle is dropped, so a
//! long run (an in-process cluster's `MemSnapshotStore`) does not keep every deleted file.

use crate::file_system::{FileHandle, FileLock, FileSystem};
use handle::{SimHandle, SimLock};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The sector size of the simulated disk: the unit written back atomically.
pub const SECTOR_BYTES: usize = 512;

/// A fault to inject into a later operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimFault {
    /// A write fails with EIO and writes nothing.
    WriteError,
    /// A write fails with ENOSPC and writes nothing.
    NoSpace,
    /// A write writes only the first half of its bytes (at least one) and reports that.
    ShortWrite,
    /// A `sync_data` or `sync_directory` fails with EIO; the file's dirty pages are dropped
    /// (marked clean without reaching the disk).
    SyncError,
}

impl SimFault {
    fn applies_to_writes(self) -> bool {
        !matches!(self, SimFault::SyncError)
    }
}

/// Counters of what the simulated disk was asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStatistics {
    /// Operations that change something (writes, syncs, creations, removals, truncations).
    pub operations: u64,
    pub file_syncs: u64,
    pub directory_syncs: u64,
    pub power_losses: u64,
    /// Power losses that found written but unsynced data in the page cache (the ones that can
    /// lose something).
    pub power_losses_with_unsynced_data: u64,
    pub faults_fired: u64,
}

/// The simulated file system; clones share one disk. See the module documentation.
#[derive(Clone, Debug)]
pub struct SimFileSystem {
    state: Arc<Mutex<SimState>>,
    /// The life of the disk this clone belongs to, when it is one process's view
    /// ([`SimFileSystem::for_this_process`]); `None`: it follows the disk across restarts.
    process: Option<u64>,
}

#[derive(Debug)]
struct SimState {
    directories: BTreeMap<PathBuf, SimDirectory>,
    files: BTreeMap<u64, SimFile>,
    next_inode: u64,
    locks: BTreeSet<PathBuf>,
    /// How many live handles each file has: a file no directory names (live or durable) is
    /// freed once its last handle is dropped, as the kernel frees an unlinked inode.
    open_handles: BTreeMap<u64, usize>,
    /// Bumped by every crash: handles and locks of an older generation are dead.
    generation: u64,
    powered_off: bool,
    /// The power goes off when `statistics.operations` reaches this.
    power_off_at: Option<u64>,
    /// Armed faults: each fires on the operation after `skip` more matching ones.
    faults: Vec<ArmedFault>,
    random: SplitMix64,
    statistics: SimStatistics,
}

#[derive(Debug)]
struct ArmedFault {
    fault: SimFault,
    skip: u64,
}

#[derive(Clone, Debug, Default)]
struct SimDirectory {
    live: BTreeMap<String, SimEntry>,
    durable: BTreeMap<String, SimEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SimEntry {
    File(u64),
    Directory,
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Sectors whose write-back failed: clean in the cache, old on the disk.
    dropped_sectors: BTreeSet<usize>,
}

impl SimFileSystem {
    /// An empty disk with only the root directory `/`, its randomness seeded with `seed`.
    pub fn new(seed: u64) -> SimFileSystem {
        let mut directories = BTreeMap::new();
        directories.insert(PathBuf::from("/"), SimDirectory::default());
        SimFileSystem {
            state: Arc::new(Mutex::new(SimState {
                directories,
                files: BTreeMap::new(),
                next_inode: 1,
                locks: BTreeSet::new(),
                open_handles: BTreeMap::new(),
                generation: 0,
                powered_off: false,
                power_off_at: None,
                faults: Vec::new(),
                random: SplitMix64(seed),
                statistics: SimStatistics::default(),
            })),
            process: None,
        }
    }

    /// A clone for the process running on the disk now: once the disk restarts (the process
    /// crashes or the power is lost), every call through it, and through the handles and
    /// locks it opened, fails and changes nothing, as nothing of a killed process runs on. A
    /// test gives each life of a node such a view, so a thread that outlives the node's
    /// actors (a snapshot being written when it was aborted) cannot touch what its next life
    /// finds on the disk.
    pub fn for_this_process(&self) -> SimFileSystem {
        let generation = self.state().generation;
        SimFileSystem {
            state: Arc::clone(&self.state),
            process: Some(generation),
        }
    }

    /// The life of the disk calls through this clone belong to: its process's, or the
    /// current one.
    fn generation_of(&self, state: &SimState) -> u64 {
        self.process.unwrap_or(state.generation)
    }

    /// Fails when this clone's process died in a restart of the disk.
    fn check_process(&self, state: &SimState) -> io::Result<()> {
        if self.generation_of(state) != state.generation {
            return Err(io::Error::other(
                "simulated disk: the process died in a crash",
            ));
        }
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panic while the lock is held is a failed assertion in a test; the state is still
        // whole (every change is made under one lock), so go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms `fault` for the first matching operation after `skip` others of its kind.
    pub fn arm_fault(&self, fault: SimFault, skip: u64) {
        self.state().faults.push(ArmedFault { fault, skip });
    }

    /// Turns the power off once `operations` more operations have run.
    pub fn power_off_after(&self, operations: u64) {
        let mut state = self.state();
        state.power_off_at = Some(state.statistics.operations + operations);
    }

    /// Turns the power off now: every later call fails and changes nothing.
    pub fn power_off(&self) {
        self.state().powered_off = true;
    }

    pub fn is_powered_off(&self) -> bool {
        self.state().powered_off
    }

    /// What the disk has done so far.
    pub fn statistics(&self) -> SimStatistics {
        self.state().statistics
    }

    /// A power loss: the disk keeps what was synced and a seeded part of the rest (see the
    /// module documentation); then the power comes back, with no process running.
    pub fn power_loss(&self) {
        let mut state = self.state();
        state.statistics.power_losses += 1;
        let unsynced = state
            .files
            .values()
            .any(|file| file.live != file.durable || !file.dropped_sectors.is_empty())
            || state
                .directories
                .values()
                .any(|directory| directory.live != directory.durable);
        if unsynced {
            state.statistics.power_losses_with_unsynced_data += 1;
        }
        let SimState {
            directories,
            files,
            random,
            ..
        } = &mut *state;
        for directory in directories.values_mut() {
            directory.live = directory.durable.clone();
        }
        let reachable = reachable_directories(directories);
        directories.retain(|path, _| reachable.contains(path));
        let referenced: BTreeSet<u64> = directories
            .values()
            .flat_map(|directory| directory.live.values())
            .filter_map(|entry| match entry {
                SimEntry::File(inode) => Some(*inode),
                SimEntry::Directory => None,
            })
            .collect();
        files.retain(|inode, _| referenced.contains(inode));
        for file in files.values_mut() {
            let kept = contents_after_power_loss(file, random);
            file.live = kept.clone();
            file.durable = kept;
            file.dropped_sectors.clear();
        }
        state.restart();
    }

    /// A crash of the process only (`kill -9`): the page cache survives, locks and handles die.
    pub fn process_crash(&self) {
        self.state().restart();
    }

    /// Flips one bit of file `path` at `offset` on disk and in the cache, as damage would.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) {
        let mut state = self.state();
        let inode = state.resolve_file(path).expect("flip_bit: the file exists");
        let file = state.files.get_mut(&inode).expect("resolved inode exists");
        file.live[offset] ^= 1 << bit;
        file.durable = file.live.clone();
    }

    /// The files under `directory`, live, with their lengths (for diagnostics).
    pub fn list_files(&self, directory: &Path) -> Vec<(String, usize)> {
        let state = self.state();
        let Some(listing) = state.directories.get(directory) else {
            return Vec::new();
        };
        listing
            .live
            .iter()
            .filter_map(|(name, entry)| match entry {
                SimEntry::File(inode) => Some((name.clone(), state.files[inode].live.len())),
                SimEntry::Directory => None,
            })
            .collect()
    }
}

impl SimState {
    fn restart(&mut self) {
        self.locks.clear();
        self.open_handles.clear();
        self.collect_garbage();
        self.generation += 1;
        self.powered_off = false;
        self.power_off_at = None;
        self.faults.clear();
    }

    /// A handle on `inode` was handed out.
    fn handle_opened(&mut self, inode: u64) {
        *self.open_handles.entry(inode).or_default() += 1;
    }

    /// Frees every file that no directory names, live or durable, and no handle holds: an
    /// unlinked file lives on only while it is open (or a power loss could bring it back).
    fn collect_garbage(&mut self) {
        let mut referenced: BTreeSet<u64> = self.open_handles.keys().copied().collect();
        for directory in self.directories.values() {
            for entry in directory.live.values().chain(directory.durable.values()) {
                if let SimEntry::File(inode) = entry {
                    referenced.insert(*inode);
                }
            }
        }
        self.files.retain(|inode, _| referenced.contains(inode));
    }

    /// Counts an operation that changes something, or fails it when the power is (or goes) off.
    fn begin_operation(&mut self, generation: u64) -> io::Result<()> {
        if generation != self.generation {
            return Err(io::Error::other(
                "simulated disk: the handle died in a crash",
            ));
        }
        if self.power_off_at == Some(self.statistics.operations) {
            self.powered_off = true;
        }
        if self.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        self.statistics.operations += 1;
        Ok(())
    }

    /// The armed fault that fires on this operation, if any.
    fn take_fault(&mut self, is_write: bool) -> Option<SimFault> {
        let mut fired = None;
        self.faults.retain_mut(|armed| {
            if fired.is_some() || armed.fault.applies_to_writes() != is_write {
                return true;
            }
            if armed.skip == 0 {
                fired = Some(armed.fault);
                false
            } else {
                armed.skip -= 1;
                true
            }
        });
        if fired.is_some() {
            self.statistics.faults_fired += 1;
        }
        fired
    }

    fn directory(&self, path: &Path) -> io::Result<&SimDirectory> {
        self.directories
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn parent_and_name(path: &Path) -> io::Result<(PathBuf, String)> {
        let parent = path
            .parent()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok((parent.to_path_buf(), name.to_string_lossy().into_owned()))
    }

    fn resolve_file(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = SimState::parent_and_name(path)?;
        match self.directory(&parent)?.live.get(&name) {
            Some(SimEntry::File(inode)) => Ok(*inode),
            Some(SimEntry::Directory) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// The directories still reachable from `/` through durable entries.
fn reachable_directories(directories: &BTreeMap<PathBuf, SimDirectory>) -> BTreeSet<PathBuf> {
    let mut reachable = BTreeSet::new();
    let mut pending = vec![PathBuf::from("/")];
    while let Some(path) = pending.pop() {
        let Some(directory) = directories.get(&path) else {
            continue;
        };
        for (name, entry) in &directory.durable {
            if *entry == SimEntry::Directory {
                pending.push(path.join(name));
            }
        }
        reachable.insert(path);
    }
    reachable
}

/// What a file holds after a power loss; see the module documentation.
fn contents_after_power_loss(file: &SimFile, random: &mut SplitMix64) -> Vec<u8> {
    let durable = &file.durable;
    let live = &file.live;
    if durable == live && file.dropped_sectors.is_empty() {
        return durable.clone();
    }
    let appended_only = live.len() >= durable.len()
        && live[..durable.len()] == durable[..]
        && file.dropped_sectors.is_empty();
    match random.below(3) {
        0 => durable.clone(),
        1 if appended_only => {
            let cut = durable.len() + random.below(live.len() - durable.len() + 1);
            live[..cut].to_vec()
        }
        _ => {
            let shorter = durable.len().min(live.len());
            let longer = durable.len().max(live.len());
            let length = match random.below(3) {
                0 => live.len(),
                1 => durable.len(),
                _ => shorter + random.below(longer - shorter + 1),
            };
            let mut kept = vec![0u8; length];
            for (sector, chunk) in kept.chunks_mut(SECTOR_BYTES).enumerate() {
                let start = sector * SECTOR_BYTES;
                let take_new = !file.dropped_sectors.contains(&sector) && random.below(2) == 0;
                let source = if take_new { live } else { durable };
                copy_zero_padded(source, start, chunk);
            }
            kept
        }
    }
}

/// Fills `chunk` from `source[start..]`, zeros past the end of `source`.
fn copy_zero_padded(source: &[u8], start: usize, chunk: &mut [u8]) {
    for (position, byte) in chunk.iter_mut().enumerate() {
        *byte = source.get(start + position).copied().unwrap_or(0);
    }
}

/// The sectors that `start..end` touches.
fn sectors_of(start: usize, end: usize) -> std::ops::Range<usize> {
    if start >= end {
        return 0..0;
    }
    start / SECTOR_BYTES..end.div_ceil(SECTOR_BYTES)
}

impl FileSystem for SimFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        let generation = self.generation_of(&state);
        let mut missing: Vec<PathBuf> = path
            .ancestors()
            .take_while(|ancestor| !state.directories.contains_key(*ancestor))
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for directory in missing {
            let directory = directory.as_path();
            state.begin_operation(generation)?;
            let (parent, name) = SimState::parent_and_name(directory)?;
            let parent_listing = state
                .directories
                .get_mut(&parent)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            if parent_listing.live.contains_key(&name) {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            parent_listing.live.insert(name, SimEntry::Directory);
            state
                .directories
                .insert(directory.to_path_buf(), SimDirectory::default());
        }
        if state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        Ok(())
    }

    fn list_directory(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.state();
        self.check_process(&state)?;
        if state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        Ok(state.directory(path)?.live.keys().cloned().collect())
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        self.check_process(&state)?;
        if state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        let inode = state.resolve_file(path)?;
        Ok(state.files[&inode].live.clone())
    }

    fn create_new_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.state();
        let generation = self.generation_of(&state);
        state.begin_operation(generation)?;
        let (parent, name) = SimState::parent_and_name(path)?;
        let inode = state.next_inode;
        let listing = state
            .directories
            .get_mut(&parent)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        if listing.live.contains_key(&name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        listing.live.insert(name, SimEntry::File(inode));
        state.next_inode += 1;
        state.files.insert(inode, SimFile::default());
        state.handle_opened(inode);
        Ok(Box::new(SimHandle {
            file_system: self.clone(),
            inode,
            generation,
        }))
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.state();
        self.check_process(&state)?;
        if state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        let inode = state.resolve_file(path)?;
        state.handle_opened(inode);
        Ok(Box::new(SimHandle {
            file_system: self.clone(),
            inode,
            generation: self.generation_of(&state),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        let generation = self.generation_of(&state);
        state.resolve_file(path)?;
        state.begin_operation(generation)?;
        let (parent, name) = SimState::parent_and_name(path)?;
        if let Some(listing) = state.directories.get_mut(&parent) {
            listing.live.remove(&name);
        }
        state.collect_garbage();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        let generation = self.generation_of(&state);
        let inode = state.resolve_file(from)?;
        let (to_parent, to_name) = SimState::parent_and_name(to)?;
        state.directory(&to_parent)?;
        state.begin_operation(generation)?;
        let (from_parent, from_name) = SimState::parent_and_name(from)?;
        if let Some(listing) = state.directories.get_mut(&from_parent) {
            listing.live.remove(&from_name);
        }
        state
            .directories
            .get_mut(&to_parent)
            .expect("checked to exist above")
            .live
            .insert(to_name, SimEntry::File(inode));
        // The file `to` named before, if any, is unlinked.
        state.collect_garbage();
        Ok(())
    }

    fn sync_directory(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        let generation = self.generation_of(&state);
        state.directory(path)?;
        state.begin_operation(generation)?;
        if state.take_fault(false).is_some() {
            return Err(rustix::io::Errno::IO.into());
        }
        state.statistics.directory_syncs += 1;
        let listing = state
            .directories
            .get_mut(path)
            .expect("checked to exist above");
        listing.durable = listing.live.clone();
        // A removal is durable now: the file cannot come back.
        state.collect_garbage();
        Ok(())
    }

    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let mut state = self.state();
        self.check_process(&state)?;
        if state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            file_system: self.clone(),
            path: path.to_path_buf(),
            generation: self.generation_of(&state),
        })))
    }
}

/// SplitMix64: a tiny seeded generator, so the model needs no dependency.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

mod handle;
#[cfg(test)]
mod tests;
