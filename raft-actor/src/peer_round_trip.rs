//! Peer round-trip time: from sending a follower an AppendEntries to receiving its answer.
//!
//! Every AppendEntries carries a per-term `sequence` that the follower echoes in its response,
//! so a sample is exact: at most one probe per peer is outstanding, the next AppendEntries
//! sent to a peer with no probe becomes one, and the response carrying its term and sequence
//! ends it. A probe whose answer never comes (a lost message, a follower that moved to a
//! higher term) is dropped after [`PROBE_EXPIRY`], so a loss never becomes a huge sample.
//!
//! Heartbeats (no entries) and appends (entries) are kept apart: a follower answers an append
//! only once its entries are durable, so that figure includes the follower's fsync, while a
//! heartbeat's is the network and the two actors' mailboxes alone.

use raft_proto::metrics::{HistogramSnapshot, LatencyHistogram};
use raft_types::{NodeId, Term};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A probe unanswered for this long is forgotten (well above any election timeout).
pub const PROBE_EXPIRY: Duration = Duration::from_secs(10);

/// What the probed AppendEntries carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppendKind {
    /// No entries: a heartbeat.
    Heartbeat,
    /// One or more entries: answered once they are durable on the follower.
    Append,
}

impl AppendKind {
    pub fn label(self) -> &'static str {
        match self {
            AppendKind::Heartbeat => "heartbeat",
            AppendKind::Append => "append",
        }
    }
}

/// The histograms, shared with the node's metrics collector (written once per sample).
#[derive(Debug, Default)]
pub struct PeerRoundTrips {
    histograms: Mutex<BTreeMap<(NodeId, AppendKind), LatencyHistogram>>,
}

/// One peer's histogram of one kind, as the collector reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRoundTripSnapshot {
    pub peer: NodeId,
    pub kind: AppendKind,
    pub histogram: HistogramSnapshot,
}

impl PeerRoundTrips {
    pub fn observe(&self, peer: NodeId, kind: AppendKind, elapsed: Duration) {
        self.histograms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((peer, kind))
            .or_default()
            .observe(elapsed);
    }

    pub fn snapshot(&self) -> Vec<PeerRoundTripSnapshot> {
        self.histograms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|((peer, kind), histogram)| PeerRoundTripSnapshot {
                peer: *peer,
                kind: *kind,
                histogram: histogram.snapshot(),
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    term: Term,
    sequence: u64,
    kind: AppendKind,
    sent_at: Instant,
}

/// The actor's outstanding probes, one per peer at most.
#[derive(Debug, Default)]
pub(crate) struct RoundTripProbes {
    outstanding: BTreeMap<NodeId, Probe>,
}

impl RoundTripProbes {
    /// An AppendEntries is being sent to `peer`: it becomes the probe unless one of the same
    /// term is out and not expired.
    pub fn sent(
        &mut self,
        peer: NodeId,
        term: Term,
        sequence: u64,
        kind: AppendKind,
        now: Instant,
    ) {
        let probe = Probe {
            term,
            sequence,
            kind,
            sent_at: now,
        };
        match self.outstanding.get(&peer) {
            // A probe of an earlier term will not be answered in this one's sequence space.
            Some(out) if out.term == term && now.duration_since(out.sent_at) < PROBE_EXPIRY => {}
            _ => {
                self.outstanding.insert(peer, probe);
            }
        }
    }

    /// `peer` answered the AppendEntries of `term` and `sequence`: the sample, when it is the
    /// probe's answer.
    pub fn answered(
        &mut self,
        peer: NodeId,
        term: Term,
        sequence: u64,
        now: Instant,
    ) -> Option<(AppendKind, Duration)> {
        let probe = self.outstanding.get(&peer)?;
        if probe.term != term || probe.sequence != sequence {
            return None;
        }
        let probe = self.outstanding.remove(&peer)?;
        Some((probe.kind, now.duration_since(probe.sent_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probes_answer_is_a_sample() {
        let mut probes = RoundTripProbes::default();
        let start = Instant::now();
        let peer = NodeId(2);
        probes.sent(peer, Term(1), 7, AppendKind::Heartbeat, start);
        // A second send while the probe is out does not replace it.
        probes.sent(
            peer,
            Term(1),
            8,
            AppendKind::Append,
            start + Duration::from_millis(1),
        );
        assert_eq!(probes.answered(peer, Term(1), 8, start), None);
        assert_eq!(probes.answered(peer, Term(2), 7, start), None);
        let later = start + Duration::from_millis(3);
        assert_eq!(
            probes.answered(peer, Term(1), 7, later),
            Some((AppendKind::Heartbeat, Duration::from_millis(3)))
        );
        assert_eq!(
            probes.answered(peer, Term(1), 7, later),
            None,
            "answered once"
        );
    }

    #[test]
    fn a_lost_probe_expires() {
        let mut probes = RoundTripProbes::default();
        let start = Instant::now();
        let peer = NodeId(3);
        probes.sent(peer, Term(1), 1, AppendKind::Append, start);
        let after_expiry = start + PROBE_EXPIRY;
        probes.sent(peer, Term(1), 2, AppendKind::Heartbeat, after_expiry);
        let answer = after_expiry + Duration::from_millis(2);
        assert_eq!(
            probes.answered(peer, Term(1), 2, answer),
            Some((AppendKind::Heartbeat, Duration::from_millis(2)))
        );
    }

    #[test]
    fn a_new_term_replaces_the_probe_at_once() {
        let mut probes = RoundTripProbes::default();
        let start = Instant::now();
        let peer = NodeId(2);
        probes.sent(peer, Term(1), 5, AppendKind::Append, start);
        // Leader again in term 3 (sequences start over): the old probe is not waited out.
        probes.sent(peer, Term(3), 1, AppendKind::Heartbeat, start);
        assert_eq!(probes.answered(peer, Term(1), 5, start), None);
        assert_eq!(
            probes.answered(peer, Term(3), 1, start + Duration::from_millis(1)),
            Some((AppendKind::Heartbeat, Duration::from_millis(1)))
        );
    }
}
