//! Recovery at open: replays every segment in order to rebuild the hard state and the log,
//! telling a torn tail (normal after a crash: truncated with a warning) from corruption (the
//! node refuses to start, naming the file and the byte offset).
//!
//! # What counts as a torn tail
//!
//! Only the last segment can have one: the store syncs a segment before it creates the next.
//! A power loss leaves the synced prefix intact; of what was written after the last sync, the
//! disk holds any subset of the sectors (pages are written back in any order), and the file
//! length may or may not include them. Sectors that never reached the disk read as zeros. So
//! the first invalid record of the last segment is torn when
//!
//! - it runs past the end of the file (its length passes its checksum and is within
//!   `max_record_bytes`, or fewer than 8 bytes of header remain), or
//! - some [`SECTOR_BYTES`]-aligned sector it touches reads as zeros from where the record
//!   enters the sector to the end of the sector (or file): a sector that was never written
//!   back. What follows the record does not matter: later sectors may have reached the disk.
//!
//! Zeros from the end of the last record to the end of the last segment are neither: the
//! store extends the active segment with zeros ahead of its writes (preallocation), so that is
//! space not yet used, and it is kept for the next writes. (It also covers a write none of whose
//! sectors reached the disk: nothing of it is left to truncate.)
//!
//! Any other invalid record, a complete and non-zero one, is damage, not a crash: corruption.
//! So is anything invalid before the last segment's first invalid record, or in an older
//! segment. A last segment shorter than its header, or all zeros, was being created when the
//! crash hit (the store syncs a new segment's header before writing anything after it); it holds
//! nothing and is removed. A bad header with data after it is corruption.
//!
//! Replay also refuses a HardState record whose term is lower than the one before it: terms
//! never decrease (Figure 2), so a lower one means records were lost or reordered.

use crate::storage_error::StorageError;
use crate::wal_record::{read_record, RecordRead, WalRecord, RECORD_HEADER_BYTES};
use crate::wal_segment::{SegmentHeader, SegmentHeaderError, SEGMENT_HEADER_BYTES};
use raft_types::{Entry, HardState, LogId, LogIndex, Term};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// The unit a disk writes atomically, and the alignment of what a power loss leaves unwritten.
/// 512 bytes is the smallest sector size in use; a 4 KiB page that was not written back is
/// eight such sectors of zeros, so the rule holds for larger sectors and pages too.
pub const SECTOR_BYTES: usize = 512;

/// Where an entry's record lies on disk, so reads need no scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLocation {
    pub term: Term,
    pub segment_sequence: u64,
    pub offset: u64,
    pub framed_length: u32,
}

/// What replay learned about one segment.
#[derive(Clone, Debug)]
pub struct SegmentSummary {
    pub sequence: u64,
    pub path: PathBuf,
    /// The highest index of any entry written into the segment (even if truncated later):
    /// the segment may be deleted once everything up to it is purged.
    pub highest_index_written: Option<LogIndex>,
    /// Where the segment's records end after recovery (torn tail removed); preallocated zeros
    /// may follow in the file.
    pub length_bytes: u64,
}

/// The log being rebuilt, record by record.
#[derive(Debug, Default)]
pub struct ReplayState {
    pub hard_state: HardState,
    pub first_index: LogIndex,
    /// The id of the entry before `first_index`, when known (see `StoredLog`).
    pub prev_log_id: Option<LogId>,
    pub entries: VecDeque<Entry>,
    pub locations: VecDeque<EntryLocation>,
    pub segments: Vec<SegmentSummary>,
}

/// How a segment's replay ended.
pub enum SegmentEnd {
    /// Every byte was a valid record.
    Clean,
    /// The records end at this offset and only zeros follow to the end of the file: space
    /// preallocated for writes that had not come (or whose sectors never reached the disk).
    /// Nothing to do: later writes go there.
    Preallocated { offset: u64 },
    /// A torn tail starts at this offset; the caller truncates the file there.
    TornAt { offset: u64, reason: String },
    /// The header is missing or zero: the caller removes the file.
    HeaderIncomplete,
}

impl ReplayState {
    pub fn new() -> ReplayState {
        ReplayState {
            first_index: LogIndex(1),
            prev_log_id: Some(LogId::ZERO),
            ..ReplayState::default()
        }
    }

    pub fn next_index(&self) -> LogIndex {
        self.first_index.plus(self.entries.len() as u64)
    }

    /// Replays one segment's bytes. `is_last` allows a torn tail; `is_first` lets the header
    /// set where the log starts (older segments were purged).
    pub fn replay_segment(
        &mut self,
        path: &Path,
        expected_sequence: u64,
        bytes: &[u8],
        position: SegmentPosition,
        max_record_bytes: u32,
    ) -> Result<SegmentEnd, StorageError> {
        let header = match SegmentHeader::decode(bytes) {
            Ok(header) => header,
            Err(SegmentHeaderError::Incomplete) if position.is_last && never_written(bytes) => {
                return Ok(SegmentEnd::HeaderIncomplete)
            }
            Err(SegmentHeaderError::Incomplete) if bytes.len() >= SEGMENT_HEADER_BYTES => {
                // The header is synced before anything is written after it, so zeros there
                // with data behind them are damage, not an interrupted creation.
                return Err(corruption(
                    path,
                    0,
                    format!(
                        "segment header is all zeros but {} bytes follow it",
                        bytes.len() - SEGMENT_HEADER_BYTES
                    ),
                ));
            }
            Err(error) => return Err(header_error(path, error)),
        };
        if header.sequence != expected_sequence {
            return Err(corruption(
                path,
                0,
                format!(
                    "header names segment {} but the file name says {expected_sequence}",
                    header.sequence
                ),
            ));
        }
        if position.is_first {
            self.first_index = LogIndex(header.next_index);
            // Older segments were purged unless the log starts at 1: the entry before is gone
            // (a Reset record in this segment may tell it again).
            self.prev_log_id = (header.next_index <= 1).then_some(LogId::ZERO);
        } else if LogIndex(header.next_index) != self.next_index() {
            return Err(corruption(
                path,
                0,
                format!(
                    "segment starts at index {} but the segments before it end before index {}",
                    header.next_index,
                    self.next_index()
                ),
            ));
        }
        let mut summary = SegmentSummary {
            sequence: expected_sequence,
            path: path.to_path_buf(),
            highest_index_written: None,
            length_bytes: bytes.len() as u64,
        };
        let mut offset = SEGMENT_HEADER_BYTES;
        let end = loop {
            match read_record(bytes, offset, max_record_bytes) {
                RecordRead::Record {
                    record,
                    framed_length,
                } => {
                    self.apply(record, path, offset, framed_length, &mut summary)?;
                    offset += framed_length;
                }
                RecordRead::EndOfSegment => break SegmentEnd::Clean,
                RecordRead::Incomplete { .. } | RecordRead::Invalid { .. }
                    if position.is_last && bytes[offset..].iter().all(|&byte| byte == 0) =>
                {
                    break SegmentEnd::Preallocated {
                        offset: offset as u64,
                    }
                }
                RecordRead::Incomplete { reason } if position.is_last => {
                    break SegmentEnd::TornAt {
                        offset: offset as u64,
                        reason,
                    }
                }
                RecordRead::Invalid { reason }
                    if position.is_last && is_torn(bytes, offset, max_record_bytes) =>
                {
                    break SegmentEnd::TornAt {
                        offset: offset as u64,
                        reason,
                    }
                }
                RecordRead::Incomplete { reason } | RecordRead::Invalid { reason } => {
                    return Err(corruption(path, offset as u64, reason))
                }
            }
        };
        if let SegmentEnd::TornAt { offset, .. } | SegmentEnd::Preallocated { offset } = end {
            summary.length_bytes = offset;
        }
        self.segments.push(summary);
        Ok(end)
    }

    fn apply(
        &mut self,
        record: WalRecord,
        path: &Path,
        offset: usize,
        framed_length: usize,
        summary: &mut SegmentSummary,
    ) -> Result<(), StorageError> {
        match record {
            WalRecord::Entry(entry) => {
                if entry.index() != self.next_index() {
                    return Err(corruption(
                        path,
                        offset as u64,
                        format!(
                            "entry {} does not continue the log, which expects index {}",
                            entry.log_id,
                            self.next_index()
                        ),
                    ));
                }
                summary.highest_index_written = Some(entry.index());
                self.locations.push_back(EntryLocation {
                    term: entry.term(),
                    segment_sequence: summary.sequence,
                    offset: offset as u64,
                    framed_length: u32::try_from(framed_length)
                        .expect("framed length is bounded by max_record_bytes, a u32"),
                });
                self.entries.push_back(entry);
            }
            WalRecord::HardState(hard_state) => {
                if hard_state.current_term < self.hard_state.current_term {
                    return Err(corruption(
                        path,
                        offset as u64,
                        format!(
                            "hard state goes back from term {} to term {}: terms never decrease",
                            self.hard_state.current_term, hard_state.current_term
                        ),
                    ));
                }
                self.hard_state = hard_state;
            }
            WalRecord::Truncate { since } => self.truncate(since),
            WalRecord::Reset { last_log_id } => {
                self.entries.clear();
                self.locations.clear();
                self.first_index = last_log_id.index.next();
                self.prev_log_id = Some(last_log_id);
            }
        }
        Ok(())
    }

    fn truncate(&mut self, since: LogIndex) {
        if since < self.first_index {
            self.entries.clear();
            self.locations.clear();
            self.first_index = since;
            self.prev_log_id = (since.0 <= 1).then_some(LogId::ZERO);
        } else if since < self.next_index() {
            let keep = usize::try_from(since.0 - self.first_index.0)
                .expect("fewer entries than usize::MAX are held in memory");
            self.entries.truncate(keep);
            self.locations.truncate(keep);
        }
    }
}

/// Where a segment lies among those being replayed.
#[derive(Clone, Copy, Debug)]
pub struct SegmentPosition {
    pub is_first: bool,
    pub is_last: bool,
}

/// True when the segment holds nothing a store could have written after syncing its header:
/// fewer bytes than a header, or only zeros.
fn never_written(bytes: &[u8]) -> bool {
    bytes.len() < SEGMENT_HEADER_BYTES || bytes.iter().all(|&byte| byte == 0)
}

/// Whether the invalid record at `offset` of the last segment is a torn write (see the module
/// documentation): it runs past the end of the file, or a sector it touches was never written.
///
/// The record's extent is known only when its length passes its checksum and could have been
/// written (within `max_record_bytes`); otherwise only its 8-byte header is taken as the record.
fn is_torn(bytes: &[u8], offset: usize, max_record_bytes: u32) -> bool {
    let plausible_end = crate::wal_record::framed_end_if_length_valid(bytes, offset).filter(|_| {
        crate::wal_record::payload_length_if_valid(bytes, offset)
            .is_some_and(|length| (1..=max_record_bytes).contains(&length))
    });
    let record_end = match plausible_end {
        Some(end) if end > bytes.len() => return true,
        Some(end) => end,
        None => (offset + RECORD_HEADER_BYTES).min(bytes.len()),
    };
    touches_unwritten_sector(bytes, offset, record_end)
}

/// True when some sector overlapping `start..end` reads as zeros from where that range enters
/// it to the sector's end (or the file's). Such a sector cannot hold a record the store wrote
/// (no record has a zero length field, and a record's bytes run on to the next record), so it
/// never reached the disk.
fn touches_unwritten_sector(bytes: &[u8], start: usize, end: usize) -> bool {
    let mut sector_start = start - start % SECTOR_BYTES;
    while sector_start < end {
        let from = start.max(sector_start);
        let to = (sector_start + SECTOR_BYTES).min(bytes.len());
        if from < to && bytes[from..to].iter().all(|&byte| byte == 0) {
            return true;
        }
        sector_start += SECTOR_BYTES;
    }
    false
}

fn header_error(path: &Path, error: SegmentHeaderError) -> StorageError {
    match error {
        SegmentHeaderError::UnsupportedVersion { found } => {
            StorageError::UnsupportedFormatVersion {
                path: path.to_path_buf(),
                found,
                supported: crate::wal_segment::SEGMENT_FORMAT_VERSION,
            }
        }
        SegmentHeaderError::Incomplete => corruption(path, 0, "segment header missing".into()),
        SegmentHeaderError::BadMagic => corruption(
            path,
            0,
            "not a write-ahead log segment (bad magic number)".into(),
        ),
        SegmentHeaderError::BadChecksum => {
            corruption(path, 0, "segment header fails its checksum".into())
        }
    }
}

pub fn corruption(path: &Path, offset: u64, reason: String) -> StorageError {
    StorageError::Corruption {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}
