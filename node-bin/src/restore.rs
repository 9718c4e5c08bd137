//! `raft-node restore FILE --config node.toml`: turns a backup (a snapshot file saved by
//! `raftctl snapshot save`) into a data directory this node starts from, as etcd's
//! `snapshot restore` does. Every node of the new cluster restores the same file, each with its
//! own configuration; the cluster's members are the configuration's `[[members]]`.
//!
//! What the data directory holds afterwards:
//!
//! - `IDENTITY`: this node of this cluster (`storage_actor::data_dir_identity`);
//! - `snapshots/`: the file, installed through the snapshot store's own receive path, which
//!   verifies it again (header against its description, every checksum) before it is complete;
//! - `wal/`: an empty log reset to the snapshot's last `LogId`, and the hard state
//!   `current_term` = the snapshot's last term, no vote.
//!
//! # Correctness
//!
//! - **Nothing is overwritten.** A data directory that already holds a log or snapshots is
//!   refused before anything is written: restoring over a live node's state would replace what
//!   it acknowledged.
//! - **Nothing unverified is installed.** The file is checked completely (every chunk's
//!   checksum and the file checksum) before the data directory is touched; a damaged backup
//!   changes nothing.
//! - **The term.** The core refuses a log holding an entry from a term later than its
//!   `current_term`, and the snapshot's last entry counts as the log's last. So the hard state
//!   starts at the snapshot's term (without a vote, so every node may vote in the first
//!   election); the first leader's entries then come in a later term, and the election
//!   restriction compares equal last log ids on every restored node.
//! - **Durable before success.** The snapshot store syncs the installed file and its
//!   directory; the log's reset and hard state are synced before `restore` reports success.

use crate::node_config::{NodeConfig, StorageEngine};
use crate::node_runtime;
use raft_proto::snapshot::SnapshotStore;
use raft_types::{HardState, NodeId, SnapshotMeta};
use std::io::Read;
use std::path::{Path, PathBuf};
use storage_actor::data_dir_identity::{check_or_record, DataDirIdentity};
use storage_actor::file_system::RealFileSystem;
use storage_actor::{FileLogStore, FileLogStoreConfig, FileSnapshotStore, LogStore};

/// Bytes of the backup handed to the snapshot store per `receive`.
const RESTORE_CHUNK_BYTES: usize = 1 << 20;

/// Why a restore did not happen, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The configuration or the data directory refuses a restore; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The file is unreadable or not a valid snapshot; nothing was written.
    #[error("{0}")]
    BadFile(String),
    /// Writing the data directory failed part way.
    #[error("{0}")]
    Failed(String),
}

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    pub snapshot: SnapshotMeta,
    pub data_dir: PathBuf,
    /// The snapshot's own member list when it differs from the configuration's (which wins).
    pub members_differ: Option<Vec<NodeId>>,
}

/// Restores `file` into the data directory of `config`. See the module documentation.
pub fn restore(file: &Path, config: &NodeConfig) -> Result<Restored, RestoreError> {
    if config.storage_engine != StorageEngine::Wal {
        return Err(RestoreError::Refused(
            "restore needs storage.engine = \"wal\": the memory engine keeps nothing to start from"
                .to_string(),
        ));
    }
    let wal_directory = node_runtime::wal_directory(config);
    let snapshot_directory = node_runtime::snapshot_directory(config);
    for directory in [&wal_directory, &snapshot_directory] {
        refuse_if_not_empty(directory)?;
    }
    let snapshot = storage_actor::snapshot_file::verify_file(file).map_err(|error| {
        RestoreError::BadFile(format!(
            "{} is not a valid snapshot file: {error}; nothing was written",
            file.display()
        ))
    })?;
    let config_members: Vec<NodeId> = config.member_ids().into_iter().collect();
    let snapshot_voters: Vec<NodeId> = snapshot.membership.all_voters().into_iter().collect();
    let members_differ = (snapshot_voters != config_members).then_some(snapshot_voters);

    let failed = |what: String| {
        RestoreError::Failed(format!(
            "{what}; the data dir {} may be half written: remove its wal and snapshots \
             directories before trying again",
            config.data_dir.display()
        ))
    };
    let identity = DataDirIdentity {
        cluster_id: config.cluster_id.clone(),
        node_id: config.id,
    };
    // A data dir recorded for another node or cluster is refused here, before it is written.
    check_or_record(&RealFileSystem, &config.data_dir, &identity)
        .map_err(|error| RestoreError::Refused(error.to_string()))?;
    install_snapshot(file, &snapshot, &snapshot_directory).map_err(failed)?;
    reset_log(&wal_directory, &snapshot).map_err(failed)?;
    Ok(Restored {
        snapshot,
        data_dir: config.data_dir.clone(),
        members_differ,
    })
}

/// A directory that exists and holds anything is someone's state.
fn refuse_if_not_empty(directory: &Path) -> Result<(), RestoreError> {
    match std::fs::read_dir(directory) {
        Ok(mut items) => match items.next() {
            None => Ok(()),
            Some(_) => Err(RestoreError::Refused(format!(
                "{} is not empty: this data dir already holds a node's state; restore writes \
                 only a fresh data dir (move it away first)",
                directory.display()
            ))),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(RestoreError::Refused(format!(
            "cannot read {}: {error}",
            directory.display()
        ))),
    }
}

/// Hands the file to a snapshot store in `directory` as a leader's transfer would arrive, so
/// the store verifies it against `snapshot` and installs it atomically and durably.
fn install_snapshot(file: &Path, snapshot: &SnapshotMeta, directory: &Path) -> Result<(), String> {
    let store = FileSnapshotStore::open(directory).map_err(|error| {
        format!(
            "cannot open the snapshot store in {}: {error}",
            directory.display()
        )
    })?;
    let mut input = std::fs::File::open(file)
        .map_err(|error| format!("cannot open {}: {error}", file.display()))?;
    let mut buffer = vec![0u8; RESTORE_CHUNK_BYTES];
    let mut offset = 0u64;
    loop {
        let count = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("cannot read {}: {error}", file.display())),
        };
        offset = store
            .receive(snapshot, offset, &buffer[..count])
            .map_err(|error| format!("cannot store {}: {error}", file.display()))?;
    }
    store
        .finish_receive(snapshot)
        .map_err(|error| format!("cannot install {}: {error}", file.display()))?;
    match store.newest() {
        Some(newest) if newest.id() == snapshot.id() => Ok(()),
        other => Err(format!(
            "the snapshot store in {} reports {other:?} as its newest snapshot after installing \
             {snapshot}",
            directory.display()
        )),
    }
}

/// An empty log continuing the snapshot, in the snapshot's term (see `# Correctness`).
fn reset_log(directory: &Path, snapshot: &SnapshotMeta) -> Result<(), String> {
    let (mut store, _recovered) =
        FileLogStore::open(FileLogStoreConfig::new(directory)).map_err(|error| {
            format!(
                "cannot open the write-ahead log in {}: {error}",
                directory.display()
            )
        })?;
    let hard_state = HardState::new(snapshot.last_log_id.term, None);
    store
        .reset(snapshot.last_log_id)
        .and_then(|()| store.save_hard_state(&hard_state))
        .and_then(|()| store.sync())
        .map_err(|error| {
            format!(
                "cannot write the write-ahead log in {}: {error}",
                directory.display()
            )
        })
}
