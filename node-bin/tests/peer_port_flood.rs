//! Issue 16, acceptance 3: 1,000 idle connections to the leader's peer port do not stop a
//! 3-node cluster of real processes from committing. The test prints the commit rate (one
//! client writing sequentially) without and with the flood; the flood keeps 1,000 idle
//! connections open from another loopback address (127.0.0.2), re-opening each one the node
//! closes, while a follower is killed and restarted, so a real peer has to get through the
//! handshake during the flood. Only progress is asserted, never a speed. It runs twice: over
//! plaintext and with mutual TLS on the peer port (where an idle connection also holds a TLS
//! acceptor waiting for its ClientHello).

#[path = "support/ports.rs"]
mod ports;
#[path = "support/secure_cluster.rs"]
mod secure_cluster;

use secure_cluster::{exclusive, Options, SecureCluster, PATIENCE};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::wait::poll_real_time;

const IDLE_CONNECTIONS: usize = 1000;
const MEASURE_FOR: Duration = Duration::from_secs(3);

/// Writes sequentially for `MEASURE_FOR`; returns (acknowledged writes, per second).
fn commit_rate(cluster: &SecureCluster, prefix: &str) -> (u64, f64) {
    let client = cluster.client(None);
    let started = Instant::now();
    let mut committed = 0u64;
    while started.elapsed() < MEASURE_FOR {
        if client.put(&format!("{prefix}-{committed}"), b"v").is_ok() {
            committed += 1;
        }
    }
    (
        committed,
        committed as f64 / started.elapsed().as_secs_f64(),
    )
}

/// An idle connection from 127.0.0.2 (another "host" than the nodes on 127.0.0.1).
fn idle_connection(target: SocketAddr) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let source: SocketAddr = "127.0.0.2:0".parse().expect("literal");
    socket.bind(&source.into()).ok()?;
    socket
        .connect_timeout(&target.into(), Duration::from_secs(2))
        .ok()?;
    let stream: TcpStream = socket.into();
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Keeps `IDLE_CONNECTIONS` idle connections open to `target` until `stop`; counts how many
/// the node closed (and were opened again).
fn flood(target: SocketAddr, stop: Arc<AtomicBool>, reopened: Arc<AtomicU64>) {
    let mut connections: Vec<Option<TcpStream>> = (0..IDLE_CONNECTIONS)
        .map(|_| idle_connection(target))
        .collect();
    let mut probe = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        for slot in connections.iter_mut() {
            let closed = match slot {
                None => true,
                // 0 bytes: closed; any bytes: the node answered something, also the end.
                Some(stream) => match stream.read(&mut probe) {
                    Ok(_) => true,
                    Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
                },
            };
            if closed {
                *slot = idle_connection(target);
                reopened.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_thousand_idle_peer_connections_do_not_stop_commits() {
    flood_run(false);
}

#[test]
fn a_thousand_idle_peer_connections_do_not_stop_commits_over_tls() {
    flood_run(true);
}

fn flood_run(tls: bool) {
    let _exclusive = exclusive();
    let root = tempfile::tempdir().expect("temp dir");
    let options = Options {
        tls,
        ..Options::default()
    };
    let mut cluster = SecureCluster::configure(root.path(), "flood", options);
    cluster.start();
    let leader = cluster.wait_for_leader(None);
    let (without, rate_without) = commit_rate(&cluster, "before");
    assert!(without > 0, "the cluster commits before the flood");

    let target: SocketAddr = cluster.members[leader as usize - 1]
        .peer_addr
        .parse()
        .expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, reopened) = (stop.clone(), reopened.clone());
        std::thread::spawn(move || flood(target, stop, reopened))
    };
    // Let the flood fill the leader's pending slots, then restart a follower through it.
    std::thread::sleep(Duration::from_secs(1));
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.stop_node(follower);
    cluster.start_node(follower);
    let (with, rate_with) = commit_rate(&cluster, "during");
    // The restarted follower catches up with the leader during the flood.
    let client = cluster.client(None);
    let caught_up = poll_real_time(PATIENCE, || {
        let leader_commit =
            client.status_of(&cluster.url(leader)).ok()?["commit_index"].as_u64()?;
        let follower_commit =
            client.status_of(&cluster.url(follower)).ok()?["commit_index"].as_u64()?;
        (follower_commit >= leader_commit).then_some(follower_commit)
    });
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flood thread");
    println!(
        "[{}] commit rate without idle connections: {rate_without:.0}/s ({without} writes in {MEASURE_FOR:?}); \
         with {IDLE_CONNECTIONS} idle connections to the leader's peer port: {rate_with:.0}/s \
         ({with} writes); idle connections the leader closed and the flood re-opened: {}",
        if tls { "mutual TLS" } else { "plaintext" },
        reopened.load(Ordering::Relaxed)
    );
    if with == 0 || caught_up.is_none() {
        cluster.print_logs();
    }
    assert!(with > 0, "the cluster commits during the flood");
    assert!(
        caught_up.is_some(),
        "the restarted follower caught up during the flood"
    );
}
