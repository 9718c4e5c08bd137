//! `ApplierActor`: applies committed entries to a [`StateMachine`] in index order, exactly
//! once, answers the clients waiting on them, serves read queries, and takes and restores
//! snapshots of the applied state (Raft §7).
//!
//! # Correctness
//!
//! - Batches must start at `last_applied + 1` and be contiguous; anything else is a bug in the
//!   consensus actor and stops the node (assert, kept in release) rather than apply out of order.
//! - `EntryPayload::Blank` (a leader's no-op) changes no state but counts as applied.
//! - `Applied { index }` is sent after the whole batch is applied, never before.
//! - Every responder handed over is answered exactly once: with the output of the entry whose
//!   `LogId` it names, or with `ClientError::Unavailable` when that entry is not in the batch
//!   (its index holds another term's entry, so the proposal was overwritten and never applies).
//! - Losing the consensus actor is fatal: the applied index could no longer be reported, so
//!   reads would stall forever; the actor logs and stops the system with exit code 1.
//! - Every applied entry, blank ones included, goes into the [`RunningHash`] in index order;
//!   the checkpoints due in a batch are published with the batch's last hash after the whole
//!   batch is applied, so a reader never sees a hash for an index not yet applied.
//!
//! # Snapshots
//!
//! - **Taking.** After a batch, once [`SnapshotPolicy`]'s entries or bytes applied since the
//!   last snapshot are reached, the applier captures the state machine
//!   ([`StateMachine::snapshot`], O(1) for the `KvStore`), the `LogId` of the last applied
//!   entry and the running hash there, all between two batches, so the three describe the same
//!   index. A thread of its own writes them (the [`snapshot_envelope`](crate::snapshot_envelope)
//!   header, then the state machine's payload) through [`SnapshotStore::begin`] and
//!   `finish`; apply never waits for it. At most one write is in progress.
//! - **Reporting.** Only once `finish` returned, so the snapshot is durable, does the writer
//!   send `SnapshotTaken` to the consensus actor (which may then compact the log before it) and
//!   tell the applier, which may start the next one. A failed write is logged and counted; the
//!   log just is not compacted, and the next threshold (counted from the failed attempt) tries
//!   again.
//! - **Restoring.** `RestoreSnapshot` replaces the whole state with the snapshot's
//!   ([`StateMachine::restore`]), and sets the last applied `LogId` and the running hash from
//!   its envelope, so the next batch starts right after it and the checkpoints after it are
//!   those of a replica that applied the whole log. A snapshot at or below `last_applied` is
//!   ignored (the state already covers it). A snapshot that cannot be read or decoded is fatal
//!   (exit code 1): the consensus actor already counts it as applied, and there is no state
//!   to go on from.

use crate::applied_checkpoints::{AppliedCheckpoints, Checkpoint, CheckpointPolicy};
use crate::running_hash::RunningHash;
use crate::snapshot_envelope::EnvelopeHeader;
use crate::snapshot_metrics::SnapshotMetrics;
use crate::state_machine::{StateMachine, StateMachineSnapshot};
use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, Recipient, System};
use raft_proto::applier::{
    Applied, ApplyEntries, Query, RestoreSnapshot, SnapshotTaken, TakeSnapshot,
};
use raft_proto::client::{ClientError, ClientResponder};
use raft_proto::ports::ApplierPorts;
use raft_proto::snapshot::{SnapshotError, SnapshotStore};
use raft_types::{Entry, EntryPayload, LogId, LogIndex, Membership, SnapshotMeta, Term};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When the applier takes a snapshot on its own: as soon as either threshold is reached,
/// counted from the last snapshot taken, attempted or restored (or from startup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Entries applied, blank ones included (>= 1).
    pub threshold_entries: u64,
    /// Command payload bytes applied (>= 1): a few large writes snapshot as soon as many small
    /// ones would.
    pub threshold_bytes: u64,
}

impl Default for SnapshotPolicy {
    /// Every 100,000 entries or 64 MiB of commands (etcd's default snapshot count): the log a
    /// restarting or lagging replica replays stays bounded, and the state is not rewritten so
    /// often that the snapshot writes compete with the log's fsyncs.
    fn default() -> SnapshotPolicy {
        SnapshotPolicy {
            threshold_entries: 100_000,
            threshold_bytes: 64 * 1024 * 1024,
        }
    }
}

impl SnapshotPolicy {
    /// Whether `since` reaches a threshold.
    pub fn is_due(&self, since: AppliedSinceSnapshot) -> bool {
        since.entries >= self.threshold_entries || since.bytes >= self.threshold_bytes
    }
}

/// What was applied since the last snapshot, as [`SnapshotPolicy`] counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedSinceSnapshot {
    pub entries: u64,
    pub bytes: u64,
}

/// What the applier needs to write snapshots, set by [`ApplierActor::with_snapshots`].
struct SnapshotConfig {
    store: Arc<dyn SnapshotStore>,
    policy: SnapshotPolicy,
    /// The consensus actor.
    taken: Recipient<SnapshotTaken>,
    /// The snapshot being written, if any: at most one at a time.
    in_progress: Option<LogId>,
    /// `TakeSnapshot` requests answered when the write in progress ends.
    waiting: Vec<TakeSnapshot>,
    /// Write on the applier's own thread instead of a writer thread: see
    /// [`ApplierActor::writing_snapshots_inline`].
    write_inline: bool,
}

/// Sent to the applier by its snapshot writer thread: the write of the snapshot at
/// `last_log_id` ended (durable, or failed).
#[derive(Message)]
#[rtype(result = "()")]
struct SnapshotWritten {
    last_log_id: LogId,
    outcome: Result<SnapshotMeta, String>,
}

pub struct ApplierActor<S: StateMachine> {
    state_machine: S,
    ports: ApplierPorts,
    /// The index of the last entry applied; the next batch must start right after it.
    last_applied: LogIndex,
    /// The term of the entry at `last_applied` (`Term::ZERO` at index 0). `None` only after
    /// [`ApplierActor::resume_after`], which names no term, until the next entry is applied:
    /// no snapshot can be named then.
    last_applied_term: Option<Term>,
    /// The hash of everything applied. `None` after [`ApplierActor::resume_after`]: the hash
    /// of the restored state is not known, and a hash started from there would differ from
    /// every peer's and raise a false alarm; no checkpoints are taken then.
    running_hash: Option<RunningHash>,
    /// Shared with the node's consistency check.
    checkpoints: Arc<AppliedCheckpoints>,
    /// `None` until [`ApplierActor::with_snapshots`]: no snapshots are taken or restored.
    snapshots: Option<SnapshotConfig>,
    /// The newest snapshot this applier wrote or restored.
    newest_snapshot: Option<SnapshotMeta>,
    /// Counted from the last snapshot taken, attempted or restored.
    applied_since_snapshot: AppliedSinceSnapshot,
    /// Shared with the node's metrics.
    snapshot_metrics: Arc<SnapshotMetrics>,
    /// The configuration as of `last_applied` (the last membership entry applied, or the
    /// restored snapshot's, or the bootstrap one): what the next snapshot records.
    membership: Option<Membership>,
}

impl<S: StateMachine> ApplierActor<S> {
    /// An applier whose state machine holds nothing yet: the first batch starts at index 1.
    pub fn new(state_machine: S, ports: ApplierPorts) -> ApplierActor<S> {
        ApplierActor {
            state_machine,
            ports,
            last_applied: LogIndex::ZERO,
            last_applied_term: Some(Term::ZERO),
            running_hash: Some(RunningHash::new()),
            checkpoints: Arc::new(AppliedCheckpoints::new(CheckpointPolicy::default())),
            snapshots: None,
            newest_snapshot: None,
            applied_since_snapshot: AppliedSinceSnapshot::default(),
            snapshot_metrics: Arc::new(SnapshotMetrics::new()),
            membership: None,
        }
    }

    /// An applier whose state is restored from `snapshot` in `store` before it starts (a node
    /// starting from its newest snapshot): the first batch starts right after
    /// `snapshot.last_log_id`, and the checkpoints go on from the running hash the snapshot
    /// carries. Fails if the snapshot cannot be read or decoded; `state_machine` is dropped
    /// then.
    pub fn restored_from(
        mut state_machine: S,
        ports: ApplierPorts,
        store: &dyn SnapshotStore,
        snapshot: &SnapshotMeta,
    ) -> Result<ApplierActor<S>, SnapshotError> {
        let header = restore_state(&mut state_machine, store, snapshot)?;
        let mut applier = ApplierActor::new(state_machine, ports);
        applier.adopt_restored(header, snapshot);
        Ok(applier)
    }

    /// Takes checkpoints by `policy` instead of [`CheckpointPolicy::default`]. Call before
    /// handing out [`ApplierActor::checkpoints`].
    pub fn with_checkpoint_policy(mut self, policy: CheckpointPolicy) -> ApplierActor<S> {
        self.checkpoints = Arc::new(AppliedCheckpoints::new(policy));
        self
    }

    /// Takes snapshots by `policy` into `store`, and
    /// reports each durable one to `taken` (the consensus actor). Also what `RestoreSnapshot`
    /// and `TakeSnapshot` need: without it the first is fatal and the second is refused.
    pub fn with_snapshots(
        mut self,
        store: Arc<dyn SnapshotStore>,
        policy: SnapshotPolicy,
        bootstrap_membership: Membership,
        taken: Recipient<SnapshotTaken>,
    ) -> ApplierActor<S> {
        assert!(
            policy.threshold_entries >= 1 && policy.threshold_bytes >= 1,
            "a snapshot policy needs thresholds of at least 1: {policy:?}"
        );
        // A restored snapshot's configuration is the one in force; only an applier that starts
        // empty starts in the bootstrap one.
        self.membership.get_or_insert(bootstrap_membership);
        self.snapshots = Some(SnapshotConfig {
            store,
            policy,
            taken,
            in_progress: None,
            waiting: Vec::new(),
            write_inline: false,
        });
        self
    }

    /// Writes snapshots on the applier's own thread, blocking apply meanwhile, instead of on a
    /// thread of their own. For deterministic simulations only (the in-process cluster on a
    /// paused clock): a writer thread runs in real time, outside the simulated clock, so a
    /// seed would no longer replay a run. Call after [`ApplierActor::with_snapshots`].
    pub fn writing_snapshots_inline(mut self) -> ApplierActor<S> {
        self.snapshots
            .as_mut()
            .expect("writing_snapshots_inline after with_snapshots")
            .write_inline = true;
        self
    }

    /// The checkpoints of the running hash, readable from any thread.
    pub fn checkpoints(&self) -> Arc<AppliedCheckpoints> {
        Arc::clone(&self.checkpoints)
    }

    /// The snapshot counters, readable from any thread.
    pub fn snapshot_metrics(&self) -> Arc<SnapshotMetrics> {
        Arc::clone(&self.snapshot_metrics)
    }

    /// Declares that `state_machine` already reflects every entry through `last_applied` (it
    /// was restored from a snapshot); the first batch must start right after it. The running
    /// hash of that state is not known, so this applier takes no checkpoints; nor is the term
    /// of that entry, so no snapshot is taken before the next entry is applied. Prefer
    /// [`ApplierActor::restored_from`], which knows both.
    pub fn resume_after(mut self, last_applied: LogIndex) -> ApplierActor<S> {
        self.last_applied = last_applied;
        self.last_applied_term = None;
        self.running_hash = None;
        self
    }

    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    /// The `LogId` of the last applied entry; `None` only after
    /// [`ApplierActor::resume_after`] until an entry is applied.
    pub fn last_applied_log_id(&self) -> Option<LogId> {
        self.last_applied_term
            .map(|term| LogId::new(term, self.last_applied))
    }

    pub fn state_machine(&self) -> &S {
        &self.state_machine
    }

    /// The newest snapshot this applier wrote or restored.
    pub fn newest_snapshot(&self) -> Option<&SnapshotMeta> {
        self.newest_snapshot.as_ref()
    }

    /// Applies one entry; a checkpoint due at its index is added to `due`.
    fn apply_entry(
        &mut self,
        entry: &Entry,
        responders: &mut BTreeMap<LogId, ClientResponder>,
        due: &mut Vec<Checkpoint>,
    ) {
        let expected = self.last_applied.next();
        assert_eq!(
            entry.index(),
            expected,
            "entries are applied in index order exactly once: got {} after {}",
            entry.log_id,
            self.last_applied
        );
        let output = match &entry.payload {
            EntryPayload::Blank => None,
            EntryPayload::Membership(membership) => {
                // No state changes; the snapshots from here on record this configuration.
                self.membership = Some(membership.clone());
                None
            }
            EntryPayload::Command(command) => {
                self.applied_since_snapshot.bytes += command.len() as u64;
                Some(self.state_machine.apply(entry.log_id, command))
            }
        };
        self.last_applied = entry.index();
        self.last_applied_term = Some(entry.log_id.term);
        self.applied_since_snapshot.entries += 1;
        if let Some(running_hash) = &mut self.running_hash {
            running_hash.absorb(entry);
            if self.checkpoints.policy().is_due(entry.index()) {
                due.push(Checkpoint {
                    index: entry.index(),
                    hash: running_hash.hash(),
                });
            }
        }
        let Some(responder) = responders.remove(&entry.log_id) else {
            return;
        };
        let answer = match output {
            Some(output) => Ok(output),
            None => Err(ClientError::Unavailable {
                reason: format!(
                    "entry {} is a leader no-op, not a client command",
                    entry.log_id
                ),
            }),
        };
        // The client may have given up (timeout, disconnect); the entry is applied regardless.
        let _ = responder.send(answer);
    }

    fn report_applied(&self, ctx: &mut Context<Self>) {
        if !self.ports.applied.connected() {
            tracing::error!(
                last_applied = %self.last_applied,
                "the consensus actor is gone; the applier cannot report progress; stopping the node"
            );
            System::current().stop_with_code(1);
            ctx.stop();
            return;
        }
        self.ports.applied.do_send(Applied {
            index: self.last_applied,
        });
    }

    /// Takes the state of a restored snapshot as this applier's own.
    fn adopt_restored(&mut self, header: EnvelopeHeader, snapshot: &SnapshotMeta) {
        assert!(
            header.last_applied.index > self.last_applied,
            "a restored snapshot moves the applier forward: {} at {}",
            header.last_applied,
            self.last_applied
        );
        self.last_applied = header.last_applied.index;
        self.last_applied_term = Some(header.last_applied.term);
        self.running_hash = header.running_hash;
        self.newest_snapshot = Some(snapshot.clone());
        self.membership = Some(snapshot.membership.clone());
        self.applied_since_snapshot = AppliedSinceSnapshot::default();
        self.snapshot_metrics.record_restored(snapshot);
    }

    /// Publishes the running hash at a restored index, as a checkpoint if one is due there:
    /// the same one a replica that applied the whole log holds.
    fn record_restored_checkpoint(&self) {
        let Some(running_hash) = &self.running_hash else {
            return;
        };
        if running_hash.index() == LogIndex::ZERO {
            return;
        }
        let latest = Checkpoint {
            index: running_hash.index(),
            hash: running_hash.hash(),
        };
        let due: &[Checkpoint] = if self.checkpoints.policy().is_due(latest.index) {
            &[latest]
        } else {
            &[]
        };
        self.checkpoints.record(due, latest);
    }

    /// Starts a snapshot when a threshold is reached and none is being written.
    fn take_snapshot_if_due(&mut self, ctx: &mut Context<Self>) {
        let Some(config) = &self.snapshots else {
            return;
        };
        if config.in_progress.is_some() || !config.policy.is_due(self.applied_since_snapshot) {
            return;
        }
        if let Err(reason) = self.start_snapshot(ctx) {
            tracing::warn!(%reason, "a snapshot is due but cannot be taken");
        }
    }

    /// Captures the applied state and hands it to a writer thread. Errs, taking nothing, when
    /// no snapshot can be named (nothing applied, or the term of the last entry unknown).
    fn start_snapshot(&mut self, ctx: &mut Context<Self>) -> Result<(), String> {
        let Some(config) = &mut self.snapshots else {
            return Err("snapshots are not configured on this node".to_string());
        };
        assert!(
            config.in_progress.is_none(),
            "at most one snapshot is written at a time"
        );
        if self.last_applied == LogIndex::ZERO {
            return Err("nothing is applied yet: there is no state to snapshot".to_string());
        }
        let Some(term) = self.last_applied_term else {
            return Err(format!(
                "the term of the last applied entry ({}) is not known: the applier resumed \
                 without a snapshot; the next applied entry makes a snapshot possible",
                self.last_applied
            ));
        };
        let header = EnvelopeHeader {
            last_applied: LogId::new(term, self.last_applied),
            running_hash: self.running_hash,
        };
        let writer = SnapshotWriterThread {
            store: Arc::clone(&config.store),
            membership: self.membership.clone().unwrap_or_default(),
            header,
            state: self.state_machine.snapshot(),
            taken: config.taken.clone(),
            written: ctx.address().recipient(),
            metrics: Arc::clone(&self.snapshot_metrics),
        };
        config.in_progress = Some(header.last_applied);
        // Counted from the attempt: a failed write is retried one threshold later, not after
        // every batch.
        self.applied_since_snapshot = AppliedSinceSnapshot::default();
        self.snapshot_metrics.record_started();
        tracing::info!(last_log_id = %header.last_applied, "taking a snapshot");
        if config.write_inline {
            writer.run();
            return Ok(());
        }
        let spawned = std::thread::Builder::new()
            .name("snapshot-writer".to_string())
            .spawn(move || {
                lower_this_threads_priority();
                writer.run()
            });
        if let Err(error) = spawned {
            config.in_progress = None;
            self.snapshot_metrics.record_failure();
            return Err(format!("cannot start the snapshot writer thread: {error}"));
        }
        Ok(())
    }

    /// Restores `snapshot`, or stops the node if it cannot be read.
    fn restore_snapshot(&mut self, snapshot: SnapshotMeta, ctx: &mut Context<Self>) {
        let Some(config) = &self.snapshots else {
            self.stop_on_unrestorable(
                &snapshot,
                "this applier has no snapshot store".to_string(),
                ctx,
            );
            return;
        };
        let store = Arc::clone(&config.store);
        match restore_state(&mut self.state_machine, &*store, &snapshot) {
            Ok(header) => {
                tracing::info!(
                    %snapshot,
                    previous_last_applied = %self.last_applied,
                    running_hash_known = header.running_hash.is_some(),
                    "restored the state from a snapshot"
                );
                self.adopt_restored(header, &snapshot);
                self.record_restored_checkpoint();
                self.report_applied(ctx);
            }
            Err(error) => self.stop_on_unrestorable(&snapshot, error.to_string(), ctx),
        }
    }

    fn stop_on_unrestorable(
        &self,
        snapshot: &SnapshotMeta,
        error: String,
        ctx: &mut Context<Self>,
    ) {
        tracing::error!(
            %snapshot,
            %error,
            last_applied = %self.last_applied,
            "cannot restore the snapshot the consensus actor installed; the applied state \
             would be unknown; stopping the node"
        );
        System::current().stop_with_code(1);
        ctx.stop();
    }
}

/// Reads `snapshot`'s payload from `store` into `state_machine`: the envelope first, which
/// must name the same last entry as `snapshot`, then the state machine's bytes.
fn restore_state<S: StateMachine>(
    state_machine: &mut S,
    store: &dyn SnapshotStore,
    snapshot: &SnapshotMeta,
) -> Result<EnvelopeHeader, SnapshotError> {
    let corrupt = |offset: u64, reason: String| SnapshotError::Corrupt {
        path: snapshot.id().to_string(),
        offset,
        reason,
    };
    if snapshot.last_log_id.index == LogIndex::ZERO {
        return Err(corrupt(
            0,
            "a snapshot covers at least one entry".to_string(),
        ));
    }
    let mut payload = store.read_payload(&snapshot.id())?;
    let header = EnvelopeHeader::read_from(&mut payload)
        .map_err(|error| corrupt(error.offset, error.to_string()))?;
    if header.last_applied != snapshot.last_log_id {
        return Err(corrupt(
            5,
            format!(
                "the payload holds the state at {}, but the snapshot is of {}",
                header.last_applied, snapshot.last_log_id
            ),
        ));
    }
    state_machine
        .restore(&mut payload)
        .map_err(SnapshotError::StateMachine)?;
    Ok(header)
}

/// Everything the writer thread needs, owned: it cannot touch the actor.
struct SnapshotWriterThread {
    store: Arc<dyn SnapshotStore>,
    membership: Membership,
    header: EnvelopeHeader,
    state: Box<dyn StateMachineSnapshot>,
    taken: Recipient<SnapshotTaken>,
    written: Recipient<SnapshotWritten>,
    metrics: Arc<SnapshotMetrics>,
}

impl SnapshotWriterThread {
    fn run(self) {
        let started = Instant::now();
        let last_log_id = self.header.last_applied;
        // A panicking state machine must not leave the applier waiting forever for this write.
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.write())).unwrap_or_else(|_| {
                Err(SnapshotError::StateMachine(
                    "the snapshot writer panicked".to_string(),
                ))
            });
        let duration = started.elapsed();
        let outcome = match outcome {
            Ok(snapshot) => {
                self.metrics.record_taken(&snapshot, duration);
                tracing::info!(
                    %snapshot,
                    duration_ms = duration_ms(duration),
                    "snapshot taken"
                );
                // Durable now: the consensus actor may compact the log before it.
                self.taken.do_send(SnapshotTaken {
                    snapshot: snapshot.clone(),
                });
                Ok(snapshot)
            }
            Err(error) => {
                self.metrics.record_failure();
                tracing::error!(
                    %last_log_id,
                    %error,
                    "writing a snapshot failed; the log is not compacted; retrying at the next threshold"
                );
                Err(error.to_string())
            }
        };
        // Gone only when the applier stopped; nothing is left to tell then.
        self.written.do_send(SnapshotWritten {
            last_log_id,
            outcome,
        });
    }

    fn write(&self) -> Result<SnapshotMeta, SnapshotError> {
        let last_log_id = self.header.last_applied;
        let mut writer = self.store.begin(last_log_id, self.membership.clone())?;
        let payload_error = |source| SnapshotError::Io {
            operation: "write the payload of",
            path: format!("the snapshot at {last_log_id}"),
            source,
        };
        self.header.write_to(&mut writer).map_err(payload_error)?;
        self.state.write_to(&mut writer).map_err(payload_error)?;
        writer.finish()
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<S: StateMachine> Actor for ApplierActor<S> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        // Restored before it started (`restored_from`): the checkpoints go on from there.
        self.record_restored_checkpoint();
    }
}

impl<S: StateMachine> Handler<ApplyEntries> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: ApplyEntries, ctx: &mut Context<Self>) {
        let mut responders: BTreeMap<LogId, ClientResponder> =
            message.responders.into_iter().collect();
        if message.entries.is_empty() {
            assert!(responders.is_empty(), "responders come with their entries");
            return;
        }
        let mut due = Vec::new();
        for entry in &message.entries {
            self.apply_entry(entry, &mut responders, &mut due);
        }
        if let Some(running_hash) = &self.running_hash {
            let latest = Checkpoint {
                index: running_hash.index(),
                hash: running_hash.hash(),
            };
            self.checkpoints.record(&due, latest);
        }
        for (log_id, responder) in responders {
            // Its index now holds another entry: the proposal was overwritten by a later
            // leader and can never be applied.
            let _ = responder.send(Err(ClientError::Unavailable {
                reason: format!("entry {log_id} was overwritten before it committed"),
            }));
        }
        self.report_applied(ctx);
        self.take_snapshot_if_due(ctx);
    }
}

impl<S: StateMachine> Handler<Query> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: Query, _ctx: &mut Context<Self>) {
        let output = self.state_machine.query(&message.query);
        // A client that stopped waiting is not an error.
        let _ = message.responder.send(Ok(output));
    }
}

impl<S: StateMachine> Handler<RestoreSnapshot> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: RestoreSnapshot, ctx: &mut Context<Self>) {
        let snapshot = message.snapshot;
        if snapshot.last_log_id.index <= self.last_applied {
            // The state already covers it (entries handed over before it were applied first).
            tracing::info!(
                %snapshot,
                last_applied = %self.last_applied,
                "ignoring a snapshot at or below the last applied index"
            );
            self.report_applied(ctx);
            return;
        }
        self.restore_snapshot(snapshot, ctx);
    }
}

impl<S: StateMachine> Handler<TakeSnapshot> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: TakeSnapshot, ctx: &mut Context<Self>) {
        let Some(config) = &mut self.snapshots else {
            let _ = message
                .responder
                .send(Err("snapshots are not configured on this node".to_string()));
            return;
        };
        if config.in_progress.is_some() {
            config.waiting.push(message);
            return;
        }
        if let Some(newest) = &self.newest_snapshot {
            if newest.last_log_id.index == self.last_applied {
                // Nothing applied since: that snapshot is the state now.
                let _ = message.responder.send(Ok(newest.clone()));
                return;
            }
        }
        match self.start_snapshot(ctx) {
            Ok(()) => {
                if let Some(config) = &mut self.snapshots {
                    config.waiting.push(message);
                }
            }
            Err(reason) => {
                let _ = message.responder.send(Err(reason));
            }
        }
    }
}

impl<S: StateMachine> Handler<SnapshotWritten> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: SnapshotWritten, ctx: &mut Context<Self>) {
        let Some(config) = &mut self.snapshots else {
            return;
        };
        assert_eq!(
            config.in_progress,
            Some(message.last_log_id),
            "the write that ended is the one in progress"
        );
        config.in_progress = None;
        let waiting = std::mem::take(&mut config.waiting);
        if let Ok(snapshot) = &message.outcome {
            let newer = self
                .newest_snapshot
                .as_ref()
                .is_none_or(|newest| newest.last_log_id.index < snapshot.last_log_id.index);
            if newer {
                self.newest_snapshot = Some(snapshot.clone());
            }
        }
        for request in waiting {
            // The HTTP client may have given up.
            let _ = request.responder.send(message.outcome.clone());
        }
        // Entries applied while it was written may already reach the next threshold.
        self.take_snapshot_if_due(ctx);
    }
}

#[cfg(test)]
mod tests;

/// The nice value of the snapshot writer thread: serializing and syncing a whole state is
/// background work, and on a small machine it must not take the CPU from the consensus thread.
/// At the default priority, three nodes of one machine snapshotting together (they reach the
/// same threshold at the same entry) starved their consensus threads for a quarter of a second
/// and a leader stepped down for want of acknowledgements (docs/PERFORMANCE.md).
const SNAPSHOT_WRITER_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority (on Linux a priority set for "this
/// process", pid 0, applies to the calling thread only). Best effort: a failure leaves the
/// default priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, SNAPSHOT_WRITER_NICE) {
        tracing::debug!(%error, "cannot lower the snapshot writer's priority");
    }
}
