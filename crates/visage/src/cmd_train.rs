//! `visage train`: train a detector from a config file.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use visage_train::{train, ExperimentConfig, TrainOptions};

use crate::backend::{dispatch, BackendTask, DeviceArg};
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
    /// Compute device: cpu, wgpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceArg,
}

struct TrainTask {
    config: ExperimentConfig,
    options: TrainOptions,
    progress: TrainProgress,
}

impl BackendTask for TrainTask {
    type Output = ();

    fn run<B: AutodiffBackend>(mut self, device: B::Device) -> Result<()> {
        let summary = train::<B>(&self.config, &self.options, &device, &mut |event| {
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
    if let Some(dir) = args.run_dir {
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
    };
    let progress = TrainProgress::new(std::io::stderr().is_terminal());
    dispatch(
        args.device,
        TrainTask {
            config,
            options,
            progress,
        },
    )
}
