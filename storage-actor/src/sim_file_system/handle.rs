//! The handles and locks a [`SimFileSystem`] hands out: reads and writes of one file's live
//! contents (with armed faults applied), `sync_data` making them durable sector by sector (or,
//! on an armed failure, dropping the dirty sectors as Linux does), and the bookkeeping that
//! frees an unlinked file with its last handle.

use super::{copy_zero_padded, sectors_of, SimFault, SimFileSystem, SimState, SECTOR_BYTES};
use crate::file_system::{FileHandle, FileLock};
use std::io;
use std::path::PathBuf;

/// An open file of a [`SimFileSystem`].
#[derive(Debug)]
pub(super) struct SimHandle {
    pub(super) file_system: SimFileSystem,
    pub(super) inode: u64,
    pub(super) generation: u64,
}

impl SimHandle {
    fn with_file<T>(
        &self,
        operation: impl FnOnce(&mut SimState, u64) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.file_system.state();
        state.begin_operation(self.generation)?;
        if !state.files.contains_key(&self.inode) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        operation(&mut state, self.inode)
    }

    /// Writes `bytes` at `offset`, or at the end of the file when `None`, with any armed write
    /// fault applied.
    fn write(&mut self, bytes: &[u8], offset: Option<usize>) -> io::Result<usize> {
        self.with_file(|state, inode| {
            let written = match state.take_fault(true) {
                Some(SimFault::WriteError) => return Err(rustix::io::Errno::IO.into()),
                Some(SimFault::NoSpace) => return Err(rustix::io::Errno::NOSPC.into()),
                Some(SimFault::ShortWrite) => bytes.len().div_ceil(2),
                Some(SimFault::SyncError) | None => bytes.len(),
            };
            let file = state.files.get_mut(&inode).expect("checked by with_file");
            let start = offset.unwrap_or(file.live.len());
            let end = start + written;
            if file.live.len() < end {
                // Past the end: the gap reads as zeros, as a sparse file's hole does.
                file.live.resize(end, 0);
            }
            file.live[start..end].copy_from_slice(&bytes[..written]);
            // Writing a page dirties it again: the whole sector will be written back.
            for sector in sectors_of(start, end) {
                file.dropped_sectors.remove(&sector);
            }
            Ok(written)
        })
    }
}

impl FileHandle for SimHandle {
    fn append(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write(bytes, None)
    }

    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<usize> {
        let offset = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.write(bytes, Some(offset))
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with_file(|state, inode| {
            let failed = state.take_fault(false).is_some();
            let file = state.files.get_mut(&inode).expect("checked by with_file");
            let longer = file.live.len().max(file.durable.len());
            let dirty: Vec<usize> = sectors_of(0, longer)
                .filter(|&sector| {
                    let start = sector * SECTOR_BYTES;
                    let mut new = [0u8; SECTOR_BYTES];
                    let mut old = [0u8; SECTOR_BYTES];
                    copy_zero_padded(&file.live, start, &mut new);
                    copy_zero_padded(&file.durable, start, &mut old);
                    new != old
                })
                .collect();
            if failed {
                // Linux marks the pages clean after a failed write-back: they stay readable
                // but will never be written.
                file.dropped_sectors.extend(dirty);
                return Err(rustix::io::Errno::IO.into());
            }
            let mut durable = file.live.clone();
            for &sector in &file.dropped_sectors {
                let start = sector * SECTOR_BYTES;
                if start >= durable.len() {
                    continue;
                }
                let end = (start + SECTOR_BYTES).min(durable.len());
                copy_zero_padded(&file.durable, start, &mut durable[start..end]);
            }
            file.durable = durable;
            state.statistics.file_syncs += 1;
            Ok(())
        })
    }

    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.file_system.state();
        if self.generation != state.generation || state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        let file = state
            .files
            .get(&self.inode)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let bytes = file
            .live
            .get(start..start + buffer.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }

    fn length(&self) -> io::Result<u64> {
        let state = self.file_system.state();
        if self.generation != state.generation || state.powered_off {
            return Err(rustix::io::Errno::IO.into());
        }
        let file = state
            .files
            .get(&self.inode)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(file.live.len() as u64)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        self.with_file(|state, inode| {
            let length = usize::try_from(length).map_err(|_| io::ErrorKind::InvalidInput)?;
            let file = state.files.get_mut(&inode).expect("checked by with_file");
            file.live.resize(length, 0);
            // Truncated pages leave the cache, dropped ones with them.
            file.dropped_sectors
                .retain(|&sector| sector * SECTOR_BYTES < length);
            Ok(())
        })
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let mut state = self.file_system.state();
        if state.generation != self.generation {
            return;
        }
        if let Some(count) = state.open_handles.get_mut(&self.inode) {
            *count -= 1;
            if *count == 0 {
                state.open_handles.remove(&self.inode);
                state.collect_garbage();
            }
        }
    }
}

#[derive(Debug)]
pub(super) struct SimLock {
    pub(super) file_system: SimFileSystem,
    pub(super) path: PathBuf,
    pub(super) generation: u64,
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.file_system.state();
        if state.generation == self.generation {
            state.locks.remove(&self.path);
        }
    }
}
