//! `raft-node`: runs one Raft server, or `raft-node local-cluster --nodes N`.
//! Everything lives in the library so the process tests can build the same program.

/// Messages are decoded on the network's thread and freed on the consensus actor's (entries on
/// the storage and applier threads): mimalloc serves that cross-thread pattern without handing
/// memory back to the kernel and faulting it in again, as glibc's allocator does under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(node_bin::node_cli::raft_node_main());
}
