//! Renders `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Sources: the consensus actor's `RaftMetrics` (term, role, indexes, proposals, elections,
//! leader changes, append-to-durable latency), the storage actor's `StorageMetrics` (fsync
//! latency, batches, entries), the network actor's `NetworkStats` (per-peer
//! traffic and dropped messages), the consistency check's alarm and counters, and the API's own
//! request counters.

use crate::consistency::ConsistencyState;
use crate::http_api::snapshot_routes::SnapshotStatus;
use raft_actor::RaftMetricsSnapshot;
use raft_proto::client::Role;
use raft_proto::metrics::HistogramSnapshot;
use raft_proto::network::NetworkStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use storage_actor::StorageMetricsSnapshot;

/// Prometheus text being built; each metric family gets its HELP and TYPE lines once.
#[derive(Default)]
pub struct MetricsText {
    text: String,
}

impl MetricsText {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut MetricsText {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    pub fn sample(&mut self, name: &str, labels: &str, value: u64) -> &mut MetricsText {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {value}");
        }
        self
    }

    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) -> &mut MetricsText {
        self.family(name, kind, help).sample(name, "", value)
    }

    pub fn raft(&mut self, snapshot: &RaftMetricsSnapshot) -> &mut MetricsText {
        let role = match snapshot.role {
            Role::Follower => 0,
            Role::Candidate => 1,
            Role::Leader => 2,
        };
        self.single(
            "raft_term",
            "gauge",
            "Current term.",
            snapshot.current_term.0,
        )
        .single(
            "raft_role",
            "gauge",
            "Role: 0 follower, 1 candidate, 2 leader.",
            role,
        )
        .single(
            "raft_is_leader",
            "gauge",
            "1 when this node is the leader.",
            u64::from(snapshot.role == Role::Leader),
        )
        .single(
            "raft_leader_id",
            "gauge",
            "Id of the known leader, 0 when none is known.",
            snapshot.leader_id.map_or(0, |id| id.0),
        )
        .single(
            "raft_commit_index",
            "gauge",
            "Highest log index known committed.",
            snapshot.commit_index.0,
        )
        .single(
            "raft_last_applied",
            "gauge",
            "Highest log index applied to the state machine.",
            snapshot.last_applied.0,
        )
        .single(
            "raft_last_log_index",
            "gauge",
            "Index of the last entry in the log.",
            snapshot.last_log_index.0,
        )
        .single(
            "raft_persisted_index",
            "gauge",
            "Highest log index durable on this node.",
            snapshot.persisted_index.0,
        )
        .single(
            "raft_proposals_total",
            "counter",
            "Proposals accepted into the leader's log.",
            snapshot.proposals_total,
        )
        .single(
            "raft_proposals_rejected_total",
            "counter",
            "Proposals refused before entering the log.",
            snapshot.proposals_rejected_total,
        )
        .single(
            "raft_reads_total",
            "counter",
            "Linearizable reads started as leader.",
            snapshot.reads_total,
        )
        .single(
            "raft_reads_rejected_total",
            "counter",
            "Linearizable reads refused or rejected.",
            snapshot.reads_rejected_total,
        )
        .single(
            "raft_elections_started_total",
            "counter",
            "Elections this node started.",
            snapshot.elections_started_total,
        )
        .single(
            "raft_leader_changes_total",
            "counter",
            "Times the known leader changed.",
            snapshot.leader_changes_total,
        )
        .single(
            "raft_messages_sent_total",
            "counter",
            "Raft messages handed to the network.",
            snapshot.messages_sent_total,
        )
        .single(
            "raft_messages_received_total",
            "counter",
            "Raft messages received from peers.",
            snapshot.messages_received_total,
        )
        .single(
            "raft_storage_appends_total",
            "counter",
            "Append batches sent to storage.",
            snapshot.storage_appends_total,
        )
        .single(
            "raft_snapshot_chunks_sent_total",
            "counter",
            "InstallSnapshot chunks sent to followers.",
            snapshot.snapshot_chunks_sent_total,
        )
        .single(
            "raft_peers_connected",
            "gauge",
            "Peers with an established outgoing connection.",
            snapshot.peers_connected,
        );
        self.histogram(
            "raft_append_durable_latency_seconds",
            "Time from an append sent to storage until it is durable (queue, write, fsync).",
            &snapshot.append_latency,
        )
    }

    pub fn storage(&mut self, snapshot: &StorageMetricsSnapshot) -> &mut MetricsText {
        self.single(
            "raft_storage_batches_total",
            "counter",
            "Storage batches written, one fsync each (group commit).",
            snapshot.batches_total,
        )
        .single(
            "raft_storage_requests_total",
            "counter",
            "Storage requests covered by those batches.",
            snapshot.requests_total,
        )
        .single(
            "raft_storage_entries_total",
            "counter",
            "Log entries written.",
            snapshot.entries_total,
        )
        .histogram(
            "raft_storage_fsync_latency_seconds",
            "Duration of each fdatasync of a storage batch.",
            &snapshot.sync_latency,
        )
    }

    /// The newest snapshot and the log after it (the same figures as `/v1/status`).
    pub fn snapshots(&mut self, status: &SnapshotStatus) -> &mut MetricsText {
        self.single(
            "raft_snapshot_index",
            "gauge",
            "Last log index covered by the newest complete snapshot, 0 when none.",
            status.snapshot_index,
        )
        .single(
            "raft_snapshot_term",
            "gauge",
            "Term of the last entry covered by the newest snapshot, 0 when none.",
            status.snapshot_term,
        )
        .single(
            "raft_snapshot_size_bytes",
            "gauge",
            "Length of the newest snapshot file in bytes, 0 when none.",
            status.snapshot_size_bytes,
        );
        let name = "raft_snapshot_last_write_duration_seconds";
        self.family(
            name,
            "gauge",
            "Duration of the last successful snapshot write, from start to durable.",
        );
        let _ = writeln!(
            self.text,
            "{name} {}",
            status.snapshot_last_write_duration_ms as f64 / 1e3
        );
        self.single(
            "raft_snapshot_write_in_progress",
            "gauge",
            "1 while the state machine is writing a snapshot.",
            u64::from(status.snapshot_write_in_progress),
        )
        .single(
            "raft_snapshots_taken_total",
            "counter",
            "Snapshots this node's state machine wrote and made durable.",
            status.snapshots_taken_total,
        )
        .single(
            "raft_snapshot_failures_total",
            "counter",
            "Snapshot writes that failed.",
            status.snapshot_failures_total,
        )
        .single(
            "raft_snapshots_restored_total",
            "counter",
            "Snapshots the state machine was restored from (at start or sent by the leader).",
            status.snapshots_restored_total,
        )
        .single(
            "raft_log_first_index",
            "gauge",
            "First index of the log this node holds; the entries before it are only in the snapshot.",
            status.log_first_index,
        )
        .single(
            "raft_log_entries",
            "gauge",
            "Entries in the log this node holds, from raft_log_first_index to the last.",
            status.log_entries,
        );
        if let Some(bytes) = status.log_size_bytes {
            self.single(
                "raft_log_size_bytes",
                "gauge",
                "Bytes of the write-ahead log's segment files.",
                bytes,
            );
        }
        self
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        histogram: &HistogramSnapshot,
    ) -> &mut MetricsText {
        self.family(name, "histogram", help);
        for (bound_microseconds, cumulative) in &histogram.cumulative_buckets {
            let bound_seconds = *bound_microseconds as f64 / 1e6;
            let _ = writeln!(
                self.text,
                "{name}_bucket{{le=\"{bound_seconds}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            self.text,
            "{name}_bucket{{le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(
            self.text,
            "{name}_sum {}",
            histogram.sum_microseconds as f64 / 1e6
        );
        let _ = writeln!(self.text, "{name}_count {}", histogram.count);
        self
    }

    pub fn network(&mut self, stats: &NetworkStats) -> &mut MetricsText {
        type PeerValue = fn(&raft_proto::network::PeerStats) -> u64;
        let families: [(&str, &str, PeerValue); 6] = [
            (
                "raft_peer_messages_dropped_total",
                "Messages to a peer dropped (queue full, unreachable, over the frame limit).",
                |peer| peer.messages_dropped,
            ),
            (
                "raft_peer_messages_sent_total",
                "Messages written to a peer's connection.",
                |peer| peer.messages_sent,
            ),
            (
                "raft_peer_bytes_sent_total",
                "Bytes written to a peer's connection.",
                |peer| peer.bytes_sent,
            ),
            (
                "raft_peer_messages_received_total",
                "Messages received from a peer.",
                |peer| peer.messages_received,
            ),
            (
                "raft_peer_bytes_received_total",
                "Bytes received from a peer.",
                |peer| peer.bytes_received,
            ),
            (
                "raft_peer_connections_established_total",
                "Outgoing connections established to a peer.",
                |peer| peer.connections_established,
            ),
        ];
        for (name, help, value) in families {
            self.family(name, "counter", help);
            for (peer, peer_stats) in &stats.peers {
                self.sample(name, &format!("peer=\"{peer}\""), value(peer_stats));
            }
        }
        self.single(
            "raft_connections_rejected_total",
            "counter",
            "Inbound peer connections refused at the handshake.",
            stats.connections_rejected,
        )
        .single(
            "raft_connections_closed_on_bad_frame_total",
            "counter",
            "Inbound peer connections closed because of a bad frame.",
            stats.connections_closed_on_bad_frame,
        )
        .single(
            "raft_messages_to_unknown_peer_total",
            "counter",
            "Messages addressed to a node that is not a peer, dropped.",
            stats.messages_to_unknown_peer,
        )
    }

    pub fn consistency(&mut self, consistency: &ConsistencyState) -> &mut MetricsText {
        let alarm = consistency.alarms.corruption();
        let latest_checkpoint_index = consistency
            .checkpoints
            .snapshot()
            .checkpoints
            .last()
            .map_or(0, |checkpoint| checkpoint.index.0);
        self.single(
            "raft_corruption_alarm",
            "gauge",
            "1 when this node's applied state was found to differ from a peer's (sticky until restart).",
            u64::from(alarm.is_some()),
        )
        .single(
            "raft_corruption_alarm_index",
            "gauge",
            "Log index at which the corruption alarm found the states differing, 0 when none.",
            alarm.map_or(0, |alarm| alarm.index.0),
        )
        .single(
            "raft_consistency_checkpoint_index",
            "gauge",
            "Index of this node's newest applied-state checkpoint, 0 when none.",
            latest_checkpoint_index,
        )
        .single(
            "raft_consistency_comparisons_total",
            "counter",
            "Peer checkpoint lists compared that shared at least one index with this node's.",
            consistency.stats.comparisons_total(),
        )
        .single(
            "raft_consistency_peer_errors_total",
            "counter",
            "Peer checkpoint fetches that failed (unreachable, bad answer, wrong node).",
            consistency.stats.peer_errors_total(),
        )
    }

    pub fn http(&mut self, responses_by_status: &BTreeMap<u16, u64>) -> &mut MetricsText {
        let name = "http_responses_total";
        self.family(name, "counter", "Client API responses by status code.");
        for (status, count) in responses_by_status {
            self.sample(name, &format!("code=\"{status}\""), *count);
        }
        self
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.text)
    }
}
