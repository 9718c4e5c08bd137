//! The handshake: the first frame in each direction of every connection.
//!
//! The dialer sends its [`Handshake`]; the listener checks it and answers with a
//! [`HandshakeReply`] (its own `Handshake`, or the reason it refuses); the dialer checks that it
//! reached the node it meant to. Only then does the dialer send messages. The listener
//! remembers the dialer's node id and stamps it as `from` on everything the connection
//! delivers, so a message body can never claim another sender.
//!
//! Refused: another protocol version, another `cluster_id`, a node id that is not a configured
//! peer (or is this node's own), anything that does not decode as a handshake, and silence
//! longer than `handshake_timeout`. Handshake frames are limited to [`MAX_HANDSHAKE_BYTES`],
//! so a stray client (an HTTP request, a port scanner) is refused after reading four bytes.

use crate::config::NetworkConfig;
use crate::frame::{append_frame, read_value, FrameError};
use raft_types::NodeId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The version of this connection protocol (handshake and framing). Bumped when two builds
/// could no longer understand each other; peers with another version are refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest handshake frame accepted; a real one is a few dozen bytes.
pub const MAX_HANDSHAKE_BYTES: u32 = 4096;

/// Who is speaking, sent by both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    pub protocol_version: u32,
    pub cluster_id: String,
    pub node_id: NodeId,
}

/// The listener's answer to a dialer's handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeReply {
    Accepted(Handshake),
    /// Sent before closing, so the dialer's log says why too.
    Refused {
        reason: String,
    },
}

/// Why a handshake failed; the connection is closed and this is logged.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("protocol version {theirs} differs from this node's {ours}")]
    ProtocolVersion { ours: u32, theirs: u32 },
    #[error("cluster_id {theirs:?} differs from this node's {ours:?}")]
    ClusterId { ours: String, theirs: String },
    #[error("node {node_id} is not a configured peer")]
    UnknownNode { node_id: NodeId },
    #[error("node {node_id} is this node's own id")]
    OwnId { node_id: NodeId },
    #[error("expected to reach node {expected}, but node {found} answered")]
    WrongNode { expected: NodeId, found: NodeId },
    #[error("refused by the peer: {reason}")]
    RefusedByPeer { reason: String },
    #[error("connection closed before the handshake completed")]
    Closed,
    #[error("no handshake within {timeout_ms} ms")]
    Timeout { timeout_ms: u128 },
    #[error("bad handshake frame: {source}")]
    Frame {
        #[from]
        source: FrameError,
    },
}

impl Handshake {
    /// This node's handshake.
    pub fn of(config: &NetworkConfig) -> Handshake {
        Handshake {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id,
        }
    }

    /// Checks what both ends must agree on: protocol version and cluster, and that the other
    /// end is a configured peer other than this node.
    pub fn check_peer(&self, config: &NetworkConfig) -> Result<(), HandshakeError> {
        if self.protocol_version != PROTOCOL_VERSION {
            return Err(HandshakeError::ProtocolVersion {
                ours: PROTOCOL_VERSION,
                theirs: self.protocol_version,
            });
        }
        if self.cluster_id != config.cluster_id {
            return Err(HandshakeError::ClusterId {
                ours: config.cluster_id.clone(),
                theirs: self.cluster_id.clone(),
            });
        }
        if self.node_id == config.node_id {
            return Err(HandshakeError::OwnId {
                node_id: self.node_id,
            });
        }
        if !config.admitted.contains(self.node_id) {
            return Err(HandshakeError::UnknownNode {
                node_id: self.node_id,
            });
        }
        Ok(())
    }
}

/// The dialer's side: introduce this node and check that `expected_peer` answered.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &NetworkConfig,
    expected_peer: NodeId,
) -> Result<(), HandshakeError> {
    with_timeout(config, async {
        write_value(stream, &Handshake::of(config)).await?;
        let reply: HandshakeReply = read_value(stream, MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or(HandshakeError::Closed)?;
        match reply {
            HandshakeReply::Refused { reason } => Err(HandshakeError::RefusedByPeer { reason }),
            HandshakeReply::Accepted(theirs) => {
                theirs.check_peer(config)?;
                if theirs.node_id != expected_peer {
                    return Err(HandshakeError::WrongNode {
                        expected: expected_peer,
                        found: theirs.node_id,
                    });
                }
                Ok(())
            }
        }
    })
    .await
}

/// The listener's side: check the dialer's handshake, answer, and return the dialer's id.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &NetworkConfig,
) -> Result<NodeId, HandshakeError> {
    with_timeout(config, async {
        let theirs: Handshake = read_value(stream, MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or(HandshakeError::Closed)?;
        if let Err(error) = theirs.check_peer(config) {
            let reason = error.to_string();
            // Best effort: the dialer learns why; the connection is closed either way.
            let _ = write_value(stream, &HandshakeReply::Refused { reason }).await;
            return Err(error);
        }
        write_value(stream, &HandshakeReply::Accepted(Handshake::of(config))).await?;
        Ok(theirs.node_id)
    })
    .await
}

async fn with_timeout<T>(
    config: &NetworkConfig,
    handshake: impl std::future::Future<Output = Result<T, HandshakeError>>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout(config.handshake_timeout, handshake)
        .await
        .unwrap_or(Err(HandshakeError::Timeout {
            timeout_ms: config.handshake_timeout.as_millis(),
        }))
}

async fn write_value<S: AsyncWrite + Unpin, T: Serialize>(
    stream: &mut S,
    value: &T,
) -> Result<(), HandshakeError> {
    let mut buffer = Vec::new();
    append_frame(&mut buffer, value, MAX_HANDSHAKE_BYTES)?;
    stream
        .write_all(&buffer)
        .await
        .map_err(|source| FrameError::Io { source })?;
    stream
        .flush()
        .await
        .map_err(|source| FrameError::Io { source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(node: u64, cluster_id: &str) -> NetworkConfig {
        let address = "127.0.0.1:7001".parse().expect("valid literal");
        let peers = BTreeMap::from([
            (NodeId(1), address),
            (NodeId(2), address),
            (NodeId(3), address),
        ]);
        NetworkConfig::new(NodeId(node), cluster_id, address, peers)
    }

    /// Runs both sides of one handshake over an in-memory pipe: (dialer's, listener's) result.
    async fn handshake(
        dialer_config: &NetworkConfig,
        listener_config: &NetworkConfig,
        expected_peer: NodeId,
    ) -> (Result<(), HandshakeError>, Result<NodeId, HandshakeError>) {
        let (mut dialer, mut listener) = tokio::io::duplex(1024);
        tokio::join!(
            dial(&mut dialer, dialer_config, expected_peer),
            accept(&mut listener, listener_config)
        )
    }

    #[tokio::test]
    async fn matching_peers_complete_the_handshake() {
        let dialer_config = config(1, "alpha");
        let listener_config = config(2, "alpha");
        let (dialed, accepted) = handshake(&dialer_config, &listener_config, NodeId(2)).await;
        dialed.expect("listener accepts a member of its cluster");
        assert_eq!(accepted.expect("dialer is a member"), NodeId(1));
    }

    #[tokio::test]
    async fn another_cluster_is_refused_on_both_sides() {
        let dialer_config = config(1, "beta");
        let listener_config = config(2, "alpha");
        let (dialed, accepted) = handshake(&dialer_config, &listener_config, NodeId(2)).await;
        assert!(matches!(accepted, Err(HandshakeError::ClusterId { .. })));
        assert!(matches!(dialed, Err(HandshakeError::RefusedByPeer { .. })));
    }

    #[tokio::test]
    async fn unknown_own_and_wrong_node_ids_are_refused() {
        let listener_config = config(2, "alpha");
        for (dialer_node, expected) in [(9, "UnknownNode"), (2, "OwnId")] {
            let dialer_config = config(dialer_node, "alpha");
            let (_, accepted) = handshake(&dialer_config, &listener_config, NodeId(2)).await;
            let error = accepted.expect_err("must be refused");
            assert!(format!("{error:?}").starts_with(expected), "{error:?}");
        }
        let dialer_config = config(1, "alpha");
        let (dialed, _) = handshake(&dialer_config, &listener_config, NodeId(3)).await;
        assert!(matches!(dialed, Err(HandshakeError::WrongNode { .. })));
    }
}
