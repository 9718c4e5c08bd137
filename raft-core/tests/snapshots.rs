//! Snapshots, command by command (§7, Figure 13): what a follower does with InstallSnapshot
//! chunks (stored where the stored bytes end, installed only when complete, a matching suffix
//! kept, a divergent one discarded, an old snapshot ignored, a leader change mid-transfer),
//! and what a leader does for a follower behind its compacted log (chunks in a window, resume
//! from the follower's offset, retransmission, heartbeats during the transfer).

mod common;

use common::builders::*;
use raft_core::{Command, Raft, RecoveredState, ReplicationMode};
use raft_types::{
    Bytes, EntryPayload, HardState, InstallSnapshotRequest, InstallSnapshotResponse, LogId,
    LogIndex, NodeId, RaftMessage, SnapshotMeta, SnapshotOutcome, SnapshotReceiveOutcome, Term,
};

fn snapshot_meta(term: u64, index: u64, size: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: log_id(term, index),
        membership: raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        size_bytes: size,
        file_checksum: (term * 1000 + index) as u32,
    }
}

/// An InstallSnapshot chunk of `snapshot` from `leader` in `term`.
fn chunk(
    term: u64,
    leader: u64,
    snapshot: &SnapshotMeta,
    offset: u64,
    length: u64,
    sequence: u64,
) -> RaftMessage {
    RaftMessage::InstallSnapshot(InstallSnapshotRequest {
        term: Term(term),
        leader_id: NodeId(leader),
        snapshot: snapshot.clone(),
        offset,
        data: Bytes::from(vec![7u8; length as usize]),
        sequence,
    })
}

fn snapshot_answer(term: u64, sequence: u64, outcome: SnapshotOutcome) -> RaftMessage {
    RaftMessage::InstallSnapshotResponse(InstallSnapshotResponse {
        term: Term(term),
        sequence,
        outcome,
    })
}

fn receiving(snapshot: &SnapshotMeta, next_offset: u64) -> SnapshotOutcome {
    SnapshotOutcome::Receiving {
        snapshot: snapshot.id(),
        next_offset,
    }
}

/// The `StoreSnapshotChunk` commands, as (offset, length).
fn stored_chunks(commands: &[Command]) -> Vec<(u64, u64)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::StoreSnapshotChunk { offset, data, .. } => Some((*offset, data.len() as u64)),
            _ => None,
        })
        .collect()
}

/// The `SendSnapshotChunk` commands, as (to, offset, length, sequence).
fn sent_chunks(commands: &[Command]) -> Vec<(u64, u64, u64, u64)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::SendSnapshotChunk {
                to,
                request,
                length,
            } => Some((to.0, request.offset, *length, request.sequence)),
            _ => None,
        })
        .collect()
}

/// Follower 2 of 3 in `term` with a log of `terms`, following leader 1 (a heartbeat at the
/// log's start taught it the leader).
fn follower(term: u64, terms: &[u64]) -> Raft {
    let mut raft = server(2).of(3).term(term).log(terms).start();
    raft.step(
        NodeId(1),
        append_entries(Append {
            term,
            ..Append::default()
        }),
    );
    let commands = raft.take_commands();
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft
}

#[test]
fn a_follower_with_a_divergent_suffix_discards_its_log_for_the_snapshot() {
    // Entries 3 and 4 of term 2 were never committed; the leader of term 3 has compacted a log
    // whose entry 4 is of term 3.
    let mut raft = follower(3, &[1, 1, 2, 2]);
    let snapshot = snapshot_meta(3, 4, 10);
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 6, 5));
    let commands = raft.take_commands();
    assert_eq!(stored_chunks(&commands), vec![(0, 6)]);
    assert!(
        sends(&commands).is_empty(),
        "nothing is acknowledged before it is durable"
    );
    raft.snapshot_chunk_stored(
        snapshot.id(),
        SnapshotReceiveOutcome::Stored { next_offset: 6 },
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(3, 5, receiving(&snapshot, 6)))]
    );
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 6, 4, 6));
    assert_eq!(stored_chunks(&raft.take_commands()), vec![(6, 4)]);
    assert_eq!(
        raft.commit_index(),
        LogIndex(0),
        "nothing installed before the file is complete"
    );

    raft.snapshot_chunk_stored(snapshot.id(), SnapshotReceiveOutcome::Complete);
    let commands = raft.take_commands();
    let reset_io = match &commands[0] {
        Command::ResetLog { last_log_id, io } => {
            assert_eq!(*last_log_id, snapshot.last_log_id);
            *io
        }
        other => panic!("the conflicting log is discarded first, got {other:?}"),
    };
    assert_eq!(
        commands[1..],
        [
            Command::RestoreSnapshot {
                snapshot: snapshot.clone()
            },
            send(
                1,
                snapshot_answer(
                    3,
                    6,
                    SnapshotOutcome::Installed {
                        last_log_id: snapshot.last_log_id
                    }
                )
            ),
        ]
    );
    assert_eq!(raft.commit_index(), LogIndex(4));
    assert_eq!(raft.last_log_id(), snapshot.last_log_id);
    assert!(raft.log().is_empty(), "the divergent entries are gone");
    // Storage's completion of the reset is believed; the next entry continues the snapshot.
    raft.persisted(reset_io, snapshot.last_log_id);
    raft.applied(LogIndex(4));
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            prev_log_id: log_id(3, 4),
            entries: vec![entry(3, 5)],
            leader_commit: 5,
            sequence: 7,
            ..Append::default()
        }),
    );
    let commands = raft.take_commands();
    assert!(commands.contains(&Command::AppendLog {
        entries: vec![entry(3, 5)],
        io: io(reset_io.0 + 1)
    }));
    raft.check_invariants();
}

#[test]
fn a_follower_whose_log_holds_the_snapshots_last_entry_keeps_what_follows() {
    let mut raft = follower(3, &[1, 1, 3, 3, 3]);
    let snapshot = snapshot_meta(3, 4, 8);
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 8, 9));
    raft.take_commands();
    raft.snapshot_chunk_stored(snapshot.id(), SnapshotReceiveOutcome::Complete);
    let commands = raft.take_commands();
    assert!(
        !commands
            .iter()
            .any(|command| matches!(command, Command::ResetLog { .. })),
        "a matching log is not discarded: {commands:?}"
    );
    assert!(commands.contains(&Command::RestoreSnapshot {
        snapshot: snapshot.clone()
    }));
    assert_eq!(raft.last_log_id(), log_id(3, 5), "entry 5 stays");
    assert_eq!(raft.commit_index(), LogIndex(4));
    raft.check_invariants();
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_is_ignored_even_when_it_arrives_late() {
    let mut raft = follower(3, &[1, 1, 3, 3, 3]);
    raft.step(
        NodeId(1),
        append_entries(Append {
            term: 3,
            prev_log_id: log_id(3, 5),
            leader_commit: 5,
            sequence: 3,
            ..Append::default()
        }),
    );
    raft.take_commands();
    assert_eq!(raft.commit_index(), LogIndex(5));
    // An older snapshot, from a transfer that began before the follower caught up.
    let old = snapshot_meta(3, 4, 8);
    raft.step(NodeId(1), chunk(3, 1, &old, 0, 8, 4));
    assert_eq!(
        raft.take_commands(),
        vec![send(
            1,
            snapshot_answer(
                3,
                4,
                SnapshotOutcome::NotNeeded {
                    commit_index: LogIndex(5)
                }
            )
        )]
    );
    assert_eq!(raft.receiving_snapshot(), None);
}

#[test]
fn a_chunk_is_stored_only_where_the_stored_bytes_end() {
    let mut raft = follower(3, &[1]);
    let snapshot = snapshot_meta(3, 9, 30);
    // The middle of a snapshot it holds nothing of: start from 0.
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 10, 10, 1));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(3, 1, receiving(&snapshot, 0)))]
    );
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 10, 2));
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 10, 10, 3));
    // Chunk 20..30 is lost; a later duplicate of 0..10 waits for the store in flight.
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 10, 4));
    let commands = raft.take_commands();
    assert_eq!(stored_chunks(&commands), vec![(0, 10), (10, 10)]);
    assert!(sends(&commands).is_empty());
    raft.snapshot_chunk_stored(
        snapshot.id(),
        SnapshotReceiveOutcome::Stored { next_offset: 10 },
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(3, 4, receiving(&snapshot, 10)))],
        "one answer for the chunk and its duplicate, once durable"
    );
    raft.snapshot_chunk_stored(
        snapshot.id(),
        SnapshotReceiveOutcome::Stored { next_offset: 20 },
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(3, 3, receiving(&snapshot, 20)))]
    );
    assert_eq!(raft.receiving_snapshot(), Some((&snapshot, 20)));
    // A chunk past a gap is not stored; the answer says where to resume.
    let gap = snapshot_meta(3, 9, 30);
    raft.step(NodeId(1), chunk(3, 1, &gap, 25, 5, 5));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(3, 5, receiving(&snapshot, 20)))]
    );
}

#[test]
fn a_leader_change_mid_transfer_starts_the_new_leaders_snapshot_and_ignores_the_old_one() {
    let mut raft = follower(3, &[1]);
    let first = snapshot_meta(3, 9, 20);
    raft.step(NodeId(1), chunk(3, 1, &first, 0, 10, 1));
    raft.take_commands();
    // Leader 3 is elected in term 4 and sends its own snapshot (another file).
    let second = snapshot_meta(4, 12, 20);
    raft.step(NodeId(3), chunk(4, 3, &second, 0, 10, 1));
    let commands = raft.take_commands();
    assert_eq!(stored_chunks(&commands), vec![(0, 10)]);
    // The new term is made durable before anything is said in it.
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    assert_eq!(raft.receiving_snapshot(), Some((&second, 0)));
    // The old store completing, and the old leader's late chunk, change nothing.
    raft.snapshot_chunk_stored(
        first.id(),
        SnapshotReceiveOutcome::Stored { next_offset: 10 },
    );
    assert!(raft.take_commands().is_empty());
    raft.step(NodeId(1), chunk(3, 1, &first, 10, 10, 2));
    assert_eq!(
        raft.take_commands(),
        vec![send(1, snapshot_answer(4, 2, SnapshotOutcome::StaleTerm))]
    );
    assert_eq!(raft.commit_index(), LogIndex(0));
    raft.snapshot_chunk_stored(
        second.id(),
        SnapshotReceiveOutcome::Stored { next_offset: 10 },
    );
    raft.step(NodeId(3), chunk(4, 3, &second, 10, 10, 2));
    raft.take_commands();
    raft.snapshot_chunk_stored(second.id(), SnapshotReceiveOutcome::Complete);
    let commands = raft.take_commands();
    assert!(commands.contains(&Command::RestoreSnapshot {
        snapshot: second.clone()
    }));
    assert_eq!(raft.commit_index(), LogIndex(12));
    raft.check_invariants();
}

#[test]
fn a_rejected_file_is_reported_and_the_transfer_starts_over() {
    let mut raft = follower(3, &[1]);
    let snapshot = snapshot_meta(3, 9, 10);
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 10, 1));
    raft.take_commands();
    raft.snapshot_chunk_stored(
        snapshot.id(),
        SnapshotReceiveOutcome::Rejected {
            reason: "checksum".to_string(),
        },
    );
    assert_eq!(
        raft.take_commands(),
        vec![send(
            1,
            snapshot_answer(
                3,
                1,
                SnapshotOutcome::Rejected {
                    reason: "checksum".to_string()
                }
            )
        )]
    );
    assert_eq!(raft.receiving_snapshot(), None);
    raft.step(NodeId(1), chunk(3, 1, &snapshot, 0, 10, 2));
    assert_eq!(stored_chunks(&raft.take_commands()), vec![(0, 10)]);
}

/// Leader 1 of 3 in term 1 with `count` committed commands, a snapshot of all of them, and
/// follower 2 (only) caught up; follower 3 never answered, so the entry before its next index
/// is purged and it is being sent the snapshot. Returns the commands of the flush after the
/// snapshot (the first chunks among them).
fn leader_with_snapshot(
    count: u64,
    trailing: u64,
    chunk_bytes: u64,
    window: usize,
) -> (Raft, Vec<Command>) {
    let mut config = config(1, 3);
    config.snapshot_trailing_entries = trailing;
    config.snapshot_chunk_bytes = chunk_bytes;
    config.snapshot_max_inflight_chunks = window;
    config.snapshot_chunk_timeout_ticks = 6;
    let raft = Raft::new(config, RecoveredState::default()).expect("valid config");
    let mut raft = elected_leader(raft);
    for _ in 0..count {
        raft.propose(b"x".to_vec()).expect("leader");
    }
    let commands = raft.take_commands();
    complete_storage(&mut raft, &commands);
    let last = raft.last_log_id().index;
    raft.step(NodeId(2), append_response(1, 1, success(last.0)));
    raft.take_commands();
    assert_eq!(raft.commit_index(), last);
    raft.applied(last);
    raft.snapshot_taken(SnapshotMeta {
        last_log_id: raft.last_log_id(),
        membership: raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        size_bytes: 100,
        file_checksum: 42,
    });
    let commands = raft.take_commands();
    assert!(commands.contains(&Command::PurgeLog {
        before: LogIndex(last.0 - trailing + 1)
    }));
    (raft, commands)
}

#[test]
fn a_leader_sends_a_snapshot_in_a_window_of_chunks_and_keeps_heartbeating() {
    let (mut raft, commands) = leader_with_snapshot(10, 2, 30, 2);
    let snapshot = raft.snapshot().expect("taken").clone();
    assert_eq!(raft.log().last_purged_log_id(), log_id(1, 9));
    let chunks = sent_chunks(&commands);
    assert_eq!(
        chunks
            .iter()
            .map(|(to, offset, length, _)| (*to, *offset, *length))
            .collect::<Vec<_>>(),
        vec![(3, 0, 30), (3, 30, 30)],
        "two chunks: the window"
    );
    // A heartbeat round: follower 3 gets an AppendEntries after the empty prefix, follower 2
    // an ordinary one.
    for _ in 0..3 {
        raft.tick();
    }
    let commands = raft.take_commands();
    let heartbeats = append_requests(&commands);
    let to_three: Vec<_> = heartbeats.iter().filter(|(to, _)| to.0 == 3).collect();
    assert_eq!(to_three.len(), 1);
    assert_eq!(to_three[0].1.prev_log_id, LogId::ZERO);
    assert!(to_three[0].1.entries.is_empty());
    assert!(sent_chunks(&commands).is_empty(), "the window is full");
    // The follower stored the first chunk: one more goes out.
    let first_sequence = chunks[0].3;
    raft.step(
        NodeId(3),
        snapshot_answer(1, first_sequence, receiving(&snapshot, 30)),
    );
    let commands = raft.take_commands();
    assert_eq!(
        sent_chunks(&commands)
            .iter()
            .map(|(_, offset, length, _)| (*offset, *length))
            .collect::<Vec<_>>(),
        vec![(60, 30)]
    );
    // Its heartbeat answer (match 0) changes nothing.
    raft.step(
        NodeId(3),
        append_response(1, to_three[0].1.sequence, success(0)),
    );
    assert!(sent_chunks(&raft.take_commands()).is_empty());
    // Installed: the follower continues with the entries after the snapshot.
    raft.step(
        NodeId(3),
        snapshot_answer(
            1,
            99,
            SnapshotOutcome::Installed {
                last_log_id: snapshot.last_log_id,
            },
        ),
    );
    let commands = raft.take_commands();
    assert!(
        append_requests(&commands).is_empty(),
        "nothing after the snapshot yet"
    );
    raft.propose(b"y".to_vec()).expect("leader");
    let commands = raft.take_commands();
    let appends: Vec<_> = append_requests(&commands)
        .into_iter()
        .filter(|(to, _)| to.0 == 3)
        .collect();
    assert_eq!(appends.len(), 1);
    assert_eq!(appends[0].1.prev_log_id, snapshot.last_log_id);
    raft.check_invariants();
}

#[test]
fn a_transfer_resumes_from_the_followers_offset_and_resends_after_a_gap_or_a_timeout() {
    let (mut raft, commands) = leader_with_snapshot(10, 0, 10, 3);
    let snapshot = raft.snapshot().expect("taken").clone();
    let chunks = sent_chunks(&commands);
    assert_eq!(chunks.len(), 3);
    // The follower already held 70 bytes of this very snapshot from a broken transfer.
    raft.step(
        NodeId(3),
        snapshot_answer(1, chunks[0].3, receiving(&snapshot, 70)),
    );
    let resumed = sent_chunks(&raft.take_commands());
    assert_eq!(
        resumed
            .iter()
            .map(|(_, offset, _, _)| *offset)
            .collect::<Vec<_>>(),
        vec![70, 80, 90],
        "resumed from the follower's offset, not from zero"
    );
    // The chunk at 70 is lost: the answer to the one at 80 says 70 is where it stands.
    raft.step(
        NodeId(3),
        snapshot_answer(1, resumed[1].3, receiving(&snapshot, 70)),
    );
    let resent = sent_chunks(&raft.take_commands());
    assert_eq!(
        resent
            .iter()
            .map(|(_, offset, _, _)| *offset)
            .collect::<Vec<_>>(),
        vec![70, 80, 90]
    );
    // Every answer lost: after the timeout the window is sent again.
    for _ in 0..6 {
        raft.tick();
    }
    let retried = sent_chunks(&raft.take_commands());
    assert_eq!(
        retried
            .iter()
            .map(|(_, offset, _, _)| *offset)
            .collect::<Vec<_>>(),
        vec![70, 80, 90]
    );
}

#[test]
fn entries_a_follower_being_sent_a_snapshot_needs_next_are_not_purged() {
    let (mut raft, commands) = leader_with_snapshot(10, 0, 1000, 1);
    let first = raft.snapshot().expect("taken").clone();
    assert_eq!(sent_chunks(&commands).len(), 1);
    // Ten more entries commit and a newer snapshot is taken while follower 3 receives the old
    // one: the entries after the old snapshot stay, or follower 3 would need another.
    for _ in 0..10 {
        raft.propose(b"z".to_vec()).expect("leader");
    }
    let commands = raft.take_commands();
    complete_storage(&mut raft, &commands);
    let last = raft.last_log_id();
    raft.step(NodeId(2), append_response(1, 50, success(last.index.0)));
    raft.take_commands();
    raft.applied(last.index);
    raft.snapshot_taken(SnapshotMeta {
        last_log_id: last,
        membership: first.membership.clone(),
        size_bytes: 200,
        file_checksum: 43,
    });
    let commands = raft.take_commands();
    assert!(
        !commands
            .iter()
            .any(|command| matches!(command, Command::PurgeLog { .. })),
        "nothing after {} may go: {commands:?}",
        first.last_log_id
    );
    assert_eq!(raft.log().last_purged_log_id(), first.last_log_id);
    raft.step(
        NodeId(3),
        snapshot_answer(
            1,
            99,
            SnapshotOutcome::Installed {
                last_log_id: first.last_log_id,
            },
        ),
    );
    // Follower 3 now streams the entries after the old snapshot, which are still here.
    let commands = raft.take_commands();
    let appends = append_requests(&commands);
    let to_three: Vec<_> = appends.iter().filter(|(to, _)| to.0 == 3).collect();
    assert_eq!(to_three.len(), 1);
    assert_eq!(to_three[0].1.prev_log_id, first.last_log_id);
    let mode = raft
        .follower_progress(NodeId(3))
        .map(|progress| &progress.mode);
    assert!(matches!(mode, Some(ReplicationMode::Replicate { .. })));
    // Once it has them, the next snapshot compacts the log.
    let sequence = to_three[0].1.sequence;
    raft.step(
        NodeId(3),
        append_response(1, sequence, success(last.index.0)),
    );
    raft.take_commands();
    raft.propose(b"w".to_vec()).expect("leader");
    let commands = raft.take_commands();
    complete_storage(&mut raft, &commands);
    let newest = raft.last_log_id();
    raft.step(NodeId(2), append_response(1, 60, success(newest.index.0)));
    raft.take_commands();
    raft.applied(newest.index);
    raft.snapshot_taken(SnapshotMeta {
        last_log_id: newest,
        membership: first.membership.clone(),
        size_bytes: 200,
        file_checksum: 44,
    });
    assert!(raft.take_commands().contains(&Command::PurgeLog {
        before: newest.index.next()
    }));
}

#[test]
fn a_restarted_server_resumes_after_its_snapshot() {
    let snapshot = snapshot_meta(2, 6, 10);
    let raft = Raft::new(
        config(2, 3),
        RecoveredState {
            hard_state: HardState::new(Term(2), None),
            snapshot: Some(snapshot.clone()),
            entries: vec![raft_types::Entry::new(
                Term(2),
                LogIndex(7),
                EntryPayload::Blank,
            )],
        },
    )
    .expect("valid config");
    assert_eq!(raft.commit_index(), LogIndex(6));
    assert_eq!(raft.last_applied(), LogIndex(6));
    assert_eq!(raft.log().last_purged_log_id(), snapshot.last_log_id);
    assert_eq!(raft.last_log_id(), log_id(2, 7));
    assert_eq!(raft.snapshot(), Some(&snapshot));
    raft.check_invariants();
}

#[test]
fn a_transfer_that_got_nothing_across_moves_to_a_newer_snapshot_but_one_under_way_does_not() {
    let (mut raft, commands) = leader_with_snapshot(10, 0, 40, 2);
    let first = raft.snapshot().expect("taken").clone();
    let first_chunks = sent_chunks(&commands);
    assert_eq!(first_chunks.len(), 2);
    // More entries commit (follower 2 keeps up) and a newer snapshot is taken while nothing
    // of the first reached follower 3.
    let newer = take_another_snapshot(&mut raft, 5, 200, 43);
    let commands = raft.take_commands();
    let chunks: Vec<_> = commands
        .iter()
        .filter_map(|command| match command {
            Command::SendSnapshotChunk { request, .. } => {
                Some((request.snapshot.id(), request.offset))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        chunks,
        vec![(newer.id(), 0), (newer.id(), 40)],
        "the transfer starts over with the newer snapshot"
    );
    // An answer about the first snapshot changes nothing now.
    raft.step(
        NodeId(3),
        snapshot_answer(1, first_chunks[0].3, receiving(&first, 40)),
    );
    assert!(sent_chunks(&raft.take_commands()).is_empty());
    // Once bytes of the newer one are across, a still newer snapshot does not interrupt it.
    let sequence = match raft
        .follower_progress(NodeId(3))
        .map(|progress| &progress.mode)
    {
        Some(ReplicationMode::Snapshot(transfer)) => transfer.inflight[0].sequence,
        other => panic!("follower 3 is being sent a snapshot, not {other:?}"),
    };
    raft.step(
        NodeId(3),
        snapshot_answer(1, sequence, receiving(&newer, 40)),
    );
    raft.take_commands();
    take_another_snapshot(&mut raft, 5, 300, 44);
    let commands = raft.take_commands();
    assert!(commands.iter().all(|command| match command {
        Command::SendSnapshotChunk { request, .. } => request.snapshot.id() == newer.id(),
        _ => true,
    }));
}

/// Commits `count` more commands through follower 2 and reports a snapshot of everything.
fn take_another_snapshot(raft: &mut Raft, count: u64, size: u64, checksum: u32) -> SnapshotMeta {
    for _ in 0..count {
        raft.propose(b"more".to_vec()).expect("leader");
    }
    let commands = raft.take_commands();
    complete_storage(raft, &commands);
    let last = raft.last_log_id();
    raft.step(
        NodeId(2),
        append_response(1, 1000 + last.index.0, success(last.index.0)),
    );
    raft.take_commands();
    raft.applied(last.index);
    let snapshot = SnapshotMeta {
        last_log_id: last,
        membership: raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        size_bytes: size,
        file_checksum: checksum,
    };
    raft.snapshot_taken(snapshot.clone());
    snapshot
}
