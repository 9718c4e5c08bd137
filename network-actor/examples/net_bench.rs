//! Throughput of two `TcpNetwork` actors on loopback, beside a plain tokio TCP stream moving
//! frames of the same sizes in the same run.
//!
//! `cargo run --release -p network-actor --example net_bench [100|65536]`
//!
//! Each case sends `count` messages from node 1 to node 2, each on its own arbiter (thread),
//! with at most `window` messages outstanding so the per-peer queue never overflows (a drop
//! would make the figure meaningless; the run reports any). The raw baseline writes the same
//! pre-encoded frames through a `BufWriter` and reads them back with a `BufReader`: no actors,
//! no encoding, no decoding. A second baseline does the same but encodes every message on the
//! writer and decodes every frame on the reader, as any transport of this wire format must:
//! it separates what the actors cost from what the encoding costs. Figures are per second of
//! wall time from the first send to the last receipt, and MB/s counts frame bytes (length
//! prefix included). Each figure is the best of three runs.

use actix::{Actor, Arbiter, Context, Handler};
use network_actor::frame::append_frame;
use network_actor::{NetworkConfig, TcpNetwork};
use raft_proto::network::{GetNetworkStats, PeerEvent, ReceivedMessage, SendMessage};
use raft_proto::ports::NetworkPorts;
use raft_types::{
    AppendEntriesRequest, Entry, EntryPayload, LogId, LogIndex, NodeId, RaftMessage, Term,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

/// Counts what node 2 receives; stands in for its consensus actor.
struct Counter {
    received: Arc<AtomicU64>,
    connected: Arc<AtomicBool>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<ReceivedMessage> for Counter {
    type Result = ();
    fn handle(&mut self, _: ReceivedMessage, _: &mut Context<Self>) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<PeerEvent> for Counter {
    type Result = ();
    fn handle(&mut self, event: PeerEvent, _: &mut Context<Self>) {
        if let PeerEvent::Connected { .. } = event {
            self.connected.store(true, Ordering::Relaxed);
        }
    }
}

/// An AppendEntries whose frame is about `frame_bytes` long: a heartbeat when that is small,
/// otherwise one entry carrying the rest as command bytes.
fn message_of_frame_size(frame_bytes: usize) -> (RaftMessage, usize) {
    let build = |command_bytes: Option<usize>| {
        RaftMessage::AppendEntries(AppendEntriesRequest {
            term: Term(3),
            leader_id: NodeId(1),
            prev_log_id: LogId::new(Term(3), LogIndex(1_000_000)),
            entries: command_bytes
                .map(|bytes| {
                    vec![Entry::new(
                        Term(3),
                        LogIndex(1_000_001),
                        EntryPayload::Command(vec![0x2a; bytes]),
                    )]
                })
                .unwrap_or_default(),
            leader_commit: LogIndex(999_999),
            sequence: 123_456,
        })
    };
    let size = |message: &RaftMessage| {
        let mut buffer = Vec::new();
        append_frame(&mut buffer, message, u32::MAX).expect("benchmark messages encode")
    };
    let heartbeat = build(None);
    let heartbeat_bytes = size(&heartbeat);
    if frame_bytes <= heartbeat_bytes + 64 {
        return (heartbeat, heartbeat_bytes);
    }
    let overhead = size(&build(Some(0)));
    let mut command_bytes = frame_bytes.saturating_sub(overhead);
    // The bin-less encoding of `Vec<u8>` spends one byte per value below 0x80 (the bytes used
    // here), plus a length header that grows with the length: step down to the exact size.
    loop {
        let excess = size(&build(Some(command_bytes))).saturating_sub(frame_bytes);
        if excess == 0 {
            break;
        }
        command_bytes -= excess;
    }
    let message = build(Some(command_bytes));
    let bytes = size(&message);
    (message, bytes)
}

struct Figures {
    messages_per_second: f64,
    megabytes_per_second: f64,
}

impl Figures {
    fn zero() -> Figures {
        Figures {
            messages_per_second: 0.0,
            megabytes_per_second: 0.0,
        }
    }

    fn best(self, other: Figures) -> Figures {
        if other.messages_per_second > self.messages_per_second {
            other
        } else {
            self
        }
    }

    fn of(count: u64, frame_bytes: usize, elapsed: Duration) -> Figures {
        let seconds = elapsed.as_secs_f64();
        Figures {
            messages_per_second: count as f64 / seconds,
            megabytes_per_second: (count as f64 * frame_bytes as f64) / seconds / 1e6,
        }
    }
}

async fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn bench_network_actors(message: &RaftMessage, count: u64, window: u64) -> (Figures, u64) {
    let listener_1 = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback bindable");
    let listener_2 = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback bindable");
    for listener in [&listener_1, &listener_2] {
        listener.set_nonblocking(true).expect("socket option");
    }
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), listener_2.local_addr().expect("bound")),
    ]);
    let received = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut networks = Vec::new();
    for (node, listener) in [(1u64, listener_1), (2, listener_2)] {
        let mut config =
            NetworkConfig::new(NodeId(node), "bench", peers[&NodeId(node)], peers.clone());
        config.peer_queue_capacity = (window * 2) as usize;
        let arbiter = Arbiter::new();
        let received = received.clone();
        let connected = connected.clone();
        let network = TcpNetwork::start_in_arbiter(&arbiter.handle(), move |_| {
            let counter = Counter {
                received,
                connected,
            }
            .start();
            let ports = NetworkPorts {
                received: counter.clone().recipient(),
                peer_events: counter.recipient(),
            };
            let listener =
                tokio::net::TcpListener::from_std(listener).expect("inside the arbiter runtime");
            TcpNetwork::with_listener(config, listener, ports).expect("valid configuration")
        });
        networks.push(network);
        handles.push(arbiter);
    }
    while !connected.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sender = networks[0].clone();
    let started = Instant::now();
    // The producer runs on node 1's thread, as a consensus actor shares its node's thread.
    let driver_sender = sender.clone();
    let driver_received = received.clone();
    let driver_message = message.clone();
    handles[0].spawn(async move {
        let mut sent = 0;
        while sent < count {
            while sent < count && sent - driver_received.load(Ordering::Relaxed) < window {
                driver_sender.do_send(SendMessage {
                    to: NodeId(2),
                    message: driver_message.clone(),
                });
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    wait_for(&received, count).await;
    let elapsed = started.elapsed();
    let stats = sender.send(GetNetworkStats).await.expect("alive");
    for arbiter in handles {
        arbiter.stop();
    }
    let frame_bytes = frame_size(message);
    (
        Figures::of(count, frame_bytes, elapsed),
        stats.peers[&NodeId(2)].messages_dropped,
    )
}

fn frame_size(message: &RaftMessage) -> usize {
    let mut buffer = Vec::new();
    append_frame(&mut buffer, message, u32::MAX).expect("benchmark messages encode")
}

async fn bench_raw_tcp(message: &RaftMessage, count: u64, with_codec: bool) -> Figures {
    let mut frame = Vec::new();
    append_frame(&mut frame, message, u32::MAX).expect("benchmark messages encode");
    let frame = Arc::new(frame);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback bindable");
    listener.set_nonblocking(true).expect("socket option");
    let address = listener.local_addr().expect("bound");
    let received = Arc::new(AtomicU64::new(0));
    let reader_arbiter = Arbiter::new();
    let writer_arbiter = Arbiter::new();
    let reader_received = received.clone();
    reader_arbiter.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("inside a runtime");
        let (stream, _) = listener.accept().await.expect("the writer connects");
        stream.set_nodelay(true).expect("socket option");
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let mut payload = Vec::new();
        loop {
            let mut prefix = [0u8; 4];
            if reader.read_exact(&mut prefix).await.is_err() {
                return;
            }
            payload.resize(u32::from_be_bytes(prefix) as usize, 0);
            reader.read_exact(&mut payload).await.expect("whole frames");
            reader_received.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let writer_frame = frame.clone();
    let writer_message = message.clone();
    writer_arbiter.spawn(async move {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("listening");
        stream.set_nodelay(true).expect("socket option");
        let mut writer = BufWriter::with_capacity(256 * 1024, stream);
        let mut encoded = Vec::new();
        for _ in 0..count {
            if with_codec {
                encoded.clear();
                append_frame(&mut encoded, &writer_message, u32::MAX).expect("encodes");
                writer.write_all(&encoded).await.expect("writable");
            } else {
                writer.write_all(&writer_frame).await.expect("writable");
            }
        }
        writer.flush().await.expect("writable");
        // Keep the stream open until the reader is done; the arbiter stop drops it.
        std::future::pending::<()>().await;
    });
    wait_for(&received, count).await;
    let elapsed = started.elapsed();
    reader_arbiter.stop();
    writer_arbiter.stop();
    Figures::of(count, frame.len(), elapsed)
}

fn main() {
    actix::System::new().block_on(async {
        println!(
            "{:>8} {:>9} | {:>12} {:>8} | {:>12} {:>8} | {:>6} | {:>15} {:>8} | {:>6}",
            "frame B",
            "messages",
            "actors msg/s",
            "MB/s",
            "raw msg/s",
            "MB/s",
            "ratio",
            "raw+codec msg/s",
            "MB/s",
            "ratio"
        );
        // An optional argument picks one frame size, e.g. `net_bench 100` (for profiling).
        let only_size: Option<usize> = std::env::args()
            .nth(1)
            .map(|text| text.parse().expect("the argument is a frame size in bytes"));
        let cases = [(100usize, 1_000_000u64, 20_000u64), (65_536, 20_000, 256)];
        for (target_bytes, count, window) in cases
            .into_iter()
            .filter(|(target_bytes, _, _)| only_size.is_none_or(|size| size == *target_bytes))
        {
            let (message, frame_bytes) = message_of_frame_size(target_bytes);
            // Warm up both paths (connections, allocator, page cache).
            bench_network_actors(&message, count / 10, window).await;
            bench_raw_tcp(&message, count / 10, false).await;
            // Best of three: the machine is shared, and the best run is the least disturbed.
            let mut actors = Figures::zero();
            let mut raw = Figures::zero();
            let mut raw_with_codec = Figures::zero();
            let mut dropped = 0;
            for _ in 0..3 {
                let (figures, dropped_in_run) =
                    bench_network_actors(&message, count, window).await;
                dropped += dropped_in_run;
                actors = actors.best(figures);
                raw = raw.best(bench_raw_tcp(&message, count, false).await);
                raw_with_codec = raw_with_codec.best(bench_raw_tcp(&message, count, true).await);
            }
            println!(
                "{:>8} {:>9} | {:>12.0} {:>8.1} | {:>12.0} {:>8.1} | {:>5.0}% | {:>15.0} {:>8.1} | {:>5.0}%{}",
                frame_bytes,
                count,
                actors.messages_per_second,
                actors.megabytes_per_second,
                raw.messages_per_second,
                raw.megabytes_per_second,
                100.0 * actors.messages_per_second / raw.messages_per_second,
                raw_with_codec.messages_per_second,
                raw_with_codec.megabytes_per_second,
                100.0 * actors.messages_per_second / raw_with_codec.messages_per_second,
                if dropped > 0 {
                    format!("  ({dropped} dropped!)")
                } else {
                    String::new()
                }
            );
        }
    });
}
