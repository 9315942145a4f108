// NMS benchmark: visage's centre-grid NMS against burn-vision's SIMD all-pairs kernel (Flex).
//
// 10k face-like boxes: 200 "faces" (sides 8–308 px, skewed small, in a 1024² image), each with
// ~50 jittered detections, uniform random scores — like a detector's pre-NMS output.
// Prints the median of `RUNS` runs in milliseconds. Run with
// `cargo bench -p visage-boxes --bench nms` (release) or, without a release build of Burn,
// `cargo run -p visage-boxes --example nms_bench` (dev profile: Burn at opt-level 3, this
// crate at opt-level 1).

use burn::backend::Flex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use visage_boxes::{nms, nms_burn_vision, BoxXyxy};

const RUNS: usize = 21;

fn clustered(rng: &mut ChaCha8Rng, n: usize) -> (Vec<BoxXyxy>, Vec<f32>) {
    let faces: Vec<[f32; 3]> = (0..(n / 50).max(1))
        .map(|_| {
            let s = 8.0 + rng.random::<f32>().powi(2) * 300.0;
            [
                rng.random::<f32>() * 1024.0,
                rng.random::<f32>() * 1024.0,
                s,
            ]
        })
        .collect();
    let mut boxes = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    for _ in 0..n {
        let [cx, cy, s] = faces[rng.random_range(0..faces.len())];
        let jx = (rng.random::<f32>() - 0.5) * 0.4 * s;
        let jy = (rng.random::<f32>() - 0.5) * 0.4 * s;
        let w = s * (0.8 + 0.4 * rng.random::<f32>());
        let h = s * (1.0 + 0.5 * rng.random::<f32>());
        let (x, y) = (cx + jx, cy + jy);
        boxes.push([x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0]);
        scores.push(rng.random::<f32>());
    }
    (boxes, scores)
}

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut kept = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        kept = std::hint::black_box(f());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], kept)
}

fn main() {
    let device = Default::default();
    for (n, thr) in [(10_000, 0.4), (10_000, 0.5), (10_000, 0.7), (2_000, 0.4)] {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let (boxes, scores) = clustered(&mut rng, n);
        let ours = nms(&boxes, &scores, thr);
        let theirs = nms_burn_vision::<Flex>(&boxes, &scores, thr, &device);
        assert_eq!(
            ours, theirs,
            "the two NMS disagree at n = {n}, threshold = {thr}"
        );
        let (t_ours, kept) = median_ms(|| nms(&boxes, &scores, thr).len());
        let (t_bv, _) = median_ms(|| nms_burn_vision::<Flex>(&boxes, &scores, thr, &device).len());
        println!(
            "n = {n:>6}, iou > {thr}: kept {kept:>5} | visage grid {t_ours:8.3} ms | \
             burn-vision {t_bv:8.3} ms (median of {RUNS})"
        );
    }
}
