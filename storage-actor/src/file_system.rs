//! The file-system calls the write-ahead log makes, behind a trait, so the same WAL code runs on
//! the real disk ([`RealFileSystem`]: `std::fs`, fdatasync, flock) and, in tests, on a simulated
//! one that can lose power ([`crate::sim_file_system::SimFileSystem`]).
//!
//! # Correctness
//!
//! What the WAL relies on, and what every implementation must provide:
//!
//! - [`FileHandle::append`] writes at the end of the file and [`FileHandle::write_at`] at an
//!   offset (over what is there, or past the end, the gap reading as zeros); both may write
//!   fewer bytes than given, and [`append_all`] and [`write_all_at`] loop until everything is
//!   written or an error comes.
//! - After [`FileHandle::sync_data`] returns `Ok`, the file's contents and length survive a power
//!   loss. Before it, any part of what was written may be lost.
//! - A file's name (its creation, removal or rename) survives a power loss only once
//!   [`FileSystem::sync_directory`] of its directory returned `Ok`.
//! - Reads see every write at once, synced or not (the page cache).
//! - An open handle keeps reading its file after the file is removed or renamed (Linux
//!   semantics): the snapshot store hands out open snapshots that retention may delete.
//! - [`FileSystem::try_lock_exclusive`] gives at most one lock per path at a time; the lock is
//!   released when the returned guard is dropped or the process dies.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The directory and file operations of the WAL.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `path` and every missing parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of directory `path`, in no particular order.
    fn list_directory(&self, path: &Path) -> io::Result<Vec<String>>;
    /// The whole contents of file `path`.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates file `path`, which must not exist, for reading and writing.
    fn create_new_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Opens the existing file `path` for reading and writing.
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Removes file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames file `from` to `to`, replacing `to` if it exists (atomically, as rename(2)).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of directory `path` (created, removed, renamed) durable.
    fn sync_directory(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by `path` without waiting: `None` when someone else holds it.
    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>>;
}

/// An open file.
pub trait FileHandle: Send + fmt::Debug {
    /// Writes a prefix of `bytes` (at least one byte unless `bytes` is empty) at the end of the
    /// file; returns how many bytes were written.
    fn append(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// Writes a prefix of `bytes` (at least one byte unless `bytes` is empty) at `offset`, over
    /// what the file holds there or past its end; returns how many bytes were written.
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<usize>;
    /// Makes the contents and length durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Fills `buffer` from `offset`; an error if the file ends before.
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()>;
    /// Cuts the file to `length` bytes (or extends it with zeros).
    fn set_len(&mut self, length: u64) -> io::Result<()>;
    /// The file's current length in bytes (what reads see, synced or not). Readable through a
    /// handle whose file was removed since it was opened, as on Linux.
    fn length(&self) -> io::Result<u64>;
}

/// A held lock; dropping it releases the lock.
pub trait FileLock: Send + fmt::Debug {}

/// Writes all of `bytes` at the end of `file`, looping over short writes.
pub fn append_all(file: &mut dyn FileHandle, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.append(bytes) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Writes all of `bytes` at `offset` of `file`, looping over short writes.
pub fn write_all_at(
    file: &mut dyn FileHandle,
    mut bytes: &[u8],
    mut offset: u64,
) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write_at(bytes, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(written) => {
                bytes = &bytes[written..];
                offset += written as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The real disk: `std::fs`, `fdatasync(2)`, `fsync(2)` of directories and `flock(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFileSystem;

#[derive(Debug)]
struct RealFile(File);

#[derive(Debug)]
struct RealLock {
    /// The locked file: the kernel releases the flock when it is closed.
    _file: File,
}

impl FileLock for RealLock {}

impl FileSystem for RealFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_directory(&self, path: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(path)?
            .map(|item| item.map(|item| item.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn create_new_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        // Not O_APPEND: on Linux `pwrite` to an O_APPEND file ignores its offset and appends.
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_directory(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<Box<dyn FileLock>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Box::new(RealLock { _file: file }))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }
}

impl FileHandle for RealFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let end = io::Seek::seek(&mut self.0, io::SeekFrom::End(0))?;
        self.0.write_at(bytes, end)
    }

    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(bytes, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buffer, offset)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        self.0.set_len(length)
    }

    fn length(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}
