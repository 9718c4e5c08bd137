//! `raft-node`: runs one Raft server, or `raft-node local-cluster --nodes N`.
//! Everything lives in the library so the process tests can build the same program.

fn main() {
    std::process::exit(node_bin::node_cli::raft_node_main());
}
