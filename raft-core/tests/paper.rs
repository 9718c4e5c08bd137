//! One test per rule of the Raft paper's Figure 2 and §5.1–§5.4, each citing its section.
//! ("In Search of an Understandable Consensus Algorithm", Ongaro & Ousterhout, 2014.)

mod common;

use common::builders::*;
use raft_core::{Command, Role};
use raft_types::{AppendOutcome, EntryPayload, HardState, LogIndex, NodeId, RaftMessage, Term};
use std::collections::BTreeSet;

// ----- §5.1 Raft basics -------------------------------------------------------------------

/// §5.1: "If one server's current term is smaller than the other's, then it updates its
/// current term to the larger value. If a candidate or leader discovers that its term is out
/// of date, it immediately reverts to follower state."
#[test]
fn section_5_1_newer_term_makes_any_role_a_follower() {
    let follower = server(1).of(3).term(1).log(&[1]).start();
    let mut candidate = server(1).of(3).term(1).log(&[1]).start();
    let commands = tick_until_election(&mut candidate);
    complete_storage(&mut candidate, &commands);
    let leader = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    for mut raft in [follower, candidate, leader] {
        let newer = raft.current_term().0 + 5;
        raft.step(NodeId(2), vote_response(newer, false));
        assert_eq!(raft.role(), Role::Follower);
        assert_eq!(raft.current_term(), Term(newer));
        assert_eq!(raft.voted_for(), None);
        assert!(raft.take_commands().iter().any(|command| matches!(
            command,
            Command::PersistHardState { hard_state, .. }
                if *hard_state == HardState::new(Term(newer), None)
        )));
    }
}

/// §5.1: "If a server receives a request with a stale term number, it rejects the request."
#[test]
fn section_5_1_requests_with_stale_terms_are_rejected() {
    let mut raft = server(2).of(3).term(7).log(&[1]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 6,
            candidate: 1,
            last_log_id: log_id(5, 9),
        }),
    );
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 6,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(6, 2)],
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            send(1, vote_response(7, false)),
            send(1, append_response(7, 1, AppendOutcome::StaleTerm)),
        ]
    );
    assert_eq!(raft.log().last_index(), LogIndex(1));
    assert_eq!(raft.voted_for(), None);
}

// ----- §5.2 Leader election ---------------------------------------------------------------

/// §5.2: "When servers start up, they begin as followers."
#[test]
fn section_5_2_servers_start_as_followers() {
    let raft = server(1).of(3).term(4).voted(2).log(&[1, 4]).start();
    assert_eq!(raft.role(), Role::Follower);
    assert_eq!(raft.leader_id(), None);
    assert_eq!(raft.current_term(), Term(4));
}

/// §5.2: "If a follower receives no communication over a period of time called the election
/// timeout, then it ... begins an election: ... increments its current term ... votes for
/// itself and issues RequestVote RPCs in parallel to each of the other servers."
#[test]
fn section_5_2_follower_times_out_and_campaigns() {
    let mut raft = server(1).of(5).term(2).log(&[1, 2]).start();
    let commands = tick_until_election(&mut raft);
    assert_eq!(raft.role(), Role::Candidate);
    assert_eq!(raft.current_term(), Term(3));
    assert_eq!(raft.voted_for(), Some(NodeId(1)));
    complete_storage(&mut raft, &commands);
    let requests = sends(&raft.take_commands());
    let destinations: BTreeSet<NodeId> = requests.iter().map(|(to, _)| *to).collect();
    assert_eq!(destinations, (2..=5).map(NodeId).collect());
    for (_, message) in requests {
        assert_eq!(
            message,
            request_vote(Vote {
                term: 3,
                candidate: 1,
                last_log_id: log_id(2, 2)
            })
        );
    }
}

/// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to
/// all followers in order to maintain their authority."
#[test]
fn section_5_2_leader_sends_periodic_heartbeats() {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    raft.step(NodeId(2), append_response(2, 1, success(2)));
    raft.step(NodeId(3), append_response(2, 2, success(2)));
    raft.take_commands();
    let interval = raft.config().heartbeat_interval_ticks;
    for _ in 0..interval - 1 {
        raft.tick();
        assert_eq!(
            raft.take_commands(),
            vec![],
            "no heartbeat before the interval"
        );
    }
    raft.tick();
    let heartbeats = append_requests(&raft.take_commands());
    assert_eq!(heartbeats.len(), 2);
    assert!(heartbeats
        .iter()
        .all(|(_, request)| request.entries.is_empty()));
}

/// §5.2: "A candidate wins an election if it receives votes from a majority of the servers
/// in the full cluster for the same term."
#[test]
fn section_5_2_candidate_needs_a_majority() {
    // (cluster size, granted votes from peers, becomes leader)
    let cases = [
        (1, 0, true),
        (3, 0, false),
        (3, 1, true),
        (5, 1, false),
        (5, 2, true),
    ];
    for (size, granted, wins) in cases {
        let mut raft = server(1).of(size).start();
        let commands = tick_until_election(&mut raft);
        complete_storage(&mut raft, &commands);
        for peer in 2..2 + granted {
            raft.step(NodeId(peer), vote_response(1, true));
        }
        for peer in 2 + granted..=size {
            raft.step(NodeId(peer), vote_response(1, false));
        }
        assert_eq!(
            raft.role() == Role::Leader,
            wins,
            "size {size}, {granted} votes"
        );
    }
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on a
/// first-come-first-served basis."
#[test]
fn section_5_2_one_vote_per_term_first_come_first_served() {
    let mut raft = server(1).of(3).term(1).log(&[1]).start();
    raft.step(
        NodeId(2),
        request_vote(Vote {
            term: 2,
            candidate: 2,
            last_log_id: log_id(1, 1),
        }),
    );
    raft.step(
        NodeId(3),
        request_vote(Vote {
            term: 2,
            candidate: 3,
            last_log_id: log_id(1, 1),
        }),
    );
    assert_eq!(raft.voted_for(), Some(NodeId(2)));
    let commands = raft.take_commands();
    raft.hard_state_saved(io(1));
    let responses = sends(&raft.take_commands());
    assert!(commands
        .iter()
        .all(|command| !matches!(command, Command::Send { .. })));
    assert_eq!(
        responses,
        vec![
            (NodeId(2), vote_response(2, true)),
            (NodeId(3), vote_response(2, false)),
        ]
    );
}

/// §5.2: "If the leader's term ... is at least as large as the candidate's current term,
/// then the candidate recognizes the leader as legitimate and returns to follower state."
#[test]
fn section_5_2_candidate_returns_to_follower_on_append_from_a_leader() {
    let mut raft = server(1).of(3).term(1).log(&[1]).start();
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft.step(
        NodeId(2),
        append_entries(Append {
            term: 2,
            leader: 2,
            prev_log_id: log_id(1, 1),
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(raft.role(), Role::Follower);
    assert_eq!(raft.leader_id(), Some(NodeId(2)));
    assert_eq!(raft.current_term(), Term(2));
}

/// §5.2: "If many followers become candidates at the same time ... each candidate will time
/// out and start a new election by incrementing its term."
#[test]
fn section_5_2_split_vote_leads_to_a_new_election_in_a_new_term() {
    let mut raft = server(1).of(3).term(1).log(&[1]).start();
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.step(NodeId(2), vote_response(2, false));
    raft.step(NodeId(3), vote_response(2, false));
    assert_eq!(raft.role(), Role::Candidate);
    raft.take_commands();
    let commands = tick_until_election(&mut raft);
    assert_eq!(raft.current_term(), Term(3));
    assert_eq!(
        commands,
        vec![persist_hard_state(HardStateWrite {
            current_term: 3,
            voted_for: Some(1),
            io: 2
        })]
    );
}

/// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval."
#[test]
fn section_5_2_election_timeouts_are_randomized_within_the_interval() {
    let mut timeouts = BTreeSet::new();
    let mut raft = server(1).of(3).start();
    let (min, max) = (
        raft.config().election_timeout_min_ticks,
        raft.config().election_timeout_max_ticks,
    );
    for _ in 0..200 {
        let mut ticks = 0;
        let term = raft.current_term();
        while raft.current_term() == term {
            raft.tick();
            ticks += 1;
        }
        let commands = raft.take_commands();
        complete_storage(&mut raft, &commands);
        raft.take_commands();
        assert!(
            (min..max).contains(&ticks),
            "timeout {ticks} outside [{min}, {max})"
        );
        timeouts.insert(ticks);
    }
    assert!(timeouts.len() >= 5, "timeouts barely vary: {timeouts:?}");
}

// ----- §5.3 Log replication ---------------------------------------------------------------

/// §5.3: "The leader appends the command to its log as a new entry, then issues
/// AppendEntries RPCs in parallel to each of the other servers."
#[test]
fn section_5_3_leader_appends_then_replicates_in_parallel() {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    raft.step(NodeId(2), append_response(2, 1, success(2)));
    raft.step(NodeId(3), append_response(2, 2, success(2)));
    raft.take_commands();
    let log_id = raft.propose(b"x".to_vec()).expect("leader");
    let commands = raft.take_commands();
    assert!(matches!(&commands[0], Command::AppendLog { entries, .. } if entries.len() == 1));
    let requests = append_requests(&commands);
    assert_eq!(requests.len(), 2);
    for (_, request) in requests {
        assert_eq!(
            request.entries.last().map(|entry| entry.log_id),
            Some(log_id)
        );
    }
}

/// §5.3: "A log entry is committed once the leader that created the entry has replicated it
/// on a majority of the servers ... Once a follower learns that a log entry is committed, it
/// applies the entry to its local state machine (in log order)."
#[test]
fn section_5_3_commit_on_majority_and_followers_apply_in_order() {
    let mut leader = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    leader.step(NodeId(2), append_response(2, 1, success(2)));
    assert_eq!(leader.commit_index(), LogIndex(2));
    let mut follower = server(2).of(3).term(2).log(&[1]).start();
    follower.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![raft_types::Entry::new(
                Term(2),
                LogIndex(2),
                EntryPayload::Blank,
            )],
            leader_commit: 2,
            sequence: 3,
        }),
    );
    let commands = follower.take_commands();
    let applied: Vec<_> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Apply { entries } => {
                Some(entries.iter().map(|e| e.index()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec![vec![LogIndex(1), LogIndex(2)]]);
}

/// §5.3, Figure 2 AppendEntries rule 2: "Reply false if log doesn't contain an entry at
/// prevLogIndex whose term matches prevLogTerm."
#[test]
fn section_5_3_consistency_check_rejects_a_missing_previous_entry() {
    let mut raft = server(2).of(3).term(3).log(&[1, 1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            leader: 1,
            prev_log_id: log_id(2, 2),
            entries: vec![entry(3, 3)],
            sequence: 1,
            ..Default::default()
        }),
    );
    let commands = raft.take_commands();
    assert!(matches!(
        sends(&commands).as_slice(),
        [(_, RaftMessage::AppendEntriesResponse(response))]
            if matches!(response.outcome, AppendOutcome::Conflict { .. })
    ));
    assert_eq!(raft.log().last_index(), LogIndex(2), "nothing appended");
}

/// §5.3, Figure 2 AppendEntries rules 3-4: "If an existing entry conflicts with a new one
/// (same index but different terms), delete the existing entry and all that follow it.
/// Append any new entries not already in the log."
#[test]
fn section_5_3_conflicting_entries_are_replaced_by_the_leaders() {
    let mut raft = server(2).of(3).term(4).log(&[1, 2, 2, 2]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 4,
            leader: 1,
            prev_log_id: log_id(2, 2),
            entries: vec![entry(4, 3), entry(4, 4), entry(4, 5)],
            sequence: 1,
            ..Default::default()
        }),
    );
    let commands = raft.take_commands();
    assert_eq!(
        commands,
        vec![
            Command::TruncateLog {
                since: LogIndex(3),
                io: io(1)
            },
            Command::AppendLog {
                entries: vec![entry(4, 3), entry(4, 4), entry(4, 5)],
                io: io(2)
            },
        ]
    );
    let terms: Vec<u64> = (1..=5)
        .map(|index| raft.log().term_at(LogIndex(index)).expect("present").0)
        .collect();
    assert_eq!(terms, vec![1, 2, 4, 4, 4]);
}

/// §5.3: "A leader never overwrites or deletes entries in its own log (Leader Append-Only)";
/// after a rejection "the leader decrements nextIndex and retries".
#[test]
fn section_5_3_leader_backs_off_without_touching_its_own_log() {
    let mut raft = elected_leader(server(1).of(3).term(3).log(&[1, 1, 3, 3]).start());
    let log_before = raft.log().clone();
    // The follower has only entry 1: its hint says "my log ends at 1".
    raft.step(
        NodeId(2),
        append_response(
            4,
            1,
            AppendOutcome::Conflict {
                conflict_term: None,
                conflict_index: LogIndex(2),
            },
        ),
    );
    assert_eq!(raft.log(), &log_before);
    let requests = append_requests(&raft.take_commands());
    assert_eq!(requests.len(), 1);
    let (to, retry) = &requests[0];
    assert_eq!(*to, NodeId(2));
    assert_eq!(
        retry.prev_log_id,
        log_id(1, 1),
        "retries from where the follower's log ends"
    );
    assert_eq!(
        retry.entries.first().map(|entry| entry.index()),
        Some(LogIndex(2))
    );
}

/// §5.3 (the optimization): with the conflicting term in the hint, the leader skips all
/// entries of that term in one round trip.
#[test]
fn section_5_3_conflict_term_hint_skips_a_whole_term() {
    // Leader log terms [1, 1, 1, 4, 4], follower [1, 2, 2, 2, 2, 2] (terms 2 never reached
    // the leader): the follower answers the probe at index 5 with term 2 starting at 2.
    let mut raft = elected_leader(server(1).of(3).term(4).log(&[1, 1, 1, 4, 4]).start());
    raft.step(
        NodeId(2),
        append_response(
            5,
            1,
            AppendOutcome::Conflict {
                conflict_term: Some(Term(2)),
                conflict_index: LogIndex(2),
            },
        ),
    );
    let requests = append_requests(&raft.take_commands());
    assert_eq!(requests[0].1.prev_log_id, log_id(1, 1));
}

/// Figure 2 AppendEntries rule 5: "If leaderCommit > commitIndex, set commitIndex =
/// min(leaderCommit, index of last new entry)."
#[test]
fn figure_2_follower_commit_is_min_of_leader_commit_and_last_new_entry() {
    let mut raft = server(2).of(3).term(2).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(2, 2)],
            leader_commit: 9,
            sequence: 1,
        }),
    );
    assert_eq!(raft.commit_index(), LogIndex(2));
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(2, 2),
            leader_commit: 1,
            sequence: 2,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.commit_index(),
        LogIndex(2),
        "the commit index never decreases"
    );
}

/// Figure 2, all servers: "If commitIndex > lastApplied: increment lastApplied, apply
/// log[lastApplied] to state machine." Each entry is handed to the applier once.
#[test]
fn figure_2_committed_entries_are_applied_once_in_order() {
    let mut raft = server(2).of(3).term(2).log(&[1, 1, 2]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(2, 3),
            leader_commit: 2,
            sequence: 1,
            ..Default::default()
        }),
    );
    let first: Vec<_> = raft.take_commands();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(2, 3),
            leader_commit: 3,
            sequence: 2,
            ..Default::default()
        }),
    );
    let second: Vec<_> = raft.take_commands();
    let applied = |commands: &[Command]| -> Vec<u64> {
        commands
            .iter()
            .filter_map(|command| match command {
                Command::Apply { entries } => Some(entries.iter().map(|e| e.index().0)),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert_eq!(applied(&first), vec![1, 2]);
    assert_eq!(applied(&second), vec![3]);
}

/// Figure 2, persistent state: "Updated on stable storage before responding to RPCs."
#[test]
fn figure_2_responses_wait_for_stable_storage() {
    let mut raft = server(2).of(3).term(1).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 2,
            candidate: 1,
            last_log_id: log_id(0, 0),
        }),
    );
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(0, 0),
            entries: vec![entry(2, 1)],
            sequence: 1,
            ..Default::default()
        }),
    );
    let commands = raft.take_commands();
    assert!(
        sends(&commands).is_empty(),
        "nothing is said before it is durable"
    );
    raft.hard_state_saved(io(1));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(2, true))]);
    raft.persisted(io(2), log_id(2, 1));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 1, success(1)))]
    );
}

// ----- §5.4 Safety ------------------------------------------------------------------------

/// §5.4.1: "RequestVote ... the voter denies its vote if its own log is more up-to-date
/// than that of the candidate ... If the logs have last entries with different terms, then
/// the log with the later term is more up-to-date. If the logs end with the same term, then
/// whichever log is longer is more up-to-date."
#[test]
fn section_5_4_1_election_restriction() {
    // voter log terms [1, 2, 2]: last (2, 3). (candidate last term, last index, granted)
    let cases = [
        (1, 9, false),
        (2, 2, false),
        (2, 3, true),
        (2, 4, true),
        (3, 1, true),
    ];
    for (last_term, last_index, granted) in cases {
        let mut raft = server(2).of(3).term(3).log(&[1, 2, 2]).start();
        raft.step(
            NodeId(1),
            request_vote(Vote {
                term: 3,
                candidate: 1,
                last_log_id: log_id(last_term, last_index),
            }),
        );
        let commands = raft.take_commands();
        complete_storage(&mut raft, &commands);
        let mut all = commands;
        all.extend(raft.take_commands());
        assert!(
            sends(&all).contains(&(NodeId(1), vote_response(3, granted))),
            "candidate last ({last_term}, {last_index}): expected granted = {granted}"
        );
    }
}

/// §5.4.2, Figure 8: "Raft never commits log entries from previous terms by counting
/// replicas. Only log entries from the leader's current term are committed by counting
/// replicas." An entry of term 2 stored on a majority stays uncommitted until an entry of
/// the leader's own term 4 is stored on a majority too.
#[test]
fn section_5_4_2_no_commit_of_earlier_terms_by_counting_replicas() {
    // S1 was leader of term 2 and wrote entry 2; now it leads term 4 (no-op at index 3).
    let mut raft = elected_leader(server(1).of(5).term(3).log(&[1, 2]).start());
    assert_eq!(raft.current_term(), Term(4));
    assert_eq!(raft.log().last_log_id(), log_id(4, 3));
    // S2 and S3 store entry 2 (term 2), but not yet the no-op: a majority holds entry 2.
    raft.step(NodeId(2), append_response(4, 1, success(2)));
    raft.step(NodeId(3), append_response(4, 2, success(2)));
    assert_eq!(
        raft.commit_index(),
        LogIndex(0),
        "Figure 8: entry 2 must not commit yet"
    );
    // Once a majority also holds the term-4 no-op, both commit together.
    raft.step(NodeId(2), append_response(4, 3, success(3)));
    assert_eq!(raft.commit_index(), LogIndex(0));
    raft.step(NodeId(3), append_response(4, 4, success(3)));
    assert_eq!(raft.commit_index(), LogIndex(3));
}

/// §5.5: "If a follower or candidate crashes ... Raft just retries indefinitely." A probe
/// lost in the network is sent again at the next heartbeat.
#[test]
fn section_5_5_lost_append_entries_are_retried() {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    // The no-op's AppendEntries to both followers were lost. The next heartbeat resends.
    for _ in 0..raft.config().heartbeat_interval_ticks {
        raft.tick();
    }
    let requests = append_requests(&raft.take_commands());
    assert_eq!(requests.len(), 2);
    for (_, request) in &requests {
        assert_eq!(request.prev_log_id, log_id(1, 1));
        assert!(
            request.entries.is_empty(),
            "a light probe while the first is unanswered"
        );
    }
    // Follower 2 answers the probe: the no-op is sent again right away.
    raft.step(
        NodeId(2),
        append_response(2, requests[0].1.sequence, success(1)),
    );
    let retry = append_requests(&raft.take_commands());
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0, NodeId(2));
    assert_eq!(retry[0].1.entries.len(), 1, "the no-op is sent again");
}
