//! `visage train`: train a detector from a config file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use visage_kernels::KernelAutodiffBackend;
use visage_train::distributed::NodeSpec;
use visage_train::{check_devices, train, ExperimentConfig, TrainOptions};

use crate::backend::{dispatch_devices_in, DeviceArg, DevicesTask, Precision};
use crate::train_progress::TrainProgress;

/// Arguments of `visage train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The experiment config (TOML), e.g. configs/quickstart.toml.
    #[arg(long)]
    config: PathBuf,
    /// Continue the run in the config's run_dir from its newest good checkpoint (`last`, or
    /// what a killed run left: `last.old`, a newer `epoch-N`), exactly where it stopped.
    #[arg(long)]
    resume: bool,
    /// Start over even if the run directory holds an earlier run (deletes its checkpoints).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Write the run somewhere other than the config's run_dir.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Build the model, load one batch, run one step, and stop (no checkpoint).
    #[arg(long)]
    dry_run: bool,
    /// Override `train.batch_size` (e.g. `--dry-run --batch-size 2` to check a full-size
    /// recipe on a machine without the memory for its batch). The resolved config in the run
    /// directory records the value used.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Stop after this many iterations in total, with a checkpoint to `--resume` from.
    #[arg(long)]
    max_iterations: Option<usize>,
    /// Compute device: cpu, wgpu, cuda, cuda:N (default: the config's train.devices, else
    /// cpu).
    #[arg(long, conflicts_with = "devices")]
    device: Option<DeviceArg>,
    /// Train on several devices of one backend, one model replica each, each batch split
    /// over them (overrides train.devices): e.g. cuda:0,cuda:1,cuda:2,cuda:3.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<DeviceArg>,
    /// Machines in a multi-machine run (as torchrun's --nnodes); start one `visage train`
    /// per machine with the same config.
    #[arg(long, default_value_t = 1)]
    nnodes: u32,
    /// This machine's rank in 0..nnodes; rank 0 starts the coordinator (unless
    /// --no-coordinator) and writes the checkpoints and logs.
    #[arg(long, default_value_t = 0)]
    node_rank: u32,
    /// HOST:PORT of the coordinator: rank 0's address and a free port on it.
    #[arg(long, default_value = "127.0.0.1:29500")]
    master_addr: String,
    /// The host name or address the other machines reach this one at (default: the host of
    /// --master-addr on rank 0, else this machine's host name).
    #[arg(long)]
    node_addr: Option<String>,
    /// The port this machine serves its gradient exchanges on (default: --master-addr's port
    /// + 1 + rank).
    #[arg(long)]
    node_port: Option<u16>,
    /// The coordinator runs elsewhere (`visage coordinator --port P`): rank 0 does not start
    /// one.
    #[arg(long)]
    no_coordinator: bool,
    /// The float type training computes in on a GPU backend: f32, f16 (CUDA; wgpu where the
    /// adapter has shader-f16) or bf16 (CUDA). Everything is in that type — weights,
    /// activations, gradients, checkpoints — with no f32 master copy or loss scaling.
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
    /// Seconds a device or machine waits for the others before the run stops with an error
    /// (a killed or crashed peer, a lost network).
    #[arg(long, default_value_t = 600)]
    peer_timeout: u64,
}

impl TrainArgs {
    /// The machines of the run, from the multi-machine flags.
    fn nodes(&self) -> Result<Option<NodeSpec>> {
        if self.nnodes <= 1 && self.node_rank == 0 {
            return Ok(None);
        }
        let probe = NodeSpec {
            nnodes: self.nnodes,
            node_rank: self.node_rank,
            master_addr: self.master_addr.clone(),
            node_host: String::new(),
            data_port: 0,
            external_coordinator: self.no_coordinator,
        };
        let master_port = probe.master_port()?;
        let master_host = self.master_addr.rsplit_once(':').map_or("", |(h, _)| h);
        let node_host = match &self.node_addr {
            Some(host) => host.clone(),
            None if self.node_rank == 0 => master_host.to_string(),
            None => host_name()?,
        };
        let node = NodeSpec {
            node_host,
            data_port: self.node_port.unwrap_or_else(|| {
                master_port
                    .wrapping_add(1)
                    .wrapping_add(self.node_rank as u16)
            }),
            ..probe
        };
        node.validate()?;
        Ok(Some(node))
    }
}

/// This machine's host name (`/etc/hostname`, else `$HOSTNAME`).
fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    match name {
        Some(name) => Ok(name),
        None => bail!("cannot tell this machine's host name: pass --node-addr HOST"),
    }
}

struct TrainTask {
    config: ExperimentConfig,
    options: TrainOptions,
    progress: TrainProgress,
}

impl DevicesTask for TrainTask {
    type Output = ();

    fn run<B: KernelAutodiffBackend>(mut self, devices: Vec<B::Device>) -> Result<()> {
        let summary = train::<B>(&self.config, &self.options, &devices, &mut |event| {
            self.progress.show(event)
        })?;
        if let Some(loss) = summary.last_loss {
            println!(
                "trained {} epochs ({} iterations) in {:.0} s, {:.1} images/s; last loss {}",
                summary.epochs_done,
                summary.iterations,
                summary.seconds,
                summary.images_per_second,
                loss.describe()
            );
        }
        println!("run directory: {}", summary.run_dir.display());
        Ok(())
    }
}

/// Runs `visage train`.
pub fn run(args: TrainArgs) -> Result<()> {
    // Its errors name the file (and the line or key).
    let mut config = ExperimentConfig::load(&args.config)?;
    if let Some(dir) = args.run_dir.clone() {
        config.run_dir = dir;
    }
    if let Some(batch_size) = args.batch_size {
        config.train.batch_size = batch_size;
        config
            .validate()
            .with_context(|| format!("--batch-size {batch_size} with {}", args.config.display()))?;
    }
    let options = TrainOptions {
        resume: args.resume,
        overwrite: args.overwrite,
        max_iterations: if args.dry_run {
            Some(1)
        } else {
            args.max_iterations
        },
        dry_run: args.dry_run,
        nodes: args.nodes()?,
        peer_timeout: Some(Duration::from_secs(args.peer_timeout.max(1))),
    };
    let devices = match (&args.device, args.devices.is_empty()) {
        (Some(device), _) => vec![*device],
        (None, false) => args.devices.clone(),
        (None, true) if !config.train.devices.is_empty() => config.train.devices.clone(),
        (None, true) => vec![DeviceArg::Cpu],
    };
    check_devices(&devices).map_err(|e| anyhow::anyhow!("--devices: {e}"))?;
    if !args.devices.is_empty() {
        // Recorded in the resolved config, as --batch-size is.
        config.train.devices = devices.clone();
    }
    let progress = TrainProgress::new(std::io::stderr().is_terminal());
    dispatch_devices_in(
        &devices,
        args.precision,
        TrainTask {
            config,
            options,
            progress,
        },
    )
}
