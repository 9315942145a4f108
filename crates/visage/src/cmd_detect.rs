//! `visage detect`: run a trained detector over files and directories of images.
//!
//! A file that cannot be used — unreadable, not an image, truncated, or over the pixel limit
//! (`--max-image-pixels`, else the experiment config's `[data] max_image_pixels`, checked on
//! the header before decoding) — is reported on stderr naming the file and why, the other
//! files are still detected and written, and the command then exits non-zero.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use burn::prelude::Backend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use visage_data::{BadImageKind, DataError};
use visage_infer::{Predictor, RunStats};
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_model::{DetectorFamily, TestSpec, WithFamily};
use visage_train::checkpoint::{inference_model, inference_source, WeightsSource};
use visage_train::ExperimentConfig;

use crate::backend::{dispatch, BackendTask, DeviceArg};
use crate::detect_output::Sinks;
use crate::images::collect_images;
use crate::mesh_output::{fit_detections, MeshWriter};
use crate::test_time_args::{PostprocessArgs, TestTimeArgs};

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
    /// With --draw: draw only detections scoring at least this (the JSON, JSON-lines and
    /// submission outputs keep every detection above --score-threshold).
    #[arg(long, default_value_t = 0.5, requires = "draw")]
    draw_threshold: f32,
    /// RetinaFace with a mesh branch (`[model.mesh]`): write each face's mesh into this
    /// directory (`<index>_<stem>_face<k>.obj`: vertices in image pixels plus depth, vertex
    /// colours, the template's triangles; `..._fit.png`: the anchor crop beside the rendered
    /// mesh). With --draw, the meshes' wireframes are drawn too.
    #[arg(long)]
    meshes: Option<PathBuf>,
    /// Faces scoring at least this get a mesh (--meshes, and the wireframes of --draw).
    #[arg(long, default_value_t = 0.5)]
    mesh_threshold: f32,
    /// Refuse images whose header says width × height is above this, before decoding them
    /// (default: the config's data.max_image_pixels, 50 megapixels unless set).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_image_pixels: Option<u64>,
    #[command(flatten)]
    postprocess: PostprocessArgs,
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

impl DetectArgs {
    /// The config's `[test]` with the flags applied (errors name the `test.*` key).
    fn test_spec(&self, config: &ExperimentConfig) -> Result<TestSpec> {
        let mut test = config.test.clone();
        self.postprocess.apply(&mut test);
        if self.max_size.is_some() {
            test.max_size = self.max_size;
        }
        self.test_time.apply(&mut test)?;
        Ok(test)
    }
}

struct DetectTask {
    args: DetectArgs,
    files: Vec<PathBuf>,
}

impl BackendTask for DetectTask {
    type Output = ();

    fn run<B: KernelAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let (config, weights) = inference_source(&self.args.weights, self.args.config.as_deref())?;
        let test = self.args.test_spec(&config)?;
        config
            .model
            .with_family::<B::InnerBackend, _>(DetectFamily {
                task: self,
                config: &config,
                weights,
                test,
                device,
            })
    }
}

/// The detection of a run, once the family is known.
struct DetectFamily<'a, B: Backend> {
    task: DetectTask,
    config: &'a ExperimentConfig,
    weights: WeightsSource,
    test: TestSpec,
    device: B::Device,
}

impl<B: KernelBackend> WithFamily<B> for DetectFamily<'_, B> {
    type Output = Result<()>;

    fn run<M: DetectorFamily<B>>(self, spec: &M::Spec) -> Result<()> {
        let DetectTask { args, files } = self.task;
        if args.meshes.is_some() && !self.config.model.has_mesh_branch() {
            bail!(
                "--meshes needs a RetinaFace with a mesh branch ([model.mesh] in the config); \
                 this model has none"
            );
        }
        let model: M = inference_model(spec, &self.weights, &self.device)?;
        let predictor = Predictor::new(
            &model,
            self.test,
            self.config.data.input_norm(),
            &self.device,
        )?
        .with_batch_size(args.batch_size)
        .with_max_image_pixels(
            args.max_image_pixels
                .unwrap_or(self.config.data.max_image_pixels),
        );
        let wants_meshes = args.meshes.is_some() || args.draw.is_some();
        let mut mesh_writer = args.meshes.map(MeshWriter::open).transpose()?;
        let mesh_threshold = args.mesh_threshold;
        let draw = args.draw.map(|dir| (dir, args.draw_threshold));
        let mut sinks = Sinks::open(args.json, args.jsonl, args.submission, draw)?;
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(files.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("detect [{bar:28}] {pos}/{len} {per_sec} {msg}")
                    .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let total = files.len();
        let stats = predictor.run(files, |detected| -> Result<()> {
            bar.inc(1);
            match &detected.image {
                Ok(image) => {
                    let fits = if wants_meshes {
                        fit_detections(&model, &detected.detections, mesh_threshold)
                    } else {
                        Vec::new()
                    };
                    bar.suspend(|| -> Result<()> {
                        sinks.write(&detected.path, image, &detected.detections, &fits)?;
                        if let Some(writer) = &mut mesh_writer {
                            writer.write(
                                &model,
                                &detected.path,
                                image,
                                &detected.detections,
                                &fits,
                            )?;
                        }
                        Ok(())
                    })
                }
                Err(error) => {
                    // The error names the file.
                    let hint = match error {
                        DataError::BadImage {
                            kind: BadImageKind::TooLarge,
                            ..
                        } => " (raise the limit with --max-image-pixels)",
                        _ => "",
                    };
                    bar.suspend(|| eprintln!("skipping {error:#}{hint}"));
                    Ok(())
                }
            }
        })?;
        bar.finish_and_clear();
        for line in sinks.finish()? {
            println!("{line}");
        }
        if let Some(writer) = mesh_writer {
            println!("{}", writer.summary());
        }
        print_timing(&stats);
        if stats.failures > 0 {
            bail!(
                "{} of {total} images could not be used (listed above)",
                stats.failures
            );
        }
        Ok(())
    }
}

/// `N images in T s (R img/s); per image: forward .. ms, post-processing .. ms (..%)`.
fn print_timing(stats: &RunStats) {
    let done = stats.images;
    if done == 0 {
        return;
    }
    let timing = stats.timing;
    let model_s = timing.forward_s + timing.postprocess_s;
    eprintln!(
        "{done} images in {:.1} s ({:.1} img/s); per image: forward {:.1} ms, \
         post-processing {:.1} ms ({:.1} % of detection time)",
        stats.seconds,
        done as f64 / stats.seconds,
        1e3 * timing.forward_s / done as f64,
        1e3 * timing.postprocess_s / done as f64,
        100.0 * timing.postprocess_s / model_s.max(1e-12)
    );
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
