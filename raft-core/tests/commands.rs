//! Each handler of the core, set up in a known state, called once, and its exact output
//! asserted: the whole `Vec<Command>`.

mod common;

use common::builders::*;
use raft_core::{Command, ProposeError, ReadError, Role};
use raft_types::{AppendOutcome, EntryPayload, HardState, LogIndex, NodeId, Term};

// ----- elections --------------------------------------------------------------------------

#[test]
fn election_start_persists_term_and_vote_before_asking_for_votes() {
    let mut raft = server(1, 3, 4, None, &[1, 4]);
    let commands = tick_until_election(&mut raft);
    assert_eq!(
        commands,
        vec![Command::PersistHardState(HardState::new(
            Term(5),
            Some(NodeId(1))
        ))]
    );
    assert_eq!(raft.role(), Role::Candidate);

    raft.hard_state_saved(HardState::new(Term(5), Some(NodeId(1))));
    let request = request_vote(5, 1, log_id(4, 2));
    assert_eq!(
        raft.take_commands(),
        vec![send(2, request.clone()), send(3, request)]
    );
}

#[test]
fn single_server_elects_itself_once_its_vote_is_durable() {
    let mut raft = server(1, 1, 0, None, &[]);
    let commands = tick_until_election(&mut raft);
    assert_eq!(
        commands,
        vec![Command::PersistHardState(HardState::new(
            Term(1),
            Some(NodeId(1))
        ))]
    );
    assert_eq!(raft.role(), Role::Candidate);
    raft.hard_state_saved(HardState::new(Term(1), Some(NodeId(1))));
    assert_eq!(raft.role(), Role::Leader);
    assert_eq!(
        raft.take_commands(),
        vec![Command::AppendLog {
            entries: vec![raft_types::Entry::new(
                Term(1),
                LogIndex(1),
                EntryPayload::Blank
            )]
        }]
    );
    raft.persisted(log_id(1, 1));
    assert_eq!(raft.commit_index(), LogIndex(1));
    assert_eq!(
        raft.take_commands(),
        vec![Command::Apply {
            entries: vec![raft_types::Entry::new(
                Term(1),
                LogIndex(1),
                EntryPayload::Blank
            )]
        }]
    );
}

#[test]
fn vote_granted_is_sent_only_after_it_is_durable() {
    let mut raft = server(2, 3, 1, None, &[1]);
    raft.step(NodeId(1), request_vote(2, 1, log_id(1, 1)));
    // The newer term and the vote are saved together; the grant waits for the save.
    assert_eq!(
        raft.take_commands(),
        vec![Command::PersistHardState(HardState::new(
            Term(2),
            Some(NodeId(1))
        ))]
    );
    raft.hard_state_saved(HardState::new(Term(2), Some(NodeId(1))));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(2, true))]);
}

#[test]
fn vote_denied_to_a_stale_term() {
    let mut raft = server(2, 3, 5, None, &[1]);
    raft.step(NodeId(1), request_vote(4, 1, log_id(1, 1)));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(5, false))]);
}

#[test]
fn vote_denied_after_voting_for_another_candidate_in_the_term() {
    let mut raft = server(2, 3, 3, Some(3), &[1]);
    raft.step(NodeId(1), request_vote(3, 1, log_id(1, 1)));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(3, false))]);
}

#[test]
fn vote_repeated_for_the_same_candidate() {
    let mut raft = server(2, 3, 3, Some(1), &[1]);
    raft.step(NodeId(1), request_vote(3, 1, log_id(1, 1)));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(3, true))]);
}

#[test]
fn vote_denied_to_a_candidate_with_an_older_last_term() {
    let mut raft = server(2, 3, 3, None, &[1, 3]);
    raft.step(NodeId(1), request_vote(4, 1, log_id(2, 9)));
    // The newer term is still adopted (and saved) before the denial goes out.
    assert_eq!(
        raft.take_commands(),
        vec![Command::PersistHardState(HardState::new(Term(4), None))]
    );
    raft.hard_state_saved(HardState::new(Term(4), None));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(4, false))]);
}

#[test]
fn vote_denied_to_a_candidate_with_a_shorter_log_of_the_same_term() {
    let mut raft = server(2, 3, 4, None, &[1, 3, 3]);
    raft.step(NodeId(1), request_vote(4, 1, log_id(3, 2)));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(4, false))]);
}

#[test]
fn candidate_becomes_leader_with_a_majority_and_sends_its_no_op() {
    let mut raft = server(1, 3, 1, None, &[1]);
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft.step(NodeId(2), vote_response(2, true));
    assert_eq!(raft.role(), Role::Leader);
    let no_op = raft_types::Entry::new(Term(2), LogIndex(2), EntryPayload::Blank);
    let append = |sequence| append_entries(2, 1, log_id(1, 1), vec![no_op.clone()], 0, sequence);
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::AppendLog {
                entries: vec![no_op.clone()]
            },
            send(2, append(1)),
            send(3, append(2)),
        ]
    );
}

// ----- AppendEntries, follower side -------------------------------------------------------

#[test]
fn append_accepted_is_acknowledged_once_durable() {
    let mut raft = server(2, 3, 2, None, &[1]);
    raft.step(
        NodeId(1),
        append_entries(2, 1, log_id(1, 1), vec![entry(2, 2), entry(2, 3)], 1, 7),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::AppendLog {
                entries: vec![entry(2, 2), entry(2, 3)]
            },
            Command::Apply {
                entries: vec![entry(1, 1)]
            },
        ]
    );
    raft.persisted(log_id(2, 3));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 7, success(3)))]
    );
}

#[test]
fn append_rejected_when_the_log_is_too_short() {
    let mut raft = server(2, 3, 2, None, &[1]);
    raft.step(
        NodeId(1),
        append_entries(2, 1, log_id(2, 5), vec![entry(2, 6)], 0, 3),
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(
            1,
            append_response(
                2,
                3,
                AppendOutcome::Conflict {
                    conflict_term: None,
                    conflict_index: LogIndex(2)
                }
            )
        )]
    );
}

#[test]
fn append_rejected_with_the_first_index_of_the_conflicting_term() {
    let mut raft = server(2, 3, 3, None, &[1, 2, 2, 2]);
    raft.step(NodeId(1), append_entries(3, 1, log_id(3, 4), vec![], 0, 9));
    assert_eq!(
        raft.take_commands(),
        vec![send(
            1,
            append_response(
                3,
                9,
                AppendOutcome::Conflict {
                    conflict_term: Some(Term(2)),
                    conflict_index: LogIndex(2)
                }
            )
        )]
    );
}

#[test]
fn append_truncates_a_conflicting_suffix_then_appends() {
    let mut raft = server(2, 3, 3, None, &[1, 2, 2]);
    raft.step(
        NodeId(1),
        append_entries(3, 1, log_id(1, 1), vec![entry(3, 2)], 0, 4),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::TruncateLog { since: LogIndex(2) },
            Command::AppendLog {
                entries: vec![entry(3, 2)]
            },
        ]
    );
    raft.persisted(log_id(3, 2));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(3, 4, success(2)))]
    );
    assert_eq!(raft.log().last_log_id(), log_id(3, 2));
}

#[test]
fn stale_duplicate_append_removes_nothing() {
    let mut raft = server(2, 3, 2, None, &[1, 2, 2, 2]);
    // An old AppendEntries carrying entries 2..=3, which the follower already holds.
    raft.step(
        NodeId(1),
        append_entries(2, 1, log_id(1, 1), vec![entry(2, 2), entry(2, 3)], 0, 1),
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 1, success(3)))]
    );
    assert_eq!(raft.log().last_log_id(), log_id(2, 4), "entry 4 kept");
}

#[test]
fn follower_commit_is_capped_by_its_last_new_entry() {
    let mut raft = server(2, 3, 2, None, &[1, 1, 1]);
    // The leader has committed 3, but only vouches for our log through index 1.
    raft.step(NodeId(1), append_entries(2, 1, log_id(1, 1), vec![], 3, 5));
    assert_eq!(raft.commit_index(), LogIndex(1));
    assert_eq!(
        raft.take_commands(),
        vec![
            send(1, append_response(2, 5, success(1))),
            Command::Apply {
                entries: vec![entry(1, 1)]
            },
        ]
    );
}

// ----- stale terms ------------------------------------------------------------------------

#[test]
fn stale_append_entries_is_answered_with_the_current_term() {
    let mut raft = server(2, 3, 5, None, &[1]);
    raft.step(
        NodeId(1),
        append_entries(4, 1, log_id(1, 1), vec![entry(4, 2)], 1, 8),
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(5, 8, AppendOutcome::StaleTerm))]
    );
    assert_eq!(raft.log().last_index(), LogIndex(1));
}

#[test]
fn leader_steps_down_on_a_response_with_a_newer_term() {
    let mut raft = elected_leader(server(1, 3, 1, None, &[1]));
    let term = raft.current_term().0;
    raft.step(
        NodeId(2),
        append_response(term + 3, 1, AppendOutcome::StaleTerm),
    );
    assert_eq!(raft.role(), Role::Follower);
    assert_eq!(
        raft.take_commands(),
        vec![Command::PersistHardState(HardState::new(
            Term(term + 3),
            None
        ))]
    );
}

#[test]
fn stale_vote_response_is_ignored() {
    let mut raft = server(1, 5, 1, None, &[1]);
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft.step(NodeId(2), vote_response(1, true));
    raft.step(NodeId(3), vote_response(1, true));
    assert_eq!(
        raft.role(),
        Role::Candidate,
        "votes from an older term do not count"
    );
    assert_eq!(raft.take_commands(), vec![]);
}

// ----- leader: proposals and commit -------------------------------------------------------

#[test]
fn proposals_since_the_last_step_share_one_append_and_one_message_per_follower() {
    let mut raft = elected_leader(server(1, 3, 1, None, &[1]));
    // Followers acknowledged the no-op, so they are in replicate mode.
    raft.step(NodeId(2), append_response(2, 1, success(2)));
    raft.step(NodeId(3), append_response(2, 2, success(2)));
    raft.take_commands();
    let first = raft.propose(b"a".to_vec()).expect("leader");
    let second = raft.propose(b"b".to_vec()).expect("leader");
    assert_eq!((first, second), (log_id(2, 3), log_id(2, 4)));
    let new_entries = vec![
        raft_types::Entry::new(Term(2), LogIndex(3), EntryPayload::command(b"a".to_vec())),
        raft_types::Entry::new(Term(2), LogIndex(4), EntryPayload::command(b"b".to_vec())),
    ];
    let commands = raft.take_commands();
    assert_eq!(
        commands,
        vec![
            Command::AppendLog {
                entries: new_entries.clone()
            },
            send(
                2,
                append_entries(2, 1, log_id(2, 2), new_entries.clone(), 2, 3)
            ),
            send(3, append_entries(2, 1, log_id(2, 2), new_entries, 2, 4)),
        ]
    );
}

#[test]
fn commit_advances_when_a_majority_holds_an_entry_of_the_current_term() {
    let mut raft = elected_leader(server(1, 3, 1, None, &[1]));
    assert_eq!(raft.commit_index(), LogIndex(0));
    raft.step(NodeId(2), append_response(2, 1, success(2)));
    assert_eq!(raft.commit_index(), LogIndex(2));
    assert_eq!(
        raft.take_commands(),
        vec![Command::Apply {
            entries: vec![
                entry(1, 1),
                raft_types::Entry::new(Term(2), LogIndex(2), EntryPayload::Blank)
            ]
        }]
    );
}

#[test]
fn proposal_to_a_follower_is_refused_with_a_leader_hint() {
    let mut raft = server(2, 3, 2, None, &[1]);
    raft.step(NodeId(1), append_entries(2, 1, log_id(1, 1), vec![], 1, 1));
    raft.take_commands();
    assert_eq!(
        raft.propose(b"x".to_vec()),
        Err(ProposeError::NotLeader {
            leader_hint: Some(NodeId(1))
        })
    );
    assert_eq!(
        raft.read_index(1),
        Err(ReadError::NotLeader {
            leader_hint: Some(NodeId(1))
        })
    );
}

// ----- ReadIndex --------------------------------------------------------------------------

/// A leader of term 2 whose no-op (index 2) is committed and applied.
fn leader_with_applied_no_op() -> raft_core::Raft {
    let mut raft = elected_leader(server(1, 3, 1, None, &[1]));
    raft.step(NodeId(2), append_response(2, 1, success(2)));
    raft.step(NodeId(3), append_response(2, 2, success(2)));
    raft.take_commands();
    raft.applied(LogIndex(2));
    raft
}

#[test]
fn read_index_confirms_leadership_with_one_heartbeat_round_shared_by_concurrent_reads() {
    let mut raft = leader_with_applied_no_op();
    raft.read_index(10).expect("leader");
    raft.read_index(11).expect("leader");
    assert_eq!(
        raft.take_commands(),
        vec![
            send(2, append_entries(2, 1, log_id(2, 2), vec![], 2, 3)),
            send(3, append_entries(2, 1, log_id(2, 2), vec![], 2, 4)),
        ]
    );
    // One follower plus the leader is a majority of three.
    raft.step(NodeId(3), append_response(2, 4, success(2)));
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::ReadReady {
                request_id: 10,
                read_index: LogIndex(2)
            },
            Command::ReadReady {
                request_id: 11,
                read_index: LogIndex(2)
            },
        ]
    );
}

#[test]
fn read_index_ignores_acknowledgements_older_than_the_read() {
    let mut raft = leader_with_applied_no_op();
    raft.read_index(10).expect("leader");
    raft.take_commands();
    // A late answer to the no-op's AppendEntries (sequence 2) proves nothing about now.
    raft.step(NodeId(3), append_response(2, 2, success(2)));
    assert_eq!(raft.take_commands(), vec![]);
}

#[test]
fn read_index_waits_for_the_no_op_of_the_term_to_commit() {
    let mut raft = elected_leader(server(1, 3, 1, None, &[1]));
    raft.read_index(10).expect("leader");
    raft.take_commands();
    raft.step(NodeId(2), append_response(2, 4, success(2)));
    // Leadership confirmed and no-op committed at once; the read waits for apply.
    let commands = raft.take_commands();
    assert!(
        matches!(commands.as_slice(), [Command::Apply { .. }]),
        "{commands:?}"
    );
    raft.applied(LogIndex(2));
    assert_eq!(
        raft.take_commands(),
        vec![Command::ReadReady {
            request_id: 10,
            read_index: LogIndex(2)
        }]
    );
}

#[test]
fn pending_reads_are_rejected_when_leadership_is_lost() {
    let mut raft = leader_with_applied_no_op();
    raft.read_index(10).expect("leader");
    raft.take_commands();
    raft.step(NodeId(3), append_entries(3, 3, log_id(2, 2), vec![], 2, 1));
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::PersistHardState(HardState::new(Term(3), None)),
            Command::RejectRead {
                request_id: 10,
                leader_hint: Some(NodeId(3))
            },
        ]
    );
}

#[test]
fn acknowledgement_waits_for_a_pending_hard_state() {
    // A follower adopting a newer term from AppendEntries saves it before acknowledging.
    let mut raft = server(2, 3, 1, None, &[1]);
    raft.step(NodeId(1), append_entries(2, 1, log_id(1, 1), vec![], 0, 1));
    assert_eq!(
        raft.take_commands(),
        vec![Command::PersistHardState(HardState::new(Term(2), None))]
    );
    raft.hard_state_saved(HardState::new(Term(2), None));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 1, success(1)))]
    );
    assert!(matches!(
        raft.log().entry(LogIndex(1)).map(|entry| &entry.payload),
        Some(EntryPayload::Command(_))
    ));
}

// ----- pre-vote (thesis §9.6) and leader stickiness (thesis §4.2.3) -------------------------

fn pre_vote(term: u64, candidate: u64, last_log_id: raft_types::LogId) -> raft_types::RaftMessage {
    raft_types::RaftMessage::PreVote(raft_types::RequestVoteRequest {
        term: Term(term),
        candidate_id: NodeId(candidate),
        last_log_id,
    })
}

fn pre_vote_response(term: u64, vote_granted: bool) -> raft_types::RaftMessage {
    raft_types::RaftMessage::PreVoteResponse(raft_types::RequestVoteResponse {
        term: Term(term),
        vote_granted,
    })
}

#[test]
fn pre_vote_asks_before_changing_the_term() {
    let mut raft = server_with_pre_vote(1, 3, 4, None, &[1, 4]);
    let mut commands = Vec::new();
    for _ in 0..100 {
        raft.tick();
        commands = raft.take_commands();
        if !commands.is_empty() {
            break;
        }
    }
    let request = pre_vote(5, 1, log_id(4, 2));
    assert_eq!(commands, vec![send(2, request.clone()), send(3, request)]);
    assert_eq!(raft.current_term(), Term(4), "a pre-vote moves no term");
    assert_eq!(raft.role(), Role::Follower);
    // One grant plus its own is a majority: the real election starts.
    raft.step(NodeId(3), pre_vote_response(5, true));
    assert_eq!(raft.role(), Role::Candidate);
    assert_eq!(
        raft.take_commands(),
        vec![Command::PersistHardState(HardState::new(
            Term(5),
            Some(NodeId(1))
        ))]
    );
}

#[test]
fn pre_vote_is_granted_without_changing_anything() {
    let mut raft = server_with_pre_vote(2, 3, 4, None, &[1, 4]);
    raft.step(NodeId(1), pre_vote(5, 1, log_id(4, 2)));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, pre_vote_response(5, true))]
    );
    assert_eq!(raft.hard_state(), HardState::new(Term(4), None));
}

#[test]
fn pre_vote_is_refused_while_a_leader_is_alive_or_to_a_stale_log() {
    let mut raft = server_with_pre_vote(2, 3, 4, None, &[1, 4]);
    raft.step(NodeId(3), pre_vote(5, 3, log_id(3, 9)));
    assert_eq!(
        raft.take_commands(),
        vec![send(3, pre_vote_response(4, false))]
    );
    raft.step(NodeId(1), append_entries(4, 1, log_id(4, 2), vec![], 0, 1));
    raft.take_commands();
    raft.step(NodeId(3), pre_vote(5, 3, log_id(4, 2)));
    assert_eq!(
        raft.take_commands(),
        vec![send(3, pre_vote_response(4, false))]
    );
}

#[test]
fn vote_requests_are_ignored_while_a_leader_is_alive() {
    let mut raft = server_with_pre_vote(2, 3, 4, None, &[1, 4]);
    raft.step(NodeId(1), append_entries(4, 1, log_id(4, 2), vec![], 0, 1));
    raft.take_commands();
    raft.step(NodeId(3), request_vote(9, 3, log_id(4, 2)));
    assert_eq!(raft.take_commands(), vec![]);
    assert_eq!(raft.current_term(), Term(4), "the leader's term stands");
}
