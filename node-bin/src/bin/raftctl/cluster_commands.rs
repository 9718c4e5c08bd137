//! The commands about the cluster rather than its keys: `status` and `endpoint health`
//! (`member ...` is in `member_commands.rs`). Each asks every member once (no failover: the answer is about that
//! member), starting from the endpoints given and adding every other member the first
//! answering node names, so a cluster of five shows five rows even when raftctl knows three.

use super::{print_json, Output, EXIT_DEGRADED, EXIT_UNAVAILABLE};
use node_bin::raft_client::{EndpointHealth, RaftClient};
use serde_json::{json, Value};

/// The endpoints given, then every other member the first answering node knows of (a cluster
/// of five shows five rows even when raftctl was told of three), with that node's status.
fn all_members(client: &RaftClient) -> (Vec<String>, Option<Value>) {
    let mut endpoints: Vec<String> = client.endpoints().to_vec();
    let known = endpoints
        .iter()
        .find_map(|endpoint| client.status_of(endpoint).ok());
    if let Some(known) = &known {
        for address in known["member_client_addrs"]
            .as_object()
            .into_iter()
            .flat_map(|members| members.values())
            .filter_map(|address| address.as_str())
        {
            let endpoint = client.normalize(address);
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
    }
    (endpoints, known)
}

/// 0 when every member answered, 3 when none did, 8 in between.
fn answered_code(answered: usize, total: usize) -> u8 {
    match answered {
        0 => EXIT_UNAVAILABLE,
        answered if answered < total => EXIT_DEGRADED,
        _ => 0,
    }
}

pub(crate) fn status(client: &RaftClient, output: Output) -> u8 {
    let (endpoints, _) = all_members(client);
    let statuses: Vec<(String, Result<Value, String>)> = endpoints
        .iter()
        .map(|endpoint| (endpoint.clone(), client.status_of(endpoint)))
        .collect();
    let reachable = statuses.iter().filter(|(_, status)| status.is_ok()).count();
    match output {
        Output::Json => {
            let rows: Vec<Value> = statuses
                .iter()
                .map(|(endpoint, status)| match status {
                    Ok(status) => json!({ "endpoint": endpoint, "status": status }),
                    Err(error) => json!({ "endpoint": endpoint, "error": error }),
                })
                .collect();
            print_json(&Value::Array(rows));
        }
        Output::Table => print_status_table(&statuses),
    }
    answered_code(reachable, statuses.len())
}

fn print_status_table(statuses: &[(String, Result<Value, String>)]) {
    println!(
        "{:<28} {:>4} {:<9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "endpoint", "id", "role", "term", "leader", "commit", "applied", "last_log", "snapshot"
    );
    for (endpoint, status) in statuses {
        match status {
            Ok(status) => {
                let field = |name: &str| status[name].to_string().trim_matches('"').to_string();
                println!(
                    "{:<28} {:>4} {:<9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
                    endpoint,
                    field("id"),
                    field("role"),
                    field("term"),
                    field("leader_id"),
                    field("commit_index"),
                    field("last_applied"),
                    field("last_log_index"),
                    field("snapshot_index")
                );
                // A raised alarm is the one thing an operator must not miss in this table.
                for alarm in status["alarms"].as_array().into_iter().flatten() {
                    println!(
                        "{:<28} ALARM {}: at index {} this node's hash {} differs from node {}'s {}",
                        "",
                        alarm["kind"].as_str().unwrap_or("?"),
                        alarm["index"],
                        alarm["local_hash"].as_str().unwrap_or("?"),
                        alarm["peer_id"],
                        alarm["peer_hash"].as_str().unwrap_or("?"),
                    );
                }
            }
            Err(error) => println!("{endpoint:<28} unreachable: {error}"),
        }
    }
}

pub(crate) fn endpoint_health(client: &RaftClient, output: Output) -> u8 {
    let (endpoints, _) = all_members(client);
    let checks: Vec<EndpointHealth> = endpoints
        .iter()
        .map(|endpoint| client.health_of(endpoint))
        .collect();
    let healthy = checks.iter().filter(|check| check.healthy).count();
    match output {
        Output::Json => {
            let rows: Vec<Value> = checks
                .iter()
                .map(|check| {
                    json!({
                        "endpoint": check.endpoint,
                        "healthy": check.healthy,
                        "took_ms": check.took.as_secs_f64() * 1000.0,
                        "error": check.error,
                    })
                })
                .collect();
            print_json(&Value::Array(rows));
        }
        Output::Table => {
            for check in &checks {
                let took = format!("{:.1}ms", check.took.as_secs_f64() * 1000.0);
                match &check.error {
                    None => println!("{} is healthy: took {took}", check.endpoint),
                    Some(error) => {
                        println!("{} is unhealthy: took {took}: {error}", check.endpoint)
                    }
                }
            }
        }
    }
    answered_code(healthy, checks.len())
}
