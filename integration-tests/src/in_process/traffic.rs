//! Counting the replication traffic of an in-process cluster, for tests of batching.

use actix::{Actor, Context, Handler, Recipient};
use raft_proto::network::SendMessages;
use raft_types::RaftMessage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Stands between a node's consensus actor and its network endpoint when the cluster counts
/// replication ([`ClusterOptions::count_replication`](super::ClusterOptions)): counts the
/// `AppendEntries` requests that carry entries, then hands every batch on unchanged.
pub(super) struct ReplicationCounter {
    pub(super) network: Recipient<SendMessages>,
    pub(super) appends_with_entries: Arc<AtomicU64>,
}

impl Actor for ReplicationCounter {
    type Context = Context<Self>;
}

impl Handler<SendMessages> for ReplicationCounter {
    type Result = ();

    fn handle(&mut self, batch: SendMessages, _: &mut Context<Self>) {
        let with_entries = batch
            .messages
            .iter()
            .filter(|message| {
                matches!(&message.message, RaftMessage::AppendEntries(request)
                    if !request.entries.is_empty())
            })
            .count();
        self.appends_with_entries
            .fetch_add(with_entries as u64, Ordering::SeqCst);
        self.network.do_send(batch);
    }
}
