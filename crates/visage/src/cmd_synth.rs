//! `visage synth`: write the synthetic WIDER FACE set.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use visage_data::synth::{generate, SynthConfig};

/// Arguments of `visage synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Root directory of the generated WIDER FACE layout.
    #[arg(long, default_value = "data/synth")]
    out: PathBuf,
    /// Generator seed: the same seed writes the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training images.
    #[arg(long, default_value_t = 1000)]
    train_images: usize,
    /// Validation images.
    #[arg(long, default_value_t = 200)]
    val_images: usize,
}

/// Runs `visage synth`.
pub fn run(args: SynthArgs) -> Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        train_images: args.train_images,
        val_images: args.val_images,
        ..SynthConfig::default()
    };
    let start = Instant::now();
    let summary = generate(&args.out, &config)
        .with_context(|| format!("generating the synthetic set in {}", args.out.display()))?;
    println!(
        "wrote {} in {:.1} s: train {} images / {} faces, val {} images / {} faces \
         (Easy {}, Medium {}, Hard {}), {} faces marked invalid",
        args.out.display(),
        start.elapsed().as_secs_f64(),
        summary.train_images,
        summary.train_faces,
        summary.val_images,
        summary.val_faces,
        summary.val_easy,
        summary.val_medium,
        summary.val_hard,
        summary.invalid_faces
    );
    Ok(())
}
