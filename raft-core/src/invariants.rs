//! `Raft::check_invariants`: the local invariants the test harnesses assert after every step
//! (the cluster-wide ones are the harnesses' own; see docs/CORE.md, "Invariants").

use crate::raft::{Raft, RoleState};
use raft_types::{LogIndex, Role};

impl Raft {
    /// Local invariants; the test harnesses call this after every step and also check the
    /// cluster-wide ones (Election Safety, Log Matching, Leader Completeness, State Machine
    /// Safety) across servers.
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        assert!(
            self.last_applied <= self.apply_requested_index
                && self.apply_requested_index <= self.commit_index,
            "applied {} <= apply requested {} <= committed {}",
            self.last_applied,
            self.apply_requested_index,
            self.commit_index
        );
        assert!(
            self.commit_index <= self.log.last_index(),
            "commit index {} beyond the log ({})",
            self.commit_index,
            self.log.last_index()
        );
        assert!(
            self.persisted_index <= self.log.last_index(),
            "persisted index beyond the log"
        );
        assert!(
            self.persisted_index <= self.storage_requested_index,
            "persisted index beyond what storage was asked for"
        );
        assert!(
            self.log.last_log_id().term <= self.current_term,
            "log holds an entry from a future term"
        );
        let last_purged_index = self.log.last_purged_log_id().index;
        assert!(
            last_purged_index <= self.apply_requested_index,
            "entries purged ({last_purged_index}) before they were handed to the state machine ({})",
            self.apply_requested_index
        );
        // A snapshot holds committed state only. It may run ahead of what was handed to the
        // state machine: a snapshot received from a leader whose entries were committed
        // meanwhile through AppendEntries is kept as the newest while they are still being
        // applied (the purge above stays behind them).
        match &self.snapshot {
            Some(snapshot) => assert!(
                last_purged_index <= snapshot.last_log_id.index
                    && snapshot.last_log_id.index <= self.commit_index,
                "purged {last_purged_index} <= snapshot {} <= committed {}",
                snapshot.last_log_id,
                self.commit_index
            ),
            None => assert_eq!(
                last_purged_index,
                LogIndex::ZERO,
                "entries are purged only behind a snapshot"
            ),
        }
        if let Some(receipt) = &self.snapshot_receipt {
            assert_ne!(self.role(), Role::Leader, "a leader receives no snapshot");
            assert!(
                receipt.stored <= receipt.handed_over,
                "snapshot bytes stored beyond what was handed to storage"
            );
            assert!(
                receipt.handed_over <= receipt.snapshot.size_bytes,
                "more snapshot bytes handed to storage than the file has"
            );
        }
        // Which role holds which state is the type's business (`RoleState`); what is left to
        // check is what each role implies about the rest.
        match &self.role_state {
            RoleState::Leader(leader_state) => {
                assert_eq!(self.leader_id, Some(self.config.id), "leader knows itself");
                assert_eq!(
                    self.voted_for,
                    Some(self.config.id),
                    "leader voted for itself"
                );
                for (peer, progress) in &leader_state.progress {
                    assert!(
                        progress.match_index < progress.next_index,
                        "peer {peer}: match index below next index"
                    );
                    assert!(
                        progress.next_index <= self.log.last_index().next(),
                        "peer {peer}: next index beyond the log"
                    );
                }
            }
            RoleState::Candidate(_) => assert_eq!(
                self.voted_for,
                Some(self.config.id),
                "candidate voted for itself"
            ),
            RoleState::Follower(_) => {}
        }
    }
}
