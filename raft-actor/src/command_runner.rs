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

use crate::raft_actor::RaftActor;
use actix::Context;
use raft_core::{Command, ReadRequestId};
use raft_proto::applier::{ApplyEntries, Query};
use raft_proto::client::ClientError;
use raft_proto::network::SendMessage;
use raft_proto::storage::StorageRequest;
use raft_types::{Entry, IoSequence, LogIndex, NodeId, RaftMessage};
use std::time::Instant;

use crate::metrics::Counter;

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
        }
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
