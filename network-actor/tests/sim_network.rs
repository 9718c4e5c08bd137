//! Tests of the simulated network on a paused tokio clock: replay by seed, per-direction
//! partitions and heals, isolation, in-flight loss, delays, FIFO and reordering, drops and
//! duplicates, and peer events.

mod support;

use actix::clock::Instant;
use actix::{Actor, Addr, Context, Handler};
use network_actor::sim::{
    GetSimStats, Heal, HealAll, Isolate, LinkFaults, Partition, SetDefaultLinkFaults,
    SetLinkFaults, SimEndpoint, SimNetwork,
};
use raft_proto::network::{GetNetworkStats, PeerEvent, ReceivedMessages, SendMessage};
use raft_proto::ports::NetworkPorts;
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use test_support::report::SeedReport;
use test_support::seed::seed_or_else;
use test_support::this_test;

const VIRTUAL_PATIENCE: Duration = Duration::from_secs(60);

/// One delivery as a node saw it: who, what, and when in virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    to: NodeId,
    from: NodeId,
    number: u64,
    at: Duration,
}

type Deliveries = Arc<Mutex<Vec<Delivery>>>;
type Events = Arc<Mutex<Vec<(NodeId, PeerEvent)>>>;

/// A stand-in consensus actor recording into logs shared by the whole cluster.
struct Recorder {
    node: NodeId,
    started: Instant,
    deliveries: Deliveries,
    events: Events,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<ReceivedMessages> for Recorder {
    type Result = ();
    fn handle(&mut self, received: ReceivedMessages, _: &mut Context<Self>) {
        let mut deliveries = self.deliveries.lock().expect("no panic");
        for message in &received.messages {
            deliveries.push(Delivery {
                to: self.node,
                from: received.from,
                number: message_number(message),
                at: Instant::now() - self.started,
            });
        }
    }
}

impl Handler<PeerEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, event: PeerEvent, _: &mut Context<Self>) {
        self.events
            .lock()
            .expect("no panic")
            .push((self.node, event));
    }
}

struct SimCluster {
    network: Addr<SimNetwork>,
    endpoints: BTreeMap<NodeId, Addr<SimEndpoint>>,
    deliveries: Deliveries,
    events: Events,
}

impl SimCluster {
    fn start(nodes: u64, network: SimNetwork) -> SimCluster {
        let network = network.start();
        let deliveries = Deliveries::default();
        let events = Events::default();
        let started = Instant::now();
        let mut endpoints = BTreeMap::new();
        for node in (1..=nodes).map(NodeId) {
            let recorder = Recorder {
                node,
                started,
                deliveries: deliveries.clone(),
                events: events.clone(),
            }
            .start();
            let ports = NetworkPorts {
                received: recorder.clone().recipient(),
                peer_events: recorder.recipient(),
            };
            endpoints.insert(node, SimEndpoint::start_for(&network, node, ports));
        }
        SimCluster {
            network,
            endpoints,
            deliveries,
            events,
        }
    }

    fn send(&self, from: u64, to: u64, number: u64) {
        self.endpoints[&NodeId(from)].do_send(SendMessage {
            to: NodeId(to),
            message: numbered_message(number),
        });
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().expect("no panic").clone()
    }

    fn delivered(&self, from: u64, to: u64) -> Vec<u64> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.from == NodeId(from) && delivery.to == NodeId(to))
            .map(|delivery| delivery.number)
            .collect()
    }

    /// Waits until everything sent so far has been delivered or dropped and every delivery
    /// has been recorded.
    async fn settle(&self, sent: u64) {
        wait_until_async("the network to settle", VIRTUAL_PATIENCE, || {
            let network = self.network.clone();
            let deliveries = self.deliveries.clone();
            async move {
                let stats = network.send(GetSimStats).await.expect("alive");
                stats.sent == sent
                    && stats.in_flight == 0
                    && deliveries.lock().expect("no panic").len() as u64 == stats.delivered
            }
        })
        .await;
    }
}

fn faulty_links() -> LinkFaults {
    LinkFaults {
        connected: true,
        drop_probability: 0.1,
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
        reorder_probability: 0.2,
        duplicate_probability: 0.1,
    }
}

/// All-to-all traffic among three nodes over faulty links; returns what was delivered, when.
async fn run_all_to_all(seed: u64) -> Vec<Delivery> {
    let cluster = SimCluster::start(3, SimNetwork::with_default_faults(seed, faulty_links()));
    let rounds = 50;
    for round in 0..rounds {
        for from in 1..=3 {
            for to in (1..=3).filter(|to| *to != from) {
                cluster.send(from, to, from * 1_000_000 + to * 1_000 + round);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cluster.settle(rounds * 6).await;
    cluster.deliveries()
}

#[actix_rt::test]
async fn the_same_seed_gives_the_same_delivery_sequence() {
    tokio::time::pause();
    let seed = seed_or_else(rand::random);
    let _report = SeedReport::new(this_test!(), seed);
    let first = run_all_to_all(seed).await;
    let second = run_all_to_all(seed).await;
    assert!(!first.is_empty());
    assert_eq!(first, second, "seed {seed} must replay exactly");
    // Another seed draws other faults (with 300 messages a collision is vanishingly unlikely).
    let other = run_all_to_all(seed.wrapping_add(1)).await;
    assert_ne!(first, other);
}

#[actix_rt::test]
async fn a_one_way_partition_cuts_only_its_direction_and_heal_restores_it() {
    tokio::time::pause();
    let cluster = SimCluster::start(3, SimNetwork::new(1));
    cluster
        .network
        .do_send(Partition::one_way([NodeId(1)], [NodeId(2)]));
    cluster.send(1, 2, 1);
    cluster.send(2, 1, 2);
    cluster.send(1, 3, 3);
    cluster.settle(3).await;
    assert_eq!(cluster.delivered(1, 2), Vec::<u64>::new());
    assert_eq!(cluster.delivered(2, 1), vec![2]);
    assert_eq!(cluster.delivered(1, 3), vec![3]);

    cluster
        .network
        .do_send(Heal::one_way([NodeId(2)], [NodeId(1)]));
    cluster.send(1, 2, 4);
    cluster.settle(4).await;
    assert_eq!(
        cluster.delivered(1, 2),
        Vec::<u64>::new(),
        "healing 2 -> 1 leaves 1 -> 2 cut"
    );

    cluster
        .network
        .do_send(Heal::one_way([NodeId(1)], [NodeId(2)]));
    cluster.send(1, 2, 5);
    cluster.settle(5).await;
    assert_eq!(cluster.delivered(1, 2), vec![5]);
    let stats = cluster.network.send(GetSimStats).await.expect("alive");
    assert_eq!(stats.dropped_disconnected, 2);
}

#[actix_rt::test]
async fn a_two_way_partition_splits_groups_and_heal_all_rejoins_them() {
    tokio::time::pause();
    let cluster = SimCluster::start(3, SimNetwork::new(2));
    cluster
        .network
        .do_send(Partition::both_ways([NodeId(1)], [NodeId(2), NodeId(3)]));
    let mut sent = 0;
    for from in 1..=3 {
        for to in (1..=3).filter(|to| *to != from) {
            sent += 1;
            cluster.send(from, to, sent);
        }
    }
    cluster.settle(sent).await;
    let links: Vec<(NodeId, NodeId)> = cluster
        .deliveries()
        .iter()
        .map(|delivery| (delivery.from, delivery.to))
        .collect();
    assert_eq!(
        links,
        vec![(NodeId(2), NodeId(3)), (NodeId(3), NodeId(2))],
        "only the majority side talks"
    );

    cluster.network.do_send(HealAll);
    cluster.send(1, 2, 100);
    let healed = (NodeId(2), PeerEvent::Connected { peer: NodeId(1) });
    cluster.send(3, 1, 101);
    cluster.settle(sent + 2).await;
    assert_eq!(cluster.delivered(1, 2), vec![100]);
    assert_eq!(cluster.delivered(3, 1), vec![101]);
    let events = cluster.events.lock().expect("no panic").clone();
    assert!(events.contains(&healed), "{events:?}");
}

#[actix_rt::test]
async fn isolate_cuts_a_node_off_in_both_directions() {
    tokio::time::pause();
    let cluster = SimCluster::start(3, SimNetwork::new(3));
    cluster.network.do_send(Isolate { node: NodeId(3) });
    cluster.send(3, 1, 1);
    cluster.send(2, 3, 2);
    cluster.send(1, 2, 3);
    cluster.settle(3).await;
    assert_eq!(cluster.delivered(3, 1), Vec::<u64>::new());
    assert_eq!(cluster.delivered(2, 3), Vec::<u64>::new());
    assert_eq!(cluster.delivered(1, 2), vec![3]);
    let events = cluster.events.lock().expect("no panic").clone();
    assert!(events.contains(&(NodeId(3), PeerEvent::Disconnected { peer: NodeId(1) })));
    assert!(events.contains(&(NodeId(1), PeerEvent::Disconnected { peer: NodeId(3) })));
}

#[actix_rt::test]
async fn a_message_in_flight_is_lost_when_its_link_is_cut() {
    tokio::time::pause();
    let faults = LinkFaults::delayed(Duration::from_millis(50), Duration::from_millis(50));
    let cluster = SimCluster::start(2, SimNetwork::with_default_faults(4, faults));
    cluster.send(1, 2, 1);
    cluster.send(2, 1, 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
    cluster
        .network
        .do_send(Partition::one_way([NodeId(1)], [NodeId(2)]));
    cluster.settle(2).await;
    assert_eq!(cluster.delivered(1, 2), Vec::<u64>::new());
    assert_eq!(cluster.delivered(2, 1), vec![2]);
}

#[actix_rt::test]
async fn delays_run_on_the_paused_clock() {
    tokio::time::pause();
    let real_start = std::time::Instant::now();
    let delay = Duration::from_secs(30);
    let cluster = SimCluster::start(2, SimNetwork::new(5));
    cluster.network.do_send(SetLinkFaults {
        from: NodeId(1),
        to: NodeId(2),
        faults: LinkFaults::delayed(delay, delay),
    });
    cluster.send(1, 2, 1);
    cluster.send(2, 1, 2);
    cluster.settle(2).await;
    let deliveries = cluster.deliveries();
    let at = |from: u64| {
        deliveries
            .iter()
            .find(|delivery| delivery.from == NodeId(from))
            .expect("delivered")
            .at
    };
    assert!(
        at(1) >= delay && at(1) < delay + Duration::from_millis(5),
        "{deliveries:?}"
    );
    assert!(at(2) < Duration::from_millis(5), "{deliveries:?}");
    assert!(
        real_start.elapsed() < Duration::from_secs(5),
        "virtual time must not cost real time"
    );
}

#[actix_rt::test]
async fn links_are_fifo_unless_reordering_is_allowed() {
    tokio::time::pause();
    let seed = seed_or_else(rand::random);
    let _report = SeedReport::new(this_test!(), seed);
    let jittery = LinkFaults::delayed(Duration::ZERO, Duration::from_millis(50));
    let cluster = SimCluster::start(2, SimNetwork::with_default_faults(seed, jittery.clone()));
    for number in 0..100 {
        cluster.send(1, 2, number);
    }
    cluster.settle(100).await;
    assert_eq!(cluster.delivered(1, 2), (0..100).collect::<Vec<_>>());

    let reordering = LinkFaults {
        reorder_probability: 1.0,
        ..jittery
    };
    cluster
        .network
        .do_send(SetDefaultLinkFaults { faults: reordering });
    for number in 100..200 {
        cluster.send(1, 2, number);
    }
    cluster.settle(200).await;
    let reordered: Vec<u64> = cluster
        .delivered(1, 2)
        .into_iter()
        .filter(|number| *number >= 100)
        .collect();
    let mut sorted = reordered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (100..200).collect::<Vec<_>>(), "nothing lost");
    assert_ne!(reordered, sorted, "independent delays reorder 100 messages");
}

#[actix_rt::test]
async fn drop_and_duplicate_probabilities_apply_per_link() {
    tokio::time::pause();
    let seed = seed_or_else(rand::random);
    let _report = SeedReport::new(this_test!(), seed);
    let cluster = SimCluster::start(3, SimNetwork::new(seed));
    cluster.network.do_send(SetLinkFaults {
        from: NodeId(1),
        to: NodeId(2),
        faults: LinkFaults {
            drop_probability: 1.0,
            ..LinkFaults::reliable()
        },
    });
    cluster.network.do_send(SetLinkFaults {
        from: NodeId(1),
        to: NodeId(3),
        faults: LinkFaults {
            duplicate_probability: 1.0,
            ..LinkFaults::reliable()
        },
    });
    for number in 0..10 {
        cluster.send(1, 2, number);
        cluster.send(1, 3, number);
        cluster.send(2, 1, number);
    }
    cluster.settle(30).await;
    assert_eq!(cluster.delivered(1, 2), Vec::<u64>::new());
    let duplicated: Vec<u64> = (0..10).flat_map(|number| [number, number]).collect();
    assert_eq!(cluster.delivered(1, 3), duplicated);
    assert_eq!(cluster.delivered(2, 1), (0..10).collect::<Vec<_>>());
    let stats = cluster.network.send(GetSimStats).await.expect("alive");
    assert_eq!(stats.dropped_by_chance, 10);
    assert_eq!(stats.duplicated, 10);
    assert_eq!(stats.delivered, 30);

    // Each endpoint answers the port's GetNetworkStats for its own node.
    let node_1 = cluster.endpoints[&NodeId(1)]
        .send(GetNetworkStats)
        .await
        .expect("alive");
    assert_eq!(node_1.peers[&NodeId(2)].messages_dropped, 10);
    assert_eq!(node_1.peers[&NodeId(3)].messages_sent, 10);
    assert_eq!(node_1.peers[&NodeId(2)].messages_received, 10);
    let node_3 = cluster.endpoints[&NodeId(3)]
        .send(GetNetworkStats)
        .await
        .expect("alive");
    assert_eq!(
        node_3.peers[&NodeId(1)].messages_received,
        20,
        "duplicates count"
    );
}

#[actix_rt::test]
async fn default_link_faults_keep_every_links_connected_state() {
    tokio::time::pause();
    let cluster = SimCluster::start(3, SimNetwork::new(3));
    cluster
        .network
        .do_send(Partition::one_way([NodeId(1)], [NodeId(2)]));
    cluster.network.do_send(SetDefaultLinkFaults {
        faults: LinkFaults {
            connected: false,
            ..LinkFaults::reliable()
        },
    });
    cluster.send(1, 2, 1);
    cluster.send(1, 3, 2);
    cluster.settle(2).await;
    assert_eq!(
        cluster.delivered(1, 2),
        Vec::<u64>::new(),
        "1 -> 2 stays cut"
    );
    assert_eq!(
        cluster.delivered(1, 3),
        vec![2],
        "1 -> 3, never cut, stays connected"
    );
}
