//! `MemSnapshotStore`: the snapshot store in memory, for `storage.engine = "memory"` and tests.
//! It is [`FileSnapshotStore`] on a private [`SimFileSystem`], so it has the same format,
//! verifier and rules as the durable store.

use crate::file_snapshot_store::{FileSnapshotStore, FileSnapshotStoreConfig};
use crate::sim_file_system::SimFileSystem;
use raft_proto::snapshot::{SnapshotError, SnapshotFile, SnapshotStore, SnapshotWriter};
use raft_types::{LogId, Membership, SnapshotId, SnapshotMeta};
use std::io;
use std::sync::Arc;

/// The snapshot store in memory: [`FileSnapshotStore`] on a private [`SimFileSystem`], so it
/// has the same format, verifier and rules, and nothing survives the process. A restart in a
/// test reopens the same [`MemSnapshotDisk`].
#[derive(Clone, Debug)]
pub struct MemSnapshotStore {
    store: FileSnapshotStore,
}

/// The "disk" of in-memory snapshot stores: clones share it.
#[derive(Clone, Debug)]
pub struct MemSnapshotDisk {
    file_system: SimFileSystem,
}

impl Default for MemSnapshotDisk {
    fn default() -> MemSnapshotDisk {
        MemSnapshotDisk {
            file_system: SimFileSystem::new(0),
        }
    }
}

/// Where a `MemSnapshotStore` keeps its files on its private disk.
const MEM_DIRECTORY: &str = "/snapshots";

impl MemSnapshotStore {
    /// A store on a fresh, empty disk.
    pub fn new() -> MemSnapshotStore {
        MemSnapshotStore::open(MemSnapshotDisk::default())
            .expect("an empty in-memory disk always opens")
    }

    /// Opens the store on `disk`, recovering what earlier stores on it held. The previous store
    /// on the same disk must be dropped first (it holds the directory's lock).
    pub fn open(disk: MemSnapshotDisk) -> Result<MemSnapshotStore, SnapshotError> {
        let mut config = FileSnapshotStoreConfig::new(MEM_DIRECTORY);
        // Small chunks: in-process snapshots are small, and more chunks exercise more checks.
        config.chunk_bytes = 64 * 1024;
        Ok(MemSnapshotStore {
            store: FileSnapshotStore::open_on(Arc::new(disk.file_system), config)?,
        })
    }
}

impl Default for MemSnapshotStore {
    fn default() -> MemSnapshotStore {
        MemSnapshotStore::new()
    }
}

impl SnapshotStore for MemSnapshotStore {
    fn newest(&self) -> Option<SnapshotMeta> {
        self.store.newest()
    }
    fn list(&self) -> Vec<SnapshotMeta> {
        self.store.list()
    }
    fn begin(
        &self,
        last_log_id: LogId,
        membership: Membership,
    ) -> Result<Box<dyn SnapshotWriter>, SnapshotError> {
        self.store.begin(last_log_id, membership)
    }
    fn open(&self, snapshot: &SnapshotId) -> Result<Arc<dyn SnapshotFile>, SnapshotError> {
        self.store.open(snapshot)
    }
    fn read_payload(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Box<dyn io::Read + Send>, SnapshotError> {
        self.store.read_payload(snapshot)
    }
    fn receive(
        &self,
        snapshot: &SnapshotMeta,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, SnapshotError> {
        self.store.receive(snapshot, offset, data)
    }
    fn received_bytes(&self, snapshot: &SnapshotId) -> u64 {
        self.store.received_bytes(snapshot)
    }
    fn finish_receive(&self, snapshot: &SnapshotMeta) -> Result<(), SnapshotError> {
        self.store.finish_receive(snapshot)
    }
}
