//! Times anchor generation and max-IoU assignment at training scale: RetinaFace's anchors on a
//! 640×640 input (strides 8/16/32, sizes {16, 32}/{64, 128}/{256, 512}: 16,800 anchors) against
//! 20 random faces, and FAN's P3..P7 (6 per location: 51,150 anchors). Median of 21 runs, ms.
//! `cargo run -p visage-anchors --example assign_bench` (dev profile: this crate at opt-level 1).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use visage_anchors::{AnchorGenerator, LevelSpec, MaxIouAssigner};

const RUNS: usize = 21;

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut out = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        out = std::hint::black_box(f());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], out)
}

fn main() -> Result<(), visage_anchors::AnchorError> {
    let retina = AnchorGenerator::new(
        [(8, [16.0, 32.0]), (16, [64.0, 128.0]), (32, [256.0, 512.0])]
            .into_iter()
            .map(|(stride, sizes)| LevelSpec {
                stride,
                sizes: sizes.to_vec(),
                aspect_ratios: vec![1.0],
            })
            .collect(),
    )?;
    let fan = AnchorGenerator::new(
        (0..5)
            .map(|l| LevelSpec {
                stride: 8 << l,
                sizes: (0..3)
                    .map(|k| 16.0 * 2f32.powf((3 * l + k) as f32 / 3.0))
                    .collect(),
                aspect_ratios: vec![1.0, 1.5],
            })
            .collect(),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let faces: Vec<[f32; 4]> = (0..20)
        .map(|_| {
            let s = 10.0 + rng.random::<f32>().powi(2) * 300.0;
            let (x, y) = (rng.random::<f32>() * 600.0, rng.random::<f32>() * 600.0);
            [x, y, x + s, y + 1.2 * s]
        })
        .collect();
    for (name, g, assigner) in [
        (
            "retinaface",
            &retina,
            MaxIouAssigner::new(0.35, 0.35, true, 0.2)?,
        ),
        ("fan", &fan, MaxIouAssigner::new(0.5, 0.4, true, 0.0)?),
    ] {
        let (t_gen, n) = median_ms(|| g.generate_for_image(640, 640).len());
        let anchors = g.generate_for_image(640, 640).boxes;
        let (t_assign, pos) = median_ms(|| assigner.assign(&anchors, &faces).num_positive());
        println!(
            "{name:>10}: {n} anchors × {} faces | generate {t_gen:.3} ms | assign {t_assign:.3} ms \
             ({pos} positive) | median of {RUNS}",
            faces.len()
        );
    }
    Ok(())
}
