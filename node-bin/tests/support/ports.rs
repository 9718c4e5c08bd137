//! Free loopback ports for the process tests. Included by each test file that needs it with
//! `#[path = "support/ports.rs"] mod ports;`.

// Each test binary compiles this file on its own and uses one of the two helpers.
#![allow(dead_code)]

use std::net::TcpListener;

/// A loopback address with a port nobody listens on now.
pub fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").to_string()
}

/// A base client port for `raft-node local-cluster` (client ports `base..base + 3`, peer ports
/// `base - 1000..`) with all six ports free, searched from `first` so that test files running
/// at once pick different ranges.
pub fn free_base_port(first: u16) -> u16 {
    for attempt in 0..200u16 {
        let base = first + (std::process::id() as u16 % 500) * 20 + attempt * 7;
        let ports = [
            base,
            base + 1,
            base + 2,
            base - 1000,
            base - 999,
            base - 998,
        ];
        if ports
            .iter()
            .all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        {
            return base;
        }
    }
    panic!("no free port range found");
}
