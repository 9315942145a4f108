//! `visage detect`: run a trained detector over files and directories of images.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use visage_data::{load_rgb, ChannelOrder};
use visage_model::{Detection, TestSpec};
use visage_train::checkpoint::load_for_inference;
use visage_train::infer::{
    combine_passes, detect_batch, prepare_passes, BatchTiming, PreparedImage,
};

use crate::backend::{dispatch, BackendTask, DeviceArg};
use crate::detect_output::Sinks;
use crate::images::collect_images;
use crate::test_time_args::TestTimeArgs;

/// Arguments of `visage detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image files and/or directories (walked recursively for .jpg, .jpeg, .png).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// A checkpoint directory, or a run directory (its best, else last checkpoint); or, with
    /// --config, a weights file: a Pytorch_Retinaface checkpoint (`mobilenet0.25_Final.pth`,
    /// `Resnet50_Final.pth`, `.pth` or safetensors) or a visage `model.safetensors`.
    #[arg(long)]
    weights: PathBuf,
    /// The experiment config describing the model, its input normalisation ([data]) and
    /// post-processing ([test]), e.g. configs/retinaface-mnet.toml (default: the checkpoint's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write detections as one JSON array to this file (at the end).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write detections as JSON lines (one object per image, as it is processed).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Write a WIDER FACE submission (`DIR/<parent folder>/<stem>.txt`) for `visage eval
    /// --predictions`.
    #[arg(long)]
    submission: Option<PathBuf>,
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
    #[command(flatten)]
    test_time: TestTimeArgs,
    /// Images per forward pass (images of one size are batched together).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Compute device: cpu, wgpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceArg,
}

struct Decoded {
    path: PathBuf,
    /// The image and its test passes (one without `[test.tta]`).
    result: Result<(image::RgbImage, Vec<PreparedImage>)>,
}

struct DetectTask {
    args: DetectArgs,
    files: Vec<PathBuf>,
}

/// Decodes and normalises `files` in chunks on rayon's worker threads, sending them in order.
fn spawn_decoder(
    files: Vec<PathBuf>,
    chunk: usize,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
    test: TestSpec,
) -> (Receiver<Decoded>, std::thread::JoinHandle<()>) {
    let (sender, receiver) = sync_channel::<Decoded>(2 * chunk);
    let handle = std::thread::spawn(move || {
        for paths in files.chunks(chunk) {
            let decoded: Vec<Decoded> = paths
                .par_iter()
                .map(|path| Decoded {
                    path: path.clone(),
                    result: load_rgb(path)
                        .map(|image| {
                            let passes = prepare_passes(&image, mean, std, order, &test);
                            (image, passes)
                        })
                        .map_err(anyhow::Error::from),
                })
                .collect();
            for d in decoded {
                if sender.send(d).is_err() {
                    return;
                }
            }
        }
    });
    (receiver, handle)
}

/// Up to `size` decoded images: blocks for the first, then takes what is ready or arrives.
fn next_batch(receiver: &Receiver<Decoded>, size: usize) -> Vec<Decoded> {
    let mut batch = Vec::with_capacity(size);
    while batch.len() < size {
        match receiver.recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    batch
}

impl BackendTask for DetectTask {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let args = self.args;
        let (mut model, config) =
            load_for_inference::<B::InnerBackend>(&args.weights, args.config.as_deref(), &device)
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
        args.test_time.apply(&mut test)?;
        model.set_test_spec(test.clone())?;
        let batch_size = args.batch_size.max(1);
        let mut sinks = Sinks::open(args.json, args.jsonl, args.submission, args.draw)?;

        let started = Instant::now();
        let (receiver, decoder) = spawn_decoder(
            self.files.clone(),
            2 * batch_size,
            config.data.mean,
            config.data.std,
            config.data.channel_order,
            test.clone(),
        );
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
        let mut failures = 0usize;
        let mut done = 0usize;
        let mut timing = BatchTiming::default();
        loop {
            let batch = next_batch(&receiver, batch_size);
            if batch.is_empty() {
                break;
            }
            bar.inc(batch.len() as u64);
            let mut ready = Vec::with_capacity(batch.len());
            let mut passes: Vec<(usize, Option<PreparedImage>)> = Vec::new();
            for decoded in batch {
                match decoded.result {
                    Ok((image, prepared)) => {
                        passes.extend(prepared.into_iter().map(|p| (ready.len(), Some(p))));
                        ready.push((decoded.path, image));
                    }
                    Err(error) => {
                        failures += 1;
                        bar.suspend(|| eprintln!("skipping {}: {error:#}", decoded.path.display()));
                    }
                }
            }
            // One forward pass per input size among the batch's passes; each image's passes
            // are combined in pass order, results kept in file order.
            let mut per_pass: Vec<Vec<Detection>> = vec![Vec::new(); passes.len()];
            let mut pending: Vec<usize> = (0..passes.len()).collect();
            while let Some(&first) = pending.first() {
                let size_of = |i: usize| passes[i].1.as_ref().map(|p| (p.height, p.width));
                let size = size_of(first);
                let (group, rest): (Vec<usize>, Vec<usize>) =
                    pending.iter().partition(|&&i| size_of(i) == size);
                pending = rest;
                let images: Vec<PreparedImage> = group
                    .iter()
                    .map(|&i| passes[i].1.take().expect("each pass runs once"))
                    .collect();
                let (dets, t) = detect_batch(&model, images, &device);
                timing.forward_s += t.forward_s;
                timing.postprocess_s += t.postprocess_s;
                for (i, d) in group.into_iter().zip(dets) {
                    per_pass[i] = d;
                }
            }
            let mut by_image: Vec<Vec<Vec<Detection>>> = vec![Vec::new(); ready.len()];
            for ((image, _), dets) in passes.iter().zip(per_pass) {
                by_image[*image].push(dets);
            }
            let detections: Vec<Vec<Detection>> = by_image
                .into_iter()
                .map(|p| combine_passes(p, &test))
                .collect();
            for ((path, image), dets) in ready.iter().zip(&detections) {
                bar.suspend(|| sinks.write(path, image, dets))?;
                done += 1;
            }
        }
        bar.finish_and_clear();
        decoder.join().expect("the decoder thread does not panic");
        for line in sinks.finish()? {
            println!("{line}");
        }
        let total = started.elapsed().as_secs_f64();
        let model_s = timing.forward_s + timing.postprocess_s;
        if done > 0 {
            eprintln!(
                "{done} images in {total:.1} s ({:.1} img/s); per image: forward {:.1} ms, \
                 post-processing {:.1} ms ({:.1} % of detection time)",
                done as f64 / total,
                1e3 * timing.forward_s / done as f64,
                1e3 * timing.postprocess_s / done as f64,
                100.0 * timing.postprocess_s / model_s.max(1e-12)
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

/// Runs `visage detect`.
pub fn run(args: DetectArgs) -> Result<()> {
    let files = collect_images(&args.images)?;
    if files.is_empty() {
        bail!("no images found in the given paths");
    }
    let device = args.device;
    dispatch(device, DetectTask { args, files })
}
