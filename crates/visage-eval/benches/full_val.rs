//! Full WIDER FACE val scoring, end to end: read the four ground-truth `.mat` files, parse a
//! 3226-file submission folder, evaluate Easy / Medium / Hard — on one thread and on rayon's
//! default pool. Submissions are the synthetic `good` (seed 1) and `noisy` (seed 2) ones that
//! `tests/python_port.rs` checks against the Python port, written to a temporary folder first
//! (not timed; the first, untimed run warms the page cache). Prints the median of `RUNS` runs
//! and the split into its three stages.
//!
//! `VISAGE_SHARED_DIR=../shared cargo bench -p visage-eval --bench full_val`
//! (prints `skipping: ...` when the real ground truth is not there).

#[path = "../tests/support/synth_submission.rs"]
mod synth;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use visage_eval::{evaluate, read_submission, EvalReport, GroundTruth};

const RUNS: usize = 7;

/// Seconds spent reading the ground truth, reading the submission, evaluating.
fn score_once(gt_dir: &Path, sub_dir: &Path) -> ([Duration; 3], EvalReport) {
    let t0 = Instant::now();
    let gt = GroundTruth::read_dir(gt_dir).unwrap();
    let t1 = Instant::now();
    let sub = read_submission(sub_dir, &gt).unwrap();
    let t2 = Instant::now();
    let report = evaluate(&gt, &sub.predictions);
    let t3 = Instant::now();
    ([t1 - t0, t2 - t1, t3 - t2], report)
}

/// Median total and the per-stage medians, in milliseconds.
fn median_ms(gt_dir: &Path, sub_dir: &Path) -> (f64, [f64; 3], EvalReport) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (_, report) = score_once(gt_dir, sub_dir);
    let mut totals = Vec::with_capacity(RUNS);
    let mut stages: [Vec<f64>; 3] = Default::default();
    for _ in 0..RUNS {
        let (d, r) = score_once(gt_dir, sub_dir);
        assert_eq!(r, report, "scoring is not deterministic");
        totals.push(ms(d[0] + d[1] + d[2]));
        for k in 0..3 {
            stages[k].push(ms(d[k]));
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let s = [
        med(&mut stages[0]),
        med(&mut stages[1]),
        med(&mut stages[2]),
    ];
    (med(&mut totals), s, report)
}

fn main() {
    let Some(shared) = std::env::var_os("VISAGE_SHARED_DIR") else {
        println!("skipping: VISAGE_SHARED_DIR is not set");
        return;
    };
    let gt_dir = PathBuf::from(shared).join("wider/ground_truth");
    if !gt_dir.join("wider_face_val.mat").is_file() {
        println!(
            "skipping: no {}",
            gt_dir.join("wider_face_val.mat").display()
        );
        return;
    }
    let gt = GroundTruth::read_dir(&gt_dir).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    println!(
        "full val end to end (GT .mat + submission + evaluate), median of {RUNS}; default pool {} threads",
        rayon::current_num_threads()
    );
    println!("| submission | detections | threads | total ms | GT ms | parse ms | eval ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, seed) in [("good", 1), ("noisy", 2)] {
        let profile = synth::Profile::parse(name).unwrap();
        let files = synth::generate(&gt, seed, profile);
        let (n, _) = synth::fingerprint(&files);
        let tmp = tempfile::tempdir().unwrap();
        synth::write_dir(tmp.path(), &files).unwrap();
        let mut reports = Vec::new();
        for (label, threads) in [("1", Some(&one)), ("default", None)] {
            let (total, s, report) = match threads {
                Some(pool) => pool.install(|| median_ms(&gt_dir, tmp.path())),
                None => median_ms(&gt_dir, tmp.path()),
            };
            println!(
                "| {name} seed {seed} | {n} | {label} | {total:.1} | {:.1} | {:.1} | {:.1} |",
                s[0], s[1], s[2]
            );
            reports.push(report);
        }
        assert_eq!(reports[0], reports[1], "thread count changed the result");
        println!("{}", reports[0].to_json());
    }
}
