//! Snapshots and log compaction (§7, Figure 13): compacting the log behind a snapshot, a
//! leader sending a snapshot to a follower that needs purged entries, and the follower
//! receiving and installing it.
//!
//! The core never sees a snapshot's bytes except in passing: the state machine writes
//! snapshots (reported with [`Raft::snapshot_taken`]), the shell reads the chunks a leader
//! sends from its snapshot store (`Command::SendSnapshotChunk`), and a follower's storage
//! writes the chunks it receives (`Command::StoreSnapshotChunk`, answered with
//! [`Raft::snapshot_chunk_stored`]). What the core decides is when, what and in which order.
//!
//! # Compaction
//!
//! After a snapshot at index `s`, entries through `s - snapshot_trailing_entries` are dropped
//! from memory and storage may delete them (`Command::PurgeLog`). A leader keeps every entry
//! after the snapshot a follower is still being sent, so that follower can continue with
//! entries once it has installed it; they go at the next compaction after the transfer.
//!
//! # The leader's side
//!
//! A follower whose `next_index - 1` is purged (its term unknown, so no AppendEntries can
//! follow it) switches to [`ReplicationMode::Snapshot`]: the newest snapshot in chunks of
//! `snapshot_chunk_bytes`, at most `snapshot_max_inflight_chunks` unacknowledged. Heartbeats go
//! on meanwhile as AppendEntries after the empty prefix (index 0), which every log holds, so
//! the follower keeps its leader and ReadIndex keeps counting its answers. Appends pause. A
//! chunk answer that reports fewer stored bytes than the chunk's start (a lost chunk, or a
//! follower that restarted) sends again from there; so does a transfer without progress for
//! `snapshot_chunk_timeout_ticks`. The follower's first answer may report more bytes than the
//! leader sent (a partial file from an interrupted transfer of the same snapshot): the leader
//! continues from there instead of from zero. A transfer that got no byte across yet (the
//! follower was unreachable) starts over with a newer snapshot when one is taken.
//!
//! # The follower's side (Figure 13)
//!
//! 1. A chunk of an older term is refused (`StaleTerm`); otherwise the sender is this term's
//!    leader, as for AppendEntries.
//! 2. A snapshot at or below the commit index is ignored and answered `NotNeeded` with the
//!    commit index: everything it holds is already committed here (`last_applied` never
//!    exceeds the commit index, so this covers it too).
//! 3. A chunk is stored only where the stored bytes end (offset 0 starts a new snapshot and
//!    discards a partial one); its answer leaves once storage reports it durable.
//! 4. When the file is complete and verified: if the log holds the snapshot's last entry, the
//!    entries after it are kept; otherwise the whole log is discarded (`Command::ResetLog`).
//!    The state machine is reset from the snapshot (`Command::RestoreSnapshot`), the commit
//!    index moves up to the snapshot, and the answer `Installed` tells the leader the log now
//!    matches through it.

use crate::command::Command;
use crate::progress::{ReplicationMode, SentChunk, SnapshotTransfer};
use crate::raft::Raft;
use raft_types::{
    AppendEntriesRequest, Bytes, InstallSnapshotRequest, InstallSnapshotResponse, LogId, LogIndex,
    NodeId, RaftMessage, Role, SnapshotId, SnapshotMeta, SnapshotOutcome, SnapshotReceiveOutcome,
};

/// A snapshot a follower is receiving: what it has handed to storage and what storage made
/// durable.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotReceipt {
    pub snapshot: SnapshotMeta,
    /// Whom the answers go to: the leader that sent the latest chunk.
    pub leader: NodeId,
    /// Bytes `0 .. handed_over` went to storage.
    pub handed_over: u64,
    /// Bytes `0 .. stored` are durable.
    pub stored: u64,
    /// Chunks handed to storage and not reported yet.
    pub stores_in_flight: u64,
    /// Answers owed, each sent once `stored` reaches `needed`.
    pub pending_answers: Vec<PendingChunkAnswer>,
}

/// An InstallSnapshot answer held until the bytes it acknowledges are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingChunkAnswer {
    pub sequence: u64,
    pub needed: u64,
}

impl Raft {
    // ----- inputs -------------------------------------------------------------------------

    /// The state machine took a snapshot, now complete and durable in the snapshot store:
    /// the log behind it may be compacted.
    pub fn snapshot_taken(&mut self, snapshot: SnapshotMeta) {
        if self.halted.is_some() {
            return;
        }
        let last_log_id = snapshot.last_log_id;
        assert!(
            last_log_id.index <= self.apply_requested_index,
            "a snapshot at {last_log_id} of entries never handed to the state machine (through {})",
            self.apply_requested_index
        );
        if let Some(held) = self.log.log_id_at(last_log_id.index) {
            assert_eq!(
                held, last_log_id,
                "State Machine Safety: the state machine snapshotted {last_log_id}, the log holds {held}"
            );
        }
        let (base_log_id, _) = self.log.membership_at(LogIndex::ZERO);
        if last_log_id.index >= base_log_id.index {
            let in_force_then = &self.log.membership_at(last_log_id.index).1;
            assert_eq!(
                &snapshot.membership, in_force_then,
                "the snapshot at {last_log_id} records a configuration the log does not hold there"
            );
        }
        if self
            .snapshot
            .as_ref()
            .is_some_and(|newest| newest.last_log_id.index >= last_log_id.index)
        {
            return;
        }
        tracing::debug!(id = %self.config.id, %snapshot, "snapshot taken");
        self.snapshot = Some(snapshot);
        self.compact_log();
    }

    /// Storage reports what became of the snapshot chunks handed to it
    /// (`Command::StoreSnapshotChunk`).
    pub fn snapshot_chunk_stored(&mut self, snapshot: SnapshotId, outcome: SnapshotReceiveOutcome) {
        if self.halted.is_some() {
            return;
        }
        if let Some(abandoned) = self.abandoned_chunk_stores.get_mut(&snapshot) {
            // A report about a chunk handed over for a receipt since dropped: storage works in
            // order, so the reports of an abandoned receipt's chunks come before those of a
            // later receipt of the same snapshot, and must not be taken as its progress.
            *abandoned -= 1;
            if *abandoned == 0 {
                self.abandoned_chunk_stores.remove(&snapshot);
            }
            return;
        }
        let Some(receipt) = self.snapshot_receipt.as_mut() else {
            return;
        };
        assert_eq!(
            receipt.snapshot.id(),
            snapshot,
            "a report about a chunk of a snapshot never handed to storage"
        );
        assert!(
            receipt.stores_in_flight > 0,
            "a report without a chunk in flight"
        );
        receipt.stores_in_flight -= 1;
        match outcome {
            SnapshotReceiveOutcome::Stored { next_offset } => {
                receipt.stored = receipt.stored.max(next_offset);
                if receipt.stores_in_flight == 0 {
                    // Storage holds exactly `stored` now; if it refused a chunk, resume there.
                    receipt.handed_over = receipt.stored;
                }
                self.release_snapshot_answers();
            }
            SnapshotReceiveOutcome::Complete => self.install_received_snapshot(),
            SnapshotReceiveOutcome::Rejected { reason } => {
                let receipt = self.take_receipt().expect("checked above");
                tracing::warn!(id = %self.config.id, snapshot = %receipt.snapshot, %reason,
                    "received snapshot failed verification; starting over");
                let sequence = receipt
                    .pending_answers
                    .iter()
                    .map(|answer| answer.sequence)
                    .max()
                    .unwrap_or(0);
                self.answer_snapshot(
                    receipt.leader,
                    sequence,
                    SnapshotOutcome::Rejected { reason },
                );
            }
        }
    }

    /// The shell could not read the chunks of `snapshot` for `peer` (its file is gone or
    /// unreadable). If a newer snapshot exists, the transfer starts over with it; otherwise the
    /// chunks are sent again after the transfer's timeout.
    pub fn snapshot_send_failed(&mut self, peer: NodeId, snapshot: SnapshotId) {
        if self.halted.is_some() || self.role() != Role::Leader {
            return;
        }
        let Some(newest) = self.snapshot.clone() else {
            return;
        };
        if !self.is_tracked_peer(peer) {
            return;
        }
        let progress = self.progress_mut(peer);
        let ReplicationMode::Snapshot(transfer) = &mut progress.mode else {
            return;
        };
        if transfer.snapshot.id() == snapshot && newest.id() != snapshot {
            tracing::warn!(%peer, failed = %snapshot, %newest,
                "cannot read the snapshot being sent; sending the newest instead");
            *transfer = SnapshotTransfer::new(newest);
        }
    }

    // ----- queries ------------------------------------------------------------------------

    /// The newest snapshot this server holds (taken or installed), if any.
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }

    /// The snapshot this follower is receiving and how many of its bytes are durable.
    pub fn receiving_snapshot(&self) -> Option<(&SnapshotMeta, u64)> {
        self.snapshot_receipt
            .as_ref()
            .map(|receipt| (&receipt.snapshot, receipt.stored))
    }

    // ----- compaction ---------------------------------------------------------------------

    /// Drops entries the newest snapshot covers, keeping `snapshot_trailing_entries` behind
    /// it and everything a follower being sent an older snapshot will need after it.
    pub(crate) fn compact_log(&mut self) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let mut purge_through = LogIndex(
            snapshot
                .last_log_id
                .index
                .0
                .saturating_sub(self.config.snapshot_trailing_entries),
        );
        if let Some(leader_state) = self.leader_state() {
            for progress in leader_state.progress.values() {
                if let Some(transfer) = progress.snapshot_transfer() {
                    purge_through = purge_through.min(transfer.snapshot.last_log_id.index);
                }
            }
        }
        // Entries not yet handed to the state machine must stay (they are applied from
        // memory); a snapshot never covers them, this only says so.
        purge_through = purge_through.min(self.apply_requested_index);
        if purge_through <= self.log.last_purged_log_id().index {
            return;
        }
        self.log.purge_through(purge_through);
        self.commands.push(Command::PurgeLog {
            before: purge_through.next(),
        });
    }

    // ----- the leader's side --------------------------------------------------------------

    /// Whether `peer` needs a snapshot: the entry before its next index is purged, so no
    /// AppendEntries can carry what it needs.
    pub(crate) fn needs_snapshot(&self, peer: NodeId) -> bool {
        let progress = self.progress(peer);
        progress.snapshot_transfer().is_none()
            && progress.next_index.previous() < self.log.last_purged_log_id().index
    }

    /// Whether `peer`'s transfer has not got a single byte across yet while a newer snapshot
    /// exists: starting over with the newer one costs nothing and leaves the follower fewer
    /// entries to catch up with afterwards (a transfer begun while the follower was
    /// unreachable would otherwise deliver a snapshot long superseded).
    pub(crate) fn has_a_newer_snapshot_to_send(&self, peer: NodeId) -> bool {
        let (Some(transfer), Some(newest)) =
            (self.progress(peer).snapshot_transfer(), &self.snapshot)
        else {
            return false;
        };
        transfer.acknowledged_offset == 0
            && newest.last_log_id.index > transfer.snapshot.last_log_id.index
    }

    /// Starts sending `peer` the newest snapshot.
    pub(crate) fn start_snapshot_transfer(&mut self, peer: NodeId) {
        let snapshot = self
            .snapshot
            .clone()
            .expect("entries are purged only behind a snapshot");
        assert!(
            snapshot.size_bytes > 0,
            "a snapshot file is never empty (it has a header)"
        );
        tracing::info!(id = %self.config.id, %peer, %snapshot,
            next_index = %self.progress(peer).next_index, "sending a snapshot");
        self.progress_mut(peer).mode = ReplicationMode::Snapshot(SnapshotTransfer::new(snapshot));
    }

    /// Sends `peer` the chunks its window allows, and with `heartbeat` an AppendEntries after
    /// the empty prefix, which keeps it following while appends pause.
    pub(crate) fn send_snapshot_chunks(&mut self, peer: NodeId, heartbeat: bool) {
        assert!(
            self.hard_state_in_flight.is_none(),
            "a leader has no hard state save in flight (its vote was durable when it won)"
        );
        let chunk_bytes = self.config.snapshot_chunk_bytes;
        let window = self.config.snapshot_max_inflight_chunks;
        let term = self.current_term;
        let leader_id = self.config.id;
        loop {
            let leader_state = self.leader_state_mut();
            let sequence = leader_state.next_sequence;
            let progress = leader_state
                .progress
                .get_mut(&peer)
                .expect("the leader tracks progress for every peer");
            let ReplicationMode::Snapshot(transfer) = &mut progress.mode else {
                unreachable!("sending snapshot chunks to a follower in another mode")
            };
            let size = transfer.snapshot.size_bytes;
            if transfer.inflight.len() >= window || transfer.next_offset >= size {
                break;
            }
            let offset = transfer.next_offset;
            let length = chunk_bytes.min(size - offset);
            transfer.inflight.push_back(SentChunk {
                sequence,
                offset,
                end_offset: offset + length,
            });
            transfer.next_offset = offset + length;
            let request = InstallSnapshotRequest {
                term,
                leader_id,
                snapshot: transfer.snapshot.clone(),
                offset,
                data: Bytes::new(),
                sequence,
            };
            leader_state.next_sequence += 1;
            self.commands.push(Command::SendSnapshotChunk {
                to: peer,
                request,
                length,
            });
        }
        if heartbeat {
            let leader_state = self.leader_state_mut();
            let sequence = leader_state.next_sequence;
            leader_state.next_sequence += 1;
            let request = AppendEntriesRequest {
                term,
                leader_id,
                prev_log_id: LogId::ZERO,
                entries: Vec::new(),
                leader_commit: self.commit_index,
                sequence,
            };
            self.send(peer, RaftMessage::AppendEntries(request));
        }
    }

    pub(crate) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        response: InstallSnapshotResponse,
    ) {
        if self.role() != Role::Leader
            || response.term != self.current_term
            || !self.is_tracked_peer(from)
        {
            return;
        }
        if response.outcome == SnapshotOutcome::StaleTerm {
            // Echoes a request of an older term: no evidence about this term.
            return;
        }
        {
            let progress = self.progress_mut(from);
            progress.heard_from();
            progress.acknowledged_sequence = progress.acknowledged_sequence.max(response.sequence);
        }
        match response.outcome {
            SnapshotOutcome::Receiving {
                snapshot,
                next_offset,
            } => {
                let progress = self.progress_mut(from);
                if let ReplicationMode::Snapshot(transfer) = &mut progress.mode {
                    if transfer.snapshot.id() == snapshot {
                        let answered = transfer
                            .inflight
                            .iter()
                            .find(|chunk| chunk.sequence == response.sequence)
                            .copied();
                        match answered {
                            // The follower holds less than this chunk's start: a chunk before
                            // it was lost, or the follower lost its partial file.
                            Some(chunk) if chunk.offset > next_offset => {
                                transfer.resend_from(next_offset)
                            }
                            _ => {
                                transfer.acknowledge(next_offset);
                            }
                        }
                    }
                }
            }
            SnapshotOutcome::Installed { last_log_id } => {
                assert!(
                    last_log_id.index <= self.log.last_index(),
                    "follower {from} installed a snapshot at {last_log_id}, beyond the leader's log"
                );
                tracing::info!(id = %self.config.id, peer = %from, %last_log_id,
                    "follower installed the snapshot");
                let progress = self.progress_mut(from);
                if progress.snapshot_transfer().is_some() {
                    progress.finish_snapshot(last_log_id.index);
                } else {
                    progress.acknowledge(last_log_id.index);
                }
                // The entries kept for this transfer are what the follower needs now: they
                // go at the next compaction, once it has had them.
                self.maybe_advance_commit_index();
            }
            SnapshotOutcome::NotNeeded { commit_index } => {
                let progress = self.progress_mut(from);
                if let Some(transfer) = progress.snapshot_transfer() {
                    let after_snapshot = transfer.snapshot.last_log_id.index.next();
                    tracing::debug!(peer = %from, %commit_index,
                        "follower needs no snapshot; probing after it");
                    progress.start_probing(after_snapshot);
                }
            }
            SnapshotOutcome::Rejected { reason } => {
                tracing::warn!(id = %self.config.id, peer = %from, %reason,
                    "follower rejected the snapshot it received; sending it again");
                if let ReplicationMode::Snapshot(transfer) = &mut self.progress_mut(from).mode {
                    transfer.resend_from(0);
                }
            }
            SnapshotOutcome::StaleTerm => unreachable!("handled above"),
        }
        self.serve_ready_reads();
    }

    // ----- the follower's side ------------------------------------------------------------

    pub(crate) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        request: InstallSnapshotRequest,
    ) {
        // Step 1: reply immediately if term < currentTerm.
        if request.term < self.current_term || request.leader_id != from {
            let response = InstallSnapshotResponse {
                term: self.current_term,
                sequence: request.sequence,
                outcome: SnapshotOutcome::StaleTerm,
            };
            self.send(from, RaftMessage::InstallSnapshotResponse(response));
            return;
        }
        self.follow_leader_of_this_term(from, request.term);
        let last_log_id = request.snapshot.last_log_id;
        if last_log_id.index <= self.commit_index {
            // Everything the snapshot holds is committed here already (Figure 13: a snapshot
            // at or below what is committed or applied is ignored).
            if self
                .snapshot_receipt
                .as_ref()
                .is_some_and(|receipt| receipt.snapshot.last_log_id.index <= self.commit_index)
            {
                self.take_receipt();
            }
            let outcome = SnapshotOutcome::NotNeeded {
                commit_index: self.commit_index,
            };
            self.answer_snapshot(from, request.sequence, outcome);
            return;
        }
        let same_snapshot = self
            .snapshot_receipt
            .as_ref()
            .is_some_and(|receipt| receipt.snapshot == request.snapshot);
        if !same_snapshot {
            if request.offset != 0 {
                // A chunk from the middle of a snapshot this server holds nothing of.
                let outcome = SnapshotOutcome::Receiving {
                    snapshot: request.snapshot.id(),
                    next_offset: 0,
                };
                self.answer_snapshot(from, request.sequence, outcome);
                return;
            }
            if let Some(previous) = self.take_receipt() {
                tracing::info!(id = %self.config.id, previous = %previous.snapshot,
                    new = %request.snapshot, "receiving another snapshot; dropping the partial one");
            }
            self.snapshot_receipt = Some(SnapshotReceipt {
                snapshot: request.snapshot.clone(),
                leader: from,
                handed_over: 0,
                stored: 0,
                stores_in_flight: 0,
                pending_answers: Vec::new(),
            });
        }
        let end_offset = request.end_offset();
        let receipt = self.snapshot_receipt.as_mut().expect("set above");
        receipt.leader = from;
        if request.offset == receipt.handed_over && end_offset > request.offset {
            receipt.handed_over = end_offset;
            receipt.stores_in_flight += 1;
            receipt.pending_answers.push(PendingChunkAnswer {
                sequence: request.sequence,
                needed: end_offset,
            });
            self.commands.push(Command::StoreSnapshotChunk {
                snapshot: request.snapshot,
                offset: request.offset,
                data: request.data,
            });
        } else if request.offset <= receipt.handed_over {
            // A duplicate (or a resend of bytes already on their way to storage, or an empty
            // chunk): answered once what it covers is durable.
            receipt.pending_answers.push(PendingChunkAnswer {
                sequence: request.sequence,
                needed: end_offset.min(receipt.handed_over),
            });
            self.release_snapshot_answers();
        } else {
            // A gap: an earlier chunk was lost. Tell the leader where the stored bytes end.
            let outcome = SnapshotOutcome::Receiving {
                snapshot: request.snapshot.id(),
                next_offset: receipt.stored,
            };
            self.answer_snapshot(from, request.sequence, outcome);
        }
    }

    /// Drops the receipt, remembering how many of its chunks storage has yet to report on.
    pub(crate) fn take_receipt(&mut self) -> Option<SnapshotReceipt> {
        let receipt = self.snapshot_receipt.take()?;
        if receipt.stores_in_flight > 0 {
            *self
                .abandoned_chunk_stores
                .entry(receipt.snapshot.id())
                .or_default() += receipt.stores_in_flight;
        }
        Some(receipt)
    }

    /// Sends one answer covering every held chunk answer whose bytes are now durable.
    fn release_snapshot_answers(&mut self) {
        let Some(receipt) = self.snapshot_receipt.as_mut() else {
            return;
        };
        let stored = receipt.stored;
        let mut released: Option<u64> = None;
        receipt.pending_answers.retain(|answer| {
            if answer.needed > stored {
                return true;
            }
            released = Some(released.unwrap_or(0).max(answer.sequence));
            false
        });
        let Some(sequence) = released else {
            return;
        };
        let leader = receipt.leader;
        let outcome = SnapshotOutcome::Receiving {
            snapshot: receipt.snapshot.id(),
            next_offset: stored,
        };
        self.answer_snapshot(leader, sequence, outcome);
    }

    /// Figure 13, steps 6 to 8, once the received file is complete and verified.
    fn install_received_snapshot(&mut self) {
        let receipt = self.take_receipt().expect("called with a receipt");
        let snapshot = receipt.snapshot;
        let last_log_id = snapshot.last_log_id;
        let sequence = receipt
            .pending_answers
            .iter()
            .map(|answer| answer.sequence)
            .max()
            .unwrap_or(0);
        if last_log_id.index <= self.commit_index {
            // Committed meanwhile through AppendEntries: keep it as a local snapshot only.
            self.adopt_snapshot(snapshot);
            let outcome = SnapshotOutcome::NotNeeded {
                commit_index: self.commit_index,
            };
            self.answer_snapshot(receipt.leader, sequence, outcome);
            return;
        }
        if self.log.matches(last_log_id) {
            // Step 6: an existing entry has the snapshot's index and term: keep the entries
            // after it. They are as durable as they were; the snapshot covers the rest.
            tracing::info!(id = %self.config.id, %snapshot, "installing a snapshot; keeping the log after it");
        } else {
            // Step 7: discard the entire log.
            tracing::info!(id = %self.config.id, %snapshot, "installing a snapshot; discarding the log");
            assert_eq!(
                self.storage_requested_index,
                self.log.last_index(),
                "storage holds the whole log before it is reset"
            );
            self.log.reset_to(last_log_id, snapshot.membership.clone());
            self.persisted_index = last_log_id.index;
            self.storage_requested_index = last_log_id.index;
            let io = self.next_io();
            self.last_truncation_io = io;
            // Acknowledgements of discarded entries must never leave. (Within one term the
            // leader's entries through an acknowledged index include the snapshot's last
            // entry, so a discarded log held none of them; this only makes it certain.)
            self.pending_acknowledgements
                .retain(|acknowledgement| acknowledgement.match_index <= last_log_id.index);
            self.commands.push(Command::ResetLog { last_log_id, io });
        }
        // Step 8: reset the state machine using the snapshot's contents.
        self.commit_index = last_log_id.index;
        self.apply_requested_index = last_log_id.index;
        self.commands.push(Command::RestoreSnapshot {
            snapshot: snapshot.clone(),
        });
        self.persisted_index = self.persisted_index.max(last_log_id.index);
        self.adopt_snapshot(snapshot);
        self.answer_snapshot(
            receipt.leader,
            sequence,
            SnapshotOutcome::Installed { last_log_id },
        );
        self.release_acknowledgements();
    }

    /// Records `snapshot` as this server's newest if it is, and compacts behind it.
    fn adopt_snapshot(&mut self, snapshot: SnapshotMeta) {
        if self
            .snapshot
            .as_ref()
            .is_none_or(|newest| newest.last_log_id.index < snapshot.last_log_id.index)
        {
            self.snapshot = Some(snapshot);
            self.compact_log();
        }
    }

    fn answer_snapshot(&mut self, leader: NodeId, sequence: u64, outcome: SnapshotOutcome) {
        let response = InstallSnapshotResponse {
            term: self.current_term,
            sequence,
            outcome,
        };
        self.send(leader, RaftMessage::InstallSnapshotResponse(response));
    }
}
