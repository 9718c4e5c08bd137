//! `SimEndpoint`: one node's handle on the simulated network.
//!
//! It handles the network port's `SendMessage(s)` and forwards each message to the
//! [`SimNetwork`] with this node's id attached, so the consensus actor is wired exactly as it is with TCP, and the
//! sender id a receiver sees is the one fixed at wiring time, never one a message could claim.
//! It also answers the port's `GetNetworkStats` with this node's counters from the network.

use super::control::{GetNodeStats, RegisterNode, SimSend};
use super::sim_network::SimNetwork;
use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use raft_proto::network::{GetNetworkStats, NetworkStats, SendMessage, SendMessages, SetPeers};
use raft_proto::ports::NetworkPorts;
use raft_types::NodeId;

pub struct SimEndpoint {
    node: NodeId,
    network: Addr<SimNetwork>,
}

impl SimEndpoint {
    /// Registers `node` (replacing an earlier registration, as after a restart) so that what
    /// is sent to it is delivered to `ports`, and starts its endpoint. Hand
    /// `endpoint.recipient()` to the node's consensus actor as its `Recipient<SendMessages>`.
    pub fn start_for(
        network: &Addr<SimNetwork>,
        node: NodeId,
        ports: NetworkPorts,
    ) -> Addr<SimEndpoint> {
        network.do_send(RegisterNode { node, ports });
        SimEndpoint {
            node,
            network: network.clone(),
        }
        .start()
    }
}

impl Actor for SimEndpoint {
    type Context = Context<Self>;
}

impl Handler<SendMessage> for SimEndpoint {
    type Result = ();

    fn handle(&mut self, send: SendMessage, _: &mut Context<Self>) {
        self.network.do_send(SimSend {
            from: self.node,
            to: send.to,
            message: send.message,
        });
    }
}

impl Handler<SendMessages> for SimEndpoint {
    type Result = ();

    fn handle(&mut self, batch: SendMessages, context: &mut Context<Self>) {
        // One SimSend per message: each copy gets its own fate (loss, delay, duplication).
        for send in batch.messages {
            self.handle(send, context);
        }
    }
}

impl Handler<SetPeers> for SimEndpoint {
    type Result = ();

    fn handle(&mut self, _: SetPeers, _: &mut Context<Self>) {
        // The simulated network reaches every endpoint registered with it; which of them are
        // members is the consensus core's business, as on a real network that admits them.
    }
}

impl Handler<GetNetworkStats> for SimEndpoint {
    type Result = ResponseFuture<NetworkStats>;

    fn handle(&mut self, _: GetNetworkStats, _: &mut Context<Self>) -> Self::Result {
        let network = self.network.clone();
        let node = self.node;
        Box::pin(async move {
            // A stopped simulated network has nothing to report; empty counters say so.
            network
                .send(GetNodeStats { node })
                .await
                .unwrap_or_default()
        })
    }
}
