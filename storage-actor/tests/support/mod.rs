//! What the storage actor's tests share: a stand-in for the consensus actor that records every
//! `StorageEvent` it is sent.

use actix::{Actor, Context, Handler};
use raft_proto::ports::StoragePorts;
use raft_proto::storage::StorageEvent;
use std::sync::{Arc, Mutex};

/// Stands in for the consensus actor: records every event.
struct EventCollector {
    events: Arc<Mutex<Vec<StorageEvent>>>,
}

impl Actor for EventCollector {
    type Context = Context<Self>;
}

impl Handler<StorageEvent> for EventCollector {
    type Result = ();
    fn handle(&mut self, event: StorageEvent, _: &mut Context<Self>) {
        self.events.lock().expect("collector lock").push(event);
    }
}

/// Starts a collector (in the current System) and returns the ports to hand the storage actor
/// and the events it records.
pub fn start_collector() -> (StoragePorts, Arc<Mutex<Vec<StorageEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let collector = EventCollector {
        events: Arc::clone(&events),
    }
    .start();
    (
        StoragePorts {
            events: collector.recipient(),
        },
        events,
    )
}
