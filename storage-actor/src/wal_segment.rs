//! Segment files: their names and the header that opens each one.
//!
//! # Layout
//!
//! A segment is named `<sequence>.wal`, the sequence in 20 decimal digits so that names sort
//! in log order (`00000000000000000001.wal`). It starts with a 32-byte header, then records
//! (see [`crate::wal_record`]) until the end of the file:
//!
//! ```text
//! offset  size  field
//! 0       8     magic            b"RAFTWAL\0": refuses files that are not segments
//! 8       2     format_version   u16 LE, currently 1: refuses segments of a newer format
//! 10      2     reserved         zero
//! 12      8     sequence         u64 LE, equal to the number in the file name
//! 20      8     next_index       u64 LE, the index the log's next entry had when the segment
//!                                was created: where replay starts when older segments are gone
//! 28      4     header_checksum  u32 LE, CRC32C of bytes 0..28
//! ```
//!
//! The first record of every segment is a HardState record holding the hard state current
//! when the segment was created, so purging older segments never loses the hard state.

use std::path::{Path, PathBuf};

pub const SEGMENT_MAGIC: [u8; 8] = *b"RAFTWAL\0";
pub const SEGMENT_FORMAT_VERSION: u16 = 1;
pub const SEGMENT_HEADER_BYTES: usize = 32;
const SEGMENT_EXTENSION: &str = ".wal";
const SEQUENCE_DIGITS: usize = 20;

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub sequence: u64,
    /// The index of the log's next entry when the segment was created.
    pub next_index: u64,
}

/// Why a header could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum SegmentHeaderError {
    /// Fewer bytes than a header, or only zeros: a segment whose creation was cut short.
    Incomplete,
    BadMagic,
    UnsupportedVersion {
        found: u16,
    },
    BadChecksum,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..10].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.next_index.to_le_bytes());
        let checksum = crc32c::crc32c(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, SegmentHeaderError> {
        if bytes.len() < SEGMENT_HEADER_BYTES
            || bytes[..SEGMENT_HEADER_BYTES].iter().all(|&byte| byte == 0)
        {
            return Err(SegmentHeaderError::Incomplete);
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(SegmentHeaderError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != SEGMENT_FORMAT_VERSION {
            return Err(SegmentHeaderError::UnsupportedVersion { found: version });
        }
        let field = |range: std::ops::Range<usize>| -> [u8; 8] {
            bytes[range]
                .try_into()
                .expect("header fields at fixed offsets are 8 bytes")
        };
        let stored_checksum = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
        if crc32c::crc32c(&bytes[0..28]) != stored_checksum {
            return Err(SegmentHeaderError::BadChecksum);
        }
        Ok(SegmentHeader {
            sequence: u64::from_le_bytes(field(12..20)),
            next_index: u64::from_le_bytes(field(20..28)),
        })
    }
}

/// The path of segment `sequence` in `directory`.
pub fn segment_path(directory: &Path, sequence: u64) -> PathBuf {
    directory.join(format!(
        "{sequence:0width$}{SEGMENT_EXTENSION}",
        width = SEQUENCE_DIGITS
    ))
}

/// The sequence number in a segment's file name, or None if the name is not a segment's.
pub fn parse_segment_name(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.len() != SEQUENCE_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_damage() {
        let header = SegmentHeader {
            sequence: 7,
            next_index: 1234,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));

        let mut damaged = bytes;
        damaged[21] ^= 1;
        assert_eq!(
            SegmentHeader::decode(&damaged),
            Err(SegmentHeaderError::BadChecksum)
        );
        let mut foreign = bytes;
        foreign[0] = b'X';
        assert_eq!(
            SegmentHeader::decode(&foreign),
            Err(SegmentHeaderError::BadMagic)
        );
        let mut newer = bytes;
        newer[8] = 9;
        assert_eq!(
            SegmentHeader::decode(&newer),
            Err(SegmentHeaderError::UnsupportedVersion { found: 9 })
        );
        assert_eq!(
            SegmentHeader::decode(&bytes[..31]),
            Err(SegmentHeaderError::Incomplete)
        );
    }

    #[test]
    fn names_sort_in_sequence_order_and_parse_back() {
        let path = segment_path(Path::new("/data"), 42);
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("segment names are UTF-8");
        assert_eq!(name, "00000000000000000042.wal");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name("notes.txt"), None);
    }
}
