//! `raft-node`: runs one Raft server. The node wiring lands with issue 5.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("raft-node is not wired yet: see issue 5")
}
