//! Frames: how one encoded value travels on a TCP stream.
//!
//! # Layout
//!
//! ```text
//! [length: u32 big-endian][payload: `length` bytes]
//! payload = raft_types::codec::encode(value) = [format version: u8][rmp-serde named map]
//! ```
//!
//! The reader checks `length` against the configured limit before allocating anything, so a
//! garbage or hostile length (say 4 GiB) costs nothing but the connection. A stream that ends
//! between frames is a normal close; one that ends inside a frame is a truncated frame.

use raft_types::codec::{self, CodecError};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the length prefix in front of every payload.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Why a frame could not be written or read. Every variant closes the connection it came from.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {length} bytes exceeds the limit of {max_frame_bytes} bytes")]
    TooLarge { length: u64, max_frame_bytes: u32 },
    #[error("connection closed inside a frame: {received} of {expected} bytes received")]
    Truncated { expected: u64, received: u64 },
    /// Also an unencodable value on the sending side (a serializer error).
    #[error("undecodable frame payload: {source}")]
    Undecodable {
        #[from]
        source: CodecError,
    },
    #[error("i/o error: {source}")]
    Io {
        #[from]
        source: std::io::Error,
    },
}

/// Appends one frame holding `value` to `buffer` and returns the frame's size in bytes.
/// Refuses (leaving `buffer` as it was) a value whose encoding is over `max_frame_bytes`: the
/// peer would close the connection on it.
///
/// The payload is encoded straight into `buffer` with `codec::encode_into`, not through a
/// vector per message (the largest cost of small messages).
pub fn append_frame<T: Serialize>(
    buffer: &mut Vec<u8>,
    value: &T,
    max_frame_bytes: u32,
) -> Result<usize, FrameError> {
    let frame_start = buffer.len();
    buffer.extend_from_slice(&[0; LENGTH_PREFIX_BYTES]);
    if let Err(source) = codec::encode_into(buffer, value) {
        buffer.truncate(frame_start);
        return Err(FrameError::Undecodable { source });
    }
    let payload_bytes = buffer.len() - frame_start - LENGTH_PREFIX_BYTES;
    let Some(length) = u32::try_from(payload_bytes)
        .ok()
        .filter(|length| *length <= max_frame_bytes)
    else {
        buffer.truncate(frame_start);
        return Err(FrameError::TooLarge {
            length: payload_bytes as u64,
            max_frame_bytes,
        });
    };
    buffer[frame_start..frame_start + LENGTH_PREFIX_BYTES].copy_from_slice(&length.to_be_bytes());
    Ok(LENGTH_PREFIX_BYTES + payload_bytes)
}

/// Reads one frame's payload into `payload`. Returns the frame's size in bytes (prefix
/// included), or `None` when the stream ended cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: u32,
    payload: &mut Vec<u8>,
) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    let prefix_received = read_until_full_or_end(reader, &mut prefix).await?;
    if prefix_received == 0 {
        return Ok(None);
    }
    if prefix_received < LENGTH_PREFIX_BYTES {
        return Err(FrameError::Truncated {
            expected: LENGTH_PREFIX_BYTES as u64,
            received: prefix_received as u64,
        });
    }
    let length = u32::from_be_bytes(prefix);
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge {
            length: u64::from(length),
            max_frame_bytes,
        });
    }
    payload.clear();
    payload.resize(length as usize, 0);
    let payload_received = read_until_full_or_end(reader, payload).await?;
    if payload_received < payload.len() {
        return Err(FrameError::Truncated {
            expected: (LENGTH_PREFIX_BYTES + payload.len()) as u64,
            received: (LENGTH_PREFIX_BYTES + payload_received) as u64,
        });
    }
    Ok(Some(LENGTH_PREFIX_BYTES + payload.len()))
}

/// Reads and decodes one frame; `None` when the stream ended cleanly between frames.
pub async fn read_value<R: AsyncRead + Unpin, T: DeserializeOwned>(
    reader: &mut R,
    max_frame_bytes: u32,
) -> Result<Option<T>, FrameError> {
    let mut payload = Vec::new();
    match read_frame(reader, max_frame_bytes, &mut payload).await? {
        None => Ok(None),
        Some(_) => Ok(Some(codec::decode(&payload)?)),
    }
}

/// Fills `buffer` unless the stream ends first; returns how many bytes were read.
async fn read_until_full_or_end<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let received = reader.read(&mut buffer[filled..]).await?;
        if received == 0 {
            break;
        }
        filled += received;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{NodeId, RaftMessage, RequestVoteResponse, Term};

    fn message() -> RaftMessage {
        RaftMessage::RequestVoteResponse(RequestVoteResponse {
            term: Term(7),
            vote_granted: true,
        })
    }

    #[tokio::test]
    async fn frames_round_trip_back_to_back() {
        let mut buffer = Vec::new();
        let first = append_frame(&mut buffer, &message(), 1024).expect("fits");
        let second = append_frame(&mut buffer, &NodeId(3), 1024).expect("fits");
        assert_eq!(buffer.len(), first + second);
        let mut reader = buffer.as_slice();
        let decoded: Option<RaftMessage> = read_value(&mut reader, 1024).await.expect("valid");
        assert_eq!(decoded, Some(message()));
        let decoded: Option<NodeId> = read_value(&mut reader, 1024).await.expect("valid");
        assert_eq!(decoded, Some(NodeId(3)));
        let end: Option<NodeId> = read_value(&mut reader, 1024).await.expect("clean end");
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn refuses_length_over_the_limit_before_reading_the_payload() {
        let bytes = u32::MAX.to_be_bytes();
        let mut reader = bytes.as_slice();
        let result = read_value::<_, RaftMessage>(&mut reader, 1024).await;
        assert!(matches!(
            result,
            Err(FrameError::TooLarge {
                length: 4_294_967_295,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn reports_truncated_prefix_and_payload() {
        let mut reader: &[u8] = &[0, 0];
        let result = read_value::<_, RaftMessage>(&mut reader, 1024).await;
        assert!(matches!(
            result,
            Err(FrameError::Truncated {
                expected: 4,
                received: 2
            })
        ));
        let mut bytes = Vec::new();
        append_frame(&mut bytes, &message(), 1024).expect("fits");
        bytes.truncate(bytes.len() - 1);
        let mut reader = bytes.as_slice();
        let result = read_value::<_, RaftMessage>(&mut reader, 1024).await;
        assert!(matches!(result, Err(FrameError::Truncated { .. })));
    }

    #[tokio::test]
    async fn reports_undecodable_payload() {
        let mut bytes = 3u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[raft_types::WIRE_FORMAT_VERSION, 0xc1, 0xff]);
        let mut reader = bytes.as_slice();
        let result = read_value::<_, RaftMessage>(&mut reader, 1024).await;
        assert!(matches!(result, Err(FrameError::Undecodable { .. })));
    }

    #[test]
    fn payload_is_exactly_the_codec_encoding() {
        let mut buffer = vec![9, 9];
        let frame_bytes = append_frame(&mut buffer, &message(), 1024).expect("fits");
        let payload = codec::encode(&message()).expect("encodable");
        assert_eq!(frame_bytes, LENGTH_PREFIX_BYTES + payload.len());
        assert_eq!(&buffer[..2], &[9, 9]);
        assert_eq!(&buffer[2..6], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&buffer[6..], payload.as_slice());
    }

    #[test]
    fn refuses_to_write_a_frame_over_the_limit() {
        let mut buffer = vec![1, 2, 3];
        let big = vec![7u8; 2048];
        let result = append_frame(&mut buffer, &big, 1024);
        assert!(matches!(result, Err(FrameError::TooLarge { .. })));
        assert_eq!(
            buffer,
            vec![1, 2, 3],
            "a refused frame leaves the buffer as it was"
        );
    }
}
