//! `SimNetwork`: one actor carrying a whole in-process cluster's traffic.
//!
//! A `SimSend` draws, in this order and from the one seeded RNG: drop or not, duplicate or
//! not, then for each copy its delay and whether it may overtake earlier messages. Each copy is
//! put in the in-flight queue, keyed by (delivery time, arrival sequence), and a tokio timer
//! wakes the actor at that time to deliver everything due, in key order. Keying by sequence
//! makes ties deterministic; tokio time makes it run on a paused clock.

use super::control::{
    GetNodeStats, GetSimStats, Heal, HealAll, Isolate, Partition, RegisterNode,
    SetDefaultLinkFaults, SetLinkFaults, SimSend, SimStats,
};
use super::link_faults::LinkFaults;
use actix::clock::Instant;
use actix::{Actor, AsyncContext, Context, Handler, MessageResult};
use raft_proto::network::{NetworkStats, PeerEvent, PeerStats, ReceivedMessages};
use raft_proto::ports::NetworkPorts;
use raft_types::{NodeId, RaftMessage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A message copy waiting for its delivery time.
struct InFlight {
    from: NodeId,
    to: NodeId,
    message: RaftMessage,
}

/// The simulated network actor. See the module documentation.
pub struct SimNetwork {
    seed: u64,
    rng: ChaCha8Rng,
    nodes: BTreeMap<NodeId, NetworkPorts>,
    /// The fault model of every link without an entry in `links`.
    default_faults: LinkFaults,
    links: BTreeMap<(NodeId, NodeId), LinkFaults>,
    in_flight: BTreeMap<(Instant, u64), InFlight>,
    next_sequence: u64,
    /// The latest delivery time given to a FIFO message on each link; later FIFO messages on
    /// the link are delivered no earlier.
    link_tail: BTreeMap<(NodeId, NodeId), Instant>,
    /// Every counter but `in_flight`, which is read off the `in_flight` queue when asked.
    stats: SimStats,
    /// Per node, per peer, what `GetNetworkStats` reports. Bytes stay 0: nothing is encoded.
    node_stats: BTreeMap<NodeId, NetworkStats>,
}

impl SimNetwork {
    /// A network with reliable links whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> SimNetwork {
        SimNetwork::with_default_faults(seed, LinkFaults::reliable())
    }

    /// A network whose links all start with `faults`.
    pub fn with_default_faults(seed: u64, faults: LinkFaults) -> SimNetwork {
        faults.assert_valid();
        SimNetwork {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            default_faults: faults,
            links: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_sequence: 0,
            link_tail: BTreeMap::new(),
            stats: SimStats::default(),
            node_stats: BTreeMap::new(),
        }
    }

    /// The seed this network was built with, for a failing test to print.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The counters node `node` keeps about `peer`.
    fn peer_stats(&mut self, node: NodeId, peer: NodeId) -> &mut PeerStats {
        self.node_stats
            .entry(node)
            .or_default()
            .peers
            .entry(peer)
            .or_default()
    }

    fn faults(&self, from: NodeId, to: NodeId) -> &LinkFaults {
        self.links.get(&(from, to)).unwrap_or(&self.default_faults)
    }

    /// Connects or disconnects one directed link, telling the sender when its state changes.
    fn set_connected(&mut self, from: NodeId, to: NodeId, connected: bool) {
        if from == to || self.faults(from, to).connected == connected {
            return;
        }
        let mut faults = self.faults(from, to).clone();
        faults.connected = connected;
        self.links.insert((from, to), faults);
        if let Some(ports) = self.nodes.get(&from) {
            let event = if connected {
                PeerEvent::Connected { peer: to }
            } else {
                PeerEvent::Disconnected { peer: to }
            };
            ports.peer_events.do_send(event);
        }
    }

    fn schedule(&mut self, copy: InFlight, faults: &LinkFaults, context: &mut Context<SimNetwork>) {
        let now = Instant::now();
        let delay = if faults.delay_max > faults.delay_min {
            self.rng.gen_range(faults.delay_min..=faults.delay_max)
        } else {
            faults.delay_min
        };
        let may_overtake =
            faults.reorder_probability > 0.0 && self.rng.gen_bool(faults.reorder_probability);
        let mut due = now + delay;
        if !may_overtake {
            let tail = self.link_tail.entry((copy.from, copy.to)).or_insert(due);
            due = due.max(*tail);
            *tail = due;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.in_flight.insert((due, sequence), copy);
        context.run_later(due - now, |network, _| network.deliver_due());
    }

    /// Delivers every copy whose time has come, in (time, sequence) order.
    fn deliver_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let InFlight { from, to, message } = entry.remove();
            if !self.faults(from, to).connected {
                self.stats.dropped_disconnected += 1;
                self.peer_stats(from, to).messages_dropped += 1;
                continue;
            }
            match self.nodes.get(&to) {
                Some(ports) => {
                    // One message per batch: each copy has its own delivery time.
                    ports.received.do_send(ReceivedMessages {
                        from,
                        messages: vec![message],
                    });
                    self.stats.delivered += 1;
                    self.peer_stats(to, from).messages_received += 1;
                }
                None => self.stats.dropped_unknown_node += 1,
            }
        }
    }
}

impl Actor for SimNetwork {
    type Context = Context<Self>;
}

impl Handler<RegisterNode> for SimNetwork {
    type Result = ();

    fn handle(&mut self, register: RegisterNode, _: &mut Context<Self>) {
        self.nodes.insert(register.node, register.ports);
    }
}

impl Handler<SimSend> for SimNetwork {
    type Result = ();

    fn handle(&mut self, send: SimSend, context: &mut Context<Self>) {
        self.stats.sent += 1;
        if !self.nodes.contains_key(&send.to) {
            self.stats.dropped_unknown_node += 1;
            self.node_stats
                .entry(send.from)
                .or_default()
                .messages_to_unknown_peer += 1;
            return;
        }
        let faults = self.faults(send.from, send.to).clone();
        if !faults.connected {
            self.stats.dropped_disconnected += 1;
            self.peer_stats(send.from, send.to).messages_dropped += 1;
            return;
        }
        if self.rng.gen_bool(faults.drop_probability) {
            self.stats.dropped_by_chance += 1;
            self.peer_stats(send.from, send.to).messages_dropped += 1;
            return;
        }
        self.peer_stats(send.from, send.to).messages_sent += 1;
        if self.rng.gen_bool(faults.duplicate_probability) {
            self.stats.duplicated += 1;
            let duplicate = InFlight {
                from: send.from,
                to: send.to,
                message: send.message.clone(),
            };
            self.schedule(duplicate, &faults, context);
        }
        let original = InFlight {
            from: send.from,
            to: send.to,
            message: send.message,
        };
        self.schedule(original, &faults, context);
    }
}

impl Handler<Partition> for SimNetwork {
    type Result = ();

    fn handle(&mut self, partition: Partition, _: &mut Context<Self>) {
        for (from, to) in partition.links.directed_links() {
            self.set_connected(from, to, false);
        }
    }
}

impl Handler<Heal> for SimNetwork {
    type Result = ();

    fn handle(&mut self, heal: Heal, _: &mut Context<Self>) {
        for (from, to) in heal.links.directed_links() {
            self.set_connected(from, to, true);
        }
    }
}

impl Handler<HealAll> for SimNetwork {
    type Result = ();

    fn handle(&mut self, _: HealAll, _: &mut Context<Self>) {
        self.default_faults.connected = true;
        let cut: Vec<(NodeId, NodeId)> = self
            .links
            .iter()
            .filter(|(_, faults)| !faults.connected)
            .map(|(link, _)| *link)
            .collect();
        for (from, to) in cut {
            self.set_connected(from, to, true);
        }
    }
}

impl Handler<Isolate> for SimNetwork {
    type Result = ();

    fn handle(&mut self, isolate: Isolate, _: &mut Context<Self>) {
        let others: Vec<NodeId> = self.nodes.keys().copied().collect();
        for other in others {
            self.set_connected(isolate.node, other, false);
            self.set_connected(other, isolate.node, false);
        }
    }
}

impl Handler<SetLinkFaults> for SimNetwork {
    type Result = ();

    fn handle(&mut self, set: SetLinkFaults, _: &mut Context<Self>) {
        set.faults.assert_valid();
        let connected = set.faults.connected;
        let mut faults = set.faults;
        // Go through set_connected so the sender hears about a change of connectivity.
        faults.connected = self.faults(set.from, set.to).connected;
        self.links.insert((set.from, set.to), faults);
        self.set_connected(set.from, set.to, connected);
    }
}

impl Handler<SetDefaultLinkFaults> for SimNetwork {
    type Result = ();

    fn handle(&mut self, set: SetDefaultLinkFaults, _: &mut Context<Self>) {
        set.faults.assert_valid();
        // Connectivity changes only through `set_connected`, which tells the sender; links
        // without an entry of their own take their connected state from the default, so the
        // default keeps its connected state as every other link does.
        let keeping_connected = |connected| LinkFaults {
            connected,
            ..set.faults.clone()
        };
        self.default_faults = keeping_connected(self.default_faults.connected);
        for faults in self.links.values_mut() {
            *faults = keeping_connected(faults.connected);
        }
    }
}

impl Handler<GetSimStats> for SimNetwork {
    type Result = MessageResult<GetSimStats>;

    fn handle(&mut self, _: GetSimStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(SimStats {
            in_flight: self.in_flight.len() as u64,
            ..self.stats
        })
    }
}

impl Handler<GetNodeStats> for SimNetwork {
    type Result = MessageResult<GetNodeStats>;

    fn handle(&mut self, get: GetNodeStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.node_stats.get(&get.node).cloned().unwrap_or_default())
    }
}
