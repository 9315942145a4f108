//! Writes a deterministic full-size synthetic WIDER FACE val submission (one file per image of
//! the ground truth, sorted by score) — the inputs on which `tests/python_port.rs` compares
//! this crate with the Python port of the official evaluation.
//!
//! ```text
//! cargo run --release -p visage-eval --example make_submission -- \
//!     <ground_truth_dir> <out_dir> <seed> <good|noisy>
//! ```
//!
//! `<ground_truth_dir>` holds `wider_face_val.mat` and `wider_{easy,medium,hard}_val.mat`;
//! `<out_dir>` must be empty or absent. Prints the number of images and detections and the
//! fingerprint recorded in `tests/fixtures/python_port.json`. The profiles are described in
//! `tests/support/synth_submission.rs`.

#[path = "../tests/support/synth_submission.rs"]
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

fn run(args: &[String]) -> Result<(), String> {
    let [gt_dir, out, seed, profile] = args else {
        return Err(
            "usage: make_submission <ground_truth_dir> <out_dir> <seed> <good|noisy>".into(),
        );
    };
    let seed: u64 = seed
        .parse()
        .map_err(|_| format!("seed {seed:?} is not an unsigned integer"))?;
    let profile = synth::Profile::parse(profile)
        .ok_or_else(|| format!("profile {profile:?} is not `good` or `noisy`"))?;
    let out = PathBuf::from(out);
    if std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty", out.display()));
    }
    let gt =
        visage_eval::GroundTruth::read_dir(&PathBuf::from(gt_dir)).map_err(|e| e.to_string())?;
    let files = synth::generate(&gt, seed, profile);
    synth::write_dir(&out, &files).map_err(|e| format!("{}: {e}", out.display()))?;
    let (detections, fingerprint) = synth::fingerprint(&files);
    println!(
        "wrote {} images, {detections} detections to {} (profile {profile:?}, seed {seed}, fingerprint {fingerprint})",
        files.len(),
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_submission: {e}");
            ExitCode::FAILURE
        }
    }
}
