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
    /// Make every image exactly WIDTHxHEIGHT pixels (e.g. 640x480 for detection
    /// benchmarks) instead of sides of 320 to 512.
    #[arg(long, value_parser = parse_size)]
    image_size: Option<[u32; 2]>,
}

/// `640x480` as `[640, 480]`.
fn parse_size(text: &str) -> Result<[u32; 2], String> {
    let parse = |side: &str| side.trim().parse::<u32>().ok();
    match text.split_once(['x', 'X']) {
        Some((w, h)) => match (parse(w), parse(h)) {
            (Some(w), Some(h)) => Ok([w, h]),
            _ => Err(format!("`{text}`: expected WIDTHxHEIGHT, e.g. 640x480")),
        },
        None => Err(format!("`{text}`: expected WIDTHxHEIGHT, e.g. 640x480")),
    }
}

/// Runs `visage synth`.
pub fn run(args: SynthArgs) -> Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        train_images: args.train_images,
        val_images: args.val_images,
        image_size: args.image_size,
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
