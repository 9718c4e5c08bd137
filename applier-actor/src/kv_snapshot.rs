//! The `KvStore`'s snapshot payload: its byte format, the writer ([`KvSnapshot`], a captured
//! map) and the reader (`read_map`, used by `KvStore::restore`).
//!
//! # Format (version 1)
//!
//! Snapshots move between replicas and versions, so this is a wire format: changing it means a
//! new version byte, with the reader of every older version kept. All integers little-endian.
//!
//! | size | field |
//! | --- | --- |
//! | 4 | magic `KVSN` |
//! | 1 | format version, `1` |
//! | 8 | entry count `n` (u64) |
//! | ... | `n` entries, in strictly increasing key order (bytewise, which is `String`'s order) |
//!
//! and each entry:
//!
//! | size | field |
//! | --- | --- |
//! | 4 | key length `k` (u32) |
//! | `k` | the key, UTF-8 |
//! | 4 | value length `v` (u32) |
//! | `v` | the value, any bytes |
//!
//! The payload ends right after the last entry. A map has exactly one encoding (the order is
//! fixed, nothing else varies), so replicas with the same state write the same bytes.
//!
//! Reading refuses anything else: a wrong magic or version, a truncated entry, a key that is
//! not UTF-8, keys out of order or repeated, bytes after the last entry. Lengths come from
//! the payload, so the reader never allocates by them up front: it reads at most what is
//! there, and a length larger than the rest of the payload is a truncation.

use crate::kv_store::KvMap;
use crate::state_machine::StateMachineSnapshot;
use std::io::{self, BufWriter, Read, Write};

const MAGIC: [u8; 4] = *b"KVSN";
const VERSION: u8 = 1;

/// A `KvStore`'s map as of [`crate::StateMachine::snapshot`]: a structurally shared copy, so
/// capturing it is O(1) and the store goes on applying while it is written.
pub(crate) struct KvSnapshot {
    pub(crate) entries: KvMap,
}

impl StateMachineSnapshot for KvSnapshot {
    fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        // Four small writes per entry: buffer them rather than hand each to the store.
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        out.write_all(&MAGIC)?;
        out.write_all(&[VERSION])?;
        out.write_all(&(self.entries.size() as u64).to_le_bytes())?;
        for (key, value) in self.entries.iter() {
            write_field(&mut out, key.as_bytes(), "key")?;
            write_field(&mut out, value, "value")?;
        }
        out.flush()
    }
}

/// One length-prefixed field.
fn write_field(out: &mut impl Write, bytes: &[u8], what: &str) -> io::Result<()> {
    let length = u32::try_from(bytes.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {what} of {} bytes does not fit the format", bytes.len()),
        )
    })?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(bytes)
}

/// Reads a whole payload written by [`KvSnapshot::write_to`] into a new map. The error says
/// what was wrong and at which byte of the payload.
pub(crate) fn read_map(payload: &mut dyn Read) -> Result<KvMap, String> {
    let mut reader = PayloadReader {
        inner: payload,
        offset: 0,
    };
    let mut magic = [0; 4];
    reader.read_exact(&mut magic, "the magic")?;
    if magic != MAGIC {
        return Err(format!(
            "not a key-value snapshot: magic {magic:02x?}, expected {MAGIC:02x?}"
        ));
    }
    let mut version = [0; 1];
    reader.read_exact(&mut version, "the format version")?;
    if version[0] != VERSION {
        return Err(format!(
            "key-value snapshot format version {} is not known (this node reads {VERSION})",
            version[0]
        ));
    }
    let count = reader.read_u64("the entry count")?;
    let mut entries = KvMap::new_sync();
    for position in 0..count {
        let key_offset = reader.offset;
        let key = reader.read_field("a key")?;
        let key = String::from_utf8(key)
            .map_err(|_| format!("entry {position}: the key at byte {key_offset} is not UTF-8"))?;
        if let Some((previous, _)) = entries.last() {
            if *previous >= key {
                return Err(format!(
                    "entry {position}: key {key:?} at byte {key_offset} does not come after \
                     {previous:?} (keys are written in strictly increasing order)"
                ));
            }
        }
        let value = reader.read_field("a value")?;
        entries.insert_mut(key, value);
    }
    reader.expect_end()?;
    Ok(entries)
}

/// Reads a payload while counting its bytes, so every error names where it happened.
struct PayloadReader<'a> {
    inner: &'a mut dyn Read,
    offset: u64,
}

impl PayloadReader<'_> {
    fn read_exact(&mut self, buffer: &mut [u8], what: &str) -> Result<(), String> {
        match self.inner.read_exact(buffer) {
            Ok(()) => {
                self.offset += buffer.len() as u64;
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(format!(
                "truncated key-value snapshot: the payload ends inside {what} (at byte {})",
                self.offset
            )),
            Err(error) => Err(format!(
                "reading the key-value snapshot at byte {}: {error}",
                self.offset
            )),
        }
    }

    fn read_u64(&mut self, what: &str) -> Result<u64, String> {
        let mut bytes = [0; 8];
        self.read_exact(&mut bytes, what)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A length-prefixed field. The buffer grows with the bytes actually read, never to a
    /// length the payload only claims.
    fn read_field(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let mut length = [0; 4];
        self.read_exact(&mut length, what)?;
        let length = u32::from_le_bytes(length);
        let start = self.offset;
        let mut bytes = Vec::new();
        let read = (&mut self.inner)
            .take(u64::from(length))
            .read_to_end(&mut bytes)
            .map_err(|error| format!("reading the key-value snapshot at byte {start}: {error}"))?;
        self.offset += read as u64;
        if read < length as usize {
            return Err(format!(
                "truncated key-value snapshot: {what} at byte {start} claims {length} bytes, \
                 the payload has {read} more"
            ));
        }
        Ok(bytes)
    }

    fn expect_end(&mut self) -> Result<(), String> {
        let mut byte = [0; 1];
        loop {
            match self.inner.read(&mut byte) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(format!(
                        "the key-value snapshot goes on after its last entry (at byte {})",
                        self.offset
                    ))
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(format!(
                        "reading the key-value snapshot at byte {}: {error}",
                        self.offset
                    ))
                }
            }
        }
    }
}
