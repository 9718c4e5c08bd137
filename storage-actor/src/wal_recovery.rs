//! Recovery at open: replays every segment in order to rebuild the hard state and the log,
//! telling a torn tail (normal after a crash: truncated with a warning) from corruption (the
//! node refuses to start, naming the file and the byte offset).
//!
//! # What counts as a torn tail
//!
//! Only the last segment can have one: the store syncs a segment before it creates the next.
//! In the last segment, a record that runs past the end of the file, or one that fails its
//! checksum with nothing but zero bytes after it (a power loss can leave a file extended with
//! unwritten, zero-filled blocks), is the remains of a write that was never acknowledged.
//! Anything else that fails, anywhere, is corruption. A last segment whose header is missing
//! or all zeros is a segment whose creation was cut short; it holds nothing and is removed.

use crate::storage_error::StorageError;
use crate::wal_record::{read_record, RecordRead, WalRecord};
use crate::wal_segment::{SegmentHeader, SegmentHeaderError, SEGMENT_HEADER_BYTES};
use raft_types::{Entry, HardState, LogIndex, Term};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

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
    /// The segment's length after recovery, torn tail removed.
    pub length_bytes: u64,
}

/// The log being rebuilt, record by record.
#[derive(Debug, Default)]
pub struct ReplayState {
    pub hard_state: HardState,
    pub first_index: LogIndex,
    pub entries: VecDeque<Entry>,
    pub locations: VecDeque<EntryLocation>,
    pub segments: Vec<SegmentSummary>,
}

/// How a segment's replay ended.
pub enum SegmentEnd {
    /// Every byte was a valid record.
    Clean,
    /// A torn tail starts at this offset; the caller truncates the file there.
    TornAt { offset: u64, reason: String },
    /// The header is missing or zero: the caller removes the file.
    HeaderIncomplete,
}

impl ReplayState {
    pub fn new() -> ReplayState {
        ReplayState {
            first_index: LogIndex(1),
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
            Err(SegmentHeaderError::Incomplete) if position.is_last => {
                return Ok(SegmentEnd::HeaderIncomplete)
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
                RecordRead::Incomplete { reason } if position.is_last => {
                    break SegmentEnd::TornAt {
                        offset: offset as u64,
                        reason,
                    }
                }
                RecordRead::Invalid { reason }
                    if position.is_last && only_zeros_after_record(bytes, offset) =>
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
        if let SegmentEnd::TornAt { offset, .. } = end {
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
            WalRecord::HardState(hard_state) => self.hard_state = hard_state,
            WalRecord::Truncate { since } => self.truncate(since),
        }
        Ok(())
    }

    fn truncate(&mut self, since: LogIndex) {
        if since < self.first_index {
            self.entries.clear();
            self.locations.clear();
            self.first_index = since;
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

/// True when every byte after the failed record at `offset` is zero. When the record's length
/// is unreadable, or points past the end of the file (a valid-checksum length that was refused
/// as too large), the record is taken to start the zeros, so its own non-zero header makes it
/// corruption rather than a torn tail.
fn only_zeros_after_record(bytes: &[u8], offset: usize) -> bool {
    let from = crate::wal_record::framed_end_if_length_valid(bytes, offset)
        .filter(|&framed_end| framed_end <= bytes.len())
        .unwrap_or(offset);
    bytes[from..].iter().all(|&byte| byte == 0)
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
