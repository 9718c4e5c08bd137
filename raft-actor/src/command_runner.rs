//! The shell's half of the core contract: one `run_<command>` arm per `raft_core::Command`,
//! each turning it into a message on the matching port.
//!
//! # Correctness
//!
//! - Storage requests are sent in the order the core emitted them, to one recipient, and only
//!   after checking it is alive: `do_send` to a stopped actor drops silently, and a lost
//!   append would be a lost acknowledged write.
//! - An `Apply` batch carries the responders of the proposals whose entry it holds; a proposal
//!   whose index now holds another term's entry is answered `Unavailable` here (it can never
//!   be applied: only one entry per index commits).
//! - A read is handed to the applier only on `ReadReady`, which the core emits once the
//!   applier has reported the read index applied; the applier's mailbox is ordered, so the
//!   query runs after every entry through that index.
//! - `RestoreSnapshot` goes to the applier's mailbox like `ApplyEntries` (the `apply` and
//!   `restore` recipients are one actor's), so it is restored after the entries handed over
//!   before it and before those after it.
//! - A snapshot chunk a leader sends is read from the snapshot store on tokio's blocking pool,
//!   never on this actor's thread; the read file stays open in a small cache, so a transfer
//!   survives the store deleting the file behind it (retention keeps only the newest two).
//!   Reads finish in any order, but the chunks to one peer leave in the order the core asked
//!   for them ([`ChunkSendOrder`]): the follower stores only the chunk that starts where its
//!   bytes end and answers a later one with a gap, which makes the leader resend its window.

use crate::raft_actor::RaftActor;
use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use raft_core::{Command, ReadRequestId};
use raft_proto::applier::{ApplyEntries, Query, RestoreSnapshot};
use raft_proto::client::ClientError;
use raft_proto::network::SendMessage;
use raft_proto::snapshot::{SnapshotError, SnapshotFile, SnapshotStore};
use raft_proto::storage::StorageRequest;
use raft_types::{Entry, InstallSnapshotRequest, IoSequence, LogIndex, NodeId, RaftMessage};
use raft_types::{SnapshotId, SnapshotMeta};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Snapshot files a leader keeps open for the transfers it runs: the newest few, by use.
const OPEN_SNAPSHOT_FILES: usize = 4;

/// The snapshot files kept open for sending, most recently used last.
#[derive(Default)]
pub(crate) struct OpenSnapshotFiles {
    files: Mutex<VecDeque<(SnapshotId, Arc<dyn SnapshotFile>)>>,
}

impl OpenSnapshotFiles {
    /// The open file of `snapshot`, opening it through `store` when it is not open yet.
    fn get(
        &self,
        store: &dyn SnapshotStore,
        snapshot: &SnapshotId,
    ) -> Result<Arc<dyn SnapshotFile>, SnapshotError> {
        let mut files = self.files.lock().expect("never poisoned: no panics inside");
        if let Some(position) = files.iter().position(|(id, _)| id == snapshot) {
            let entry = files.remove(position).expect("found");
            let file = Arc::clone(&entry.1);
            files.push_back(entry);
            return Ok(file);
        }
        let file = store.open(snapshot)?;
        files.push_back((*snapshot, Arc::clone(&file)));
        while files.len() > OPEN_SNAPSHOT_FILES {
            files.pop_front();
        }
        Ok(file)
    }
}

/// The snapshot chunks of one peer, put back in the order the core emitted them after their
/// reads (on the blocking pool) finished in whatever order they did.
#[derive(Default)]
pub(crate) struct ChunkSendOrder {
    /// The ticket the next read gets.
    next_ticket: u64,
    /// The ticket whose chunk leaves next.
    next_to_send: u64,
    /// Reads finished before their turn, by ticket; `None`: the read failed, nothing to send.
    finished: BTreeMap<u64, Option<InstallSnapshotRequest>>,
}

impl ChunkSendOrder {
    /// The ticket of a read about to start.
    fn take_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        ticket
    }

    /// Records that the read of `ticket` finished (`None`: it failed) and returns, in order,
    /// the chunks whose turn has come.
    fn finish(
        &mut self,
        ticket: u64,
        chunk: Option<InstallSnapshotRequest>,
    ) -> Vec<InstallSnapshotRequest> {
        self.finished.insert(ticket, chunk);
        let mut ready = Vec::new();
        while let Some(chunk) = self.finished.remove(&self.next_to_send) {
            self.next_to_send += 1;
            ready.extend(chunk);
        }
        ready
    }
}

use crate::metrics::Counter;
use crate::peer_round_trip::AppendKind;

impl RaftActor {
    pub(crate) fn run_command(&mut self, command: Command, ctx: &mut Context<Self>) {
        match command {
            Command::PersistHardState { hard_state, io } => {
                self.send_to_storage(StorageRequest::SaveHardState { hard_state, io }, ctx)
            }
            Command::TruncateLog { since, io } => {
                self.send_to_storage(StorageRequest::Truncate { since, io }, ctx)
            }
            Command::AppendLog { entries, io } => self.run_append_log(entries, io, ctx),
            Command::Send { to, message } => self.run_send(to, message),
            Command::Apply { entries } => self.run_apply(entries, ctx),
            Command::ReadReady {
                request_id,
                read_index,
            } => self.run_read_ready(request_id, read_index, ctx),
            Command::RejectRead {
                request_id,
                leader_hint,
            } => self.run_reject_read(request_id, leader_hint),
            Command::Diverged(divergence) => self.run_diverged(divergence, ctx),
            Command::PurgeLog { before } => {
                self.send_to_storage(StorageRequest::Purge { before }, ctx)
            }
            Command::ResetLog { last_log_id, io } => {
                self.send_to_storage(StorageRequest::ResetLog { last_log_id, io }, ctx)
            }
            Command::StoreSnapshotChunk {
                snapshot,
                offset,
                data,
            } => self.send_to_storage(
                StorageRequest::StoreSnapshotChunk {
                    snapshot,
                    offset,
                    data,
                },
                ctx,
            ),
            Command::SendSnapshotChunk {
                to,
                request,
                length,
            } => self.run_send_snapshot_chunk(to, request, length, ctx),
            Command::RestoreSnapshot { snapshot } => self.run_restore_snapshot(snapshot, ctx),
        }
    }

    /// Reads the chunk off this thread, then sends it; a failed read tells the core, which
    /// moves the transfer to a newer snapshot if it has one, or sends again later.
    fn run_send_snapshot_chunk(
        &mut self,
        to: NodeId,
        request: InstallSnapshotRequest,
        length: u64,
        ctx: &mut Context<Self>,
    ) {
        let Some(store) = self.ports.snapshot_store.clone() else {
            self.fatal(
                ctx,
                "the core sends a snapshot, but this node was wired without a snapshot store",
            );
            return;
        };
        let open_files = Arc::clone(&self.open_snapshot_files);
        let snapshot = request.snapshot.id();
        let offset = request.offset;
        let read = move || {
            open_files
                .get(store.as_ref(), &snapshot)
                .and_then(|file| file.read_at(offset, length as usize))
        };
        let ticket = self.chunk_send_order.entry(to).or_default().take_ticket();
        self.metrics.increment(Counter::SnapshotChunksSent);
        if self.config.read_snapshot_chunks_inline {
            let outcome = read().map_err(|error| error.to_string());
            self.finish_snapshot_chunk(to, ticket, request, outcome);
            return;
        }
        let read = tokio::task::spawn_blocking(read);
        ctx.spawn(read.into_actor(self).map(move |outcome, actor, _ctx| {
            let outcome = match outcome {
                Ok(read) => read.map_err(|error| error.to_string()),
                Err(join_error) => Err(format!("the read task failed: {join_error}")),
            };
            actor.finish_snapshot_chunk(to, ticket, request, outcome);
        }));
    }

    /// Sends the chunks now ready in ticket order (reads on the blocking pool finish in any
    /// order, and a chunk past a gap makes the follower ask for the window again), or tells
    /// the core a chunk could not be read.
    fn finish_snapshot_chunk(
        &mut self,
        to: NodeId,
        ticket: u64,
        mut request: InstallSnapshotRequest,
        outcome: Result<raft_types::Bytes, String>,
    ) {
        let snapshot = request.snapshot.id();
        let chunk = match outcome {
            Ok(data) => {
                request.data = data;
                Some(request)
            }
            Err(error) => {
                tracing::warn!(peer = %to, %snapshot, offset = request.offset, %error,
                    "cannot read a snapshot chunk");
                None
            }
        };
        let failed = chunk.is_none();
        // Every ticket finishes (a failed read too), so a failure never holds back the chunks
        // after it.
        let ready = self
            .chunk_send_order
            .entry(to)
            .or_default()
            .finish(ticket, chunk);
        if !ready.is_empty() {
            self.ports
                .network
                .do_send(raft_proto::network::SendMessages {
                    messages: ready
                        .into_iter()
                        .map(|request| SendMessage {
                            to,
                            message: RaftMessage::InstallSnapshot(request),
                        })
                        .collect(),
                });
        }
        if failed {
            self.raft.snapshot_send_failed(to, snapshot);
        }
    }

    fn run_restore_snapshot(&mut self, snapshot: SnapshotMeta, ctx: &mut Context<Self>) {
        if !self.ports.restore.connected() {
            self.fatal(ctx, "the applier is gone: a snapshot cannot be restored");
            return;
        }
        // Proposals this node made (as an earlier leader) at indexes the snapshot covers are
        // never applied here one by one: whether each committed or was overwritten is not
        // known, so their clients learn exactly that.
        let covered = self
            .waiting_proposals
            .take_through(snapshot.last_log_id.index);
        for (log_id, responder) in covered {
            let _ = responder.send(Err(ClientError::OutcomeUnknown {
                reason: format!(
                    "entry {log_id} is covered by {snapshot} installed from the leader; whether \
                     it committed is not known here"
                ),
            }));
        }
        tracing::info!(id = %self.raft.id(), %snapshot, "restoring the state machine from a snapshot");
        self.metrics.increment(Counter::SnapshotsRestored);
        self.ports.restore.do_send(RestoreSnapshot { snapshot });
    }

    fn run_append_log(&mut self, entries: Vec<Entry>, io: IoSequence, ctx: &mut Context<Self>) {
        if entries.is_empty() {
            return;
        }
        self.appends_in_flight.push_back((io, Instant::now()));
        self.metrics.increment(Counter::StorageAppends);
        self.send_to_storage(StorageRequest::Append { entries, io }, ctx);
    }

    /// A committed entry differs from a peer's: record it where the node's wiring says (so
    /// the node refuses to restart until an operator has looked), let the answer telling the
    /// leader go out, and stop with [`crate::DIVERGENCE_EXIT_CODE`].
    fn run_diverged(&mut self, divergence: raft_core::Divergence, ctx: &mut Context<Self>) {
        let line = format!(
            "node {} stopped: fatal divergence: {divergence}",
            self.raft.id()
        );
        if let Some(on_divergence) = &self.config.on_divergence {
            on_divergence(&line);
        }
        if !self.outgoing.messages.is_empty() {
            self.ports
                .network
                .do_send(std::mem::take(&mut self.outgoing));
        }
        self.fatal_with_code(ctx, &line, crate::DIVERGENCE_EXIT_CODE);
    }

    fn run_send(&mut self, to: NodeId, message: RaftMessage) {
        self.metrics.increment(Counter::MessagesSent);
        if let RaftMessage::AppendEntries(request) = &message {
            let kind = if request.entries.is_empty() {
                AppendKind::Heartbeat
            } else {
                AppendKind::Append
            };
            self.round_trip_probes
                .sent(to, request.term, request.sequence, kind, Instant::now());
        }
        // Sent with the rest of this flush's messages, in order, when the flush ends.
        self.outgoing.messages.push(SendMessage { to, message });
    }

    fn run_apply(&mut self, entries: Vec<Entry>, ctx: &mut Context<Self>) {
        let Some(last) = entries.last() else {
            return;
        };
        // The core hands over everything committed in one batch per flush, so after this the
        // applier has been asked for exactly `commit_index` (`GetDrainState` relies on it).
        assert_eq!(
            last.index(),
            self.raft.commit_index(),
            "an Apply batch ends at the commit index"
        );
        let due = self.waiting_proposals.take_due(&entries);
        for (log_id, responder) in due.overwritten {
            let _ = responder.send(Err(ClientError::Unavailable {
                reason: format!("entry {log_id} was overwritten by a later leader"),
            }));
        }
        if !self.ports.apply.connected() {
            self.fatal(
                ctx,
                "the applier is gone: committed entries cannot be applied",
            );
            return;
        }
        self.ports.apply.do_send(ApplyEntries {
            entries,
            responders: due.to_applier,
        });
    }

    fn run_read_ready(
        &mut self,
        request_id: ReadRequestId,
        read_index: LogIndex,
        ctx: &mut Context<Self>,
    ) {
        let Some(read) = self.waiting_reads.remove(&request_id) else {
            // Already refused (shutdown).
            return;
        };
        if !self.ports.query.connected() {
            self.fatal(ctx, "the query recipient (applier) is gone");
            return;
        }
        tracing::trace!(request_id, %read_index, "read ready");
        self.ports.query.do_send(Query {
            query: read.query,
            responder: read.responder,
        });
    }

    fn run_reject_read(&mut self, request_id: ReadRequestId, leader_hint: Option<NodeId>) {
        let Some(read) = self.waiting_reads.remove(&request_id) else {
            return;
        };
        self.metrics.increment(Counter::ReadsRejected);
        let _ = read
            .responder
            .send(Err(ClientError::NotLeader { leader_hint }));
    }

    fn send_to_storage(&mut self, request: StorageRequest, ctx: &mut Context<Self>) {
        if !self.ports.storage.connected() {
            self.fatal(
                ctx,
                "the storage actor is gone: nothing can be made durable",
            );
            return;
        }
        self.ports.storage.do_send(request);
    }
}
