//! Client requests through the in-process cluster: a request in flight ([`PendingAnswer`]) and
//! how its answer becomes a result.

use super::RequestError;
use applier_actor::{KvOutput, KvQuery};
use raft_proto::client::ClientError;
use raft_types::{LogIndex, NodeId};
use std::time::Duration;
use tokio::sync::oneshot;

/// A client request sent to a node whose answer is awaited later (see
/// [`InProcessCluster::send_put`]): a client with a request in flight while the test goes on.
pub struct PendingAnswer {
    pub(super) node: NodeId,
    pub(super) request: &'static str,
    pub(super) receiver: oneshot::Receiver<Result<Vec<u8>, ClientError>>,
}

impl PendingAnswer {
    /// Waits for the answer for at most `within` of virtual time; `Ok` carries the index a
    /// put was applied at.
    pub async fn put_answer(self, within: Duration) -> Result<LogIndex, RequestError> {
        match await_answer(self.node, self.receiver, within).await? {
            KvOutput::Put { index } => Ok(index),
            output => Err(RequestError::UnexpectedOutput {
                node: self.node,
                request: self.request,
                output,
            }),
        }
    }

    /// Waits for the state machine's output for at most `within` of virtual time, whatever
    /// the request was (see [`InProcessCluster::send_command`]).
    pub async fn output(self, within: Duration) -> Result<KvOutput, RequestError> {
        await_answer(self.node, self.receiver, within).await
    }

    /// Waits for the answer to a get for at most `within` of virtual time.
    pub async fn get_answer(self, within: Duration) -> Result<Option<Vec<u8>>, RequestError> {
        value_of(
            self.node,
            await_answer(self.node, self.receiver, within).await?,
        )
    }
}

pub(super) fn get_query(key: &str) -> Vec<u8> {
    KvQuery::Get {
        key: key.to_string(),
    }
    .encode()
}

pub(super) fn value_of(node: NodeId, output: KvOutput) -> Result<Option<Vec<u8>>, RequestError> {
    match output {
        KvOutput::Value(value) => Ok(value),
        output => Err(RequestError::UnexpectedOutput {
            node,
            request: "get",
            output,
        }),
    }
}

/// Waits for a client answer from `node` for at most `within` of virtual time.
pub(super) async fn await_answer(
    node: NodeId,
    receiver: oneshot::Receiver<Result<Vec<u8>, ClientError>>,
    within: Duration,
) -> Result<KvOutput, RequestError> {
    match tokio::time::timeout(within, receiver).await {
        Err(_elapsed) => Err(RequestError::TimedOut { node, within }),
        Ok(Err(_dropped)) => Err(RequestError::Dropped { node }),
        Ok(Ok(Err(error))) => Err(RequestError::Client { node, error }),
        Ok(Ok(Ok(bytes))) => Ok(KvOutput::decode(&bytes)
            .expect("the KvStore answers every request with an encoded KvOutput")),
    }
}
