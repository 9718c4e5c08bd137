//! The scrape-time collector: the actors' lock-free figures, copied once per scrape, encoded
//! as metric families by `prometheus-client`.
//!
//! The actor crates keep their counters as relaxed atomics (one writer, no lock, no message
//! to read them) and know nothing of Prometheus; this collector gives each figure its name,
//! type, help and labels. The library writes the text, so names, label escaping, float
//! formatting and the `_bucket`/`_sum`/`_count` and `_total` conventions are its, not ours.

use crate::build_info::BUILD;
use crate::http_api::snapshot_routes::SnapshotStatus;
use crate::metrics::process::ProcessFigures;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, MetricEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use raft_actor::RaftMetricsSnapshot;
use raft_proto::client::Role;
use raft_proto::metrics::HistogramSnapshot;
use raft_proto::network::{NetworkStats, PeerStats};
use std::fmt::Error;
use storage_actor::StorageMetricsSnapshot;

/// The consistency check's figures at one moment.
#[derive(Clone, Debug, Default)]
pub struct ConsistencyFigures {
    pub alarm_raised: bool,
    pub alarm_index: u64,
    pub latest_checkpoint_index: u64,
    pub comparisons_total: u64,
    pub peer_errors_total: u64,
}

/// Everything one scrape reports besides the API's live families; a part the node is not
/// wired with (a fake actor in tests) is `None` and its families are left out.
pub struct Scrape {
    pub raft: Option<RaftMetricsSnapshot>,
    pub storage: Option<StorageMetricsSnapshot>,
    pub network: Option<NetworkStats>,
    pub snapshots: SnapshotStatus,
    pub consistency: ConsistencyFigures,
    pub process: ProcessFigures,
    /// The labels of `raft_build_info` (this build's, [`Scrape::build_labels`]).
    pub build: Vec<(&'static str, String)>,
}

impl Scrape {
    /// The labels of `raft_build_info` for this build.
    pub fn build_labels() -> Vec<(&'static str, String)> {
        vec![
            ("version", BUILD.version.to_owned()),
            ("git_commit", BUILD.git_commit.to_owned()),
            ("build_profile", BUILD.build_profile.to_owned()),
            ("rustc_version", BUILD.rustc_version.to_owned()),
        ]
    }
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Scrape").finish_non_exhaustive()
    }
}

/// Writes families through the library's encoder.
struct Families<'a> {
    encoder: DescriptorEncoder<'a>,
}

impl Families<'_> {
    fn descriptor<'s>(
        &'s mut self,
        name: &'s str,
        help: &str,
        kind: MetricType,
    ) -> Result<MetricEncoder<'s>, Error> {
        // Sentences, as the library's own registry writes them.
        let help = format!("{help}.");
        self.encoder.encode_descriptor(name, &help, None, kind)
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl EncodeGaugeValue) -> Result<(), Error> {
        let gauge = ConstGauge::new(value);
        gauge.encode(self.descriptor(name, help, MetricType::Gauge)?)
    }

    /// `name` without `_total`: the library appends it to every counter.
    fn counter(
        &mut self,
        name: &str,
        help: &str,
        value: impl EncodeCounterValue,
    ) -> Result<(), Error> {
        let counter = ConstCounter::new(value);
        counter.encode(self.descriptor(name, help, MetricType::Counter)?)
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        histogram: &HistogramSnapshot,
    ) -> Result<(), Error> {
        let mut encoder = self.descriptor(name, help, MetricType::Histogram)?;
        encode_histogram(&mut encoder, histogram)
    }
}

/// A [`HistogramSnapshot`] (cumulative counts, microseconds) as the library wants it
/// (per-bucket counts, seconds), kept consistent even when the snapshot caught the count one
/// observation ahead of the buckets: `+Inf` holds what no finite bucket does.
fn encode_histogram(
    encoder: &mut MetricEncoder<'_>,
    histogram: &HistogramSnapshot,
) -> Result<(), Error> {
    let mut previous = 0;
    let mut buckets = Vec::with_capacity(histogram.cumulative_buckets.len() + 1);
    for (bound_microseconds, cumulative) in &histogram.cumulative_buckets {
        let cumulative = (*cumulative).max(previous);
        buckets.push((*bound_microseconds as f64 / 1e6, cumulative - previous));
        previous = cumulative;
    }
    let overflow = histogram.count.saturating_sub(previous);
    buckets.push((f64::INFINITY, overflow));
    let sum_seconds = histogram.sum_microseconds as f64 / 1e6;
    encoder.encode_histogram::<NoLabelSet>(sum_seconds, previous + overflow, &buckets, None)
}

fn role_code(role: Role) -> u64 {
    match role {
        Role::Follower => 0,
        Role::Candidate => 1,
        Role::Leader => 2,
    }
}

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), Error> {
        let mut families = Families { encoder };
        if let Some(raft) = &self.raft {
            encode_raft(&mut families, raft)?;
        }
        if let Some(storage) = &self.storage {
            encode_storage(&mut families, storage)?;
        }
        if let Some(network) = &self.network {
            encode_network(&mut families, network)?;
        }
        encode_snapshots(&mut families, &self.snapshots)?;
        encode_consistency(&mut families, &self.consistency)?;
        encode_process(&mut families, &self.process)?;
        let mut info = families.descriptor(
            "raft_build_info",
            "Always 1; the labels name this build (version, git commit, cargo profile, compiler)",
            MetricType::Gauge,
        )?;
        ConstGauge::new(1u64).encode(info.encode_family(&self.build)?)
    }
}

fn encode_raft(families: &mut Families<'_>, raft: &RaftMetricsSnapshot) -> Result<(), Error> {
    families.gauge("raft_term", "Current term", raft.current_term.0)?;
    families.gauge(
        "raft_role",
        "Role: 0 follower, 1 candidate, 2 leader",
        role_code(raft.role),
    )?;
    families.gauge(
        "raft_is_leader",
        "1 when this node is the leader",
        u64::from(raft.role == Role::Leader),
    )?;
    families.gauge(
        "raft_leader_id",
        "Id of the known leader, 0 when none is known",
        raft.leader_id.map_or(0, |id| id.0),
    )?;
    families.gauge(
        "raft_commit_index",
        "Highest log index known committed",
        raft.commit_index.0,
    )?;
    families.gauge(
        "raft_last_applied",
        "Highest log index applied to the state machine",
        raft.last_applied.0,
    )?;
    families.gauge(
        "raft_last_log_index",
        "Index of the last entry in the log",
        raft.last_log_index.0,
    )?;
    families.gauge(
        "raft_persisted_index",
        "Highest log index durable on this node",
        raft.persisted_index.0,
    )?;
    families.gauge(
        "raft_pending_proposals",
        "Proposals in this leader's log whose clients still wait for the outcome",
        raft.pending_proposals,
    )?;
    families.gauge(
        "raft_pending_reads",
        "Linearizable reads waiting for their read index to be confirmed and applied",
        raft.pending_reads,
    )?;
    families.counter(
        "raft_proposals",
        "Proposals accepted into the leader's log",
        raft.proposals_total,
    )?;
    families.counter(
        "raft_proposals_rejected",
        "Proposals refused before entering the log",
        raft.proposals_rejected_total,
    )?;
    families.counter(
        "raft_reads",
        "Linearizable reads started as leader",
        raft.reads_total,
    )?;
    families.counter(
        "raft_reads_rejected",
        "Linearizable reads refused or rejected",
        raft.reads_rejected_total,
    )?;
    families.counter(
        "raft_elections_started",
        "Elections this node started",
        raft.elections_started_total,
    )?;
    families.counter(
        "raft_leader_changes",
        "Times the known leader changed",
        raft.leader_changes_total,
    )?;
    families.counter(
        "raft_messages_sent",
        "Raft messages handed to the network",
        raft.messages_sent_total,
    )?;
    families.counter(
        "raft_messages_received",
        "Raft messages received from peers",
        raft.messages_received_total,
    )?;
    families.counter(
        "raft_storage_appends",
        "Append batches sent to storage",
        raft.storage_appends_total,
    )?;
    families.counter(
        "raft_snapshot_chunks_sent",
        "InstallSnapshot chunks sent to followers",
        raft.snapshot_chunks_sent_total,
    )?;
    families.gauge(
        "raft_peers_connected",
        "Peers with an established outgoing connection",
        raft.peers_connected,
    )?;
    families.histogram(
        "raft_append_durable_latency_seconds",
        "Time from an append sent to storage until it is durable (queue, write, fsync)",
        &raft.append_latency,
    )?;
    let mut round_trips = families.descriptor(
        "raft_peer_round_trip_seconds",
        "Time from sending a peer an AppendEntries to its response, matched by sequence; kind=heartbeat carries no entries, kind=append does and includes the peer's fsync",
        MetricType::Histogram,
    )?;
    for sample in &raft.peer_round_trips {
        let labels = [
            ("peer", sample.peer.0.to_string()),
            ("kind", sample.kind.label().to_owned()),
        ];
        encode_histogram(&mut round_trips.encode_family(&labels)?, &sample.histogram)?;
    }
    Ok(())
}

fn encode_storage(
    families: &mut Families<'_>,
    storage: &StorageMetricsSnapshot,
) -> Result<(), Error> {
    families.counter(
        "raft_storage_batches",
        "Storage batches written, one fsync each (group commit)",
        storage.batches_total,
    )?;
    families.counter(
        "raft_storage_requests",
        "Storage requests covered by those batches",
        storage.requests_total,
    )?;
    families.counter(
        "raft_storage_entries",
        "Log entries written",
        storage.entries_total,
    )?;
    families.histogram(
        "raft_storage_fsync_latency_seconds",
        "Duration of each fdatasync of a storage batch",
        &storage.sync_latency,
    )
}

fn encode_network(families: &mut Families<'_>, network: &NetworkStats) -> Result<(), Error> {
    type PeerValue = fn(&PeerStats) -> u64;
    let per_peer: [(&str, &str, PeerValue); 6] = [
        (
            "raft_peer_messages_dropped",
            "Messages to a peer dropped (queue full, unreachable, over the frame limit)",
            |peer| peer.messages_dropped,
        ),
        (
            "raft_peer_messages_sent",
            "Messages written to a peer's connection",
            |peer| peer.messages_sent,
        ),
        (
            "raft_peer_bytes_sent",
            "Bytes written to a peer's connection",
            |peer| peer.bytes_sent,
        ),
        (
            "raft_peer_messages_received",
            "Messages received from a peer",
            |peer| peer.messages_received,
        ),
        (
            "raft_peer_bytes_received",
            "Bytes received from a peer",
            |peer| peer.bytes_received,
        ),
        (
            "raft_peer_connections_established",
            "Outgoing connections established to a peer",
            |peer| peer.connections_established,
        ),
    ];
    for (name, help, value) in per_peer {
        let mut family = families.descriptor(name, help, MetricType::Counter)?;
        for (peer, stats) in &network.peers {
            let labels = [("peer", peer.0.to_string())];
            ConstCounter::new(value(stats)).encode(family.encode_family(&labels)?)?;
        }
    }
    families.counter(
        "raft_connections_rejected",
        "Inbound peer connections refused at the handshake",
        network.connections_rejected,
    )?;
    families.counter(
        "raft_connections_closed_on_bad_frame",
        "Inbound peer connections closed because of a bad frame",
        network.connections_closed_on_bad_frame,
    )?;
    families.counter(
        "raft_messages_to_unknown_peer",
        "Messages addressed to a node that is not a peer, dropped",
        network.messages_to_unknown_peer,
    )
}

fn encode_snapshots(families: &mut Families<'_>, status: &SnapshotStatus) -> Result<(), Error> {
    families.gauge(
        "raft_snapshot_index",
        "Last log index covered by the newest complete snapshot, 0 when none",
        status.snapshot_index,
    )?;
    families.gauge(
        "raft_snapshot_term",
        "Term of the last entry covered by the newest snapshot, 0 when none",
        status.snapshot_term,
    )?;
    families.gauge(
        "raft_snapshot_size_bytes",
        "Length of the newest snapshot file in bytes, 0 when none",
        status.snapshot_size_bytes,
    )?;
    families.gauge(
        "raft_snapshot_last_write_duration_seconds",
        "Duration of the last successful snapshot write, from start to durable",
        status.snapshot_last_write_duration_ms as f64 / 1e3,
    )?;
    families.gauge(
        "raft_snapshot_write_in_progress",
        "1 while the state machine is writing a snapshot",
        u64::from(status.snapshot_write_in_progress),
    )?;
    families.counter(
        "raft_snapshots_taken",
        "Snapshots this node's state machine wrote and made durable",
        status.snapshots_taken_total,
    )?;
    families.counter(
        "raft_snapshot_failures",
        "Snapshot writes that failed",
        status.snapshot_failures_total,
    )?;
    families.counter(
        "raft_snapshots_restored",
        "Snapshots the state machine was restored from (at start or sent by the leader)",
        status.snapshots_restored_total,
    )?;
    families.gauge(
        "raft_log_first_index",
        "First index of the log this node holds; the entries before it are only in the snapshot",
        status.log_first_index,
    )?;
    families.gauge(
        "raft_log_entries",
        "Entries in the log this node holds, from raft_log_first_index to the last",
        status.log_entries,
    )?;
    if let Some(bytes) = status.log_size_bytes {
        families.gauge(
            "raft_log_size_bytes",
            "Bytes of the write-ahead log's segment files",
            bytes,
        )?;
    }
    Ok(())
}

fn encode_consistency(
    families: &mut Families<'_>,
    consistency: &ConsistencyFigures,
) -> Result<(), Error> {
    families.gauge(
        "raft_corruption_alarm",
        "1 when this node's applied state was found to differ from a peer's (sticky until restart)",
        u64::from(consistency.alarm_raised),
    )?;
    families.gauge(
        "raft_corruption_alarm_index",
        "Log index at which the corruption alarm found the states differing, 0 when none",
        consistency.alarm_index,
    )?;
    families.gauge(
        "raft_consistency_checkpoint_index",
        "Index of this node's newest applied-state checkpoint, 0 when none",
        consistency.latest_checkpoint_index,
    )?;
    families.counter(
        "raft_consistency_comparisons",
        "Peer checkpoint lists compared that shared at least one index with this node's",
        consistency.comparisons_total,
    )?;
    families.counter(
        "raft_consistency_peer_errors",
        "Peer checkpoint fetches that failed (unreachable, bad answer, wrong node)",
        consistency.peer_errors_total,
    )
}

fn encode_process(families: &mut Families<'_>, process: &ProcessFigures) -> Result<(), Error> {
    if let Some(seconds) = process.cpu_seconds {
        families.counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            seconds,
        )?;
    }
    if let Some(bytes) = process.resident_memory_bytes {
        families.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            bytes,
        )?;
    }
    if let Some(bytes) = process.virtual_memory_bytes {
        families.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            bytes,
        )?;
    }
    if let Some(count) = process.open_fds {
        families.gauge("process_open_fds", "Number of open file descriptors", count)?;
    }
    if let Some(count) = process.max_fds {
        families.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors (soft limit)",
            count,
        )?;
    }
    if let Some(seconds) = process.start_time_seconds {
        families.gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            seconds,
        )?;
    }
    if let Some(count) = process.threads {
        families.gauge(
            "process_threads",
            "Number of OS threads in the process",
            count,
        )?;
    }
    Ok(())
}
