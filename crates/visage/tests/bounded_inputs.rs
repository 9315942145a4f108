//! Bounded, honest inputs through the CLI: `detect` refuses images over the pixel limit (the
//! flag, else the config's `[data] max_image_pixels`) and truncated ones, naming them, runs
//! the others and exits non-zero; `--draw-threshold` thins the drawing only; `eval` refuses a
//! submission matching no ground-truth image and warns of images without a prediction file.
//! The detector is a MobileNet-0.25 RetinaFace with the shared formula weights (no training).

mod common;

use common::{failed, ok, stderr, visage};

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use visage_eval::{EventGt, GroundTruth, ImageGt};
use visage_model::RETINAFACE_MNET;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn texture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y);
        Rgb([(x * 5) as u8, (y * 3) as u8 ^ (v as u8), (v * 3) as u8])
    })
}

/// `small.png` (the RetinaFace fixture image, 163 × 117), `big.png` (1000 × 700 grey, a few
/// KB on disk) and `cut.jpg` (a JPEG cut in its scan data) in `dir`.
fn images(dir: &Path) -> [PathBuf; 3] {
    let small = dir.join("small.png");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retinaface_image.png"),
        &small,
    )
    .unwrap();
    let big = dir.join("big.png");
    image::GrayImage::new(1000, 700).save(&big).unwrap();
    let cut = dir.join("cut.jpg");
    texture(160, 120).save(&cut).unwrap();
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    [small, big, cut]
}

fn json_images(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn detect_refuses_over_limit_and_truncated_images_and_runs_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let weights = common::formula_mnet_checkpoint(root, &RETINAFACE_MNET);
    let [small, big, cut] = images(root);
    let stock = repo().join("configs/retinaface-mnet.toml");
    let limited = root.join("limited.toml");
    let text = std::fs::read_to_string(&stock).unwrap();
    std::fs::write(
        &limited,
        text.replacen("[data]\n", "[data]\nmax_image_pixels = 500000\n", 1),
    )
    .unwrap();
    let detect = |config: &Path, extra: &[&str], json: &str| {
        let mut args = vec![
            "detect",
            "--config",
            config.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--json",
            json,
            small.to_str().unwrap(),
            big.to_str().unwrap(),
            cut.to_str().unwrap(),
        ];
        args.extend(extra);
        visage(&args, root)
    };
    // The limit from the flag, then from the config: both bad files named, the good one
    // written, a non-zero exit.
    for (config, extra, json) in [
        (&stock, &["--max-image-pixels", "500000"][..], "flag.json"),
        (&limited, &[][..], "config.json"),
    ] {
        let err = failed(&detect(config, extra, json));
        assert!(
            err.contains("big.png")
                && err.contains("1000×700")
                && err.contains("max_image_pixels = 500000")
                && err.contains("--max-image-pixels"),
            "{err}"
        );
        assert!(
            err.contains("cut.jpg") && err.contains("truncated"),
            "{err}"
        );
        assert!(err.contains("2 of 3 images could not be used"), "{err}");
        let written = json_images(&root.join(json));
        assert_eq!(written.len(), 1);
        assert!(written[0]["image"].as_str().unwrap().ends_with("small.png"));
    }
    // The flag overrides the config: the big image is detected, the truncated one still not.
    let err = failed(&detect(
        &limited,
        &["--max-image-pixels", "1000000"],
        "raised.json",
    ));
    assert!(!err.contains("big.png") && err.contains("cut.jpg"), "{err}");
    assert_eq!(json_images(&root.join("raised.json")).len(), 2);
    let err = failed(&detect(&stock, &["--max-image-pixels", "0"], "zero.json"));
    assert!(err.contains("--max-image-pixels"), "{err}");
}

#[test]
fn draw_threshold_thins_the_drawing_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let weights = common::formula_mnet_checkpoint(root, &RETINAFACE_MNET);
    let [small, ..] = images(root);
    let config = repo().join("configs/retinaface-mnet.toml");
    let detect = |name: &str, threshold: Option<&str>| {
        let json = format!("{name}.json");
        let mut args = vec![
            "detect",
            "--config",
            config.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--json",
            &json,
            "--draw",
            name,
            small.to_str().unwrap(),
        ];
        if let Some(t) = threshold {
            args.extend(["--draw-threshold", t]);
        }
        ok(&visage(&args, root));
        let drawn = image::open(root.join(name).join("00000_small.png")).unwrap();
        (json_images(&root.join(json)), drawn.into_rgb8())
    };
    let (all_json, all) = detect("all", Some("0"));
    let (none_json, none) = detect("none", Some("1.01"));
    let (default_json, default) = detect("default", None);
    // The written detections do not depend on the drawing threshold.
    assert_eq!(all_json, none_json);
    assert_eq!(all_json, default_json);
    let scores: Vec<f64> = all_json[0]["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.iter().any(|&s| s < 0.5),
        "the config's 0.02 keeps low scores"
    );
    // Above every score nothing is drawn; the default (0.5) leaves the low scores out.
    let original = image::open(&small).unwrap().into_rgb8();
    assert_eq!(none, original);
    assert_ne!(all, original);
    assert_ne!(default, all);
    let err = failed(&visage(
        &[
            "detect",
            "--weights",
            "w",
            "--draw-threshold",
            "0.3",
            "x.png",
        ],
        root,
    ));
    assert!(err.contains("--draw"), "{err}");
}

/// Writes a two-event, three-image ground truth into `dir`.
fn write_gt(dir: &Path) {
    let img = |n: &str| ImageGt {
        name: n.into(),
        boxes: vec![[10, 10, 40, 40]],
        attributes: vec![Default::default()],
        easy: vec![1],
        medium: vec![1],
        hard: vec![1],
    };
    GroundTruth {
        events: vec![
            EventGt {
                name: "0--Parade".into(),
                images: vec![img("0_Parade_1"), img("0_Parade_2")],
            },
            EventGt {
                name: "1--Handshaking".into(),
                images: vec![img("1_Handshaking_1")],
            },
        ],
    }
    .write_dir(dir)
    .unwrap();
}

fn write_prediction(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let name = path.file_stem().unwrap().to_str().unwrap();
    std::fs::write(path, format!("{name}\n1\n10 10 30 30 0.9\n")).unwrap();
}

#[test]
fn eval_refuses_a_submission_matching_nothing_and_warns_of_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_gt(&root.join("gt"));
    let eval = |pred: &str| visage(&["eval", "--predictions", pred, "--gt", "gt"], root);
    // An empty folder.
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let err = failed(&eval("empty"));
    assert!(
        err.contains("no prediction file matches the ground truth")
            && err.contains("holds no .txt file")
            && err.contains("<event>/<image>.txt"),
        "{err}"
    );
    // One level too high: the files are in run/pred/<event>/<image>.txt.
    for (event, image) in [("0--Parade", "0_Parade_1"), ("0--Parade", "0_Parade_2")] {
        write_prediction(&root.join(format!("run/pred/{event}/{image}.txt")));
    }
    let err = failed(&eval("run"));
    assert!(
        err.contains("2 .txt files found") && err.contains("ground truth's 3 images"),
        "{err}"
    );
    assert!(
        err.contains("1 folder level too deep") && err.contains("pass run/pred instead"),
        "{err}"
    );
    // The right folder, one image without a file: scored, with a warning counting it.
    let output = eval("run/pred");
    let out = ok(&output);
    assert!(out.contains("Easy") || out.contains("easy"), "{out}");
    let err = stderr(&output);
    assert!(
        err.contains("warning: 1 of the ground truth's 3 images have no prediction file"),
        "{err}"
    );
}
