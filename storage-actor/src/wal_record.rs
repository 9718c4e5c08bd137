//! One record of the write-ahead log: what it holds and how it is framed on disk.
//!
//! # Layout
//!
//! All integers little-endian. CRC32C is the Castagnoli polynomial (hardware-accelerated).
//!
//! ```text
//! offset      size  field
//! 0           4     payload_length   u32, bytes of payload (1 ..= max_record_bytes)
//! 4           4     length_checksum  u32, CRC32C of the 4 bytes of payload_length
//! 8           n     payload          [record_type u8][body]
//! 8 + n       4     payload_checksum u32, CRC32C of the n payload bytes
//! ```
//!
//! `record_type` and `body`:
//!
//! - `1` Entry: `raft_types::codec::encode(&Entry)` (version byte + rmp-serde named map).
//! - `2` HardState: `raft_types::codec::encode(&HardState)`.
//! - `3` Truncate: `raft_types::codec::encode(&LogIndex)`: entries >= this index are removed.
//! - `4` Reset: `raft_types::codec::encode(&LogId)`: every entry is removed; the log goes on at
//!   this id's index + 1 (a snapshot through this id replaced it).
//!
//! Why the length has its own checksum: a reader must decide how many bytes to take before it
//! can check the payload. A length that fails its checksum, or exceeds `max_record_bytes`, is
//! refused before anything is allocated or read, so a flipped bit in a length can neither make
//! recovery allocate gigabytes nor make it skip valid records.
//!
//! Why the hard state is a record in the same stream as the entries: one ordered stream makes
//! "a HardState change and a later append are never reordered" (docs/ARCHITECTURE.md, rule 1) true
//! by construction, one fdatasync covers both, and there is no second file whose atomic
//! replacement needs its own fsync and a directory fsync. Recovery keeps the last HardState
//! record it reads. Every segment starts with a HardState record, so deleting older segments
//! never loses it.

use raft_types::{codec, Entry, HardState, LogId, LogIndex};
use serde::Serialize;

/// Bytes before the payload: length and its checksum.
pub const RECORD_HEADER_BYTES: usize = 8;
/// Bytes after the payload: its checksum.
pub const RECORD_TRAILER_BYTES: usize = 4;

const RECORD_TYPE_ENTRY: u8 = 1;
const RECORD_TYPE_HARD_STATE: u8 = 2;
const RECORD_TYPE_TRUNCATE: u8 = 3;
const RECORD_TYPE_RESET: u8 = 4;

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalRecord {
    Entry(Entry),
    HardState(HardState),
    Truncate { since: LogIndex },
    Reset { last_log_id: LogId },
}

/// Appends the framed record for `entry` to `buffer`; returns the framed length.
pub fn encode_entry(entry: &Entry, buffer: &mut Vec<u8>) -> Result<usize, codec::CodecError> {
    append_record(RECORD_TYPE_ENTRY, entry, buffer)
}

/// Appends the framed record for `hard_state` to `buffer`; returns the framed length.
pub fn encode_hard_state(
    hard_state: &HardState,
    buffer: &mut Vec<u8>,
) -> Result<usize, codec::CodecError> {
    append_record(RECORD_TYPE_HARD_STATE, hard_state, buffer)
}

/// Appends the framed record for a truncation at `since` to `buffer`; returns its length.
pub fn encode_truncate(since: LogIndex, buffer: &mut Vec<u8>) -> Result<usize, codec::CodecError> {
    append_record(RECORD_TYPE_TRUNCATE, &since, buffer)
}

/// Appends the framed record for a reset of the log to `last_log_id` to `buffer`; returns its
/// length.
pub fn encode_reset(last_log_id: LogId, buffer: &mut Vec<u8>) -> Result<usize, codec::CodecError> {
    append_record(RECORD_TYPE_RESET, &last_log_id, buffer)
}

/// Appends `[length][length checksum][record type][body][payload checksum]`, encoding the
/// body in place; the header is filled in once the body's length is known. On error `buffer`
/// is left as it was.
fn append_record<T: Serialize>(
    record_type: u8,
    body: &T,
    buffer: &mut Vec<u8>,
) -> Result<usize, codec::CodecError> {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    let payload_start = buffer.len();
    buffer.push(record_type);
    if let Err(error) = codec::encode_into(buffer, body) {
        buffer.truncate(start);
        return Err(error);
    }
    let payload_length = u32::try_from(buffer.len() - payload_start)
        .expect("a record payload fits in u32: entries are bounded");
    let length_bytes = payload_length.to_le_bytes();
    buffer[start..start + 4].copy_from_slice(&length_bytes);
    buffer[start + 4..payload_start].copy_from_slice(&crc32c::crc32c(&length_bytes).to_le_bytes());
    let payload_checksum = crc32c::crc32c(&buffer[payload_start..]);
    buffer.extend_from_slice(&payload_checksum.to_le_bytes());
    Ok(buffer.len() - start)
}

/// What the reader found at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordRead {
    /// A valid record of `framed_length` bytes.
    Record {
        record: WalRecord,
        framed_length: usize,
    },
    /// The segment ends exactly here.
    EndOfSegment,
    /// The bytes here end before a whole record: a write cut short (torn) if nothing follows.
    Incomplete { reason: String },
    /// The bytes here are a whole record (or a whole header) that fails its checksum or does
    /// not decode. Only the caller knows whether it is a torn tail or corruption.
    Invalid { reason: String },
}

/// Reads the record starting at `offset` of `segment`, without allocating more than the
/// decoded record itself: the length is checked (own checksum, `max_record_bytes`, bytes
/// remaining) before the payload is touched.
pub fn read_record(segment: &[u8], offset: usize, max_record_bytes: u32) -> RecordRead {
    let remaining = &segment[offset..];
    if remaining.is_empty() {
        return RecordRead::EndOfSegment;
    }
    if remaining.len() < RECORD_HEADER_BYTES {
        return RecordRead::Incomplete {
            reason: format!("record header cut short: {} of 8 bytes", remaining.len()),
        };
    }
    let Some(payload_length) = checked_payload_length(&remaining[..RECORD_HEADER_BYTES]) else {
        return RecordRead::Invalid {
            reason: "record length fails its checksum".to_string(),
        };
    };
    if payload_length == 0 || payload_length > max_record_bytes {
        return RecordRead::Invalid {
            reason: format!(
                "record length {payload_length} outside 1..={max_record_bytes} (refused before allocating)"
            ),
        };
    }
    let payload_length = payload_length as usize;
    let framed_length = RECORD_HEADER_BYTES + payload_length + RECORD_TRAILER_BYTES;
    if remaining.len() < framed_length {
        return RecordRead::Incomplete {
            reason: format!(
                "record of {framed_length} bytes cut short at {} bytes",
                remaining.len()
            ),
        };
    }
    let payload = &remaining[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload_length];
    let stored_payload_checksum = u32::from_le_bytes(
        remaining[RECORD_HEADER_BYTES + payload_length..framed_length]
            .try_into()
            .expect("slice of 4 bytes converts to [u8; 4]"),
    );
    if crc32c::crc32c(payload) != stored_payload_checksum {
        return RecordRead::Invalid {
            reason: "record payload fails its checksum".to_string(),
        };
    }
    match decode_payload(payload) {
        Ok(record) => RecordRead::Record {
            record,
            framed_length,
        },
        Err(reason) => RecordRead::Invalid { reason },
    }
}

/// The payload length a record header (`RECORD_HEADER_BYTES` long) holds, if the length passes
/// its own checksum.
fn checked_payload_length(header: &[u8]) -> Option<u32> {
    let (length_bytes, checksum_bytes) = header.split_at(4);
    let length_bytes: [u8; 4] = length_bytes
        .try_into()
        .expect("a record header holds a 4-byte length");
    let stored_length_checksum = u32::from_le_bytes(
        checksum_bytes
            .try_into()
            .expect("a record header holds a 4-byte length checksum"),
    );
    (crc32c::crc32c(&length_bytes) == stored_length_checksum)
        .then(|| u32::from_le_bytes(length_bytes))
}

fn decode_payload(payload: &[u8]) -> Result<WalRecord, String> {
    let (&record_type, body) = payload
        .split_first()
        .expect("payload length was checked to be at least 1");
    let describe = |error: codec::CodecError| format!("record type {record_type}: {error}");
    match record_type {
        RECORD_TYPE_ENTRY => codec::decode(body).map(WalRecord::Entry).map_err(describe),
        RECORD_TYPE_HARD_STATE => codec::decode(body)
            .map(WalRecord::HardState)
            .map_err(describe),
        RECORD_TYPE_TRUNCATE => codec::decode(body)
            .map(|since| WalRecord::Truncate { since })
            .map_err(describe),
        RECORD_TYPE_RESET => codec::decode(body)
            .map(|last_log_id| WalRecord::Reset { last_log_id })
            .map_err(describe),
        unknown => Err(format!("unknown record type {unknown}")),
    }
}

/// The payload length of the record at `offset` when its length field passes its checksum.
pub fn payload_length_if_valid(segment: &[u8], offset: usize) -> Option<u32> {
    let header = segment.get(offset..offset + RECORD_HEADER_BYTES)?;
    checked_payload_length(header)
}

/// The end of the record at `offset` when its length field passes its checksum (whether or not
/// the record is complete or valid), so recovery can look at what follows a failed record.
pub fn framed_end_if_length_valid(segment: &[u8], offset: usize) -> Option<usize> {
    let header = segment.get(offset..offset + RECORD_HEADER_BYTES)?;
    let payload_length = usize::try_from(checked_payload_length(header)?).ok()?;
    offset
        .checked_add(RECORD_HEADER_BYTES + RECORD_TRAILER_BYTES)?
        .checked_add(payload_length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{EntryPayload, NodeId, Term};

    const LIMIT: u32 = 1 << 20;

    fn sample_entry() -> Entry {
        Entry::new(
            Term(3),
            LogIndex(7),
            EntryPayload::command(b"set x".to_vec()),
        )
    }

    #[test]
    fn every_record_type_round_trips() {
        let mut buffer = Vec::new();
        let entry_length = encode_entry(&sample_entry(), &mut buffer).expect("encodable");
        let hard_state = HardState::new(Term(4), Some(NodeId(2)));
        encode_hard_state(&hard_state, &mut buffer).expect("encodable");
        encode_truncate(LogIndex(5), &mut buffer).expect("encodable");
        let reset_to = raft_types::LogId::new(Term(3), LogIndex(90));
        encode_reset(reset_to, &mut buffer).expect("encodable");

        let mut offset = 0;
        let mut records = Vec::new();
        while let RecordRead::Record {
            record,
            framed_length,
        } = read_record(&buffer, offset, LIMIT)
        {
            records.push(record);
            offset += framed_length;
        }
        assert_eq!(offset, buffer.len());
        assert_eq!(
            records,
            vec![
                WalRecord::Entry(sample_entry()),
                WalRecord::HardState(hard_state),
                WalRecord::Truncate { since: LogIndex(5) },
                WalRecord::Reset {
                    last_log_id: reset_to
                },
            ]
        );
        assert!(entry_length > RECORD_HEADER_BYTES + RECORD_TRAILER_BYTES);
    }

    #[test]
    fn a_record_cut_anywhere_reads_as_incomplete() {
        let mut buffer = Vec::new();
        encode_entry(&sample_entry(), &mut buffer).expect("encodable");
        for cut in 1..buffer.len() {
            let read = read_record(&buffer[..cut], 0, LIMIT);
            assert!(
                matches!(read, RecordRead::Incomplete { .. }),
                "cut at {cut}: {read:?}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_invalid() {
        let mut buffer = Vec::new();
        encode_entry(&sample_entry(), &mut buffer).expect("encodable");
        for position in 0..buffer.len() {
            let mut damaged = buffer.clone();
            damaged[position] ^= 0x10;
            let read = read_record(&damaged, 0, LIMIT);
            assert!(
                matches!(
                    read,
                    RecordRead::Invalid { .. } | RecordRead::Incomplete { .. }
                ),
                "flip at {position}: {read:?}"
            );
        }
    }

    #[test]
    fn a_huge_length_with_a_valid_checksum_is_refused_before_reading_on() {
        let length_bytes = u32::MAX.to_le_bytes();
        let mut buffer = length_bytes.to_vec();
        buffer.extend_from_slice(&crc32c::crc32c(&length_bytes).to_le_bytes());
        buffer.extend_from_slice(&[0u8; 16]);
        let read = read_record(&buffer, 0, LIMIT);
        match read {
            RecordRead::Invalid { reason } => assert!(reason.contains("refused"), "{reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
