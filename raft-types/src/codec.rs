//! The one encoding used for messages on the wire and records on disk.
//!
//! Layout: `[version: u8][rmp-serde map-encoded value]`. Named (map) encoding, via
//! `rmp_serde::to_vec_named`, lets a newer peer add a field with `#[serde(default)]` without
//! breaking an older one; the version byte lets us change the encoding itself later and tell an
//! old peer's bytes from garbage.

use serde::{de::DeserializeOwned, Serialize};

/// The current version byte. Bumped only when the encoding changes incompatibly.
pub const WIRE_FORMAT_VERSION: u8 = 1;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The buffer holds nothing, not even a version byte.
    #[error("empty buffer: no version byte")]
    Empty,
    /// The version byte is not [`WIRE_FORMAT_VERSION`]: bytes from an incompatible build, or
    /// garbage.
    #[error("unsupported format version {found} (this build speaks {WIRE_FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version byte read.
        found: u8,
    },
    /// rmp-serde could not encode the value.
    #[error("cannot encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The bytes after the version byte are not a valid encoding of the expected type.
    #[error("cannot decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// Encodes `value` behind the version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buffer = Vec::new();
    encode_into(&mut buffer, value)?;
    Ok(buffer)
}

/// Appends the encoding of `value` to `buffer`, so a caller that frames many values (the
/// network's write batches, the WAL's record buffer) encodes in place instead of allocating a
/// vector per value and copying it. On error `buffer` is left as it was.
pub fn encode_into<T: Serialize>(buffer: &mut Vec<u8>, value: &T) -> Result<(), CodecError> {
    let start = buffer.len();
    buffer.push(WIRE_FORMAT_VERSION);
    if let Err(error) = rmp_serde::encode::write_named(buffer, value) {
        buffer.truncate(start);
        return Err(error.into());
    }
    Ok(())
}

/// Decodes bytes written by [`encode`], refusing unknown versions before parsing anything.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != WIRE_FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion { found: version });
    }
    Ok(rmp_serde::from_slice(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AppendEntriesRequest, AppendEntriesResponse, AppendOutcome, Entry, EntryPayload, LogId,
        LogIndex, NodeId, RaftMessage, Term,
    };

    #[test]
    fn messages_round_trip() {
        let messages = vec![
            RaftMessage::AppendEntries(AppendEntriesRequest {
                term: Term(3),
                leader_id: NodeId(1),
                prev_log_id: LogId::new(Term(2), LogIndex(7)),
                entries: vec![
                    Entry::new(Term(3), LogIndex(8), EntryPayload::Blank),
                    Entry::new(Term(3), LogIndex(9), EntryPayload::command(b"put".to_vec())),
                ],
                leader_commit: LogIndex(7),
                sequence: 42,
            }),
            RaftMessage::AppendEntriesResponse(AppendEntriesResponse {
                term: Term(3),
                sequence: 42,
                outcome: AppendOutcome::Conflict {
                    conflict_term: Some(Term(2)),
                    conflict_index: LogIndex(5),
                },
            }),
        ];
        for message in messages {
            let bytes = encode(&message).expect("encodable");
            let decoded: RaftMessage = decode(&bytes).expect("decodable");
            assert_eq!(decoded, message);
        }
    }

    #[test]
    fn refuses_unknown_version_and_garbage() {
        let mut bytes = encode(&Term(1)).expect("encodable");
        bytes[0] = 99;
        assert!(matches!(
            decode::<Term>(&bytes),
            Err(CodecError::UnsupportedVersion { found: 99 })
        ));
        assert!(matches!(decode::<Term>(&[]), Err(CodecError::Empty)));
        assert!(decode::<RaftMessage>(&[WIRE_FORMAT_VERSION, 0xc1, 0xff]).is_err());
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::{Entry, EntryPayload, LogIndex, Term};

    #[test]
    fn command_bytes_are_encoded_as_one_binary_blob() {
        let entry = Entry::new(
            Term(1),
            LogIndex(1),
            EntryPayload::command(vec![0xff; 65_536]),
        );
        let encoded = encode(&entry).expect("encodable");
        // 0xff as a MessagePack integer would take two bytes each.
        assert!(
            encoded.len() < 65_536 + 64,
            "encoded to {} bytes",
            encoded.len()
        );
    }
}
