//! Times RetinaFace-MobileNet-0.25 inference on the CPU (Flex): forward, then `detect.py`'s
//! post-processing, for `benches/RESULTS.md` beside `tools/bench/retinaface_torch.py`.
//!
//! ```text
//! cargo run -p visage-model --example retinaface_bench -- 480 640 [iterations]
//! RAYON_NUM_THREADS=1 cargo run -p visage-model --example retinaface_bench -- 480 640
//! ```
//! The batch norms are folded into their convolutions, as `visage detect` runs the model
//! (`VISAGE_BENCH_UNFOLDED=1` keeps them). Weights: the parity formula (so every prior scores ≈ 0.4–0.7 and post-processing sees the
//! worst case, 5000 candidates into NMS). Input: a seeded random image, batch 1. Everything
//! runs on one of rayon's worker threads, as `visage detect` runs the model
//! (`VISAGE_BENCH_OUTSIDE_POOL=1`: from the main thread, each parallel kernel handed to the
//! pool).

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use visage_backbone::weights::{formula_state_dict, formula_values};
use visage_model::{
    postprocess, DetectorFamily, RetinaFace, RetinaFaceNet, RetinaFaceSpec, TestSpec,
    RETINAFACE_MNET, RETINAFACE_STRIDES,
};

fn main() {
    if std::env::var_os("VISAGE_BENCH_OUTSIDE_POOL").is_some() {
        bench();
    } else {
        visage_kernels::on_pool_worker(bench);
    }
}

fn bench() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let h: usize = args.first().map_or(480, |v| v.parse().expect("height"));
    let w: usize = args.get(1).map_or(640, |v| v.parse().expect("width"));
    let iterations: usize = args.get(2).map_or(10, |v| v.parse().expect("iterations"));
    let device = Default::default();
    // Pytorch_Retinaface's `cfg_mnet`, batch norm frozen as at inference.
    let spec: RetinaFaceSpec = toml::from_str(
        "out_channels = 64\nfrozen_bn = true\n[backbone.mobilenet]\nfrozen_bn = true\n",
    )
    .expect("spec");
    let model = RetinaFace::<Flex>::new(&spec, &device).expect("model");
    let dict = formula_state_dict::<Flex, _>(&model.net, &RETINAFACE_MNET);
    let model = model
        .load_reference_weights(&dict)
        .expect("formula weights");
    // As `visage detect` runs it (`VISAGE_BENCH_UNFOLDED=1`: the norms as trained).
    let folded = std::env::var_os("VISAGE_BENCH_UNFOLDED").is_none();
    let model = if folded { model.fold_norms() } else { model };
    let pixels: Vec<f32> = formula_values("input", &[1, 3, h, w])
        .into_iter()
        .map(|v| v * 50.0)
        .collect();
    let input = Tensor::<Flex, 4>::from_data(TensorData::new(pixels, [1, 3, h, w]), &device);
    // detect.py's settings.
    let test = TestSpec {
        score_threshold: 0.02,
        pre_nms_top_k: 5000,
        nms_threshold: 0.4,
        max_detections: 750,
        ..TestSpec::default()
    };
    let (mut forward, mut post, mut host_side, mut kept) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for i in 0..iterations + 2 {
        let t = Instant::now();
        let out = model.forward(input.clone());
        // Flex runs eagerly: the outputs exist when forward returns.
        let f = t.elapsed().as_secs_f64() * 1e3;
        // Post-processing = the predictions on the host (priors, softmax, copies) + the
        // selection (threshold, top-k, decoding, NMS): `model.postprocess` in two timed parts.
        let t = Instant::now();
        let predictions = model.predictions(&out);
        let host = t.elapsed().as_secs_f64() * 1e3;
        let dets = postprocess(&predictions, &test);
        let p = t.elapsed().as_secs_f64() * 1e3;
        kept = dets[0].len();
        if i >= 2 {
            forward.push(f);
            post.push(p);
            host_side.push(host);
        }
    }
    let stages = stage_times(&model.net, &input, iterations);
    forward.sort_by(f64::total_cmp);
    post.sort_by(f64::total_cmp);
    host_side.sort_by(f64::total_cmp);
    let (f, p) = (forward[forward.len() / 2], post[post.len() / 2]);
    let host_ms = host_side[host_side.len() / 2];
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "visage/Flex RetinaFace-mnet {h}x{w} threads={threads} norms folded={folded}: forward {f:.1} ms + post-processing \
         {p:.1} ms = {:.1} ms/image (median of {iterations}); post-processing {:.1} %; {kept} kept",
        f + p,
        100.0 * p / (f + p)
    );
    println!(
        "post-processing (medians): predictions on the host {host_ms:.1} ms, selection and NMS {:.1} ms",
        p - host_ms
    );
    println!(
        "stages (medians): backbone {:.1} ms, FPN {:.1} ms, SSH {:.1} ms, heads {:.1} ms",
        stages[0], stages[1], stages[2], stages[3]
    );
}

/// Median time of the network's four stages: backbone, FPN, the three SSH modules, the three
/// heads with their flattening, in milliseconds.
fn stage_times(net: &RetinaFaceNet<Flex>, input: &Tensor<Flex, 4>, iterations: usize) -> [f64; 4] {
    let mut samples: [Vec<f64>; 4] = Default::default();
    for _ in 0..iterations {
        let t = Instant::now();
        let levels = net
            .body
            .forward(input.clone())
            .select(&RETINAFACE_STRIDES)
            .expect("levels");
        samples[0].push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let pyramid = net.fpn.forward(levels).into_tensors();
        samples[1].push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let features: Vec<_> = [&net.ssh1, &net.ssh2, &net.ssh3]
            .into_iter()
            .zip(pyramid)
            .map(|(ssh, x)| ssh.forward(x))
            .collect();
        samples[2].push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for (heads, per_anchor) in [
            (&net.class_head, 2),
            (&net.bbox_head, 4),
            (&net.landmark_head, 10),
        ] {
            let maps = heads
                .iter()
                .zip(&features)
                .map(|(h, f)| h.forward(f.clone()))
                .collect();
            let _ = visage_heads::flatten_levels(maps, per_anchor);
        }
        samples[3].push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    })
}
