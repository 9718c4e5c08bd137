//! `StorageActor`: the one ordered path to disk. It owns a [`LogStore`], handles
//! [`StorageRequest`]s in mailbox order, and reports [`StorageEvent`]s to the consensus actor.
//!
//! # Group commit
//!
//! A request is not written when it is handled: it is queued, and the first request of a batch
//! schedules a `FlushPending` to the actor itself with `ctx.notify`. actix handles every message
//! already in the mailbox before it runs notified items (its context drains the mailbox, then
//! polls spawned items), so the flush sees every request that arrived meanwhile, and while one
//! flush blocks in fdatasync the next batch piles up in the mailbox. A flush writes the whole
//! batch in order, issues one `sync`, then sends at most one `HardStateSaved` (the latest hard
//! state of the batch) and one `Persisted { last }` (the last entry of the log).
//!
//! # Running it
//!
//! fdatasync blocks the thread for milliseconds, so the actor gets an Arbiter (a thread) of
//! its own and never stalls consensus or the network:
//!
//! ```no_run
//! use actix::{Arbiter, Recipient};
//! use raft_proto::ports::StoragePorts;
//! use raft_proto::storage::StorageEvent;
//! use storage_actor::{FileLogStore, FileLogStoreConfig, StorageActor};
//!
//! # fn wire(events: Recipient<StorageEvent>) -> Result<(), storage_actor::StorageError> {
//! let (store, recovered) = FileLogStore::open(FileLogStoreConfig::new("./data/node-1/wal"))?;
//! // ... restart the consensus core from `recovered` ...
//! let storage_arbiter = Arbiter::new();
//! let storage = StorageActor::start_on_arbiter(&storage_arbiter.handle(), store, StoragePorts { events });
//! // hand `storage.recipient()` to the consensus actor's `RaftPorts::storage`
//! # Ok(())
//! # }
//! ```
//!
//! # Snapshots
//!
//! `ResetLog` is written in batch order like any log request and answered like an `Append`:
//! the batch's `Persisted { last }` names the reset's `last_log_id` when nothing was appended
//! after it. `StoreSnapshotChunk` goes to the snapshot store given with
//! [`StorageActor::with_snapshot_store`] (a chunk without one is a fatal error), in mailbox
//! order within the batch; `receive` makes each chunk durable itself, and the chunk's
//! `SnapshotReceived` is sent after the batch's sync, after the batch's other events:
//!
//! - stored, file not complete yet: `Stored { next_offset }`;
//! - the chunk completed `size_bytes`: `finish_receive` verifies and installs the file,
//!   `Complete`, or `Rejected { reason }` when it fails verification (the partial is gone);
//! - a chunk that does not start where the stored bytes end: `Stored { next_offset: stored }`
//!   (not stored, the leader resends from there); one that runs past `size_bytes`: `Rejected`;
//! - a disk error: `Failed`, as for any storage error.
//!
//! Never run it in a `SyncArbiter` with more than one thread: that would reorder the log.
//! Keep its address (or `Recipient`) alive for as long as requests may be in flight: actix
//! stops an actor once its last address is dropped, and requests still queued in its mailbox
//! at that moment are discarded. That loses nothing acknowledged (no event was sent for them),
//! but they are not written either. Requests already handled are flushed when the actor stops.
//!
//! # Failure
//!
//! The first error is sent once as `StorageEvent::Failed`; every later request is refused
//! (logged, not executed) and no further event is sent (docs/ARCHITECTURE.md, rule 4).

use crate::log_store::LogStore;
use crate::storage_error::StorageError;
use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context, Handler, Message, Recipient};
use raft_proto::metrics::{HistogramSnapshot, LatencyHistogram};
use raft_proto::ports::StoragePorts;
use raft_proto::snapshot::{SnapshotError, SnapshotStore};
use raft_proto::storage::{SnapshotReceiveOutcome, StorageEvent, StorageRequest};
use raft_types::{IoSequence, LogId, SnapshotMeta};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What the storage actor measures, readable from any thread through the `Arc` returned by
/// [`StorageActor::metrics`] (the node serves it on `/metrics`).
#[derive(Debug, Default)]
pub struct StorageMetrics {
    /// Duration of each `sync` (fdatasync of the batch), the cost group commit amortizes.
    sync_latency: LatencyHistogram,
    /// Batches written (one sync each).
    batches_total: AtomicU64,
    /// Requests covered by those batches: `requests_total / batches_total` is the group size.
    requests_total: AtomicU64,
    /// Entries appended.
    entries_total: AtomicU64,
}

/// A plain copy of [`StorageMetrics`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageMetricsSnapshot {
    pub sync_latency: HistogramSnapshot,
    pub batches_total: u64,
    pub requests_total: u64,
    pub entries_total: u64,
}

impl StorageMetrics {
    pub fn snapshot(&self) -> StorageMetricsSnapshot {
        StorageMetricsSnapshot {
            sync_latency: self.sync_latency.snapshot(),
            batches_total: self.batches_total.load(Ordering::Relaxed),
            requests_total: self.requests_total.load(Ordering::Relaxed),
            entries_total: self.entries_total.load(Ordering::Relaxed),
        }
    }
}

/// The storage actor; see the module documentation.
pub struct StorageActor<S: LogStore> {
    store: S,
    /// Where events go: the consensus actor.
    events: Recipient<StorageEvent>,
    /// Requests handled but not yet written: the batch the next flush covers.
    pending: Vec<StorageRequest>,
    /// A `FlushPending` is queued; further requests join the batch without queueing another.
    flush_scheduled: bool,
    /// The store failed and `Failed` was sent: refuse everything from now on.
    failed: bool,
    metrics: Arc<StorageMetrics>,
    /// Where received snapshot chunks go; `None` refuses them (fatally).
    snapshot_store: Option<Arc<dyn SnapshotStore>>,
    /// The last `ResetLog` this actor wrote: the log's last entry while nothing follows it,
    /// since the store itself then holds no entry to name.
    last_reset: Option<LogId>,
}

/// Sent by the actor to itself: write and sync the pending batch.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct FlushPending;

impl<S: LogStore> StorageActor<S> {
    pub fn new(store: S, ports: StoragePorts) -> StorageActor<S> {
        StorageActor {
            store,
            events: ports.events,
            pending: Vec::new(),
            flush_scheduled: false,
            failed: false,
            metrics: Arc::new(StorageMetrics::default()),
            snapshot_store: None,
            last_reset: None,
        }
    }

    /// Stores received snapshot chunks (`StoreSnapshotChunk`) in `snapshot_store`.
    pub fn with_snapshot_store(
        mut self,
        snapshot_store: Arc<dyn SnapshotStore>,
    ) -> StorageActor<S> {
        self.snapshot_store = Some(snapshot_store);
        self
    }

    /// Starts this actor (built with [`StorageActor::new`] and its `with_*` methods) on
    /// `arbiter`'s thread, which it should have to itself. Take [`StorageActor::metrics`] first.
    pub fn start_on(self, arbiter: &ArbiterHandle) -> Addr<Self> {
        StorageActor::start_in_arbiter(arbiter, move |_| self)
    }

    /// The live metrics; take the `Arc` before starting the actor.
    pub fn metrics(&self) -> Arc<StorageMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Starts the actor on `arbiter`'s thread, which it should have to itself.
    pub fn start_on_arbiter(arbiter: &ArbiterHandle, store: S, ports: StoragePorts) -> Addr<Self> {
        StorageActor::start_in_arbiter(arbiter, move |_| StorageActor::new(store, ports))
    }

    /// Like [`StorageActor::start_on_arbiter`], also returning the actor's metrics.
    pub fn start_on_arbiter_with_metrics(
        arbiter: &ArbiterHandle,
        store: S,
        ports: StoragePorts,
    ) -> (Addr<Self>, Arc<StorageMetrics>) {
        let actor = StorageActor::new(store, ports);
        let metrics = actor.metrics();
        (
            StorageActor::start_in_arbiter(arbiter, move |_| actor),
            metrics,
        )
    }

    fn flush(&mut self) {
        if self.failed {
            return;
        }
        // Taken out so the store can be borrowed while the batch drains, then put back empty:
        // its capacity is reused by the next batch.
        let mut batch = std::mem::take(&mut self.pending);
        let request_count = batch.len();
        let written = self.write_batch(&mut batch);
        self.pending = batch;
        match written {
            Ok(outcome) => {
                tracing::trace!(request_count, "storage: batch written with one sync");
                self.report(outcome);
            }
            Err(error) => self.fail(error),
        }
    }

    /// Writes every request of the batch in order, then syncs once.
    fn write_batch(
        &mut self,
        batch: &mut Vec<StorageRequest>,
    ) -> Result<BatchOutcome, StorageError> {
        let mut outcome = BatchOutcome::default();
        self.metrics.batches_total.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .requests_total
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for request in batch.drain(..) {
            match request {
                StorageRequest::Append { entries, io } => {
                    outcome.last_io = io;
                    outcome.appended |= !entries.is_empty();
                    self.metrics
                        .entries_total
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    self.store.append(&entries)?;
                }
                StorageRequest::Truncate { since, io } => {
                    outcome.last_io = io;
                    self.store.truncate(since)?;
                }
                StorageRequest::SaveHardState { hard_state, io } => {
                    outcome.last_io = io;
                    self.store.save_hard_state(&hard_state)?;
                    outcome.saved_hard_state = true;
                }
                StorageRequest::Purge { before } => self.store.purge(before)?,
                StorageRequest::ResetLog { last_log_id, io } => {
                    outcome.last_io = io;
                    // Reported like an append: the log now ends at `last_log_id`.
                    outcome.appended = true;
                    self.store.reset(last_log_id)?;
                    self.last_reset = Some(last_log_id);
                }
                StorageRequest::StoreSnapshotChunk {
                    snapshot,
                    offset,
                    data,
                } => {
                    let outcome_of_chunk = self.store_snapshot_chunk(&snapshot, offset, &data)?;
                    outcome
                        .snapshot_events
                        .push(StorageEvent::SnapshotReceived {
                            snapshot,
                            outcome: outcome_of_chunk,
                        });
                }
            }
        }
        let sync_started = Instant::now();
        self.store.sync()?;
        self.metrics.sync_latency.observe(sync_started.elapsed());
        Ok(outcome)
    }

    /// Stores one received chunk, and installs the snapshot when the chunk completes it. An
    /// `Err` is a disk error (fatal); everything the leader can cause is an outcome.
    fn store_snapshot_chunk(
        &self,
        snapshot: &SnapshotMeta,
        offset: u64,
        data: &[u8],
    ) -> Result<SnapshotReceiveOutcome, StorageError> {
        let snapshot_store = self
            .snapshot_store
            .as_ref()
            .ok_or(StorageError::NoSnapshotStore)?;
        let stored = match snapshot_store.receive(snapshot, offset, data) {
            Ok(stored) => stored,
            Err(SnapshotError::OutOfOrder { stored, .. }) => {
                return Ok(SnapshotReceiveOutcome::Stored {
                    next_offset: stored,
                })
            }
            Err(error) => return rejected_or_fatal(snapshot, error),
        };
        if stored < snapshot.size_bytes {
            return Ok(SnapshotReceiveOutcome::Stored {
                next_offset: stored,
            });
        }
        match snapshot_store.finish_receive(snapshot) {
            Ok(()) => {
                tracing::info!(%snapshot, "storage: received a snapshot");
                Ok(SnapshotReceiveOutcome::Complete)
            }
            Err(error) => rejected_or_fatal(snapshot, error),
        }
    }

    /// The log's last entry after the batch: the store's, or the reset's when the store holds
    /// no entry after it.
    fn last_log_id(&self) -> Option<LogId> {
        self.store.last_log_id().or_else(|| {
            let first_index = self.store.first_index();
            self.last_reset
                .filter(|reset| reset.index.next() == first_index)
        })
    }

    fn report(&self, outcome: BatchOutcome) {
        if !self.events.connected() {
            tracing::error!("storage: the consensus actor is gone; events are dropped");
        }
        let io = outcome.last_io;
        if outcome.saved_hard_state {
            self.events.do_send(StorageEvent::HardStateSaved { io });
        }
        if outcome.appended {
            if let Some(last) = self.last_log_id() {
                self.events.do_send(StorageEvent::Persisted { io, last });
            }
        }
        for event in outcome.snapshot_events {
            self.events.do_send(event);
        }
    }

    fn fail(&mut self, error: StorageError) {
        tracing::error!(%error, "storage failed; the node must stop");
        self.failed = true;
        self.pending.clear();
        self.events.do_send(StorageEvent::Failed {
            error: error.to_string(),
        });
    }
}

/// What a leader's bad input did to a received snapshot (`Rejected`), or the disk error that
/// stops the node.
fn rejected_or_fatal(
    snapshot: &SnapshotMeta,
    error: SnapshotError,
) -> Result<SnapshotReceiveOutcome, StorageError> {
    match error {
        SnapshotError::Corrupt { .. } | SnapshotError::NotFound(_) => {
            tracing::warn!(%snapshot, %error, "storage: a received snapshot is rejected");
            Ok(SnapshotReceiveOutcome::Rejected {
                reason: error.to_string(),
            })
        }
        other => Err(StorageError::Snapshot(other)),
    }
}

/// What a batch did that must be reported.
#[derive(Default)]
struct BatchOutcome {
    /// Held a non-empty `Append` or a `ResetLog`.
    appended: bool,
    /// One `SnapshotReceived` per chunk, in mailbox order, sent after the batch's sync.
    snapshot_events: Vec<StorageEvent>,
    saved_hard_state: bool,
    /// The sequence of the batch's last request (a `Purge` has none).
    last_io: IoSequence,
}

impl<S: LogStore> Actor for StorageActor<S> {
    type Context = Context<Self>;

    /// Writes a batch that was handled but not yet flushed, so that stopping the actor never
    /// silently drops requests it has already taken from the mailbox.
    fn stopping(&mut self, _: &mut Context<Self>) -> actix::Running {
        if !self.pending.is_empty() {
            self.flush();
        }
        actix::Running::Stop
    }
}

impl<S: LogStore> Handler<StorageRequest> for StorageActor<S> {
    type Result = ();

    fn handle(&mut self, request: StorageRequest, context: &mut Context<Self>) {
        if self.failed {
            tracing::error!(?request, "storage: refused, the store has failed");
            return;
        }
        self.pending.push(request);
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            context.notify(FlushPending);
        }
    }
}

impl<S: LogStore> Handler<FlushPending> for StorageActor<S> {
    type Result = ();

    fn handle(&mut self, _: FlushPending, _: &mut Context<Self>) {
        self.flush_scheduled = false;
        self.flush();
    }
}
