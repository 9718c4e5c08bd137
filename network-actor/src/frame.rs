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

use bytes::BufMut;
use raft_types::codec::{self, CodecError};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much room [`FrameReader`] makes for each read when no larger frame is pending: many
/// small frames arrive per system call.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A [`FrameReader`] buffer larger than this is given back to the allocator once it is empty,
/// so one large frame does not pin its memory for the life of the connection.
const RETAINED_READ_BUFFER_BYTES: usize = 4 * 1024 * 1024;

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
    let length = checked_length(prefix, max_frame_bytes)?;
    payload.clear();
    payload.resize(length, 0);
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

/// The payload length a prefix announces, refused when over `max_frame_bytes` so that nothing
/// is allocated for a garbage or hostile length.
fn checked_length(
    prefix: [u8; LENGTH_PREFIX_BYTES],
    max_frame_bytes: u32,
) -> Result<usize, FrameError> {
    let length = u32::from_be_bytes(prefix);
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge {
            length: u64::from(length),
            max_frame_bytes,
        });
    }
    Ok(length as usize)
}

/// Reads a stream of frames in batches: every read goes straight into one buffer (no
/// intermediate copy), and every frame it completes is decoded in place.
///
/// A large frame's length is known from its prefix, so room for the whole frame is made before
/// reading it, and reads stop at its end: the kernel copies its bytes once, into the buffer they
/// are decoded from, and the buffer is empty again once it is decoded (no partial frame to
/// move to the front, which for frames of tens of kilobytes would be a second copy).
#[derive(Debug)]
pub struct FrameReader {
    buffer: Vec<u8>,
    /// `buffer[..decoded]` holds frames already decoded; the rest is a partial frame.
    decoded: usize,
    max_frame_bytes: u32,
}

impl FrameReader {
    pub fn new(max_frame_bytes: u32) -> FrameReader {
        FrameReader {
            buffer: Vec::new(),
            decoded: 0,
            max_frame_bytes,
        }
    }

    /// Reads until at least one frame is complete, appends every complete frame's value to
    /// `values`, and returns the size in bytes (prefixes included) of those frames; `None` when
    /// the stream ended cleanly between frames.
    ///
    /// On an error, the values of the frames before the bad one are in `values` already: the
    /// caller may deliver them before it closes the connection.
    pub async fn read_batch<R: AsyncRead + Unpin, T: DeserializeOwned>(
        &mut self,
        reader: &mut R,
        values: &mut Vec<T>,
    ) -> Result<Option<usize>, FrameError> {
        loop {
            let frame_bytes = self.decode_buffered(values)?;
            if frame_bytes > 0 {
                return Ok(Some(frame_bytes));
            }
            let read_limit = self.make_room()?;
            if reader
                .read_buf(&mut (&mut self.buffer).limit(read_limit))
                .await?
                == 0
            {
                let partial = self.buffer.len() - self.decoded;
                if partial == 0 {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    expected: self
                        .pending_frame_length()?
                        .map_or(LENGTH_PREFIX_BYTES, |length| LENGTH_PREFIX_BYTES + length)
                        as u64,
                    received: partial as u64,
                });
            }
        }
    }

    /// Decodes every complete frame after `decoded`, returning their total size.
    fn decode_buffered<T: DeserializeOwned>(
        &mut self,
        values: &mut Vec<T>,
    ) -> Result<usize, FrameError> {
        let mut frame_bytes = 0;
        while let Some(length) = self.pending_frame_length()? {
            let start = self.decoded + LENGTH_PREFIX_BYTES;
            let Some(payload) = self.buffer.get(start..start + length) else {
                break;
            };
            values.push(codec::decode(payload)?);
            self.decoded = start + length;
            frame_bytes += LENGTH_PREFIX_BYTES + length;
        }
        Ok(frame_bytes)
    }

    /// The payload length of the frame starting at `decoded`, once its prefix is buffered,
    /// checked against the limit before anything is allocated for it.
    fn pending_frame_length(&self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self
            .buffer
            .get(self.decoded..self.decoded + LENGTH_PREFIX_BYTES)
        else {
            return Ok(None);
        };
        let prefix = prefix.try_into().expect("a 4-byte slice");
        checked_length(prefix, self.max_frame_bytes).map(Some)
    }

    /// Drops decoded frames from the buffer and makes room for the rest of the pending frame
    /// (or for a read's worth of small ones); returns how many bytes the next read may take.
    fn make_room(&mut self) -> Result<usize, FrameError> {
        let pending_frame_bytes = self
            .pending_frame_length()?
            .map_or(0, |length| LENGTH_PREFIX_BYTES + length);
        let partial = self.buffer.len() - self.decoded;
        let rest_of_frame = pending_frame_bytes.saturating_sub(partial);
        let wanted = rest_of_frame.max(READ_CHUNK_BYTES);
        if partial == 0 {
            self.buffer.clear();
            self.decoded = 0;
            if self.buffer.capacity() > RETAINED_READ_BUFFER_BYTES.max(pending_frame_bytes) {
                self.buffer.shrink_to(READ_CHUNK_BYTES);
            }
        } else if self.buffer.capacity() - self.buffer.len() < wanted {
            // Moving the partial frame to the front costs at most one frame's bytes, and only
            // when the tail has no room for what is still to come.
            self.buffer.drain(..self.decoded);
            self.decoded = 0;
        }
        self.buffer.reserve(wanted);
        // Small frames: read as much as fits, many frames per system call. A large frame: read
        // to its end and no further.
        Ok(if rest_of_frame >= READ_CHUNK_BYTES {
            rest_of_frame
        } else {
            wanted
        })
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

    /// Hands out its bytes a few at a time, as a socket may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buffer: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let count = self.step.min(self.bytes.len()).min(buffer.remaining());
            buffer.put_slice(&self.bytes[..count]);
            self.bytes = &self.bytes[count..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frame_reader_decodes_batches_whatever_the_read_sizes() {
        let mut bytes = Vec::new();
        let values: Vec<Vec<u8>> = (0..50usize)
            .map(|size| vec![size as u8; size * 97])
            .collect();
        for value in &values {
            append_frame(&mut bytes, value, 1 << 20).expect("fits");
        }
        for step in [1, 3, 4, 5, 4096, 1 << 20] {
            let mut reader = Trickle {
                bytes: &bytes,
                step,
            };
            let mut frames = FrameReader::new(1 << 20);
            let mut decoded: Vec<Vec<u8>> = Vec::new();
            let mut total = 0;
            while let Some(frame_bytes) = frames
                .read_batch(&mut reader, &mut decoded)
                .await
                .expect("valid frames")
            {
                total += frame_bytes;
            }
            assert_eq!(decoded, values, "read step {step}");
            assert_eq!(total, bytes.len(), "read step {step}");
        }
    }

    #[tokio::test]
    async fn frame_reader_refuses_bad_input_after_delivering_the_good_frames() {
        let mut good = Vec::new();
        append_frame(&mut good, &message(), 1024).expect("fits");

        let mut over_limit = good.clone();
        over_limit.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut truncated = good.clone();
        truncated.extend_from_slice(&good[..good.len() - 1]);
        let mut undecodable = good.clone();
        undecodable.extend_from_slice(&3u32.to_be_bytes());
        undecodable.extend_from_slice(&[raft_types::WIRE_FORMAT_VERSION, 0xc1, 0xff]);

        for (name, bytes) in [
            ("over limit", over_limit),
            ("truncated", truncated),
            ("undecodable", undecodable),
        ] {
            let mut reader = bytes.as_slice();
            let mut frames = FrameReader::new(1024);
            let mut decoded: Vec<RaftMessage> = Vec::new();
            let mut outcome = Ok(Some(0));
            while let Ok(Some(_)) = outcome {
                outcome = frames.read_batch(&mut reader, &mut decoded).await;
            }
            assert_eq!(decoded, vec![message()], "{name}");
            let error = outcome.expect_err(name);
            match name {
                "over limit" => assert!(matches!(error, FrameError::TooLarge { .. })),
                "truncated" => assert!(matches!(error, FrameError::Truncated { .. })),
                _ => assert!(matches!(error, FrameError::Undecodable { .. })),
            }
        }
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
