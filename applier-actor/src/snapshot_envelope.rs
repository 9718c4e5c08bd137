//! The applier's snapshot envelope: what the applier writes into a snapshot around the state
//! machine's payload, so that a restored applier knows where it is in the log and keeps its
//! consistency checkpoints.
//!
//! # Format (version 1)
//!
//! A fixed 30-byte header, then the state machine's payload to the end (whatever
//! [`crate::StateMachineSnapshot::write_to`] wrote; the `KvStore`'s is in
//! [`crate::kv_snapshot`]). Integers little-endian. Snapshots move between replicas and
//! versions, so this is a wire format: a change means a new version byte.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `RAPS` |
//! | 4 | 1 | format version, `1` |
//! | 5 | 8 | the term of the last applied entry |
//! | 13 | 8 | the index of the last applied entry |
//! | 21 | 1 | `1` if the running hash is known, `0` if not (an applier that resumed without it) |
//! | 22 | 8 | the running hash after that entry (`0` when not known) |
//! | 30 | ... | the state machine's payload |
//!
//! The snapshot store checksums every byte, so the envelope carries no checksum of its own; its
//! reader still refuses anything that is not exactly this header.

use crate::running_hash::{HistoryHash, RunningHash};
use raft_types::{LogId, LogIndex, Term};
use std::io::{self, Read, Write};

const MAGIC: [u8; 4] = *b"RAPS";
const VERSION: u8 = 1;
/// The header's length in bytes: where the state machine's payload starts.
pub const HEADER_BYTES: usize = 30;

/// What the envelope says about the applied state it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The last entry applied to the state in the payload.
    pub last_applied: LogId,
    /// The running hash after `last_applied`, when the applier knew it; its index is
    /// `last_applied.index`.
    pub running_hash: Option<RunningHash>,
}

/// The header is not what version 1 writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("applier snapshot envelope, byte {offset}: {reason}")]
pub struct EnvelopeError {
    /// Where in the payload the problem is.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl EnvelopeHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        if let Some(running_hash) = &self.running_hash {
            assert_eq!(
                running_hash.index(),
                self.last_applied.index,
                "the running hash in a snapshot is the one after its last applied entry"
            );
        }
        let mut bytes = [0; HEADER_BYTES];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4] = VERSION;
        bytes[5..13].copy_from_slice(&self.last_applied.term.0.to_le_bytes());
        bytes[13..21].copy_from_slice(&self.last_applied.index.0.to_le_bytes());
        if let Some(running_hash) = &self.running_hash {
            bytes[21] = 1;
            bytes[22..30].copy_from_slice(&running_hash.hash().0.to_le_bytes());
        }
        bytes
    }

    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.encode())
    }

    /// Reads the header from the start of a payload, leaving `payload` at the state machine's
    /// bytes.
    pub fn read_from(payload: &mut dyn Read) -> Result<EnvelopeHeader, EnvelopeError> {
        let mut bytes = [0; HEADER_BYTES];
        let mut read = 0;
        while read < HEADER_BYTES {
            match payload.read(&mut bytes[read..]) {
                Ok(0) => {
                    return Err(EnvelopeError {
                        offset: read as u64,
                        reason: format!("the payload ends inside the {HEADER_BYTES}-byte header"),
                    })
                }
                Ok(count) => read += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(EnvelopeError {
                        offset: read as u64,
                        reason: format!("reading the payload: {error}"),
                    })
                }
            }
        }
        EnvelopeHeader::decode(&bytes)
    }

    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<EnvelopeHeader, EnvelopeError> {
        let error = |offset: u64, reason: String| EnvelopeError { offset, reason };
        if bytes[0..4] != MAGIC {
            return Err(error(
                0,
                format!(
                    "not an applier snapshot: magic {:02x?}, expected {MAGIC:02x?}",
                    &bytes[0..4]
                ),
            ));
        }
        if bytes[4] != VERSION {
            return Err(error(
                4,
                format!(
                    "format version {} is not known (this node reads {VERSION})",
                    bytes[4]
                ),
            ));
        }
        let u64_at = |offset: usize| {
            let mut field = [0; 8];
            field.copy_from_slice(&bytes[offset..offset + 8]);
            u64::from_le_bytes(field)
        };
        let last_applied = LogId::new(Term(u64_at(5)), LogIndex(u64_at(13)));
        let running_hash = match bytes[21] {
            0 => None,
            1 => Some(RunningHash::resume(
                last_applied.index,
                HistoryHash(u64_at(22)),
            )),
            other => {
                return Err(error(
                    21,
                    format!("running-hash flag {other}, expected 0 or 1"),
                ))
            }
        };
        if running_hash.is_none() && u64_at(22) != 0 {
            return Err(error(22, "a hash without its flag".to_string()));
        }
        Ok(EnvelopeHeader {
            last_applied,
            running_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> EnvelopeHeader {
        EnvelopeHeader {
            last_applied: LogId::new(Term(3), LogIndex(42)),
            running_hash: Some(RunningHash::resume(LogIndex(42), HistoryHash(0xabcd))),
        }
    }

    /// Other versions read this: these bytes must never change (version 1).
    #[test]
    fn a_fixed_header_has_fixed_bytes_and_reads_back() {
        let mut expected = b"RAPS\x01".to_vec();
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(&42u64.to_le_bytes());
        expected.push(1);
        expected.extend_from_slice(&0xabcdu64.to_le_bytes());
        assert_eq!(header().encode().to_vec(), expected);
        let mut payload = expected.clone();
        payload.extend_from_slice(b"state");
        let mut reader = &payload[..];
        assert_eq!(EnvelopeHeader::read_from(&mut reader), Ok(header()));
        assert_eq!(reader, b"state", "the reader is left at the state's bytes");
        let unknown_hash = EnvelopeHeader {
            running_hash: None,
            ..header()
        };
        let bytes = unknown_hash.encode();
        assert_eq!(bytes[21..], [0; 9]);
        assert_eq!(EnvelopeHeader::decode(&bytes), Ok(unknown_hash));
    }

    #[test]
    fn a_bad_header_is_refused_with_its_offset() {
        let valid = header().encode();
        for length in 0..HEADER_BYTES {
            let error = EnvelopeHeader::read_from(&mut &valid[..length]).expect_err("cut");
            assert_eq!(error.offset, length as u64);
        }
        for (position, byte, offset) in [(0, b'X', 0), (4, 2, 4), (21, 2, 21)] {
            let mut changed = valid;
            changed[position] = byte;
            let error = EnvelopeHeader::decode(&changed).expect_err("refused");
            assert_eq!(error.offset, offset, "{error}");
        }
        let mut hash_without_flag = valid;
        hash_without_flag[21] = 0;
        assert!(EnvelopeHeader::decode(&hash_without_flag).is_err());
    }
}
