//! The snapshot file format: how a snapshot's header, payload and checksums are laid out, and
//! the one verifier every reader goes through (`FileSnapshotStore`, `MemSnapshotStore`, a
//! received file before it is installed, recovery at open).
//!
//! # Layout
//!
//! All integers little-endian; CRC32C is the Castagnoli polynomial. The same layout is in
//! `docs/SNAPSHOT_FORMAT.md`: change one, change both.
//!
//! ```text
//! header
//! offset  size  field
//! 0       8     magic               b"RAFTSNAP"
//! 8       2     format_version      u16, currently 1
//! 10      2     reserved            zero
//! 12      4     header_body_length  u32, n, 1 ..= 1 MiB
//! 16      n     header_body         raft_types::codec::encode(&{ last_log_id, members, membership })
//! 16 + n  4     header_checksum     u32, CRC32C of bytes 0 .. 16 + n
//!
//! then zero or more chunks, each
//! 0       4     chunk_length        u32, m, 1 ..= 64 MiB
//! 4       4     chunk_checksum      u32, CRC32C of the 4 bytes of chunk_length, then the m bytes
//! 8       m     data                payload bytes
//!
//! then the trailer (24 bytes), ending the file
//! 0       4     end_marker          u32, zero (no chunk has length 0)
//! 4       8     payload_length      u64, the sum of every chunk_length
//! 12      4     file_checksum       u32, CRC32C of every file byte before the trailer
//! 16      8     trailer_magic       b"SNAPEND\0"
//! ```
//!
//! `file_checksum` is [`SnapshotMeta::file_checksum`] and the file's length is
//! [`SnapshotMeta::size_bytes`], so a reader can verify a file with no other knowledge, and a
//! receiver can check that the bytes it got are the ones the leader described.
//!
//! Why each checksum: the header's protects the `last_log_id` and membership a restore trusts;
//! a chunk's lets a payload reader hand out bytes as it goes, each chunk checked before it is
//! released (and the last one only after the trailer checked too), instead of reading the file
//! twice; the file checksum names the exact bytes, so a transfer never mixes two files with the
//! same `last_log_id`. A length is refused before anything is allocated by it.

use crate::file_system::FileHandle;
use raft_proto::snapshot::SnapshotError;
use raft_types::{codec, LogId, Membership, NodeId, SnapshotMeta};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Mutex};

/// The first 8 bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RAFTSNAP";
/// The format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 1;
/// Magic, version, reserved and the header body's length.
pub const FIXED_HEADER_BYTES: usize = 16;
/// The header body is a `LogId` and a member list: far below this.
pub const MAX_HEADER_BODY_BYTES: u32 = 1 << 20;
/// A chunk's length and checksum.
pub const CHUNK_HEADER_BYTES: usize = 8;
/// No writer makes a chunk larger; a reader refuses a larger length before allocating it.
pub const MAX_CHUNK_BYTES: u32 = 64 << 20;
/// End marker, payload length, file checksum, trailer magic.
pub const TRAILER_BYTES: usize = 24;
/// The last 8 bytes of every snapshot file.
pub const TRAILER_MAGIC: [u8; 8] = *b"SNAPEND\0";

/// What the header body holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HeaderBody {
    last_log_id: LogId,
    /// Every voter, as the first files (before membership change) recorded the cluster; still
    /// written so that such a reader can open newer files.
    members: Vec<NodeId>,
    /// The whole configuration; absent in files written before membership change, whose
    /// configuration is `members` as voters.
    #[serde(default)]
    membership: Option<Membership>,
}

/// The whole header (fixed part, body, checksum) of a snapshot of `last_log_id` taken in the
/// configuration `membership`.
pub fn encode_header(
    last_log_id: LogId,
    membership: &Membership,
) -> Result<Vec<u8>, codec::CodecError> {
    let body = codec::encode(&HeaderBody {
        last_log_id,
        members: membership.all_voters().into_iter().collect(),
        membership: Some(membership.clone()),
    })?;
    let body_length =
        u32::try_from(body.len()).expect("a LogId and a member list encode to far below 4 GiB");
    assert!(
        body_length <= MAX_HEADER_BODY_BYTES,
        "a header body of {body_length} bytes: {} members is absurd",
        membership.all_members().len()
    );
    let mut header = Vec::with_capacity(FIXED_HEADER_BYTES + body.len() + 4);
    header.extend_from_slice(&SNAPSHOT_MAGIC);
    header.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&body_length.to_le_bytes());
    header.extend_from_slice(&body);
    let checksum = crc32c::crc32c(&header);
    header.extend_from_slice(&checksum.to_le_bytes());
    Ok(header)
}

/// Appends the frame of one chunk (`data` must be 1 ..= [`MAX_CHUNK_BYTES`] long) to `frame`.
pub fn encode_chunk(data: &[u8], frame: &mut Vec<u8>) {
    let length = u32::try_from(data.len())
        .ok()
        .filter(|&length| (1..=MAX_CHUNK_BYTES).contains(&length))
        .expect("the writer makes chunks of 1 ..= MAX_CHUNK_BYTES bytes");
    let length_bytes = length.to_le_bytes();
    frame.extend_from_slice(&length_bytes);
    frame.extend_from_slice(&chunk_checksum(&length_bytes, data).to_le_bytes());
    frame.extend_from_slice(data);
}

fn chunk_checksum(length_bytes: &[u8; 4], data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(length_bytes), data)
}

/// The trailer of a file whose bytes before it have CRC32C `file_checksum`.
pub fn encode_trailer(payload_length: u64, file_checksum: u32) -> [u8; TRAILER_BYTES] {
    let mut trailer = [0u8; TRAILER_BYTES];
    trailer[4..12].copy_from_slice(&payload_length.to_le_bytes());
    trailer[12..16].copy_from_slice(&file_checksum.to_le_bytes());
    trailer[16..24].copy_from_slice(&TRAILER_MAGIC);
    trailer
}

/// Where a snapshot file's bytes come from: an open file, or memory.
pub trait SnapshotSource: Send + Sync {
    /// The file's length.
    fn length(&self) -> io::Result<u64>;
    /// Fills `buffer` from `offset`; an error if the file ends before.
    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()>;
}

/// An open [`FileHandle`] as a [`SnapshotSource`]. The handle keeps reading after its file is
/// removed (see `file_system`'s `# Correctness`), which is what lets a reader outlive retention.
#[derive(Debug)]
pub struct HandleSource {
    /// `FileHandle` is `Send` but not `Sync`; readers on several threads take turns.
    handle: Mutex<Box<dyn FileHandle>>,
}

impl HandleSource {
    pub fn new(handle: Box<dyn FileHandle>) -> HandleSource {
        HandleSource {
            handle: Mutex::new(handle),
        }
    }

    fn handle(&self) -> std::sync::MutexGuard<'_, Box<dyn FileHandle>> {
        // A panic while reading leaves the handle as it was: reads change nothing.
        self.handle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SnapshotSource for HandleSource {
    fn length(&self) -> io::Result<u64> {
        self.handle().length()
    }

    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        self.handle().read_exact_at(buffer, offset)
    }
}

/// How much of a file [`verify`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The header, every chunk length and the trailer's place and magic: a few bytes per chunk
    /// read. Catches a cut or misframed file, not a flipped payload bit.
    Structure,
    /// Everything: every chunk's checksum and the file checksum too.
    Full,
}

/// Checks the file in `source` (named `path` in errors) and returns what it describes:
/// `last_log_id` and `membership` from its header, its length and its file checksum.
pub fn verify(
    source: Arc<dyn SnapshotSource>,
    path: &str,
    verification: Verification,
) -> Result<SnapshotMeta, SnapshotError> {
    let check_data = verification == Verification::Full;
    let mut parser = SnapshotParser::open(source, path)?;
    let mut scratch = Vec::new();
    while parser.next_chunk(check_data, &mut scratch)? {}
    Ok(parser.meta())
}

/// Checks that `found` (what a file holds) is the snapshot `expected` describes.
pub fn check_matches(
    found: &SnapshotMeta,
    expected: &SnapshotMeta,
    path: &str,
) -> Result<(), SnapshotError> {
    let mismatch = if found.last_log_id != expected.last_log_id {
        Some((
            8,
            format!(
                "header names last log id {}, expected {}",
                found.last_log_id, expected.last_log_id
            ),
        ))
    } else if found.membership != expected.membership {
        Some((
            8,
            format!(
                "header names configuration {}, expected {}",
                found.membership, expected.membership
            ),
        ))
    } else if found.size_bytes != expected.size_bytes {
        Some((
            found.size_bytes.min(expected.size_bytes),
            format!(
                "file is {} bytes long, expected {}",
                found.size_bytes, expected.size_bytes
            ),
        ))
    } else if found.file_checksum != expected.file_checksum {
        Some((
            found.size_bytes.saturating_sub(TRAILER_BYTES as u64),
            format!(
                "file checksum is {:08x}, expected {:08x}",
                found.file_checksum, expected.file_checksum
            ),
        ))
    } else {
        None
    };
    match mismatch {
        None => Ok(()),
        Some((offset, reason)) => Err(corrupt(path, offset, reason)),
    }
}

/// Walks a snapshot file from its header to its trailer, one chunk at a time, checking as it
/// goes. Used by [`verify`] and by the payload reader.
pub struct SnapshotParser {
    source: Arc<dyn SnapshotSource>,
    path: String,
    file_length: u64,
    /// Where the next chunk (or the trailer) starts.
    position: u64,
    /// CRC32C of every byte before `position`, when data is checked.
    running_checksum: u32,
    /// Whether every byte so far went into `running_checksum`.
    checksum_complete: bool,
    payload_length: u64,
    last_log_id: LogId,
    membership: Membership,
    /// The trailer's file checksum, once the trailer has been read and checked.
    trailer_checksum: Option<u32>,
}

impl SnapshotParser {
    /// Reads and checks the header.
    pub fn open(
        source: Arc<dyn SnapshotSource>,
        path: &str,
    ) -> Result<SnapshotParser, SnapshotError> {
        let file_length = source
            .length()
            .map_err(|source| io_error("read the length of", path, source))?;
        let minimum = (FIXED_HEADER_BYTES + 4 + TRAILER_BYTES) as u64;
        if file_length < minimum {
            return Err(corrupt(
                path,
                0,
                format!(
                    "file is {file_length} bytes long, shorter than the smallest snapshot \
                     ({minimum} bytes)"
                ),
            ));
        }
        let mut fixed = [0u8; FIXED_HEADER_BYTES];
        read_at(source.as_ref(), path, &mut fixed, 0)?;
        if fixed[0..8] != SNAPSHOT_MAGIC {
            return Err(corrupt(path, 0, "not a snapshot file (bad magic)".into()));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(corrupt(
                path,
                8,
                format!(
                    "snapshot format version {version}, this build reads version \
                     {SNAPSHOT_FORMAT_VERSION}"
                ),
            ));
        }
        if fixed[10..12] != [0, 0] {
            return Err(corrupt(
                path,
                10,
                "reserved header bytes are not zero".into(),
            ));
        }
        let body_length = u32::from_le_bytes(
            fixed[12..16]
                .try_into()
                .expect("4 bytes convert to [u8; 4]"),
        );
        let header_end = FIXED_HEADER_BYTES as u64 + u64::from(body_length) + 4;
        if body_length == 0
            || body_length > MAX_HEADER_BODY_BYTES
            || header_end + TRAILER_BYTES as u64 > file_length
        {
            return Err(corrupt(
                path,
                12,
                format!(
                    "header body length {body_length} is outside 1 ..= {MAX_HEADER_BODY_BYTES} \
                     or runs past the end of the {file_length}-byte file (refused before \
                     allocating)"
                ),
            ));
        }
        let mut rest = vec![0u8; body_length as usize + 4];
        read_at(source.as_ref(), path, &mut rest, FIXED_HEADER_BYTES as u64)?;
        let (body, checksum_bytes) = rest.split_at(body_length as usize);
        let stored_checksum = u32::from_le_bytes(
            checksum_bytes
                .try_into()
                .expect("4 bytes convert to [u8; 4]"),
        );
        let checksum = crc32c::crc32c_append(crc32c::crc32c(&fixed), body);
        if checksum != stored_checksum {
            return Err(corrupt(
                path,
                FIXED_HEADER_BYTES as u64 + u64::from(body_length),
                "header fails its checksum".into(),
            ));
        }
        let header: HeaderBody = codec::decode(body).map_err(|error| {
            corrupt(
                path,
                FIXED_HEADER_BYTES as u64,
                format!("header body does not decode: {error}"),
            )
        })?;
        let running_checksum = crc32c::crc32c_append(checksum, checksum_bytes);
        Ok(SnapshotParser {
            source,
            path: path.to_string(),
            file_length,
            position: header_end,
            running_checksum,
            checksum_complete: true,
            payload_length: 0,
            last_log_id: header.last_log_id,
            membership: header
                .membership
                .unwrap_or_else(|| Membership::with_voters(header.members)),
            trailer_checksum: None,
        })
    }

    /// The file's path, as errors name it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads the next chunk into `data` (replacing its contents) and returns `true`, or reads
    /// and checks the trailer and returns `false` when the chunks are over. With `check_data`
    /// the chunk's checksum is checked, and when it is the last chunk the trailer is read and
    /// checked before it is returned, so every byte handed out is vouched for. Without it the
    /// data is skipped, not read (`data` is left empty).
    pub fn next_chunk(
        &mut self,
        check_data: bool,
        data: &mut Vec<u8>,
    ) -> Result<bool, SnapshotError> {
        data.clear();
        if self.trailer_checksum.is_some() {
            return Ok(false);
        }
        let start = self.position;
        let length = self.read_u32(start)?;
        if length == 0 {
            self.read_trailer()?;
            return Ok(false);
        }
        let data_start = start + CHUNK_HEADER_BYTES as u64;
        let end = data_start + u64::from(length);
        let room = self.file_length - TRAILER_BYTES as u64;
        if length > MAX_CHUNK_BYTES || end > room {
            return Err(corrupt(
                &self.path,
                start,
                format!(
                    "chunk length {length} is over {MAX_CHUNK_BYTES} or runs past where the \
                     trailer must start (byte {room}) (refused before allocating)"
                ),
            ));
        }
        if check_data {
            let stored_checksum = self.read_u32(start + 4)?;
            data.resize(length as usize, 0);
            read_at(self.source.as_ref(), &self.path, data, data_start)?;
            let length_bytes = length.to_le_bytes();
            if chunk_checksum(&length_bytes, data) != stored_checksum {
                data.clear();
                return Err(corrupt(
                    &self.path,
                    start,
                    format!("chunk of {length} bytes fails its checksum"),
                ));
            }
            self.running_checksum = crc32c::crc32c_append(self.running_checksum, &length_bytes);
            self.running_checksum =
                crc32c::crc32c_append(self.running_checksum, &stored_checksum.to_le_bytes());
            self.running_checksum = crc32c::crc32c_append(self.running_checksum, data);
        } else {
            self.checksum_complete = false;
        }
        self.position = end;
        self.payload_length += u64::from(length);
        if check_data && self.read_u32(end)? == 0 {
            // The last chunk: release it only once the whole file is vouched for.
            if let Err(error) = self.read_trailer() {
                data.clear();
                return Err(error);
            }
        }
        Ok(true)
    }

    /// Reads and checks the trailer at `position`.
    fn read_trailer(&mut self) -> Result<(), SnapshotError> {
        let start = self.position;
        if start + TRAILER_BYTES as u64 != self.file_length {
            return Err(corrupt(
                &self.path,
                start,
                format!(
                    "the trailer starts at byte {start} but the file is {} bytes long (it must \
                     end the file, {TRAILER_BYTES} bytes)",
                    self.file_length
                ),
            ));
        }
        let mut trailer = [0u8; TRAILER_BYTES];
        read_at(self.source.as_ref(), &self.path, &mut trailer, start)?;
        if trailer[16..24] != TRAILER_MAGIC {
            return Err(corrupt(&self.path, start + 16, "bad trailer magic".into()));
        }
        let payload_length = u64::from_le_bytes(
            trailer[4..12]
                .try_into()
                .expect("8 bytes convert to [u8; 8]"),
        );
        if payload_length != self.payload_length {
            return Err(corrupt(
                &self.path,
                start + 4,
                format!(
                    "trailer says {payload_length} payload bytes, the chunks hold {}",
                    self.payload_length
                ),
            ));
        }
        let file_checksum = u32::from_le_bytes(
            trailer[12..16]
                .try_into()
                .expect("4 bytes convert to [u8; 4]"),
        );
        if self.checksum_complete && file_checksum != self.running_checksum {
            return Err(corrupt(
                &self.path,
                start + 12,
                format!(
                    "file checksum fails: the trailer says {file_checksum:08x}, the bytes \
                     before it have {:08x}",
                    self.running_checksum
                ),
            ));
        }
        self.trailer_checksum = Some(file_checksum);
        Ok(())
    }

    fn read_u32(&self, offset: u64) -> Result<u32, SnapshotError> {
        if offset + 4 > self.file_length {
            return Err(corrupt(
                &self.path,
                offset,
                "the file ends before its trailer".into(),
            ));
        }
        let mut bytes = [0u8; 4];
        read_at(self.source.as_ref(), &self.path, &mut bytes, offset)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// What the file describes. Its `file_checksum` is the trailer's, meaningful once
    /// [`SnapshotParser::next_chunk`] returned `false`.
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.last_log_id,
            membership: self.membership.clone(),
            size_bytes: self.file_length,
            file_checksum: self.trailer_checksum.unwrap_or(0),
        }
    }
}

/// The payload of a snapshot as an `io::Read`: each chunk is checked before any of its bytes
/// is returned, the last one only after the trailer checked too. A check that fails is an
/// `io::Error` of kind `InvalidData` wrapping the [`SnapshotError::Corrupt`] (get it back with
/// `error.get_ref()` and `downcast_ref::<SnapshotError>()`); a read after an error fails again.
pub struct PayloadReader {
    parser: SnapshotParser,
    chunk: Vec<u8>,
    /// How much of `chunk` was handed out.
    consumed: usize,
    finished: bool,
    failed: bool,
}

impl PayloadReader {
    pub fn new(parser: SnapshotParser) -> PayloadReader {
        PayloadReader {
            parser,
            chunk: Vec::new(),
            consumed: 0,
            finished: false,
            failed: false,
        }
    }
}

impl io::Read for PayloadReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: an earlier read failed verification",
                    self.parser.path()
                ),
            ));
        }
        while self.consumed == self.chunk.len() {
            if self.finished {
                return Ok(0);
            }
            self.consumed = 0;
            match self.parser.next_chunk(true, &mut self.chunk) {
                Ok(true) => {}
                Ok(false) => self.finished = true,
                Err(error) => {
                    self.failed = true;
                    let kind = match error {
                        SnapshotError::Corrupt { .. } => io::ErrorKind::InvalidData,
                        _ => io::ErrorKind::Other,
                    };
                    return Err(io::Error::new(kind, error));
                }
            }
        }
        let count = buffer.len().min(self.chunk.len() - self.consumed);
        buffer[..count].copy_from_slice(&self.chunk[self.consumed..self.consumed + count]);
        self.consumed += count;
        Ok(count)
    }
}

fn read_at(
    source: &dyn SnapshotSource,
    path: &str,
    buffer: &mut [u8],
    offset: u64,
) -> Result<(), SnapshotError> {
    source
        .read_exact_at(buffer, offset)
        .map_err(|error| io_error("read", path, error))
}

/// A snapshot file outside any store, on the real disk, as a [`SnapshotSource`]: what a tool
/// that checks a backup before trusting it reads (`raft-node restore`).
#[derive(Debug)]
pub struct PathSource {
    file: std::fs::File,
}

impl PathSource {
    pub fn open(path: &std::path::Path) -> Result<PathSource, SnapshotError> {
        let file = std::fs::File::open(path)
            .map_err(|error| io_error("open", &path.display().to_string(), error))?;
        Ok(PathSource { file })
    }
}

impl SnapshotSource for PathSource {
    fn length(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buffer, offset)
    }
}

/// Verifies the snapshot file at `path` completely (header, every chunk's checksum, the file
/// checksum and the trailer) and returns what it describes, reading it chunk by chunk (never
/// whole into memory).
pub fn verify_file(path: &std::path::Path) -> Result<SnapshotMeta, SnapshotError> {
    let source = Arc::new(PathSource::open(path)?);
    verify(source, &path.display().to_string(), Verification::Full)
}

/// A [`SnapshotError::Corrupt`].
pub fn corrupt(path: &str, offset: u64, reason: String) -> SnapshotError {
    SnapshotError::Corrupt {
        path: path.to_string(),
        offset,
        reason,
    }
}

/// A [`SnapshotError::Io`].
pub fn io_error(operation: &'static str, path: &str, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        operation,
        path: path.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{LogIndex, Term};
    use std::io::Read;

    /// A file in memory.
    struct MemorySource(Vec<u8>);

    impl SnapshotSource for MemorySource {
        fn length(&self) -> io::Result<u64> {
            Ok(self.0.len() as u64)
        }
        fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
            let start = offset as usize;
            let bytes = self
                .0
                .get(start..start + buffer.len())
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            buffer.copy_from_slice(bytes);
            Ok(())
        }
    }

    fn sample_file(chunks: &[&[u8]]) -> Vec<u8> {
        let mut file = encode_header(
            LogId::new(Term(3), LogIndex(42)),
            &Membership::with_voters([NodeId(1), NodeId(2)]),
        )
        .expect("encodable");
        let mut payload_length = 0;
        for chunk in chunks {
            encode_chunk(chunk, &mut file);
            payload_length += chunk.len() as u64;
        }
        let checksum = crc32c::crc32c(&file);
        file.extend_from_slice(&encode_trailer(payload_length, checksum));
        file
    }

    fn read_payload(file: Vec<u8>) -> io::Result<Vec<u8>> {
        let parser =
            SnapshotParser::open(Arc::new(MemorySource(file)), "mem").map_err(io::Error::other)?;
        let mut payload = Vec::new();
        PayloadReader::new(parser).read_to_end(&mut payload)?;
        Ok(payload)
    }

    #[test]
    fn a_file_round_trips_and_verifies() {
        let file = sample_file(&[b"hello ", b"world"]);
        let length = file.len() as u64;
        let checksum = crc32c::crc32c(&file[..file.len() - TRAILER_BYTES]);
        for verification in [Verification::Structure, Verification::Full] {
            let meta = verify(Arc::new(MemorySource(file.clone())), "mem", verification)
                .expect("a file as written verifies");
            assert_eq!(meta.last_log_id, LogId::new(Term(3), LogIndex(42)));
            assert_eq!(
                meta.membership,
                Membership::with_voters([NodeId(1), NodeId(2)])
            );
            assert_eq!(meta.size_bytes, length);
            assert_eq!(meta.file_checksum, checksum);
        }
        assert_eq!(read_payload(file).expect("reads"), b"hello world");
        assert_eq!(read_payload(sample_file(&[])).expect("reads"), b"");
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_full_verification_and_the_payload_read() {
        let file = sample_file(&[b"first chunk", b"second chunk"]);
        for position in 0..file.len() {
            for bit in [0u8, 5] {
                let mut damaged = file.clone();
                damaged[position] ^= 1 << bit;
                let verified = verify(
                    Arc::new(MemorySource(damaged.clone())),
                    "mem",
                    Verification::Full,
                );
                assert!(
                    matches!(verified, Err(SnapshotError::Corrupt { .. })),
                    "flip at {position}: {verified:?}"
                );
                assert!(read_payload(damaged).is_err(), "flip at {position}");
            }
        }
    }

    #[test]
    fn a_file_cut_anywhere_fails_even_structure_verification() {
        let file = sample_file(&[b"first chunk", b"second chunk"]);
        for cut in 0..file.len() {
            let verified = verify(
                Arc::new(MemorySource(file[..cut].to_vec())),
                "mem",
                Verification::Structure,
            );
            assert!(
                matches!(verified, Err(SnapshotError::Corrupt { .. })),
                "cut at {cut}: {verified:?}"
            );
        }
    }
}
