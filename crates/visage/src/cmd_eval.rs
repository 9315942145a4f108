//! `visage eval`: the official WIDER FACE Easy / Medium / Hard AP, either of a trained
//! detector over a split, or of an existing submission folder.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::Backend;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use visage_data::layout::Split;
use visage_eval::{evaluate, plot_pr_curves, read_submission, EvalReport, GroundTruth};
use visage_infer::{detect_split, evaluate_split, Predictor, RunStats};
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_model::{DetectorFamily, TestSpec, WithFamily};
use visage_train::checkpoint::{inference_model, inference_source, WeightsSource};
use visage_train::ExperimentConfig;

use crate::backend::{dispatch, BackendTask, DeviceArg};
use crate::test_time_args::TestTimeArgs;

/// Which split `--split` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    /// Detect, write the submission and score it.
    Val,
    /// Detect and write the submission only (the test ground truth is not public).
    Test,
}

/// Arguments of `visage eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run the detector of --weights over this split of the config's data root.
    #[arg(long, requires = "weights", conflicts_with_all = ["predictions", "gt"])]
    split: Option<SplitArg>,
    /// A checkpoint directory, or a run directory (its best, else last checkpoint).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Use this WIDER FACE root instead of the checkpoint config's data.root.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Where to write the submission (default: <checkpoint>/../eval-<split>/predictions).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score an existing submission folder (<dir>/<event>/<image>.txt; a folder in which no
    /// file matches a ground-truth image is an error, images without a file are counted and
    /// scored as no detections).
    #[arg(long, requires = "gt")]
    predictions: Option<PathBuf>,
    /// Folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat.
    #[arg(long, requires = "predictions")]
    gt: Option<PathBuf>,
    /// Also write the report as JSON: {"easy": .., "medium": .., "hard": .., "num_faces": ..,
    /// "curves": ..}, readable by `visage plot`.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw the precision-recall curves into this folder: pr_{easy,medium,hard}.{png,svg}.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Name of this run in the plot legend and the JSON (default in the plot: the run folder of
    /// --weights, or the --predictions folder's name).
    #[arg(long)]
    label: Option<String>,
    #[command(flatten)]
    test_time: TestTimeArgs,
    /// With --split: refuse images whose header says width × height is above this, before
    /// decoding them; such an image stops the evaluation (default: the checkpoint config's
    /// data.max_image_pixels).
    #[arg(long, requires = "split", value_parser = clap::value_parser!(u64).range(1..))]
    max_image_pixels: Option<u64>,
    /// With --split: images per forward pass (images of one size are batched together;
    /// files are decoded up to twice this many ahead of the model).
    #[arg(long, default_value_t = 8, requires = "split")]
    batch_size: usize,
    /// Compute device: cpu, wgpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceArg,
}

/// The last component of `path` (`"run"` when it has none).
fn dir_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

/// Prints the report, writes `--json` and draws `--plot`; `default_label` names the curve when
/// `--label` is not given.
fn print_report(report: &EvalReport, args: &EvalArgs, default_label: &str) -> Result<()> {
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json_labelled(args.label.as_deref()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &args.plot {
        let label = args.label.as_deref().unwrap_or(default_label);
        plot_pr_curves(&[(label, report)], dir)
            .with_context(|| format!("drawing the PR curves into {}", dir.display()))?;
        println!(
            "PR curves written to {}/pr_{{easy,medium,hard}}.{{png,svg}}",
            dir.display()
        );
    }
    Ok(())
}

struct SplitTask {
    args: EvalArgs,
    split: Split,
}

impl BackendTask for SplitTask {
    type Output = ();

    fn run<B: KernelAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let weights = self
            .args
            .weights
            .clone()
            .expect("clap requires --weights with --split");
        let (mut config, source) = inference_source(&weights, None)?;
        let WeightsSource::Checkpoint(checkpoint) = source.clone() else {
            unreachable!("without --config the weights are a checkpoint")
        };
        let mut test = config.test.clone();
        self.args.test_time.apply(&mut test)?;
        if let Some(root) = &self.args.data_root {
            config.data.root = root.clone();
        }
        let out = self.args.out.clone().unwrap_or_else(|| {
            checkpoint
                .parent()
                .unwrap_or(&checkpoint)
                .join(format!("eval-{}", self.split.name()))
                .join("predictions")
        });
        config.model.with_family::<B::InnerBackend, _>(SplitFamily {
            task: self,
            config: &config,
            weights: source,
            checkpoint,
            test,
            out,
            device,
        })
    }
}

/// `eval --split`, once the family is known.
struct SplitFamily<'a, B: Backend> {
    task: SplitTask,
    config: &'a ExperimentConfig,
    weights: WeightsSource,
    checkpoint: PathBuf,
    test: TestSpec,
    out: PathBuf,
    device: B::Device,
}

impl<B: KernelBackend> WithFamily<B> for SplitFamily<'_, B> {
    type Output = Result<()>;

    fn run<M: DetectorFamily<B>>(self, spec: &M::Spec) -> Result<()> {
        let SplitTask { args, split } = self.task;
        let (config, out) = (self.config, &self.out);
        let model: M = inference_model(spec, &self.weights, &self.device)?;
        let predictor = Predictor::new(&model, self.test, config.data.input_norm(), &self.device)?
            .with_batch_size(args.batch_size)
            .with_max_image_pixels(
                args.max_image_pixels
                    .unwrap_or(config.data.max_image_pixels),
            );
        let bar = progress_bar(split);
        let progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let root = &config.data.root;
        if split == Split::Test {
            let (predictions, stats) = detect_split(&predictor, root, split, Some(out), progress)?;
            bar.finish_and_clear();
            println!(
                "wrote the test submission for {} images to {} in {:.0} s",
                predictions.num_images(),
                out.display(),
                stats.seconds
            );
            return Ok(());
        }
        let (report, stats) = evaluate_split(&predictor, root, split, Some(out), progress)?;
        bar.finish_and_clear();
        println!(
            "{} split of {}: detections written to {} ({:.0} s, {})",
            split.name(),
            root.display(),
            out.display(),
            stats.seconds,
            per_image(&stats)
        );
        // runs/<name>/best -> <name>
        let run_dir = self.checkpoint.parent().unwrap_or(&self.checkpoint);
        print_report(&report, &args, &dir_name(run_dir))
    }
}

/// A progress bar on a terminal, hidden otherwise.
fn progress_bar(split: Split) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("detect {prefix} [{bar:28}] {pos}/{len} {per_sec}")
            .expect("valid template"),
    );
    bar.set_prefix(split.name());
    bar
}

/// `forward X ms + post-processing Y ms per image`.
fn per_image(stats: &RunStats) -> String {
    let n = stats.images.max(1) as f64;
    format!(
        "forward {:.1} ms + post-processing {:.1} ms per image",
        1e3 * stats.timing.forward_s / n,
        1e3 * stats.timing.postprocess_s / n
    )
}

/// Runs `visage eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if let (Some(pred_dir), Some(gt_dir)) = (&args.predictions, &args.gt) {
        let gt = GroundTruth::read_dir(gt_dir)
            .with_context(|| format!("reading the ground truth in {}", gt_dir.display()))?;
        // A submission matching no ground-truth image is an error (it would score AP 0).
        let submission = read_submission(pred_dir, &gt)?;
        if !submission.missing.is_empty() {
            eprintln!(
                "warning: {} of the ground truth's {} images have no prediction file in {} \
                 (scored as no detections, as the official protocol does)",
                submission.missing.len(),
                gt.num_images(),
                pred_dir.display()
            );
        }
        for (event, image) in submission.missing.iter().take(10) {
            eprintln!("warning: no prediction file {event}/{image}.txt (counted as no detections)");
        }
        if submission.missing.len() > 10 {
            eprintln!(
                "warning: ... and {} more images without a prediction file",
                submission.missing.len() - 10
            );
        }
        for event in &submission.unknown_events {
            eprintln!("warning: {event}/ is not an event of the ground truth (ignored)");
        }
        for (event, file) in submission.unknown_files.iter().take(10) {
            eprintln!("warning: {event}/{file} is not an image's prediction file (ignored)");
        }
        if submission.unknown_files.len() > 10 {
            eprintln!(
                "warning: ... and {} more files that are not prediction files",
                submission.unknown_files.len() - 10
            );
        }
        let report = evaluate(&gt, &submission.predictions);
        return print_report(&report, &args, &dir_name(pred_dir));
    }
    let split = match args.split {
        Some(SplitArg::Val) => Split::Val,
        Some(SplitArg::Test) => Split::Test,
        None => bail!("give either --split with --weights, or --predictions with --gt"),
    };
    let device = args.device;
    dispatch(device, SplitTask { args, split })
}
