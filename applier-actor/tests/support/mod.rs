//! What the applier's snapshot tests share: an in-memory `SnapshotStore` double (payloads in a
//! `Mutex<BTreeMap>`, with a gate that holds writers and a switch that fails them), a stand-in
//! for the consensus actor recording what the applier sends it, and entry builders.
//!
//! The real stores (file-backed and in-memory) live in storage-actor, which an actor crate may
//! not depend on; this double keeps only what the applier relies on: a snapshot is visible
//! once `finish` returned, and `read_payload` gives back exactly the bytes written.

#![allow(dead_code)]

use actix::{Actor, Addr, Context, Handler};
use applier_actor::{ApplierActor, KvCommand, KvOutput, KvQuery, KvStore};
use raft_proto::applier::{Applied, Query, SnapshotTaken, TakeSnapshot};
use raft_proto::ports::ApplierPorts;
use raft_proto::snapshot::{SnapshotError, SnapshotFile, SnapshotStore, SnapshotWriter};
use raft_types::{
    Entry, EntryPayload, LogId, LogIndex, Membership, NodeId, SnapshotId, SnapshotMeta, Term,
};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a test waits for something the actors do at once.
pub const PROMPTLY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct StoreState {
    snapshots: BTreeMap<SnapshotId, (SnapshotMeta, Vec<u8>)>,
    /// Calls to `begin`.
    begun: u64,
    /// The next this many `begin`s fail.
    failing_begins: u64,
    /// Writers hold in `finish` while this is set.
    gate_closed: bool,
    /// Writers holding at the gate now.
    held: u64,
}

struct StoreInner {
    state: Mutex<StoreState>,
    gate_opened: Condvar,
}

/// An in-memory snapshot store for tests. Clones share the same snapshots.
#[derive(Clone)]
pub struct MemSnapshotStore {
    inner: Arc<StoreInner>,
}

impl Default for MemSnapshotStore {
    fn default() -> MemSnapshotStore {
        MemSnapshotStore {
            inner: Arc::new(StoreInner {
                state: Mutex::new(StoreState::default()),
                gate_opened: Condvar::new(),
            }),
        }
    }
}

impl MemSnapshotStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.inner.state.lock().expect("the test store's lock")
    }

    /// From now on, writers hold in `finish` until [`MemSnapshotStore::open_gate`].
    pub fn close_gate(&self) {
        self.lock().gate_closed = true;
    }

    pub fn open_gate(&self) {
        self.lock().gate_closed = false;
        self.inner.gate_opened.notify_all();
    }

    /// How many writers hold at the closed gate now.
    pub fn held(&self) -> u64 {
        self.lock().held
    }

    /// How many snapshots were begun (written or not).
    pub fn begun(&self) -> u64 {
        self.lock().begun
    }

    /// The next `count` calls to `begin` fail as a full disk would.
    pub fn fail_next_begins(&self, count: u64) {
        self.lock().failing_begins = count;
    }

    pub fn payload(&self, snapshot: &SnapshotMeta) -> Vec<u8> {
        self.lock().snapshots[&snapshot.id()].1.clone()
    }

    /// Puts `payload` in the store as a complete snapshot at `last_log_id`, whatever its bytes.
    pub fn insert_raw(&self, last_log_id: LogId, payload: Vec<u8>) -> SnapshotMeta {
        let meta = meta_of(last_log_id, Membership::with_voters([NodeId(1)]), &payload);
        self.lock()
            .snapshots
            .insert(meta.id(), (meta.clone(), payload));
        meta
    }
}

fn meta_of(last_log_id: LogId, membership: Membership, payload: &[u8]) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id,
        membership,
        size_bytes: payload.len() as u64,
        // Not the real store's CRC32C of its file: only an identity for the double.
        file_checksum: xxhash_rust::xxh3::xxh3_64(payload) as u32,
    }
}

impl SnapshotStore for MemSnapshotStore {
    fn newest(&self) -> Option<SnapshotMeta> {
        let state = self.lock();
        state
            .snapshots
            .values()
            .map(|(meta, _)| meta.clone())
            .max_by_key(|meta| meta.last_log_id)
    }

    fn list(&self) -> Vec<SnapshotMeta> {
        let state = self.lock();
        state
            .snapshots
            .values()
            .map(|(meta, _)| meta.clone())
            .collect()
    }

    fn begin(
        &self,
        last_log_id: LogId,
        membership: Membership,
    ) -> Result<Box<dyn SnapshotWriter>, SnapshotError> {
        let mut state = self.lock();
        state.begun += 1;
        if state.failing_begins > 0 {
            state.failing_begins -= 1;
            return Err(SnapshotError::Io {
                operation: "create",
                path: format!("memory/{last_log_id}.tmp"),
                source: io::Error::new(io::ErrorKind::StorageFull, "no space left on device"),
            });
        }
        Ok(Box::new(MemWriter {
            store: self.clone(),
            last_log_id,
            membership,
            payload: Vec::new(),
        }))
    }

    fn open(&self, snapshot: &SnapshotId) -> Result<Arc<dyn SnapshotFile>, SnapshotError> {
        Err(SnapshotError::NotFound(*snapshot))
    }

    fn read_payload(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Box<dyn io::Read + Send>, SnapshotError> {
        let state = self.lock();
        let (_, payload) = state
            .snapshots
            .get(snapshot)
            .ok_or(SnapshotError::NotFound(*snapshot))?;
        Ok(Box::new(io::Cursor::new(payload.clone())))
    }

    fn receive(
        &self,
        snapshot: &SnapshotMeta,
        offset: u64,
        _data: &[u8],
    ) -> Result<u64, SnapshotError> {
        Err(SnapshotError::OutOfOrder {
            snapshot: snapshot.id(),
            offset,
            stored: 0,
        })
    }

    fn received_bytes(&self, _snapshot: &SnapshotId) -> u64 {
        0
    }

    fn finish_receive(&self, snapshot: &SnapshotMeta) -> Result<(), SnapshotError> {
        Err(SnapshotError::NotFound(snapshot.id()))
    }
}

struct MemWriter {
    store: MemSnapshotStore,
    last_log_id: LogId,
    membership: Membership,
    payload: Vec<u8>,
}

impl io::Write for MemWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.payload.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotWriter for MemWriter {
    fn finish(self: Box<Self>) -> Result<SnapshotMeta, SnapshotError> {
        let inner = &self.store.inner;
        let mut state = inner.state.lock().expect("the test store's lock");
        if state.gate_closed {
            state.held += 1;
            while state.gate_closed {
                state = inner
                    .gate_opened
                    .wait(state)
                    .expect("the test store's lock");
            }
            state.held -= 1;
        }
        let meta = meta_of(self.last_log_id, self.membership.clone(), &self.payload);
        state
            .snapshots
            .insert(meta.id(), (meta.clone(), self.payload));
        Ok(meta)
    }
}

/// What the stand-in consensus actor received.
#[derive(Debug, Default)]
pub struct Received {
    pub applied: Vec<LogIndex>,
    pub taken: Vec<SnapshotMeta>,
}

/// Stands in for the consensus actor: records every `Applied` and `SnapshotTaken`.
pub struct RaftStandIn {
    pub received: Arc<Mutex<Received>>,
}

impl Actor for RaftStandIn {
    type Context = Context<Self>;
}

impl Handler<Applied> for RaftStandIn {
    type Result = ();
    fn handle(&mut self, message: Applied, _ctx: &mut Context<Self>) {
        self.received
            .lock()
            .expect("lock")
            .applied
            .push(message.index);
    }
}

impl Handler<SnapshotTaken> for RaftStandIn {
    type Result = ();
    fn handle(&mut self, message: SnapshotTaken, _ctx: &mut Context<Self>) {
        self.received
            .lock()
            .expect("lock")
            .taken
            .push(message.snapshot);
    }
}

/// A stand-in consensus actor, the ports to it, and what it records.
pub fn raft_stand_in() -> (Addr<RaftStandIn>, ApplierPorts, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let raft = RaftStandIn {
        received: Arc::clone(&received),
    }
    .start();
    let ports = ApplierPorts {
        applied: raft.clone().recipient(),
    };
    (raft, ports, received)
}

pub fn put_entry(term: u64, index: u64, key: &str, value: &[u8]) -> Entry {
    let command = KvCommand::Put {
        key: key.to_string(),
        value: value.to_vec(),
    };
    Entry::new(
        Term(term),
        LogIndex(index),
        EntryPayload::command(command.encode()),
    )
}

/// Puts of `key{index}` = `value{index}` at `indexes`, in `term`.
pub fn puts(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes
        .map(|index| {
            put_entry(
                term,
                index,
                &format!("key{index}"),
                format!("value{index}").as_bytes(),
            )
        })
        .collect()
}

pub async fn get(applier: &Addr<ApplierActor<KvStore>>, key: &str) -> Option<Vec<u8>> {
    let (responder, receiver) = oneshot::channel();
    let query = KvQuery::Get {
        key: key.to_string(),
    }
    .encode();
    applier.do_send(Query { query, responder });
    let output = receiver.await.expect("answered").expect("queries succeed");
    match KvOutput::decode(&output).expect("decodes") {
        KvOutput::Value(value) => value,
        other => panic!("a Get answered {other:?}"),
    }
}

/// Sends `TakeSnapshot` and returns where its answer arrives.
pub fn take_snapshot(
    applier: &Addr<ApplierActor<KvStore>>,
) -> oneshot::Receiver<Result<SnapshotMeta, String>> {
    let (responder, receiver) = oneshot::channel();
    applier.do_send(TakeSnapshot { responder });
    receiver
}
