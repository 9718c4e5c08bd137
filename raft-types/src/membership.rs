//! Cluster membership (paper §6, thesis chapter 4): who votes, who only receives the log, where
//! each member is reached, and which ids were removed for good.
//!
//! A configuration travels in the log as an `EntryPayload::Membership` entry and in every
//! snapshot's [`SnapshotMeta`](crate::SnapshotMeta). Each entry carries a whole configuration,
//! not a delta, so the configuration in force on a server is simply the last one in its log (or
//! its snapshot's, when the log holds none): a server uses a configuration as soon as it appends
//! it, committed or not (thesis §4.1).
//!
//! A change of voters goes through a *joint* configuration (thesis §4.3): while
//! `outgoing_voters` is set, every decision (an election, a commit) needs a majority of
//! `voters` *and* a majority of `outgoing_voters`. Learners vote in nothing; they catch up
//! before they are promoted, so a new voter never stalls commitment while it fetches the log.

use crate::ids::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Where a member is reached: its peer (Raft) address and its client (HTTP) address. Opaque to
/// the consensus core, which only carries it so every server learns the addresses of members
/// added after it started.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberAddress {
    /// `host:port` of the peer listener.
    pub peer_addr: String,
    /// `host:port` of the client API.
    pub client_addr: String,
}

/// One configuration of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters: of the only configuration, or of the one being moved to (C_new) while
    /// joint.
    pub voters: BTreeSet<NodeId>,
    /// While joint (C_old,new): the voters of the configuration being left (C_old). Decisions
    /// then need a majority of each set.
    #[serde(default)]
    pub outgoing_voters: Option<BTreeSet<NodeId>>,
    /// Members that receive the log but vote in nothing and never campaign.
    #[serde(default)]
    pub learners: BTreeSet<NodeId>,
    /// The address of every member whose address is known. Members of a cluster bootstrapped
    /// from static configuration may have none here; the shell then uses its own.
    #[serde(default)]
    pub addresses: BTreeMap<NodeId, MemberAddress>,
    /// Ids removed from the cluster. An id is never reused: a server that was removed and
    /// comes back with its old state must not be mistaken for a new one.
    #[serde(default)]
    pub removed: BTreeSet<NodeId>,
}

/// One change an operator asks for. Each is applied to the configuration in force; a change of
/// voters goes through a joint configuration, which the leader leaves on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add `id` as a learner reached at `address`.
    AddLearner {
        /// The new member; never a current or removed member's id.
        id: NodeId,
        /// Where it is reached.
        address: MemberAddress,
    },
    /// Make learner `id` a voter (once it has caught up).
    PromoteLearner {
        /// The learner.
        id: NodeId,
    },
    /// Remove voter or learner `id`; its id is never used again.
    RemoveMember {
        /// The member.
        id: NodeId,
    },
}

impl MembershipChange {
    /// The member the change is about.
    pub fn member(&self) -> NodeId {
        match self {
            MembershipChange::AddLearner { id, .. }
            | MembershipChange::PromoteLearner { id }
            | MembershipChange::RemoveMember { id } => *id,
        }
    }
}

impl Membership {
    /// A configuration of voters only, with no addresses: what a cluster bootstrapped from
    /// static configuration starts with.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether this is a joint configuration (C_old,new).
    pub fn is_joint(&self) -> bool {
        self.outgoing_voters.is_some()
    }

    /// Whether `id` votes in this configuration (in either half of a joint one).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
            || self
                .outgoing_voters
                .as_ref()
                .is_some_and(|outgoing| outgoing.contains(&id))
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id) && !self.is_voter(id)
    }

    /// Whether `id` is a member at all (voter or learner).
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every voter, of both halves of a joint configuration, in id order.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        let mut voters = self.voters.clone();
        if let Some(outgoing) = &self.outgoing_voters {
            voters.extend(outgoing.iter().copied());
        }
        voters
    }

    /// Every member (voters of both halves and learners), in id order.
    pub fn all_members(&self) -> BTreeSet<NodeId> {
        let mut members = self.all_voters();
        members.extend(self.learners.iter().copied());
        members
    }

    /// The voter sets every decision needs a majority of: one, or two while joint.
    fn voter_sets(&self) -> impl Iterator<Item = &BTreeSet<NodeId>> {
        std::iter::once(&self.voters).chain(self.outgoing_voters.iter())
    }

    /// Whether the servers for which `granted` holds form a majority of every voter set. An
    /// empty voter set is never reached (a server that knows no voters decides nothing).
    pub fn is_quorum(&self, granted: impl Fn(NodeId) -> bool) -> bool {
        self.voter_sets().all(|set| {
            let count = set.iter().filter(|id| granted(**id)).count();
            !set.is_empty() && count > set.len() / 2
        })
    }

    /// The highest value a majority of every voter set has reached, given each voter's value
    /// (`value`): the commit index from match indexes, the confirmed sequence from
    /// acknowledged ones. `None` when there are no voters.
    pub fn quorum_value<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> Option<T> {
        self.voter_sets()
            .map(|set| {
                let mut values: Vec<T> = set.iter().map(|id| value(*id)).collect();
                values.sort_unstable_by(|left, right| right.cmp(left));
                values.get(set.len() / 2).copied()
            })
            .try_fold(None, |lowest: Option<T>, reached| {
                let reached = reached?;
                Some(Some(lowest.map_or(reached, |lowest| lowest.min(reached))))
            })
            .flatten()
    }

    /// The configuration after `change`, or why `change` cannot be made to this one. A change
    /// of voters yields the joint configuration; [`Membership::leave_joint`] completes it.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, MembershipChangeError> {
        if self.is_joint() {
            return Err(MembershipChangeError::ChangeInProgress);
        }
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner { id, address } => {
                if id.0 == 0 || self.contains(*id) || self.removed.contains(id) {
                    return Err(MembershipChangeError::IdReused { id: *id });
                }
                next.learners.insert(*id);
                next.addresses.insert(*id, address.clone());
            }
            MembershipChange::PromoteLearner { id } => {
                if !self.is_learner(*id) {
                    return Err(if self.is_voter(*id) {
                        MembershipChangeError::AlreadyVoter { id: *id }
                    } else {
                        MembershipChangeError::NoSuchMember { id: *id }
                    });
                }
                next.learners.remove(id);
                next.outgoing_voters = Some(self.voters.clone());
                next.voters.insert(*id);
            }
            MembershipChange::RemoveMember { id } => {
                if !self.contains(*id) {
                    return Err(MembershipChangeError::NoSuchMember { id: *id });
                }
                if self.voters.len() == 1 && self.voters.contains(id) {
                    return Err(MembershipChangeError::LastVoter { id: *id });
                }
                if self.is_voter(*id) {
                    next.outgoing_voters = Some(self.voters.clone());
                    next.voters.remove(id);
                } else {
                    next.learners.remove(id);
                    next.addresses.remove(id);
                    next.removed.insert(*id);
                }
            }
        }
        Ok(next)
    }

    /// The configuration that ends this joint one (C_new): the outgoing voters that are not
    /// voters of the new half are removed for good. `None` when this is not joint.
    pub fn leave_joint(&self) -> Option<Membership> {
        let outgoing = self.outgoing_voters.as_ref()?;
        let mut next = self.clone();
        next.outgoing_voters = None;
        for id in outgoing {
            if !self.voters.contains(id) {
                next.addresses.remove(id);
                next.removed.insert(*id);
            }
        }
        Some(next)
    }
}

/// Why a membership change was refused. Every refusal is one of these; none is a silent no-op.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MembershipChangeError {
    /// An earlier change is not finished: its entry is not committed, or the joint
    /// configuration it entered is not left yet.
    #[error("a membership change is in progress")]
    ChangeInProgress,
    /// This leader has not yet committed an entry of its own term, so it cannot know whether
    /// its predecessor left a change unfinished. Brief (one round trip after an election):
    /// retry.
    #[error("the leader has not yet committed an entry of its term; retry shortly")]
    LeaderNotReady,
    /// The id is a current member's or was removed before: ids are never reused.
    #[error("node id {id} is or was a member; ids are never reused")]
    IdReused {
        /// The id.
        id: NodeId,
    },
    /// No member has this id.
    #[error("node {id} is not a member")]
    NoSuchMember {
        /// The id.
        id: NodeId,
    },
    /// The member to promote is a voter already.
    #[error("node {id} is a voter already")]
    AlreadyVoter {
        /// The id.
        id: NodeId,
    },
    /// Removing the only voter would leave a cluster that can decide nothing.
    #[error("node {id} is the only voter")]
    LastVoter {
        /// The id.
        id: NodeId,
    },
    /// The learner to promote has not caught up with the leader's log.
    #[error("learner {id} has not caught up (match index {match_index}, leader's last index {last_index})")]
    LearnerNotReady {
        /// The learner.
        id: NodeId,
        /// Its match index.
        match_index: u64,
        /// The leader's last index.
        last_index: u64,
    },
    /// The new configuration would have fewer voters the leader has heard from recently than
    /// it needs for a majority (the strict reconfiguration check).
    #[error("only {reachable} of the new configuration's {voters} voters are reachable; {quorum} are needed")]
    NotEnoughReachableVoters {
        /// Voters of the new configuration heard from within an election timeout (the leader
        /// included).
        reachable: usize,
        /// Voters in the new configuration.
        voters: usize,
        /// The majority it needs.
        quorum: usize,
    },
}

impl fmt::Display for Membership {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |set: &BTreeSet<NodeId>| {
            set.iter()
                .map(|id| id.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(formatter, "voters [{}]", ids(&self.voters))?;
        if let Some(outgoing) = &self.outgoing_voters {
            write!(formatter, " joint with [{}]", ids(outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(formatter, " learners [{}]", ids(&self.learners))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(values: &[u64]) -> BTreeSet<NodeId> {
        values.iter().map(|value| NodeId(*value)).collect()
    }

    fn address(id: u64) -> MemberAddress {
        MemberAddress {
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: format!("127.0.0.1:{}", 8000 + id),
        }
    }

    #[test]
    fn a_joint_configuration_needs_a_majority_of_both_halves() {
        let membership = Membership {
            voters: ids(&[1, 2, 4]),
            outgoing_voters: Some(ids(&[1, 2, 3])),
            ..Membership::default()
        };
        assert!(membership.is_quorum(|id| [1, 2].contains(&id.0)));
        assert!(!membership.is_quorum(|id| [1, 3].contains(&id.0)));
        assert!(!membership.is_quorum(|id| [3, 4].contains(&id.0)));
        assert!(membership.is_quorum(|id| [2, 3, 4].contains(&id.0)));
        // Match indexes: 1 -> 10, 2 -> 8, 3 -> 9, 4 -> 1. New half [1,2,4]: 8; old [1,2,3]: 9.
        let value = |id: NodeId| [0, 10, 8, 9, 1][id.0 as usize];
        assert_eq!(membership.quorum_value(value), Some(8));
        assert_eq!(Membership::default().quorum_value(value), None);
        assert!(!Membership::default().is_quorum(|_| true));
    }

    #[test]
    fn changes_go_through_the_joint_configuration_and_never_reuse_an_id() {
        let start = Membership::with_voters(ids(&[1, 2, 3]));
        let added = start
            .apply(&MembershipChange::AddLearner {
                id: NodeId(4),
                address: address(4),
            })
            .unwrap();
        assert!(added.is_learner(NodeId(4)) && !added.is_joint());
        let joint = added
            .apply(&MembershipChange::PromoteLearner { id: NodeId(4) })
            .unwrap();
        assert_eq!(joint.voters, ids(&[1, 2, 3, 4]));
        assert_eq!(joint.outgoing_voters, Some(ids(&[1, 2, 3])));
        assert_eq!(
            joint.apply(&MembershipChange::RemoveMember { id: NodeId(1) }),
            Err(MembershipChangeError::ChangeInProgress)
        );
        let promoted = joint.leave_joint().unwrap();
        let removing = promoted
            .apply(&MembershipChange::RemoveMember { id: NodeId(2) })
            .unwrap();
        let removed = removing.leave_joint().unwrap();
        assert_eq!(removed.voters, ids(&[1, 3, 4]));
        assert!(removed.removed.contains(&NodeId(2)));
        assert_eq!(
            removed.apply(&MembershipChange::AddLearner {
                id: NodeId(2),
                address: address(2)
            }),
            Err(MembershipChangeError::IdReused { id: NodeId(2) })
        );
        assert_eq!(
            removed.apply(&MembershipChange::PromoteLearner { id: NodeId(9) }),
            Err(MembershipChangeError::NoSuchMember { id: NodeId(9) })
        );
        assert_eq!(
            Membership::with_voters(ids(&[1]))
                .apply(&MembershipChange::RemoveMember { id: NodeId(1) }),
            Err(MembershipChangeError::LastVoter { id: NodeId(1) })
        );
    }
}
