//! `raft-node`: runs one Raft server, or `raft-node local-cluster --nodes N`.

use clap::Parser;
use node_bin::node_cli::{NodeCli, NodeCommand};
use node_bin::node_config::{self, ConfigSources};
use node_bin::{local_cluster, node_runtime};

/// Exit code for a configuration that cannot work (the same code clap uses for bad usage).
const EXIT_BAD_CONFIGURATION: i32 = 2;

fn main() -> anyhow::Result<()> {
    let cli = NodeCli::parse();
    if let Some(NodeCommand::LocalCluster(flags)) = &cli.command {
        std::process::exit(local_cluster::run(flags)?);
    }
    let sources = ConfigSources::from_process(cli.server.config.clone(), cli.server.overrides());
    let config = match node_config::load(&sources) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("raft-node: {error}");
            std::process::exit(EXIT_BAD_CONFIGURATION);
        }
    };
    node_runtime::init_tracing(config.log_format);
    std::process::exit(node_runtime::run(config)?);
}
