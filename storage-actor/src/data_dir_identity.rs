//! Whose data directory this is: the cluster_id and node id it was created for, recorded on
//! first start and checked on every later one (docs/ARCHITECTURE.md, rule 7).
//!
//! A node started on another member's data directory (a copied config, a swapped mount) would
//! otherwise recover that member's log and votes as its own: it could vote twice in a term in
//! the other member's name, or acknowledge entries it never received. So a mismatch refuses to
//! start, naming both identities.
//!
//! # Layout
//!
//! `<data_dir>/IDENTITY`, a short text file (so an operator can read it with `cat`):
//!
//! ```text
//! raft-node data directory identity v1
//! node_id 1
//! cluster_id_hex 64656661756c74
//! crc32c 1a2b3c4d
//! # node 1 of cluster "default"
//! ```
//!
//! The cluster_id is hex-encoded so any string survives the line format; the `crc32c` line is
//! the CRC32C of every byte before it, so a damaged file is refused instead of misread; the
//! comment line is for people and is not read.
//!
//! # Correctness
//!
//! - The file is written once, durably: to `IDENTITY.tmp`, fsync'd, renamed over `IDENTITY`, then
//!   the data directory and its parent are fsync'd. A crash leaves either no identity (the next
//!   start writes it again) or the whole one, never a half-written file taken as valid.
//! - It is checked before the write-ahead log is opened, so a mismatched node touches nothing.
//! - A data directory without the file (a new one, or one written before identities existed)
//!   is adopted: the identity is recorded and the node starts.

use crate::file_system::{append_all, FileSystem};
use raft_types::NodeId;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The name of the identity file inside the data directory.
pub const IDENTITY_FILE_NAME: &str = "IDENTITY";
const TEMPORARY_FILE_NAME: &str = "IDENTITY.tmp";
const FIRST_LINE: &str = "raft-node data directory identity v1";

/// The cluster and node a data directory belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDirIdentity {
    pub cluster_id: String,
    pub node_id: NodeId,
}

impl fmt::Display for DataDirIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "node {} of cluster {:?}",
            self.node_id.0, self.cluster_id
        )
    }
}

/// What [`check_or_record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityCheck {
    /// The directory had no identity; this one was recorded.
    Recorded,
    /// The directory's identity is this node's.
    Matched,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory belongs to another node or cluster.
    #[error("data dir {data_dir} belongs to {found}, this is {expected}; refusing to start (point data_dir at this node's own directory)")]
    Mismatch {
        data_dir: PathBuf,
        found: DataDirIdentity,
        expected: DataDirIdentity,
    },
    /// The identity file exists but cannot be read as one.
    #[error("data dir identity file {path} is damaged ({reason}); refusing to start")]
    Damaged { path: PathBuf, reason: String },
    #[error("data dir identity: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Checks that `data_dir` on `file_system` (the real disk: `RealFileSystem`) belongs to
/// `expected`, recording `expected` first if the directory has no identity yet (creating the
/// directory if needed). See the module's `# Correctness`.
pub fn check_or_record(
    file_system: &dyn FileSystem,
    data_dir: &Path,
    expected: &DataDirIdentity,
) -> Result<IdentityCheck, IdentityError> {
    let path = data_dir.join(IDENTITY_FILE_NAME);
    match file_system.read_file(&path) {
        Ok(bytes) => {
            let found = decode(&bytes).map_err(|reason| IdentityError::Damaged {
                path: path.clone(),
                reason,
            })?;
            if &found == expected {
                Ok(IdentityCheck::Matched)
            } else {
                Err(IdentityError::Mismatch {
                    data_dir: data_dir.to_path_buf(),
                    found,
                    expected: expected.clone(),
                })
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            record(file_system, data_dir, expected)?;
            Ok(IdentityCheck::Recorded)
        }
        Err(source) => Err(IdentityError::Io {
            operation: "read",
            path,
            source,
        }),
    }
}

/// Reads the identity recorded in `data_dir`, if there is one.
pub fn read(
    file_system: &dyn FileSystem,
    data_dir: &Path,
) -> Result<Option<DataDirIdentity>, IdentityError> {
    let path = data_dir.join(IDENTITY_FILE_NAME);
    match file_system.read_file(&path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|reason| IdentityError::Damaged { path, reason }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Io {
            operation: "read",
            path,
            source,
        }),
    }
}

/// Writes the identity durably: temporary file, fsync, rename, fsync of the directory and its
/// parent (the directory itself may have just been created).
fn record(
    file_system: &dyn FileSystem,
    data_dir: &Path,
    identity: &DataDirIdentity,
) -> Result<(), IdentityError> {
    let io_error = |operation: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io {
            operation,
            path,
            source,
        }
    };
    file_system
        .create_dir_all(data_dir)
        .map_err(io_error("create directory", data_dir))?;
    let temporary = data_dir.join(TEMPORARY_FILE_NAME);
    // Left behind by a start that crashed while recording: never the identity, start over.
    match file_system.remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("remove", &temporary)(error))
        }
        _ => {}
    }
    let mut file = file_system
        .create_new_file(&temporary)
        .map_err(io_error("create", &temporary))?;
    append_all(file.as_mut(), &encode(identity)).map_err(io_error("write", &temporary))?;
    file.sync_data().map_err(io_error("fsync", &temporary))?;
    drop(file);
    let path = data_dir.join(IDENTITY_FILE_NAME);
    file_system
        .rename(&temporary, &path)
        .map_err(io_error("rename", &path))?;
    file_system
        .sync_directory(data_dir)
        .map_err(io_error("fsync directory", data_dir))?;
    if let Some(parent) = data_dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        file_system
            .sync_directory(parent)
            .map_err(io_error("fsync directory", parent))?;
    }
    Ok(())
}

/// The file's bytes; see the module's `# Layout`.
pub fn encode(identity: &DataDirIdentity) -> Vec<u8> {
    let hex: String = identity
        .cluster_id
        .bytes()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut text = format!(
        "{FIRST_LINE}\nnode_id {}\ncluster_id_hex {hex}\n",
        identity.node_id.0
    );
    let checksum = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("crc32c {checksum:08x}\n# {identity}\n"));
    text.into_bytes()
}

/// Parses the file's bytes, or says what is wrong with them.
pub fn decode(bytes: &[u8]) -> Result<DataDirIdentity, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let checksum_line_start = text
        .find("\ncrc32c ")
        .map(|position| position + 1)
        .ok_or("no crc32c line")?;
    let (checked, rest) = text.split_at(checksum_line_start);
    let stored = rest
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("crc32c "))
        .and_then(|hex| u32::from_str_radix(hex.trim(), 16).ok())
        .ok_or("unreadable crc32c line")?;
    if crc32c::crc32c(checked.as_bytes()) != stored {
        return Err("checksum mismatch".to_string());
    }
    let mut lines = checked.lines();
    if lines.next() != Some(FIRST_LINE) {
        return Err(format!("the first line is not {FIRST_LINE:?}"));
    }
    let node_id = lines
        .next()
        .and_then(|line| line.strip_prefix("node_id "))
        .and_then(|number| number.parse().ok())
        .ok_or("unreadable node_id line")?;
    let cluster_id_hex = lines
        .next()
        .and_then(|line| line.strip_prefix("cluster_id_hex "))
        .ok_or("no cluster_id_hex line")?;
    let cluster_id = decode_hex(cluster_id_hex).ok_or("unreadable cluster_id_hex")?;
    Ok(DataDirIdentity {
        cluster_id,
        node_id: NodeId(node_id),
    })
}

fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|start| u8::from_str_radix(hex.get(start..start + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_system::RealFileSystem;
    use crate::sim_file_system::SimFileSystem;

    fn identity(cluster_id: &str, node_id: u64) -> DataDirIdentity {
        DataDirIdentity {
            cluster_id: cluster_id.to_string(),
            node_id: NodeId(node_id),
        }
    }

    #[test]
    fn the_file_round_trips_any_cluster_id() {
        for cluster_id in ["default", "", "with spaces\nand a newline", "ünïcode"] {
            let original = identity(cluster_id, 7);
            assert_eq!(decode(&encode(&original)), Ok(original));
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_before_the_comment_is_refused() {
        let bytes = encode(&identity("A", 1));
        let comment = bytes.len() - "# node 1 of cluster \"A\"\n".len();
        for position in 0..comment {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(decode(&damaged).is_err(), "flip at {position} was accepted");
        }
    }

    const REAL: RealFileSystem = RealFileSystem;

    #[test]
    fn first_start_records_and_later_starts_check() {
        let parent = tempfile::tempdir().expect("a temporary directory can be created");
        let data_dir = parent.path().join("node-1");
        let node_1_of_a = identity("A", 1);
        assert_eq!(
            check_or_record(&REAL, &data_dir, &node_1_of_a).expect("recorded"),
            IdentityCheck::Recorded
        );
        assert_eq!(
            check_or_record(&REAL, &data_dir, &node_1_of_a).expect("matched"),
            IdentityCheck::Matched
        );
        assert!(!data_dir.join(TEMPORARY_FILE_NAME).exists());
        for other in [identity("A", 2), identity("B", 1)] {
            let error = check_or_record(&REAL, &data_dir, &other).expect_err("refused");
            let message = error.to_string();
            assert!(
                message.contains("belongs to node 1 of cluster \"A\""),
                "{message}"
            );
            assert!(message.contains(&format!("this is {other}")), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        assert_eq!(read(&REAL, &data_dir).expect("readable"), Some(node_1_of_a));
    }

    #[test]
    fn a_damaged_file_is_refused_naming_it() {
        let data_dir = tempfile::tempdir().expect("a temporary directory can be created");
        std::fs::write(data_dir.path().join(IDENTITY_FILE_NAME), b"garbage").expect("writable");
        let error =
            check_or_record(&REAL, data_dir.path(), &identity("A", 1)).expect_err("refused");
        assert!(matches!(error, IdentityError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains(IDENTITY_FILE_NAME), "{error}");
    }

    #[test]
    fn a_recorded_identity_survives_power_loss() {
        // Only the node's parent directory exists durably: the data directory, the file and
        // its name are made durable by `record` itself.
        for seed in 0..16 {
            let disk = SimFileSystem::new(seed);
            disk.create_dir_all(Path::new("/var/lib"))
                .and_then(|()| disk.sync_directory(Path::new("/")))
                .and_then(|()| disk.sync_directory(Path::new("/var")))
                .expect("the disk is on");
            let data_dir = Path::new("/var/lib/raft-node");
            let node_1_of_a = identity("A", 1);
            check_or_record(&disk, data_dir, &node_1_of_a).expect("recorded");
            disk.power_loss();
            assert_eq!(
                read(&disk, data_dir).expect("readable"),
                Some(node_1_of_a.clone()),
                "seed {seed}"
            );
            let error = check_or_record(&disk, data_dir, &identity("A", 2)).expect_err("refused");
            assert!(matches!(error, IdentityError::Mismatch { .. }), "{error}");
        }
    }

    #[test]
    fn a_power_loss_while_recording_leaves_no_identity_or_the_whole_one() {
        let node_1_of_a = identity("A", 1);
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let disk = SimFileSystem::new(seed);
            disk.create_dir_all(Path::new("/data"))
                .and_then(|()| disk.sync_directory(Path::new("/")))
                .expect("the disk is on");
            disk.power_off_after(seed % 9);
            let _ = check_or_record(&disk, Path::new("/data/node"), &node_1_of_a);
            disk.power_loss();
            match read(&disk, Path::new("/data/node")) {
                Ok(found) => {
                    assert!(found.is_none() || found == Some(node_1_of_a.clone()));
                    outcomes.insert(found.is_some());
                }
                Err(error) => panic!("seed {seed}: a half-written identity was read: {error}"),
            }
            // The next start records it (again) and goes on.
            check_or_record(&disk, Path::new("/data/node"), &node_1_of_a).expect("recorded");
        }
        assert_eq!(outcomes.len(), 2, "both outcomes occur: {outcomes:?}");
    }
}
