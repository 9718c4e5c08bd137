//! The membership admin commands: `member list | add | promote | remove` and `leader
//! transfer`, over the admin API (docs/API.md). Each goes through `RaftClient::call`, so it
//! follows leader hints and fails over like a write; the node asked forwards to the leader.
//!
//! Exit codes follow the rest of raftctl (3 unavailable, 4 outcome unknown, 5 malformed, 6
//! unexpected), plus [`EXIT_CHANGE_REFUSED`] for a request the cluster understood and refused
//! (`409`, `412`, and the admin `404`s): nothing was done, and retrying the same request will
//! not help until the cluster changes.

use super::{print_json, report, Output, EXIT_UNAVAILABLE};
use node_bin::raft_client::{ClientFailure, Method, RaftClient, Reply};
use serde_json::{json, Value};

/// A membership change or transfer the cluster refused (`change_in_progress`, `id_reused`,
/// `no_such_member`, `already_voter`, `last_voter`, `learner_not_ready`,
/// `not_enough_reachable_voters`, `transfer_in_progress`, `not_a_voter`,
/// `no_transfer_target`): nothing was done.
pub(crate) const EXIT_CHANGE_REFUSED: u8 = 9;

/// The admin codes that mean "refused, nothing done" (the rest keep raftctl's usual mapping).
const REFUSAL_CODES: &[&str] = &[
    "change_in_progress",
    "id_reused",
    "no_such_member",
    "already_voter",
    "last_voter",
    "learner_not_ready",
    "not_enough_reachable_voters",
    "transfer_in_progress",
    "not_a_voter",
    "no_transfer_target",
];

/// Like `report`, with the admin refusals mapped to [`EXIT_CHANGE_REFUSED`].
fn report_admin(result: Result<Reply, ClientFailure>, on_success: impl FnOnce(&Reply) -> u8) -> u8 {
    if let Ok(reply) = &result {
        let code = reply.error_code();
        if matches!(reply.status, 404 | 409 | 412) && REFUSAL_CODES.contains(&code.as_str()) {
            eprintln!(
                "raftctl: {} refused ({} {code}): {}",
                reply.endpoint,
                reply.status,
                reply.json()["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
            );
            return EXIT_CHANGE_REFUSED;
        }
    }
    report(result, on_success)
}

/// The role column: who leads, who votes, who only learns, and which half of a joint
/// configuration a voter is in.
fn role(member: &Value) -> String {
    let base = if member["leader"] == true {
        "leader"
    } else if member["voter"] == true {
        "voter"
    } else {
        "learner"
    };
    match member["joint"].as_str() {
        Some(half) => format!("{base} (joint: {half})"),
        None => base.to_string(),
    }
}

pub(crate) fn member_list(client: &RaftClient, output: Output) -> u8 {
    let result = client.call(Method::Get, "/v1/members", Vec::new());
    report(result, |reply| {
        let mut body = reply.json();
        let Some(members) = body["members"].as_array_mut() else {
            eprintln!(
                "raftctl: {} answered without members: {}",
                reply.endpoint,
                reply.text()
            );
            return EXIT_UNAVAILABLE;
        };
        for member in members.iter_mut() {
            member["role"] = json!(role(member));
            // The fields `member list -w json` had before the admin API, kept for scripts.
            member["is_leader"] = json!(member["leader"] == true);
            member["client_url"] = json!(member["client_addr"]
                .as_str()
                .map(|address| client.normalize(address)));
        }
        match output {
            Output::Json => print_json(&body),
            Output::Table => print_member_table(&body),
        }
        0
    })
}

fn print_member_table(body: &Value) {
    let joint = if body["joint"] == true { ", joint" } else { "" };
    println!("config_index={}{joint}", body["config_index"]);
    println!(
        "{:>4} {:<24} {:<21} {:<21} {:>8} {:>6} {:>12}",
        "id", "role", "peer_addr", "client_addr", "match", "lag", "last_contact"
    );
    let text = |value: &Value| match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    for member in body["members"].as_array().into_iter().flatten() {
        let contact = match member["last_contact_ms"].as_u64() {
            Some(ms) => format!("{ms}ms"),
            None => "never".to_string(),
        };
        println!(
            "{:>4} {:<24} {:<21} {:<21} {:>8} {:>6} {:>12}",
            member["id"].to_string(),
            member["role"].as_str().unwrap_or("?"),
            text(&member["peer_addr"]),
            text(&member["client_addr"]),
            text(&member["match_index"]),
            text(&member["lag"]),
            contact
        );
    }
}

fn print_index(output: Output, reply: &Reply, what: &str) {
    match output {
        Output::Json => print_json(&reply.json()),
        Output::Table => println!("{what} index={}", reply.json()["index"]),
    }
}

pub(crate) fn member_add(
    client: &RaftClient,
    output: Output,
    id: u64,
    peer_addr: &str,
    client_addr: &str,
) -> u8 {
    let body = json!({ "id": id, "peer_addr": peer_addr, "client_addr": client_addr });
    let result = client.call(Method::Post, "/v1/members", body.to_string().into_bytes());
    report_admin(result, |reply| {
        print_index(output, reply, &format!("added learner {id}"));
        0
    })
}

pub(crate) fn member_promote(client: &RaftClient, output: Output, id: u64) -> u8 {
    let result = client.call(
        Method::Post,
        &format!("/v1/members/{id}/promote"),
        Vec::new(),
    );
    report_admin(result, |reply| {
        print_index(output, reply, &format!("promoted {id}"));
        0
    })
}

pub(crate) fn member_remove(client: &RaftClient, output: Output, id: u64) -> u8 {
    let result = client.call(Method::Delete, &format!("/v1/members/{id}"), Vec::new());
    report_admin(result, |reply| {
        print_index(output, reply, &format!("removed {id}"));
        0
    })
}

pub(crate) fn leader_transfer(client: &RaftClient, output: Output, to: Option<u64>) -> u8 {
    let body = match to {
        Some(id) => json!({ "to": id }),
        None => json!({}),
    };
    let result = client.call(
        Method::Post,
        "/v1/leader/transfer",
        body.to_string().into_bytes(),
    );
    report_admin(result, |reply| {
        match output {
            Output::Json => print_json(&reply.json()),
            Output::Table => println!("leader is now {}", reply.json()["leader_id"]),
        }
        0
    })
}
