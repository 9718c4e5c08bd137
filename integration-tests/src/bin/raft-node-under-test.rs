//! The `raft-node` program, built inside this package so its tests can name it with
//! `env!("CARGO_BIN_EXE_raft-node-under-test")` and always run the current code.

fn main() {
    std::process::exit(node_bin::node_cli::raft_node_main());
}
