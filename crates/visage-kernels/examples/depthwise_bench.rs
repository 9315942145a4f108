//! Times the depthwise 3×3 kernel on the depthwise layers of RetinaFace's MobileNet-0.25 at
//! one image size (batch 1), layer by layer, on the current Rayon pool.
//!
//! `cargo run --example depthwise_bench --features visage/wgpu -- 480 640 20`
//! (`RAYON_NUM_THREADS=1` for one thread).

mod common;

use std::time::Instant;

use visage_kernels::flex::depthwise::Depthwise3x3;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("h w iterations"))
        .collect();
    let (h, w, iterations) = match args[..] {
        [h, w, n] => (h, w, n),
        _ => (480, 640, 20),
    };
    let mut total = 0.0;
    let mut total_macs = 0.0;
    for (channels, scale, stride) in common::MOBILENET_025_DEPTHWISE {
        let d = Depthwise3x3 {
            channels,
            input: [h.div_ceil(scale), w.div_ceil(scale)],
            stride,
        };
        let [oh, ow] = d.output();
        let input: Vec<f32> = (0..channels * d.input[0] * d.input[1])
            .map(|i| (i % 17) as f32 * 0.1)
            .collect();
        let weight: Vec<f32> = (0..channels * 9).map(|i| (i % 5) as f32 * 0.2).collect();
        let bias: Vec<f32> = vec![0.5; channels];
        let mut output = vec![0.0; channels * oh * ow];
        let mut times = Vec::new();
        for _ in 0..iterations {
            let start = Instant::now();
            d.run(&input, &weight, Some(&bias), None, &mut output);
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        let macs = (channels * oh * ow * 9) as f64;
        println!(
            "C={channels:3} {:>3}x{:<3} stride {stride}: {ms:.3} ms, {:.1} GFLOP/s",
            d.input[0],
            d.input[1],
            2.0 * macs / ms / 1e6
        );
        total += ms;
        total_macs += macs;
    }
    println!(
        "all depthwise layers: {total:.2} ms, {:.1} GFLOP/s",
        2.0 * total_macs / total / 1e6
    );
}
