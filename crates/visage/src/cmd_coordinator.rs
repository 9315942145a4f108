//! `visage coordinator`: burn-collective's global orchestrator on its own, for
//! multi-machine runs whose rank 0 should not host it (`visage train --no-coordinator
//! --master-addr HOST:PORT` on every machine).

use anyhow::Result;
use clap::Args;

/// Arguments of `visage coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The port to listen on (all interfaces): the PORT of the machines' --master-addr.
    #[arg(long, default_value_t = 29500)]
    port: u16,
}

/// Runs `visage coordinator` until interrupted.
pub fn run(args: CoordinatorArgs) -> Result<()> {
    println!(
        "coordinator listening on port {} (Ctrl-C to stop)",
        args.port
    );
    visage_train::distributed::run_coordinator(args.port)?;
    Ok(())
}
