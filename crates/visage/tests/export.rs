//! `visage export` through the CLI, checked in tract (a pure-Rust ONNX runtime): a
//! Pytorch_Retinaface MobileNet-0.25 checkpoint (the shared formula weights) exported with
//! `--postprocess --raw-input` and run on the uint8 pixels of the fixture image gives
//! `detect.py`'s detections (the fixture `visage detect` is also held to: same count, box
//! IoU above 0.99, score within 1e-3, landmarks within 0.05 px, up to tied scores); without
//! `--postprocess` the raw
//! outputs have one row per prior at any input size; bad options are errors naming them.

mod common;

use common::{failed, ok, visage};

use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::prelude::*;
use visage_backbone::weights::StateDict;
use visage_export::proto::ModelProto;
use visage_model::RETINAFACE_MNET;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn export(dir: &Path, weights: &Path, out: &str, extra: &[&str]) -> PathBuf {
    let config = repo().join("configs/retinaface-mnet.toml");
    let mut args = vec![
        "export",
        "--config",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let stdout = ok(&visage(&args, dir));
    assert!(stdout.contains("wrote"), "{stdout}");
    dir.join(out)
}

/// Runs the ONNX file at `path` in tract on one input; outputs as (dims, f32 values).
fn run(path: &Path, input: Tensor) -> Vec<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(
            0,
            InferenceFact::dt_shape(input.datum_type(), input.shape()),
        )
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    model
        .run(tvec!(input.into()))
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.cast_to::<f32>().unwrap();
            (
                t.shape().to_vec(),
                t.to_plain_array_view::<f32>()
                    .unwrap()
                    .iter()
                    .copied()
                    .collect(),
            )
        })
        .collect()
}

fn metadata(path: &Path) -> Vec<(String, String)> {
    let model = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    model
        .metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

#[test]
fn an_exported_retinaface_with_postprocessing_gives_detect_py_detections() {
    let dir = tempfile::tempdir().unwrap();
    let weights = common::formula_mnet_checkpoint(dir.path(), &RETINAFACE_MNET);
    let onnx = export(
        dir.path(),
        &weights,
        "face.onnx",
        &["--postprocess", "--raw-input"],
    );
    let meta = metadata(&onnx);
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("metadata {k}"))
    };
    assert_eq!(get("visage.family"), "retinaface");
    assert!(
        get("visage.config").contains("[model"),
        "the config as TOML"
    );
    assert!(get("visage.input").contains("uint8"));
    assert!(get("visage.outputs").contains("landmarks [K, 5, 2]"));

    let image = image::open(fixture("retinaface_image.png"))
        .unwrap()
        .to_rgb8();
    let (w, h) = (image.width() as usize, image.height() as usize);
    let pixels = tract_ndarray::Array4::from_shape_vec((1, h, w, 3), image.into_raw()).unwrap();
    let out = run(&onnx, pixels.into_dyn().into());
    assert_eq!(out.len(), 4, "boxes, scores, landmarks, batch_index");
    let (boxes, scores, landmarks, batch) = (&out[0].1, &out[1].1, &out[2].1, &out[3].1);
    let k = scores.len();
    assert_eq!(out[0].0, vec![k, 4]);
    assert_eq!(out[2].0, vec![k, 5, 2]);
    assert!(batch.iter().all(|&b| b == 0.0));

    let expected = StateDict::read(fixture("retinaface_image_detect.safetensors")).unwrap();
    let dets: Vec<f32> = expected.to_f32("dets").unwrap().to_vec().unwrap();
    let landms: Vec<f32> = expected.to_f32("landms").unwrap().to_vec().unwrap();
    assert!(dets.len() / 5 > 100, "the fixture exercises NMS");
    // The formula weights leave inactive regions where many priors score exactly alike, and
    // tract's convolutions round differently from Burn's in the last bit, so which of two tied
    // priors a stable sort puts first (and NMS keeps) can differ. Every detection must match
    // one to one, except those standing in for a tied prior (and what NMS then suppresses
    // differently): an unmatched expected detection needs an unmatched one of ours with its
    // score (within 1e-3), and at most 2 % may be unmatched.
    let mut used = vec![false; k];
    let mut unmatched = Vec::new();
    for (d, marks) in dets.chunks(5).zip(landms.chunks(10)) {
        let best = (0..k)
            .filter(|&i| !used[i] && (scores[i] - d[4]).abs() < 1e-3)
            .filter(|&i| iou(&boxes[4 * i..4 * i + 4], d) > 0.99)
            .max_by(|&i, &j| {
                iou(&boxes[4 * i..4 * i + 4], d).total_cmp(&iou(&boxes[4 * j..4 * j + 4], d))
            });
        let Some(best) = best else {
            unmatched.push(d[4]);
            continue;
        };
        used[best] = true;
        for (a, b) in landmarks[10 * best..10 * best + 10].iter().zip(marks) {
            assert!((a - b).abs() < 0.05, "landmark {a} vs {b}");
        }
    }
    let expected_count = dets.len() / 5;
    assert!(
        unmatched.len() * 50 <= expected_count,
        "{} of {expected_count} detections unmatched",
        unmatched.len()
    );
    assert!(
        k.abs_diff(expected_count) <= unmatched.len(),
        "{k} vs {expected_count}"
    );
    let ours_unmatched: Vec<f32> = (0..k).filter(|&i| !used[i]).map(|i| scores[i]).collect();
    for s in &unmatched {
        assert!(
            ours_unmatched.iter().any(|o| (o - s).abs() < 1e-3),
            "expected score {s} has no tied stand-in among {ours_unmatched:?}"
        );
    }
    // Best first.
    assert!(scores.windows(2).all(|p| p[0] >= p[1]));
}

#[test]
fn a_raw_export_has_one_row_per_prior_at_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let weights = common::formula_mnet_checkpoint(dir.path(), &RETINAFACE_MNET);
    let onnx = export(dir.path(), &weights, "raw.onnx", &["--opset", "13"]);
    for (h, w) in [(64, 96), (75, 50)] {
        let input = tract_ndarray::Array4::<f32>::from_elem((2, 3, h, w), 0.5);
        let out = run(&onnx, input.into_dyn().into());
        // Outputs in Pytorch_Retinaface's order: box deltas, class logits, landmark deltas.
        // Priors: two per cell on strides 8, 16, 32 (cells: ceil of each halving).
        let cells = |s: usize| {
            let (mut fh, mut fw) = (h, w);
            let mut stride = 1;
            while stride < s {
                fh = fh.div_ceil(2);
                fw = fw.div_ceil(2);
                stride *= 2;
            }
            fh * fw
        };
        let priors = 2 * (cells(8) + cells(16) + cells(32));
        let dims: Vec<Vec<usize>> = out.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(
            dims,
            vec![vec![2, priors, 4], vec![2, priors, 2], vec![2, priors, 10]],
            "{h}x{w}"
        );
    }
}

#[test]
fn bad_export_options_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let weights = common::formula_mnet_checkpoint(dir.path(), &RETINAFACE_MNET);
    let config = repo().join("configs/retinaface-mnet.toml");
    let base = [
        "export",
        "--config",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        "x.onnx",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        failed(&visage(&args, dir.path()))
    };
    let err = with(&["--opset", "9"]);
    assert!(err.contains("--opset") && err.contains("13 to 21"), "{err}");
    let err = with(&["--postprocess", "--score-threshold", "1.5"]);
    assert!(err.contains("test.score_threshold"), "{err}");
    let err = with(&["--keep", "5"]);
    assert!(err.contains("need --postprocess"), "{err}");
    let err = failed(&visage(
        &[
            "export",
            "--weights",
            weights.to_str().unwrap(),
            "--out",
            "x.onnx",
        ],
        dir.path(),
    ));
    assert!(err.contains("--config"), "{err}");
    assert!(!dir.path().join("x.onnx").exists());
}
