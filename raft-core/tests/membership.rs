//! Membership change and leadership transfer on simulated clusters (thesis chapter 4, §3.10):
//! learners catching up and being promoted through the joint configuration, a leader change
//! in the joint configuration, removing the leader, refusals, removed servers that come back,
//! and leadership transfer. Every step runs the cluster-wide safety checks of `common`.

mod common;

use common::Cluster;
use raft_core::{Raft, RequestError, Role};
use raft_types::{
    EntryPayload, LogId, MemberAddress, Membership, MembershipChange, MembershipChangeError, NodeId,
};
use std::collections::BTreeSet;
use test_support::seed::seed_or;

fn address(id: u64) -> MemberAddress {
    MemberAddress {
        peer_addr: format!("127.0.0.1:{}", 7000 + id),
        client_addr: format!("127.0.0.1:{}", 8000 + id),
    }
}

fn ids(values: &[u64]) -> BTreeSet<NodeId> {
    values.iter().map(|value| NodeId(*value)).collect()
}

fn change(
    cluster: &mut Cluster,
    leader: NodeId,
    change: MembershipChange,
) -> Result<LogId, RequestError> {
    let mut result = Err(RequestError::NoTransferTarget);
    cluster.with_server(leader, |raft| result = raft.change_membership(change));
    result
}

fn add_learner(cluster: &mut Cluster, leader: NodeId, id: u64) -> Result<LogId, RequestError> {
    cluster.add_joining_server(NodeId(id));
    change(
        cluster,
        leader,
        MembershipChange::AddLearner {
            id: NodeId(id),
            address: address(id),
        },
    )
}

fn transfer(
    cluster: &mut Cluster,
    leader: NodeId,
    to: Option<NodeId>,
) -> Result<NodeId, RequestError> {
    let mut result = Err(RequestError::NoTransferTarget);
    cluster.with_server(leader, |raft| result = raft.transfer_leadership(to));
    result
}

/// Ticks (settling after each) until `done` holds; returns the ticks taken.
fn ticks_until(cluster: &mut Cluster, max_ticks: u64, done: impl Fn(&Cluster) -> bool) -> u64 {
    for tick in 0..max_ticks {
        if done(cluster) {
            return tick;
        }
        cluster.tick_all();
        cluster.settle();
    }
    assert!(
        done(cluster),
        "seed {}: not done within {max_ticks} ticks",
        cluster.seed
    );
    max_ticks
}

/// The committed configuration every live server holds, asserting they agree.
fn agreed_committed_membership(cluster: &Cluster) -> Membership {
    let mut agreed: Option<Membership> = None;
    for id in cluster.ids() {
        if !cluster.is_up(id) {
            continue;
        }
        let committed = cluster.raft(id).committed_membership().1.clone();
        match &agreed {
            None => agreed = Some(committed),
            Some(known) => assert_eq!(
                known, &committed,
                "{id} has committed another configuration"
            ),
        }
    }
    agreed.expect("a live server")
}

fn settled_and_final(cluster: &Cluster) -> bool {
    cluster.ids().into_iter().all(|id| {
        !cluster.is_up(id) || {
            let raft = cluster.raft(id);
            let (committed, membership) = raft.committed_membership();
            !membership.is_joint() && *committed == raft.membership_with_log_id().0
        }
    })
}

/// The membership entries of `raft`'s log, in order.
fn membership_entries(raft: &Raft) -> Vec<Membership> {
    let log = raft.log();
    (log.first_index().0..=log.last_index().0)
        .filter_map(
            |index| match &log.entry(raft_types::LogIndex(index))?.payload {
                EntryPayload::Membership(membership) => Some(membership.clone()),
                _ => None,
            },
        )
        .collect()
}

fn started_cluster(size: u64, seed: u64) -> (Cluster, NodeId) {
    let mut cluster = Cluster::new(size, seed);
    let leader = cluster.elect(300);
    for _ in 0..10 {
        cluster.propose(leader);
    }
    cluster.settle();
    (cluster, leader)
}

/// Adds learner `id`, lets it catch up, and returns the leader.
fn with_caught_up_learner(cluster: &mut Cluster, leader: NodeId, id: u64) {
    add_learner(cluster, leader, id).expect("a learner is added");
    // Catch-up rounds are counted on the leader's answers: a few heartbeats complete one.
    cluster.run_ticks(20);
    let learner = cluster.raft(NodeId(id));
    assert_eq!(learner.last_log_id(), cluster.raft(leader).last_log_id());
    assert!(learner.membership().is_learner(NodeId(id)));
}

#[test]
fn a_learner_catches_up_and_is_promoted_through_the_joint_configuration() {
    let seed = seed_or(1);
    let (mut cluster, leader) = started_cluster(3, seed);
    with_caught_up_learner(&mut cluster, leader, 4);
    let learner_term = cluster.raft(NodeId(4)).current_term();
    cluster.run_ticks(100);
    assert_eq!(
        cluster.raft(NodeId(4)).current_term(),
        learner_term,
        "seed {seed}: a learner never campaigns"
    );
    assert_eq!(cluster.raft(NodeId(4)).role(), Role::Follower);

    let started = change(
        &mut cluster,
        leader,
        MembershipChange::PromoteLearner { id: NodeId(4) },
    )
    .expect("a caught-up learner is promoted");
    // In force on the leader as soon as it is appended, before it commits (thesis §4.1).
    assert!(cluster.raft(leader).membership().is_joint());
    assert_eq!(cluster.raft(leader).membership_with_log_id().0, started);
    ticks_until(&mut cluster, 20, settled_and_final);
    let committed = agreed_committed_membership(&cluster);
    assert_eq!(committed.voters, ids(&[1, 2, 3, 4]), "seed {seed}");
    assert!(committed.learners.is_empty());
    // The log went through C_old,new, then C_new, which the leader appended on its own.
    let entries = membership_entries(cluster.raft(leader));
    let joint = &entries[entries.len() - 2];
    assert_eq!(joint.outgoing_voters, Some(ids(&[1, 2, 3])));
    assert_eq!(joint.voters, ids(&[1, 2, 3, 4]));
    assert!(!entries[entries.len() - 1].is_joint());

    // The new voter counts: four voters need three, so with one old voter down the leader
    // commits only with the new voter's acknowledgement.
    let down = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != NodeId(4))
        .expect("a follower");
    cluster.crash(down);
    let proposed = cluster.propose(leader).expect("still leader");
    cluster.settle();
    assert!(cluster.raft(leader).commit_index() >= proposed.index);
}

#[test]
fn promoting_a_lagging_learner_is_refused() {
    let seed = seed_or(2);
    let (mut cluster, leader) = started_cluster(3, seed);
    cluster.isolate(NodeId(4));
    add_learner(&mut cluster, leader, 4).expect("added");
    cluster.run_ticks(30);
    let refused = change(
        &mut cluster,
        leader,
        MembershipChange::PromoteLearner { id: NodeId(4) },
    );
    assert!(
        matches!(
            refused,
            Err(RequestError::Membership(
                MembershipChangeError::LearnerNotReady { .. }
            ))
        ),
        "seed {seed}: {refused:?}"
    );
    assert!(!cluster.raft(leader).membership().is_joint());
    cluster.heal();
    cluster.run_ticks(30);
    change(
        &mut cluster,
        leader,
        MembershipChange::PromoteLearner { id: NodeId(4) },
    )
    .expect("promoted once caught up");
}

#[test]
fn a_second_change_while_one_is_in_progress_is_refused_with_a_typed_error() {
    let seed = seed_or(3);
    let (mut cluster, leader) = started_cluster(3, seed);
    add_learner(&mut cluster, leader, 4).expect("added");
    // Not committed yet (nothing was delivered).
    let second = add_learner(&mut cluster, leader, 5);
    assert_eq!(
        second,
        Err(RequestError::Membership(
            MembershipChangeError::ChangeInProgress
        ))
    );
    cluster.run_ticks(20);
    change(
        &mut cluster,
        leader,
        MembershipChange::PromoteLearner { id: NodeId(4) },
    )
    .expect("promoted");
    // The joint configuration is in force and not left yet.
    let during_joint = change(
        &mut cluster,
        leader,
        MembershipChange::RemoveMember { id: NodeId(2) },
    );
    assert_eq!(
        during_joint,
        Err(RequestError::Membership(
            MembershipChangeError::ChangeInProgress
        ))
    );
    // Refusals of the change itself, each typed.
    ticks_until(&mut cluster, 20, settled_and_final);
    let refusals = [
        (
            MembershipChange::AddLearner {
                id: NodeId(4),
                address: address(4),
            },
            MembershipChangeError::IdReused { id: NodeId(4) },
        ),
        (
            MembershipChange::PromoteLearner { id: NodeId(9) },
            MembershipChangeError::NoSuchMember { id: NodeId(9) },
        ),
        (
            MembershipChange::RemoveMember { id: NodeId(9) },
            MembershipChangeError::NoSuchMember { id: NodeId(9) },
        ),
        (
            MembershipChange::PromoteLearner { id: NodeId(4) },
            MembershipChangeError::AlreadyVoter { id: NodeId(4) },
        ),
    ];
    for (refused_change, expected) in refusals {
        assert_eq!(
            change(&mut cluster, leader, refused_change),
            Err(RequestError::Membership(expected))
        );
    }
    // A follower refuses as a follower.
    let follower = NodeId(if leader == NodeId(1) { 2 } else { 1 });
    assert!(matches!(
        change(
            &mut cluster,
            follower,
            MembershipChange::RemoveMember { id: NodeId(4) }
        ),
        Err(RequestError::NotLeader { .. })
    ));
}

#[test]
fn a_new_leader_finishes_the_joint_configuration_its_predecessor_entered() {
    let seed = seed_or(4);
    let (mut cluster, leader) = started_cluster(3, seed);
    with_caught_up_learner(&mut cluster, leader, 4);
    // The followers will receive the joint entry, but the leader never hears that they did:
    // it cannot commit it, so it never appends C_new.
    for id in cluster.ids() {
        if id != leader {
            cluster.cut(id, leader);
        }
    }
    change(
        &mut cluster,
        leader,
        MembershipChange::PromoteLearner { id: NodeId(4) },
    )
    .expect("promoted");
    cluster.settle();
    for id in cluster.ids() {
        assert!(
            cluster.raft(id).membership().is_joint(),
            "seed {seed}: {id} holds the joint configuration"
        );
    }
    cluster.crash(leader);
    cluster.heal();
    let new_leader = {
        ticks_until(&mut cluster, 300, |cluster| {
            cluster.leader().is_some_and(|new| new != leader)
        });
        cluster.leader().expect("a leader")
    };
    ticks_until(&mut cluster, 50, settled_and_final);
    let committed = agreed_committed_membership(&cluster);
    assert_eq!(committed.voters, ids(&[1, 2, 3, 4]), "seed {seed}");
    assert!(!committed.is_joint());
    assert_ne!(new_leader, leader);
    // The old leader comes back and converges on the final configuration.
    cluster.restart(leader);
    ticks_until(&mut cluster, 50, |cluster| {
        cluster.raft(leader).committed_membership().1 == committed
    });
}

#[test]
fn removing_the_leader_hands_leadership_to_an_up_to_date_voter() {
    let seed = seed_or(5);
    let (mut cluster, leader) = started_cluster(3, seed);
    let term = cluster.raft(leader).current_term();
    change(
        &mut cluster,
        leader,
        MembershipChange::RemoveMember { id: leader },
    )
    .expect("the leader may remove itself");
    // While joint, the leader still manages the cluster (it is in C_old) without counting
    // itself in C_new.
    let ticks = ticks_until(&mut cluster, 100, |cluster| {
        cluster.leader().is_some_and(|new| new != leader)
    });
    let new_leader = cluster.leader().expect("a leader");
    let min_election_timeout = cluster.raft(new_leader).config().election_timeout_min_ticks;
    assert!(
        ticks < min_election_timeout,
        "seed {seed}: handed over in {ticks} ticks, not after an election timeout"
    );
    assert_eq!(
        cluster.raft(new_leader).current_term(),
        term.next(),
        "one election, at once"
    );
    ticks_until(&mut cluster, 20, settled_and_final);
    let removed = cluster.raft(leader);
    assert!(removed.is_removed(), "seed {seed}");
    assert_ne!(removed.role(), Role::Leader);
    let committed = agreed_committed_membership(&cluster);
    assert!(!committed.is_voter(leader) && committed.removed.contains(&leader));
    // The removed server never campaigns again, and the cluster goes on committing.
    let removed_term = cluster.raft(leader).current_term();
    for _ in 0..5 {
        cluster
            .propose(new_leader)
            .expect("the new leader takes proposals");
        cluster.run_ticks(40);
    }
    assert_eq!(cluster.raft(leader).current_term(), removed_term);
    assert_eq!(cluster.leader(), Some(new_leader));
}

/// A server removed while partitioned away keeps timing out and (without pre-vote) raising its
/// term; when it comes back, the members refuse it and tell it it was removed: the leader
/// and its term are untouched.
fn removed_server_returns(pre_vote: bool, seed: u64) {
    let mut cluster = Cluster::with_config(3, seed, |config| config.pre_vote = pre_vote);
    let leader = cluster.elect(300);
    cluster.propose(leader);
    cluster.settle();
    let gone = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.isolate(gone);
    change(
        &mut cluster,
        leader,
        MembershipChange::RemoveMember { id: gone },
    )
    .expect("removing an unreachable follower leaves a reachable majority");
    cluster.run_ticks(200);
    let term = cluster.raft(leader).current_term();
    if !pre_vote {
        assert!(
            cluster.raft(gone).current_term() > term,
            "seed {seed}: the partitioned server raised its term"
        );
    }
    cluster.heal();
    cluster.run_ticks(300);
    assert_eq!(cluster.leader(), Some(leader), "seed {seed}");
    assert_eq!(cluster.raft(leader).current_term(), term, "seed {seed}");
    assert!(cluster.raft(gone).is_removed(), "seed {seed}");
    let proposed = cluster.propose(leader).expect("still leading");
    cluster.settle();
    assert!(cluster.raft(leader).commit_index() >= proposed.index);
}

#[test]
fn a_removed_server_returning_with_a_higher_term_does_not_disturb_the_cluster() {
    let seed = seed_or(6);
    removed_server_returns(false, seed);
}

#[test]
fn a_removed_server_returning_under_pre_vote_does_not_disturb_the_cluster() {
    let seed = seed_or(7);
    removed_server_returns(true, seed);
}

#[test]
fn strict_reconfiguration_refuses_a_change_that_leaves_too_few_reachable_voters() {
    let seed = seed_or(8);
    for strict in [true, false] {
        let mut cluster = Cluster::with_config(3, seed, |config| {
            config.strict_reconfiguration_check = strict;
        });
        let leader = cluster.elect(300);
        cluster.propose(leader);
        cluster.settle();
        let followers: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|id| *id != leader)
            .collect();
        cluster.crash(followers[1]);
        cluster.run_ticks(30);
        // Removing the reachable follower leaves {leader, crashed}: one of two reachable.
        let result = change(
            &mut cluster,
            leader,
            MembershipChange::RemoveMember { id: followers[0] },
        );
        if strict {
            assert_eq!(
                result,
                Err(RequestError::Membership(
                    MembershipChangeError::NotEnoughReachableVoters {
                        reachable: 1,
                        voters: 2,
                        quorum: 2
                    }
                )),
                "seed {seed}"
            );
        } else {
            result.expect("accepted without the check");
        }
    }
}

#[test]
fn leadership_transfer_hands_over_quickly_and_refuses_proposals_meanwhile() {
    let seed = seed_or(9);
    let (mut cluster, leader) = started_cluster(3, seed);
    let term = cluster.raft(leader).current_term();
    let target = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    // Hold the follower back a little, so the leader must catch it up first.
    cluster.cut(leader, target);
    for _ in 0..5 {
        cluster.propose(leader);
    }
    cluster.settle();
    cluster.heal();
    assert_eq!(transfer(&mut cluster, leader, Some(target)), Ok(target));
    assert_eq!(
        cluster.propose(leader),
        None,
        "seed {seed}: a leader handing over takes no proposal"
    );
    assert_eq!(
        cluster.raft(leader).leadership_transfer_target(),
        Some(target)
    );
    let ticks = ticks_until(&mut cluster, 100, |cluster| {
        cluster.leader() == Some(target)
    });
    let min_election_timeout = cluster.raft(target).config().election_timeout_min_ticks;
    assert!(ticks < min_election_timeout, "seed {seed}: {ticks} ticks");
    assert_eq!(cluster.raft(target).current_term(), term.next());
    assert_eq!(cluster.raft(leader).leader_id(), Some(target));
    cluster
        .propose(target)
        .expect("the new leader takes proposals");
    // To itself: nothing to do.
    assert_eq!(transfer(&mut cluster, target, Some(target)), Ok(target));
    // Only to a voter.
    assert_eq!(
        transfer(&mut cluster, target, Some(NodeId(9))),
        Err(RequestError::NotAVoter { id: NodeId(9) })
    );
    // Without a target: the most up-to-date other voter.
    let chosen = transfer(&mut cluster, target, None).expect("a voter is chosen");
    assert_ne!(chosen, target);
    ticks_until(&mut cluster, 100, |cluster| {
        cluster.leader() == Some(chosen)
    });
}

#[test]
fn a_transfer_to_an_unreachable_voter_is_abandoned_after_an_election_timeout() {
    let seed = seed_or(10);
    let (mut cluster, leader) = started_cluster(3, seed);
    let term = cluster.raft(leader).current_term();
    let target = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.isolate(target);
    transfer(&mut cluster, leader, Some(target)).expect("started");
    let timeout = cluster.raft(leader).config().election_timeout_max_ticks;
    let ticks = ticks_until(&mut cluster, timeout + 5, |cluster| {
        cluster.raft(leader).leadership_transfer_target().is_none()
    });
    assert!(
        ticks <= timeout,
        "seed {seed}: abandoned after {ticks} ticks"
    );
    assert_eq!(cluster.leader(), Some(leader));
    assert_eq!(cluster.raft(leader).current_term(), term);
    cluster
        .propose(leader)
        .expect("proposals are taken again once the transfer is abandoned");
}

#[test]
fn a_removed_learner_is_dropped_and_its_id_is_never_reused() {
    let seed = seed_or(11);
    let (mut cluster, leader) = started_cluster(3, seed);
    with_caught_up_learner(&mut cluster, leader, 4);
    change(
        &mut cluster,
        leader,
        MembershipChange::RemoveMember { id: NodeId(4) },
    )
    .expect("removed");
    ticks_until(&mut cluster, 20, settled_and_final);
    assert!(cluster.raft(leader).follower_progress(NodeId(4)).is_none());
    // The removed learner is told once the removal commits.
    ticks_until(&mut cluster, 20, |cluster| {
        cluster.raft(NodeId(4)).is_removed()
    });
    assert_eq!(
        change(
            &mut cluster,
            leader,
            MembershipChange::AddLearner {
                id: NodeId(4),
                address: address(4)
            }
        ),
        Err(RequestError::Membership(MembershipChangeError::IdReused {
            id: NodeId(4)
        }))
    );
}
