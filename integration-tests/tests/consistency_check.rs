//! Process test of the state-machine consistency check (issue 18, acceptance 2): a follower's
//! committed entries are rewritten in place on its disk, same index and term, another
//! payload. Raft cannot see that (logs match by `LogId`); the nodes' running hashes differ,
//! and every node raises the corruption alarm soon after the follower catches up, while no
//! linearizable read ever returns the rewritten value.

use applier_actor::KvCommand;
use integration_tests::process_cluster::ProcessCluster;
use raft_types::{Entry, EntryPayload, LogId};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node-under-test");

/// Generous bounds for a machine busy with other builds and clusters.
const STARTUP: Duration = Duration::from_secs(30);

/// The bound from the diverged node's catching up to the alarm (the check runs every
/// second by default, so this leaves room for a slow machine).
const ALARM_BOUND: Duration = Duration::from_secs(10);

/// Keys `key-1..=key-40` are written; with the leader's no-op at index 1 they take indexes
/// 2..=41, so the default cadence (every 10th index) checkpoints 10, 20, 30 and 40.
const KEYS: u64 = 40;

/// These keys' values are rewritten on the follower's disk (indexes 16..=18): the hashes
/// still agree at checkpoint 10 and differ from 20 on.
const ALTERED_KEYS: [u64; 3] = [15, 16, 17];

fn key(number: u64) -> String {
    format!("key-{number}")
}

fn original_value(number: u64) -> Vec<u8> {
    format!("value-{number}").into_bytes()
}

fn altered_value(number: u64) -> Vec<u8> {
    format!("altered-{number}").into_bytes()
}

/// Opens the stopped node's write-ahead log with the storage actor's own API and rewrites the
/// `Put`s of `ALTERED_KEYS` in place: the log is truncated at the first of them and the same
/// entries appended again, same `LogId`s, the altered ones with another value. The hard state
/// (term, vote) is left as it was. Returns the rewritten entries' ids.
fn rewrite_entries_in_place(wal_directory: &Path) -> Vec<LogId> {
    let (mut store, recovered) =
        FileLogStore::open(FileLogStoreConfig::new(wal_directory)).expect("open the stopped WAL");
    let mut altered = Vec::new();
    let rewritten: Vec<Entry> = recovered
        .entries
        .iter()
        .map(|entry| {
            let EntryPayload::Command(bytes) = &entry.payload else {
                return entry.clone();
            };
            let Ok(KvCommand::Put { key: put_key, .. }) = KvCommand::decode(bytes) else {
                return entry.clone();
            };
            let Some(number) = ALTERED_KEYS.iter().find(|number| key(**number) == put_key) else {
                return entry.clone();
            };
            altered.push(entry.log_id);
            let command = KvCommand::Put {
                key: put_key,
                value: altered_value(*number),
            };
            Entry {
                log_id: entry.log_id,
                payload: EntryPayload::command(command.encode()),
            }
        })
        .collect();
    assert_eq!(
        altered.len(),
        ALTERED_KEYS.len(),
        "every altered key is in the log"
    );
    let first = altered[0].index;
    let suffix: Vec<Entry> = rewritten
        .into_iter()
        .filter(|entry| entry.log_id.index >= first)
        .collect();
    store.truncate(first).expect("truncate");
    store.append(&suffix).expect("append the rewritten entries");
    store.sync().expect("sync");
    assert_eq!(
        store.hard_state(),
        recovered.hard_state,
        "the hard state is kept"
    );
    assert_eq!(store.last_log_id(), recovered.last_log_id(), "same LogIds");
    altered
}

fn metric(cluster: &ProcessCluster, id: u64, name: &str) -> Option<u64> {
    let reply = cluster
        .try_request(id, Method::GET, "/metrics", Vec::new())
        .ok()?;
    reply.text().lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn status_field(cluster: &ProcessCluster, id: u64, field: &str) -> Option<u64> {
    cluster.status(id)?[field].as_u64()
}

fn alarms(cluster: &ProcessCluster, id: u64) -> Vec<Value> {
    cluster
        .status(id)
        .and_then(|status| status["alarms"].as_array().cloned())
        .unwrap_or_default()
}

/// Reads every altered key linearizably on every node: a `200` must carry the original
/// value; anything else is a refusal, which is allowed. Returns how many reads were refused
/// with the corruption alarm.
fn assert_no_linearizable_read_sees_an_altered_value(cluster: &ProcessCluster) -> usize {
    let mut refused_by_alarm = 0;
    for id in [1, 2, 3] {
        for number in ALTERED_KEYS {
            let Ok(reply) = cluster.try_request(
                id,
                Method::GET,
                &format!("/v1/kv/{}", key(number)),
                Vec::new(),
            ) else {
                continue;
            };
            if reply.status == 200 {
                assert_eq!(
                    reply.body,
                    original_value(number),
                    "node {id} served a linearizable read of the rewritten entry"
                );
            } else if reply.json()["error"]["code"] == "corruption_alarm" {
                refused_by_alarm += 1;
            }
        }
    }
    refused_by_alarm
}

#[test]
fn an_entry_rewritten_in_place_raises_the_corruption_alarm_on_every_node() {
    let mut cluster = ProcessCluster::start(BINARY, 3);
    let leader = cluster.wait_for_leader(&[1, 2, 3], STARTUP);
    for number in 1..=KEYS {
        let reply = cluster.put(leader, &key(number), &original_value(number));
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let commit_index = status_field(&cluster, leader, "commit_index").expect("leader status");

    // Agreeing nodes compare cleanly: every node finishes applying, then compares with both
    // peers at least once more without an alarm.
    cluster.wait_until("every node applies every write", STARTUP, |cluster| {
        [1, 2, 3].iter().all(|id| {
            status_field(cluster, *id, "last_applied").is_some_and(|index| index >= commit_index)
        })
    });
    let comparisons_before: Vec<u64> = [1, 2, 3]
        .iter()
        .map(|id| metric(&cluster, *id, "raft_consistency_comparisons_total").unwrap_or(0))
        .collect();
    cluster.wait_until("two more comparisons on every node", STARTUP, |cluster| {
        [1u64, 2, 3]
            .iter()
            .zip(&comparisons_before)
            .all(|(id, before)| {
                metric(cluster, *id, "raft_consistency_comparisons_total")
                    .is_some_and(|now| now >= before + 2)
            })
    });
    for id in [1, 2, 3] {
        assert_eq!(alarms(&cluster, id), Vec::<Value>::new(), "node {id}");
        assert_eq!(metric(&cluster, id, "raft_corruption_alarm"), Some(0));
        assert_eq!(
            metric(&cluster, id, "raft_consistency_checkpoint_index"),
            Some(40),
            "node {id}"
        );
    }

    // Stop a follower, rewrite three committed entries on its disk, start it again.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let (exit, _) = cluster
        .terminate(follower, Duration::from_secs(10))
        .expect("the follower stops on SIGTERM");
    assert_eq!(exit.code(), Some(0), "follower exit status");
    let wal_directory = cluster
        .directory()
        .join(format!("node-{follower}"))
        .join("wal");
    let altered = rewrite_entries_in_place(&wal_directory);
    println!("rewrote {altered:?} on node {follower}");
    cluster.start_node(follower);

    // The reads go with every fifth poll (about 20 times a second): often enough to catch a
    // bad read, not so often that the polling itself loads a busy machine.
    let mut refused_by_alarm = 0;
    let mut polls = 0u64;
    let mut read_now = || {
        polls += 1;
        polls % 5 == 1
    };
    cluster.wait_until("the rewritten follower catches up", STARTUP, |cluster| {
        if read_now() {
            refused_by_alarm += assert_no_linearizable_read_sees_an_altered_value(cluster);
        }
        status_field(cluster, follower, "last_applied").is_some_and(|index| index >= commit_index)
    });
    let caught_up = Instant::now();
    cluster.wait_until("the alarm on every node", ALARM_BOUND, |cluster| {
        if read_now() {
            refused_by_alarm += assert_no_linearizable_read_sees_an_altered_value(cluster);
        }
        [1, 2, 3].iter().all(|id| !alarms(cluster, *id).is_empty())
    });
    println!(
        "every node raised the alarm {:?} after node {follower} caught up",
        caught_up.elapsed()
    );

    // The rewritten data is really there: a local read (never claimed linearizable) shows it.
    let number = ALTERED_KEYS[0];
    let local = cluster.get_local(follower, &key(number));
    assert_eq!(
        (local.status, local.body),
        (200, altered_value(number)),
        "the follower applied the rewritten entry"
    );
    assert_eq!(
        cluster.get_local(leader, &key(number)).body,
        original_value(number)
    );

    for id in [1, 2, 3] {
        let alarm = alarms(&cluster, id).remove(0);
        assert_eq!(alarm["kind"], "corruption", "node {id}: {alarm}");
        // The rewrite is at 16..=18: checkpoint 10 still agrees, 20 is the first to differ.
        assert_eq!(alarm["index"], 20, "node {id}: {alarm}");
        assert_eq!(alarm["last_matching_index"], 10, "node {id}: {alarm}");
        assert_ne!(
            alarm["local_hash"], alarm["peer_hash"],
            "node {id}: {alarm}"
        );
        if id != follower {
            assert_eq!(alarm["peer_id"], follower, "node {id}: {alarm}");
        }
        let health = cluster.request(id, Method::GET, "/health", b"");
        assert_eq!(health.status, 503, "node {id}: {}", health.text());
        assert_eq!(health.json()["error"]["code"], "corruption_alarm");
        assert_eq!(health.json()["error"]["alarm"], alarm);
        assert_eq!(metric(&cluster, id, "raft_corruption_alarm"), Some(1));
        assert_eq!(
            metric(&cluster, id, "raft_corruption_alarm_index"),
            Some(20)
        );
        let write = cluster.put(id, "after-the-alarm", b"x");
        assert_eq!(
            (write.status, write.json()["error"]["code"].clone()),
            (503, Value::from("corruption_alarm")),
            "node {id}: {}",
            write.text()
        );
    }
    refused_by_alarm += assert_no_linearizable_read_sees_an_altered_value(&cluster);
    assert!(
        refused_by_alarm >= 9,
        "reads refused by the alarm: {refused_by_alarm}"
    );

    // Sticky and logged once: a few more check rounds add no line.
    std::thread::sleep(Duration::from_millis(2500));
    for id in [1, 2, 3] {
        assert_eq!(alarms(&cluster, id).len(), 1, "node {id}");
        let log = cluster.log(id);
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("corruption alarm:"))
            .collect();
        assert_eq!(lines.len(), 1, "node {id} logged:\n{}", lines.join("\n"));
        assert!(lines[0].contains("ERROR"), "{}", lines[0]);
    }
}
