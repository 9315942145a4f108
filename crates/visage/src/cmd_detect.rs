//! `visage detect`: run a trained detector over files and directories of images.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use visage_data::load_rgb;
use visage_model::Detection;
use visage_train::checkpoint::load_detector;
use visage_train::infer::{detect_prepared, prepare_image, PreparedImage};

use crate::backend::{dispatch, BackendTask, DeviceArg};
use crate::draw::draw_detections;
use crate::images::collect_images;

/// Arguments of `visage detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image files and/or directories (walked recursively for .jpg, .jpeg, .png).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// A checkpoint directory, or a run directory (its best, else last checkpoint).
    #[arg(long)]
    weights: PathBuf,
    /// Write detections as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write copies of the images with the detections drawn into this directory.
    #[arg(long)]
    draw: Option<PathBuf>,
    /// Minimum score (overrides the config's test.score_threshold).
    #[arg(long)]
    score_threshold: Option<f32>,
    /// NMS IoU threshold (overrides test.nms_threshold).
    #[arg(long)]
    nms_threshold: Option<f32>,
    /// Candidates entering NMS per image (overrides test.pre_nms_top_k).
    #[arg(long)]
    top_k: Option<usize>,
    /// Detections kept per image after NMS (overrides test.max_detections).
    #[arg(long)]
    keep: Option<usize>,
    /// Shrink images whose longer side exceeds this (overrides test.max_size).
    #[arg(long)]
    max_size: Option<u32>,
    /// Compute device: cpu, wgpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceArg,
}

/// One detection in the JSON output.
#[derive(Debug, Serialize)]
struct JsonDetection {
    /// `[x1, y1, x2, y2]` in image pixels.
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
}

/// One image in the JSON output.
#[derive(Debug, Serialize)]
struct JsonImage {
    image: String,
    width: u32,
    height: u32,
    detections: Vec<JsonDetection>,
}

struct Decoded {
    path: PathBuf,
    result: Result<(image::RgbImage, PreparedImage)>,
}

struct DetectTask {
    args: DetectArgs,
    files: Vec<PathBuf>,
}

impl BackendTask for DetectTask {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let args = self.args;
        let (mut model, config) = load_detector::<B::InnerBackend>(&args.weights, &device)
            .with_context(|| format!("loading weights from {}", args.weights.display()))?;
        let mut test = model.test_spec().clone();
        if let Some(v) = args.score_threshold {
            test.score_threshold = v;
        }
        if let Some(v) = args.nms_threshold {
            test.nms_threshold = v;
        }
        if let Some(v) = args.top_k {
            test.pre_nms_top_k = v;
        }
        if let Some(v) = args.keep {
            test.max_detections = v;
        }
        if args.max_size.is_some() {
            test.max_size = args.max_size;
        }
        model.set_test_spec(test.clone())?;
        if let Some(dir) = &args.draw {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }

        // Decode and normalise on a worker thread while the model runs on this one.
        let (sender, receiver) = sync_channel::<Decoded>(4);
        let files = self.files.clone();
        let (mean, std, max_size) = (config.data.mean, config.data.std, test.max_size);
        let decoder = std::thread::spawn(move || {
            for path in files {
                let result = load_rgb(&path)
                    .map(|image| {
                        let prepared = prepare_image(&image, mean, std, max_size);
                        (image, prepared)
                    })
                    .map_err(anyhow::Error::from);
                if sender.send(Decoded { path, result }).is_err() {
                    break;
                }
            }
        });

        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(self.files.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("detect [{bar:28}] {pos}/{len} {per_sec} {msg}")
                    .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut outputs = Vec::with_capacity(self.files.len());
        let mut failures = 0usize;
        for decoded in receiver {
            bar.inc(1);
            let (image, prepared) = match decoded.result {
                Ok(ok) => ok,
                Err(error) => {
                    failures += 1;
                    bar.suspend(|| eprintln!("skipping {}: {error:#}", decoded.path.display()));
                    continue;
                }
            };
            let detections = detect_prepared(&model, prepared, &device);
            if let Some(dir) = &args.draw {
                let out = drawn_path(dir, &decoded.path, outputs.len());
                let mut copy = image.clone();
                let boxes: Vec<_> = detections.iter().map(|d| (d.bbox, d.score)).collect();
                draw_detections(&mut copy, &boxes);
                copy.save(&out)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            if args.json.is_none() {
                bar.suspend(|| print_summary(&decoded.path, &detections));
            }
            outputs.push(JsonImage {
                image: decoded.path.display().to_string(),
                width: image.width(),
                height: image.height(),
                detections: detections
                    .iter()
                    .map(|d| JsonDetection {
                        bbox: d.bbox,
                        score: d.score,
                    })
                    .collect(),
            });
        }
        bar.finish_and_clear();
        decoder.join().expect("the decoder thread does not panic");

        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&outputs)?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            let faces: usize = outputs.iter().map(|o| o.detections.len()).sum();
            println!(
                "{} images, {faces} detections -> {}",
                outputs.len(),
                path.display()
            );
        }
        if failures > 0 {
            bail!(
                "{failures} of {} images could not be read (listed above)",
                self.files.len()
            );
        }
        Ok(())
    }
}

fn print_summary(path: &Path, detections: &[Detection]) {
    println!("{}: {} faces", path.display(), detections.len());
    for d in detections.iter().take(20) {
        let [x1, y1, x2, y2] = d.bbox;
        println!("  {x1:7.1} {y1:7.1} {x2:7.1} {y2:7.1}  {:.3}", d.score);
    }
    if detections.len() > 20 {
        println!("  ... {} more", detections.len() - 20);
    }
}

/// `<dir>/<index>_<file stem>.png`: the index keeps same-named files from different folders
/// apart.
fn drawn_path(dir: &Path, source: &Path, index: usize) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    dir.join(format!("{index:05}_{stem}.png"))
}

/// Runs `visage detect`.
pub fn run(args: DetectArgs) -> Result<()> {
    let files = collect_images(&args.images)?;
    if files.is_empty() {
        bail!("no images found in the given paths");
    }
    let device = args.device;
    dispatch(device, DetectTask { args, files })
}
