//! A client port already in use stops `raft-node` with one clear line and exit code 1, not a
//! panic (issue 15): the error used to be followed by actix panicking while the half-started
//! node was dropped outside its runtime.

use std::net::TcpListener;
use std::process::Command;

#[test]
fn an_occupied_client_port_is_one_clear_line_and_exit_code_one() {
    let occupied = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = occupied.local_addr().expect("bound");
    let peer = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let peer_address = peer.local_addr().expect("bound");
    drop(peer);
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_raft-node"))
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("--client-addr")
        .arg(address.to_string())
        .arg("--peer-addr")
        .arg(peer_address.to_string())
        .output()
        .expect("raft-node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on client_addr {address}"))
            && stderr.contains("Address already in use"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
