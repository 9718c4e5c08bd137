//! Each handler of the core, set up in a known state, called once, and its exact output
//! asserted: the whole `Vec<Command>`.

mod common;

use common::builders::*;
use raft_core::{Command, Divergence, DivergenceSide, RequestError, Role};
use raft_types::{AppendOutcome, EntryPayload, HardState, LogIndex, NodeId, Term};

// ----- elections --------------------------------------------------------------------------

#[test]
fn election_start_persists_term_and_vote_before_asking_for_votes() {
    let mut raft = server(1).of(3).term(4).log(&[1, 4]).start();
    let commands = tick_until_election(&mut raft);
    assert_eq!(
        commands,
        vec![persist_hard_state(HardStateWrite {
            current_term: 5,
            voted_for: Some(1),
            io: 1
        })]
    );
    assert_eq!(raft.role(), Role::Candidate);

    raft.hard_state_saved(io(1));
    let request = request_vote(Vote {
        term: 5,
        candidate: 1,
        last_log_id: log_id(4, 2),
    });
    assert_eq!(
        raft.take_commands(),
        vec![send(2, request.clone()), send(3, request)]
    );
}

#[test]
fn single_server_elects_itself_once_its_vote_is_durable() {
    let mut raft = server(1).of(1).start();
    let commands = tick_until_election(&mut raft);
    assert_eq!(
        commands,
        vec![persist_hard_state(HardStateWrite {
            current_term: 1,
            voted_for: Some(1),
            io: 1
        })]
    );
    assert_eq!(raft.role(), Role::Candidate);
    raft.hard_state_saved(io(1));
    assert_eq!(raft.role(), Role::Leader);
    assert_eq!(
        raft.take_commands(),
        vec![Command::AppendLog {
            entries: vec![raft_types::Entry::new(
                Term(1),
                LogIndex(1),
                EntryPayload::Blank
            )],
            io: io(2)
        }]
    );
    raft.persisted(io(2), log_id(1, 1));
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
    let mut raft = server(2).of(3).term(1).log(&[1]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 2,
            candidate: 1,
            last_log_id: log_id(1, 1),
        }),
    );
    // The newer term and the vote are saved together; the grant waits for the save.
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: 2,
            voted_for: Some(1),
            io: 1
        })]
    );
    raft.hard_state_saved(io(1));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(2, true))]);
}

#[test]
fn vote_denied_to_a_stale_term() {
    let mut raft = server(2).of(3).term(5).log(&[1]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 4,
            candidate: 1,
            last_log_id: log_id(1, 1),
        }),
    );
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(5, false))]);
}

#[test]
fn vote_denied_after_voting_for_another_candidate_in_the_term() {
    let mut raft = server(2).of(3).term(3).voted(3).log(&[1]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 3,
            candidate: 1,
            last_log_id: log_id(1, 1),
        }),
    );
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(3, false))]);
}

#[test]
fn vote_repeated_for_the_same_candidate() {
    let mut raft = server(2).of(3).term(3).voted(1).log(&[1]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 3,
            candidate: 1,
            last_log_id: log_id(1, 1),
        }),
    );
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(3, true))]);
}

#[test]
fn vote_denied_to_a_candidate_with_an_older_last_term() {
    let mut raft = server(2).of(3).term(3).log(&[1, 3]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 4,
            candidate: 1,
            last_log_id: log_id(2, 9),
        }),
    );
    // The newer term is still adopted (and saved) before the denial goes out.
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: 4,
            voted_for: None,
            io: 1
        })]
    );
    raft.hard_state_saved(io(1));
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(4, false))]);
}

#[test]
fn vote_denied_to_a_candidate_with_a_shorter_log_of_the_same_term() {
    let mut raft = server(2).of(3).term(4).log(&[1, 3, 3]).start();
    raft.step(
        NodeId(1),
        request_vote(Vote {
            term: 4,
            candidate: 1,
            last_log_id: log_id(3, 2),
        }),
    );
    assert_eq!(raft.take_commands(), vec![send(1, vote_response(4, false))]);
}

#[test]
fn candidate_becomes_leader_with_a_majority_and_sends_its_no_op() {
    let mut raft = server(1).of(3).term(1).log(&[1]).start();
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft.step(NodeId(2), vote_response(2, true));
    assert_eq!(raft.role(), Role::Leader);
    let no_op = raft_types::Entry::new(Term(2), LogIndex(2), EntryPayload::Blank);
    let append = |sequence| {
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![no_op.clone()],
            sequence,
            ..Default::default()
        })
    };
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::AppendLog {
                entries: vec![no_op.clone()],
                io: io(2)
            },
            send(2, append(1)),
            send(3, append(2)),
        ]
    );
}

// ----- AppendEntries, follower side -------------------------------------------------------

#[test]
fn append_accepted_is_acknowledged_once_durable() {
    let mut raft = server(2).of(3).term(2).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(2, 2), entry(2, 3)],
            leader_commit: 1,
            sequence: 7,
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::AppendLog {
                entries: vec![entry(2, 2), entry(2, 3)],
                io: io(1)
            },
            Command::Apply {
                entries: vec![entry(1, 1)]
            },
        ]
    );
    raft.persisted(io(1), log_id(2, 3));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 7, success(3)))]
    );
}

#[test]
fn append_rejected_when_the_log_is_too_short() {
    let mut raft = server(2).of(3).term(2).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(2, 5),
            entries: vec![entry(2, 6)],
            sequence: 3,
            ..Default::default()
        }),
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
    let mut raft = server(2).of(3).term(3).log(&[1, 2, 2, 2]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            leader: 1,
            prev_log_id: log_id(3, 4),
            sequence: 9,
            ..Default::default()
        }),
    );
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
    let mut raft = server(2).of(3).term(3).log(&[1, 2, 2]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(3, 2)],
            sequence: 4,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            Command::TruncateLog {
                since: LogIndex(2),
                io: io(1)
            },
            Command::AppendLog {
                entries: vec![entry(3, 2)],
                io: io(2)
            },
        ]
    );
    raft.persisted(io(2), log_id(3, 2));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(3, 4, success(2)))]
    );
    assert_eq!(raft.log().last_log_id(), log_id(3, 2));
}

#[test]
fn stale_duplicate_append_removes_nothing() {
    let mut raft = server(2).of(3).term(2).log(&[1, 2, 2, 2]).start();
    // An old AppendEntries carrying entries 2..=3, which the follower already holds.
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(2, 2), entry(2, 3)],
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(2, 1, success(3)))]
    );
    assert_eq!(raft.log().last_log_id(), log_id(2, 4), "entry 4 kept");
}

#[test]
fn follower_commit_is_capped_by_its_last_new_entry() {
    let mut raft = server(2).of(3).term(2).log(&[1, 1, 1]).start();
    // The leader has committed 3, but only vouches for our log through index 1.
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            leader_commit: 3,
            sequence: 5,
            ..Default::default()
        }),
    );
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
    let mut raft = server(2).of(3).term(5).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 4,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(4, 2)],
            leader_commit: 1,
            sequence: 8,
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(5, 8, AppendOutcome::StaleTerm))]
    );
    assert_eq!(raft.log().last_index(), LogIndex(1));
}

#[test]
fn leader_steps_down_on_a_response_with_a_newer_term() {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
    let term = raft.current_term().0;
    raft.step(
        NodeId(2),
        append_response(term + 3, 1, AppendOutcome::StaleTerm),
    );
    assert_eq!(raft.role(), Role::Follower);
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: term + 3,
            voted_for: None,
            io: 3
        })]
    );
}

#[test]
fn stale_vote_response_is_ignored() {
    let mut raft = server(1).of(5).term(1).log(&[1]).start();
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
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
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
                entries: new_entries.clone(),
                io: io(3)
            },
            send(
                2,
                append_entries(Append {
                    term: 2,
                    leader: 1,
                    prev_log_id: log_id(2, 2),
                    entries: new_entries.clone(),
                    leader_commit: 2,
                    sequence: 3
                })
            ),
            send(
                3,
                append_entries(Append {
                    term: 2,
                    leader: 1,
                    prev_log_id: log_id(2, 2),
                    entries: new_entries,
                    leader_commit: 2,
                    sequence: 4
                })
            ),
        ]
    );
}

#[test]
fn commit_advances_when_a_majority_holds_an_entry_of_the_current_term() {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
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
    let mut raft = server(2).of(3).term(2).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            leader_commit: 1,
            sequence: 1,
            ..Default::default()
        }),
    );
    raft.take_commands();
    assert_eq!(
        raft.propose(b"x".to_vec()),
        Err(RequestError::NotLeader {
            leader_hint: Some(NodeId(1))
        })
    );
    assert_eq!(
        raft.read_index(1),
        Err(RequestError::NotLeader {
            leader_hint: Some(NodeId(1))
        })
    );
}

// ----- ReadIndex --------------------------------------------------------------------------

/// A leader of term 2 whose no-op (index 2) is committed and applied.
fn leader_with_applied_no_op() -> raft_core::Raft {
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
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
            send(
                2,
                append_entries(Append {
                    term: 2,
                    leader: 1,
                    prev_log_id: log_id(2, 2),
                    leader_commit: 2,
                    sequence: 3,
                    ..Default::default()
                })
            ),
            send(
                3,
                append_entries(Append {
                    term: 2,
                    leader: 1,
                    prev_log_id: log_id(2, 2),
                    leader_commit: 2,
                    sequence: 4,
                    ..Default::default()
                })
            ),
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
    let mut raft = elected_leader(server(1).of(3).term(1).log(&[1]).start());
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
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 3,
            leader: 3,
            prev_log_id: log_id(2, 2),
            leader_commit: 2,
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![
            persist_hard_state(HardStateWrite {
                current_term: 3,
                voted_for: None,
                io: 3
            }),
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
    let mut raft = server(2).of(3).term(1).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: 2,
            voted_for: None,
            io: 1
        })]
    );
    raft.hard_state_saved(io(1));
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
        leadership_transfer: false,
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
    let mut raft = server(1).of(3).term(4).log(&[1, 4]).pre_vote().start();
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
        vec![persist_hard_state(HardStateWrite {
            current_term: 5,
            voted_for: Some(1),
            io: 1
        })]
    );
}

#[test]
fn pre_vote_is_granted_without_changing_anything() {
    let mut raft = server(2).of(3).term(4).log(&[1, 4]).pre_vote().start();
    raft.step(NodeId(1), pre_vote(5, 1, log_id(4, 2)));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, pre_vote_response(5, true))]
    );
    assert_eq!(raft.hard_state(), HardState::new(Term(4), None));
}

#[test]
fn pre_vote_is_refused_while_a_leader_is_alive_or_to_a_stale_log() {
    let mut raft = server(2).of(3).term(4).log(&[1, 4]).pre_vote().start();
    raft.step(NodeId(3), pre_vote(5, 3, log_id(3, 9)));
    assert_eq!(
        raft.take_commands(),
        vec![send(3, pre_vote_response(4, false))]
    );
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 4,
            leader: 1,
            prev_log_id: log_id(4, 2),
            sequence: 1,
            ..Default::default()
        }),
    );
    raft.take_commands();
    raft.step(NodeId(3), pre_vote(5, 3, log_id(4, 2)));
    assert_eq!(
        raft.take_commands(),
        vec![send(3, pre_vote_response(4, false))]
    );
}

#[test]
fn vote_requests_are_ignored_while_a_leader_is_alive() {
    let mut raft = server(2).of(3).term(4).log(&[1, 4]).pre_vote().start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 4,
            leader: 1,
            prev_log_id: log_id(4, 2),
            sequence: 1,
            ..Default::default()
        }),
    );
    raft.take_commands();
    raft.step(
        NodeId(3),
        request_vote(Vote {
            term: 9,
            candidate: 3,
            last_log_id: log_id(4, 2),
        }),
    );
    assert_eq!(raft.take_commands(), vec![]);
    assert_eq!(raft.current_term(), Term(4), "the leader's term stands");
}

/// Issue 9: a follower rejecting an AppendEntries of an *older* term answers `StaleTerm` with
/// its current term and that request's sequence. If the same server leads again in that
/// current term, the answer looks like one of this term, and its sequence (from the old term,
/// when sequences ran higher) must not confirm a read.
#[test]
fn a_stale_term_answer_echoing_an_old_terms_sequence_confirms_no_read() {
    let mut raft = leader_with_applied_no_op();
    raft.read_index(10).expect("leader");
    let broadcast = raft.take_commands();
    assert_eq!(append_requests(&broadcast).len(), 2);
    // Follower 2, now in term 2, rejects a term-1 AppendEntries this server sent long ago
    // with sequence 500.
    raft.step(NodeId(2), append_response(2, 500, AppendOutcome::StaleTerm));
    assert_eq!(
        raft.take_commands(),
        vec![],
        "an answer to an old term's request confirmed a read of this term"
    );
    // The real answer to this term's broadcast does.
    raft.step(NodeId(2), append_response(2, 3, success(2)));
    assert_eq!(
        raft.take_commands(),
        vec![Command::ReadReady {
            request_id: 10,
            read_index: LogIndex(2)
        }]
    );
}

/// Issue 9: the same answers do not keep a leader alive under check-quorum.
#[test]
fn stale_term_answers_do_not_count_as_contact_for_check_quorum() {
    let mut raft = leader_with_applied_no_op();
    assert!(raft.config().check_quorum);
    let mut sequence = 1000;
    for _ in 0..raft.config().election_timeout_min_ticks * 2 {
        raft.tick();
        for peer in [2, 3] {
            sequence += 1;
            raft.step(
                NodeId(peer),
                append_response(2, sequence, AppendOutcome::StaleTerm),
            );
        }
        raft.take_commands();
    }
    assert_eq!(
        raft.role(),
        Role::Follower,
        "a leader hearing only answers to old terms must step down"
    );
}

// ----- storage completions ----------------------------------------------------------------

/// What a follower emits when a leader of the newer `term` replaces its entry at
/// `replacement`'s index: the term saved, the old entry cut, the new one appended, as storage
/// requests `first_io`, `first_io + 1` and `first_io + 2`.
fn new_term_replaces_entry(
    term: u64,
    replacement: raft_types::Entry,
    first_io: u64,
) -> Vec<Command> {
    vec![
        persist_hard_state(HardStateWrite {
            current_term: term,
            voted_for: None,
            io: first_io,
        }),
        Command::TruncateLog {
            since: replacement.index(),
            io: io(first_io + 1),
        },
        Command::AppendLog {
            entries: vec![replacement],
            io: io(first_io + 2),
        },
    ]
}

/// Issue 9: a completion issued before a truncation is ignored even when the log holds, once
/// more, the very LogId it names. Here index 2 holds (2,2), is replaced by (3,2), then by (2,2)
/// again (a term-4 leader that kept it); the first write's late completion must not make the
/// second (2,2) durable, because storage holds (3,2) or nothing there.
#[test]
fn a_completion_from_before_a_truncation_is_ignored_even_when_the_log_id_is_back() {
    let mut raft = server(2).of(3).term(2).log(&[1]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(2, 2)],
            sequence: 1,
            ..Default::default()
        }),
    );
    let first = raft.take_commands();
    assert_eq!(
        first,
        vec![Command::AppendLog {
            entries: vec![entry(2, 2)],
            io: io(1)
        }]
    );
    // The leader of term 3 replaces it.
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 3,
            leader: 3,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(3, 2)],
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        new_term_replaces_entry(3, entry(3, 2), 2)
    );
    // The leader of term 4 holds the original (2,2) and replaces (3,2) with it.
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 4,
            leader: 1,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(2, 2)],
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        new_term_replaces_entry(4, entry(2, 2), 5)
    );
    raft.hard_state_saved(io(5));
    assert_eq!(raft.take_commands(), vec![]);
    // The first write's completion, delivered late, names (2,2): the log holds it again,
    // but storage then held (3,2) or nothing at index 2.
    raft.persisted(io(1), log_id(2, 2));
    assert_eq!(raft.persisted_index(), LogIndex(1));
    assert_eq!(
        raft.take_commands(),
        vec![],
        "acknowledged an entry that is not durable"
    );
    // The completion of the last append is believed.
    raft.persisted(io(7), log_id(2, 2));
    assert_eq!(raft.persisted_index(), LogIndex(2));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, append_response(4, 1, success(2)))]
    );
}

/// A save's completion releases held messages only when it covers the latest save.
#[test]
fn an_older_hard_state_completion_releases_nothing() {
    let mut raft = server(2).of(3).term(1).log(&[1]).start();
    // Term 2 is adopted (save 1); the vote in term 3 comes before it completes (save 2).
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 2,
            leader: 1,
            prev_log_id: log_id(1, 1),
            sequence: 1,
            ..Default::default()
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: 2,
            voted_for: None,
            io: 1
        })]
    );
    raft.step(
        NodeId(3),
        request_vote(Vote {
            term: 3,
            candidate: 3,
            last_log_id: log_id(1, 1),
        }),
    );
    assert_eq!(
        raft.take_commands(),
        vec![persist_hard_state(HardStateWrite {
            current_term: 3,
            voted_for: Some(3),
            io: 2
        })]
    );
    raft.hard_state_saved(io(1));
    assert_eq!(raft.take_commands(), vec![], "the vote is not durable yet");
    raft.hard_state_saved(io(2));
    let released = sends(&raft.take_commands());
    assert!(
        released.contains(&(NodeId(3), vote_response(3, true))),
        "{released:?}"
    );
}

// ----- stepping down with proposals not yet written -----------------------------------------

/// Issue 9: entries proposed since the last flush are written when the leader steps down
/// before that flush, so storage ends up with the whole log and reports it durable.
#[test]
fn proposals_pending_at_step_down_are_written_not_stranded() {
    let mut raft = leader_with_applied_no_op();
    let a = raft.propose(b"a".to_vec()).expect("leader");
    let b = raft.propose(b"b".to_vec()).expect("leader");
    // A newer term is seen before the flush that would have written them.
    raft.step(NodeId(2), append_response(3, 9, AppendOutcome::StaleTerm));
    assert_eq!(raft.role(), Role::Follower);
    let commands = raft.take_commands();
    assert_eq!(
        commands,
        vec![
            Command::AppendLog {
                entries: vec![
                    raft_types::Entry::new(Term(2), a.index, EntryPayload::command(b"a".to_vec())),
                    raft_types::Entry::new(Term(2), b.index, EntryPayload::command(b"b".to_vec())),
                ],
                io: io(3)
            },
            persist_hard_state(HardStateWrite {
                current_term: 3,
                voted_for: None,
                io: 4
            }),
        ]
    );
    assert!(!raft.storage_idle());
    complete_storage(&mut raft, &commands);
    assert!(
        raft.storage_idle(),
        "everything in the log is durable once storage answers"
    );
    assert_eq!(raft.persisted_index(), b.index);
}

/// The same when check-quorum deposes the leader.
#[test]
fn proposals_pending_at_a_check_quorum_step_down_are_written() {
    let mut raft = leader_with_applied_no_op();
    for round in 0..raft.config().election_timeout_min_ticks * 3 {
        // Proposed, then the tick that finds no majority in contact comes before any flush.
        let proposed = raft.propose(vec![round as u8]).expect("still leader");
        raft.tick();
        let commands = raft.take_commands();
        if raft.role() != Role::Leader {
            let written: Vec<LogIndex> = commands
                .iter()
                .filter_map(|command| match command {
                    Command::AppendLog { entries, .. } => entries.last().map(|entry| entry.index()),
                    _ => None,
                })
                .collect();
            assert_eq!(written, vec![proposed.index], "{commands:?}");
            complete_storage(&mut raft, &commands);
            assert!(raft.storage_idle());
            return;
        }
        complete_storage(&mut raft, &commands);
    }
    panic!("check-quorum never deposed a leader that hears nobody");
}

// ----- divergence (issue 18) ----------------------------------------------------------------

/// A follower whose log is [1, 2, 2] with everything committed, told so by the leader of
/// term 3.
fn follower_with_three_committed_entries() -> raft_core::Raft {
    let mut raft = server(2).of(3).term(3).log(&[1, 2, 2]).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            leader: 1,
            prev_log_id: log_id(2, 3),
            leader_commit: 3,
            sequence: 1,
            ..Default::default()
        }),
    );
    raft.take_commands();
    assert_eq!(raft.commit_index(), LogIndex(3));
    raft.applied(LogIndex(3));
    raft
}

/// Issue 18, the scenario as found: a leader whose log differs at an index the follower has
/// committed sends an AppendEntries whose `prev_log_id` is that index. The follower used to
/// take any `prev_log_id` at or below its commit index as matching and append after it; it
/// now checks, answers `Diverged` and stops, appending nothing.
#[test]
fn a_follower_stops_when_the_leader_contradicts_its_committed_entry() {
    let mut raft = follower_with_three_committed_entries();
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 5,
            leader: 3,
            prev_log_id: log_id(4, 3),
            entries: vec![entry(5, 4)],
            leader_commit: 4,
            sequence: 1,
        }),
    );
    let divergence = Divergence {
        index: LogIndex(3),
        local_term: Some(Term(2)),
        peer: NodeId(3),
        peer_term: Term(4),
        side: DivergenceSide::CommittedHere,
    };
    assert_eq!(
        raft.take_commands(),
        vec![
            persist_hard_state(HardStateWrite {
                current_term: 5,
                voted_for: None,
                io: 1
            }),
            send(
                3,
                append_response(
                    5,
                    1,
                    AppendOutcome::Diverged {
                        index: LogIndex(3),
                        committed_term: Term(2)
                    }
                )
            ),
            Command::Diverged(divergence.clone()),
        ]
    );
    assert_eq!(
        divergence.to_string(),
        "committed entry 3 has term 2 here but leader 3 holds term 4 there"
    );
    assert_eq!(raft.log().last_index(), LogIndex(3), "nothing appended");
    assert_eq!(raft.divergence(), Some(&divergence));
    // Stopped for good: every later input is ignored.
    raft.tick();
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 5,
            leader: 3,
            prev_log_id: log_id(4, 3),
            entries: vec![entry(5, 4)],
            leader_commit: 4,
            sequence: 2,
        }),
    );
    raft.hard_state_saved(io(1));
    assert_eq!(raft.take_commands(), vec![]);
    assert_eq!(raft.propose(b"x".to_vec()), Err(RequestError::Halted));
}

/// Issue 18: an AppendEntries that would replace a committed entry (its `prev_log_id` matches,
/// an entry after it conflicts at or below the commit index) stops the follower too.
#[test]
fn a_follower_stops_rather_than_overwrite_a_committed_entry() {
    let mut raft = follower_with_three_committed_entries();
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 4,
            leader: 3,
            prev_log_id: log_id(1, 1),
            entries: vec![entry(4, 2), entry(4, 3)],
            leader_commit: 3,
            sequence: 1,
        }),
    );
    let commands = raft.take_commands();
    assert_eq!(
        commands.last(),
        Some(&Command::Diverged(Divergence {
            index: LogIndex(2),
            local_term: Some(Term(2)),
            peer: NodeId(3),
            peer_term: Term(4),
            side: DivergenceSide::CommittedHere,
        }))
    );
    assert!(
        !commands
            .iter()
            .any(|command| matches!(command, Command::TruncateLog { .. })),
        "a committed entry was cut: {commands:?}"
    );
    assert_eq!(raft.log().term_at(LogIndex(2)), Some(Term(2)));
}

/// An uncommitted conflicting entry is still repaired as §5.3 says: only committed ones stop.
#[test]
fn a_conflict_above_the_commit_index_is_repaired_not_fatal() {
    let mut raft = follower_with_three_committed_entries();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            leader: 1,
            prev_log_id: log_id(2, 3),
            entries: vec![entry(3, 4)],
            leader_commit: 3,
            sequence: 2,
        }),
    );
    raft.take_commands();
    raft.step(
        NodeId(3),
        append_entries(Append {
            term: 4,
            leader: 3,
            prev_log_id: log_id(2, 3),
            entries: vec![entry(4, 4)],
            leader_commit: 3,
            sequence: 1,
        }),
    );
    let commands = raft.take_commands();
    assert!(raft.divergence().is_none(), "{commands:?}");
    assert_eq!(raft.log().last_log_id(), log_id(4, 4));
}

/// Issue 18: a leader told by a follower that it committed an entry the leader does not hold
/// stops: Leader Completeness rules that out for an honest leader.
#[test]
fn a_leader_stops_when_a_follower_reports_a_committed_entry_it_lacks() {
    let mut raft = leader_with_applied_no_op();
    raft.step(
        NodeId(2),
        append_response(
            2,
            3,
            AppendOutcome::Diverged {
                index: LogIndex(2),
                committed_term: Term(1),
            },
        ),
    );
    let divergence = Divergence {
        index: LogIndex(2),
        local_term: Some(Term(2)),
        peer: NodeId(2),
        peer_term: Term(1),
        side: DivergenceSide::CommittedOnFollower,
    };
    assert_eq!(
        raft.take_commands(),
        vec![Command::Diverged(divergence.clone())]
    );
    assert_eq!(
        divergence.to_string(),
        "follower 2 committed entry 2 with term 1 but this leader holds term 2 there"
    );
    assert_eq!(raft.read_index(20), Err(RequestError::Halted));
}

// ----- membership -------------------------------------------------------------------------

#[test]
fn a_new_leader_refuses_a_membership_change_until_it_has_committed_an_entry_of_its_term() {
    // Elected, its no-op durable here but acknowledged by no follower: not committed. Until it
    // is, the leader cannot know whether its predecessor left a change unfinished.
    let mut raft = elected_leader(server(1).of(3).start());
    let change = raft_types::MembershipChange::RemoveMember { id: NodeId(3) };
    assert_eq!(
        raft.change_membership(change),
        Err(RequestError::Membership(
            raft_types::MembershipChangeError::LeaderNotReady
        ))
    );
    assert!(raft
        .take_commands()
        .iter()
        .all(|command| !matches!(command, Command::AppendLog { .. })));
}
