//! Deterministic full-size synthetic WIDER FACE submissions, written as the Python port of the
//! official evaluation can read them. Shared (`#[path]`) by `examples/make_submission.rs`,
//! `tests/python_port.rs` and `benches/full_val.rs`, so the numbers recorded from the port in
//! `tests/fixtures/python_port.json` are re-checked on exactly the files the port read.
//!
//! Files: `<dir>/<event>/<image>.txt`, line 1 the image name, line 2 the count, then one
//! `x y w h score` line per detection, single spaces, no trailing space, `\n` endings, numbers in
//! Rust's shortest round-trip decimal form (so Python's `float()` and Rust's `parse::<f64>()`
//! read the same f64). Each file is sorted by score, descending (stable): the port does not
//! sort, the official protocol does, and only sorted files make the two comparable. Scores lie
//! in [0, 1] (the port's min/max start at 1 / 0), widths and heights are ≥ 0.
//!
//! Profiles (one ChaCha8 stream seeded with `seed`, images in ground-truth order):
//! - `good`: every face found with probability 0.92 (0.62 under 10 px), jittered ±3 % in
//!   position and size, scores 0.30–0.99 rising with face size (4 decimals); 5 % duplicates at a
//!   lower score; 0–4 false positives per image scoring 0.30–0.70. About 12 detections / image.
//! - `noisy`: faces found with probability 0.75, jittered ±15 %, 30 % of faces also get a
//!   near-miss box shifted 30–60 % of its size; background false positives fill each image to
//!   250–350 detections; integer coordinates, some zero widths / heights, scores quantised to
//!   k/1000 (many ties, exact 0 and 1, thresholds hit exactly).

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use visage_eval::GroundTruth;

/// How a synthetic detector behaves (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A decent detector: jittered faces, few false positives.
    Good,
    /// A weak, over-eager detector: ~300 detections per image, tied scores.
    Noisy,
}

impl Profile {
    /// `"good"` or `"noisy"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "good" => Some(Profile::Good),
            "noisy" => Some(Profile::Noisy),
            _ => None,
        }
    }
}

/// One image's submission file: `(event, image, text)`.
pub type SubmissionFile = (String, String, String);

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Jittered copy of `b = [x, y, w, h]`: position ± `pos` · size, size × (1 ± `size`).
fn jitter(rng: &mut ChaCha8Rng, b: [f64; 4], pos: f64, size: f64) -> [f64; 4] {
    let [x, y, w, h] = b;
    let mut r = || rng.random::<f64>() * 2.0 - 1.0;
    [
        x + r() * pos * w,
        y + r() * pos * h,
        (w * (1.0 + r() * size)).max(0.0),
        (h * (1.0 + r() * size)).max(0.0),
    ]
}

fn good_image(rng: &mut ChaCha8Rng, faces: &[[f64; 4]], extent: f64) -> Vec<[f64; 5]> {
    let mut dets = Vec::new();
    for &f in faces {
        let side = f[2].min(f[3]);
        let miss = if side < 10.0 { 0.38 } else { 0.08 };
        if rng.random_bool(miss) {
            continue;
        }
        let quality = (side / 40.0).clamp(0.05, 1.0).powf(0.3);
        let score = 0.3 + 0.69 * quality * rng.random::<f64>().sqrt();
        let [x, y, w, h] = jitter(rng, f, 0.03, 0.03);
        dets.push([x, y, w, h, score]);
        if rng.random_bool(0.05) {
            let [x, y, w, h] = jitter(rng, f, 0.08, 0.08);
            dets.push([x, y, w, h, score * 0.8]);
        }
    }
    for _ in 0..rng.random_range(0..=4) {
        let s = 8.0 + rng.random::<f64>() * 120.0;
        let (x, y) = (rng.random::<f64>() * extent, rng.random::<f64>() * extent);
        dets.push([x, y, s, s * 1.2, 0.3 + 0.4 * rng.random::<f64>()]);
    }
    for d in &mut dets {
        for v in &mut d[..4] {
            *v = round_to(*v, 0.01);
        }
        d[4] = round_to(d[4], 1e-4);
    }
    dets
}

/// A score k/1000 (as k), skewed high for `bias` < 1 and low for `bias` > 1.
fn score(rng: &mut ChaCha8Rng, bias: f64) -> f64 {
    (rng.random::<f64>().powf(bias) * 1000.0).round()
}

fn noisy_image(rng: &mut ChaCha8Rng, faces: &[[f64; 4]], extent: f64) -> Vec<[f64; 5]> {
    let mut dets = Vec::new();
    for &f in faces {
        if rng.random_bool(0.75) {
            let [x, y, w, h] = jitter(rng, f, 0.15, 0.15);
            let s = score(rng, 0.5);
            dets.push([x, y, w, h, s]);
        }
        if rng.random_bool(0.3) {
            let shift = 0.3 + 0.3 * rng.random::<f64>();
            let (sx, sy) = if rng.random_bool(0.5) {
                (shift, 0.0)
            } else {
                (0.0, shift)
            };
            let s = score(rng, 1.0);
            dets.push([f[0] + sx * f[2], f[1] + sy * f[3], f[2], f[3], s]);
        }
    }
    let total = rng.random_range(250..=350usize).max(dets.len());
    while dets.len() < total {
        let w = (1.0 + 199.0 * rng.random::<f64>().powi(2)) * f64::from(!rng.random_bool(0.01));
        let h = (w * (0.8 + 0.6 * rng.random::<f64>())) * f64::from(!rng.random_bool(0.01));
        let x = rng.random::<f64>() * (extent + 20.0) - 20.0;
        let y = rng.random::<f64>() * (extent + 20.0) - 20.0;
        let s = score(rng, 2.0);
        dets.push([x, y, w, h, s]);
    }
    for d in &mut dets {
        for v in &mut d[..4] {
            *v = v.round();
        }
        d[4] /= 1000.0;
    }
    dets
}

/// Renders one file (sorted by score, descending, stable).
fn render(image: &str, mut dets: Vec<[f64; 5]>) -> String {
    use std::fmt::Write as _;
    dets.sort_by(|a, b| b[4].total_cmp(&a[4]));
    let mut text = String::with_capacity(32 + 32 * dets.len());
    let _ = writeln!(text, "{image}\n{}", dets.len());
    for [x, y, w, h, s] in dets {
        // `+ 0.0` turns a -0 from rounding into 0.
        let _ = writeln!(
            text,
            "{} {} {} {} {}",
            x + 0.0,
            y + 0.0,
            w + 0.0,
            h + 0.0,
            s + 0.0
        );
    }
    text
}

/// The submission files of every ground-truth image, in ground-truth order.
pub fn generate(gt: &GroundTruth, seed: u64, profile: Profile) -> Vec<SubmissionFile> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(gt.num_images());
    for e in &gt.events {
        for img in &e.images {
            let faces: Vec<[f64; 4]> = img.boxes.iter().map(|b| b.map(f64::from)).collect();
            let extent = faces
                .iter()
                .map(|f| (f[0] + f[2]).max(f[1] + f[3]))
                .fold(1024.0, f64::max);
            let dets = match profile {
                Profile::Good => good_image(&mut rng, &faces, extent),
                Profile::Noisy => noisy_image(&mut rng, &faces, extent),
            };
            out.push((e.name.clone(), img.name.clone(), render(&img.name, dets)));
        }
    }
    out
}

/// Writes the files under `dir` (creating folders), in parallel.
pub fn write_dir(dir: &Path, files: &[SubmissionFile]) -> std::io::Result<()> {
    files.par_iter().try_for_each(|(event, image, text)| {
        let folder = dir.join(event);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("{image}.txt")), text)
    })
}

/// Number of detections and the 64-bit FNV-1a hash of all file texts in order, as a
/// 16-digit hex string (recorded beside the port's numbers to pin the generator's output).
pub fn fingerprint(files: &[SubmissionFile]) -> (usize, String) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0;
    for (event, image, text) in files {
        for b in [event.as_bytes(), image.as_bytes(), text.as_bytes()] {
            for &c in b {
                h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        n += text.lines().count() - 2;
    }
    (n, format!("{h:016x}"))
}
