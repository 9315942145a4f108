//! `visage export`: write a trained detector as an ONNX model, with or without the
//! post-processing (decoding, threshold, top-k, NMS, cap) inside the graph.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::backend::Flex;
use clap::Args;
use visage_data::ChannelOrder;
use visage_export::{
    export_model, write_model, ExportFamily, ExportOptions, InputConvention, InputNormalisation,
    PlaneOrder, DEFAULT_OPSET,
};
use visage_model::{DetectorFamily, ModelSpec, RetinaFace, RetinaNet, Srn, TestSpec};
use visage_train::checkpoint::{inference_model, inference_source, WeightsSource};
use visage_train::ExperimentConfig;

use crate::test_time_args::PostprocessArgs;

/// Arguments of `visage export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A checkpoint directory, or a run directory (its best, else last checkpoint); or, with
    /// --config, a weights file (a visage `model.safetensors`, or a Pytorch_Retinaface
    /// checkpoint for `architecture = "retinaface"`).
    #[arg(long)]
    weights: PathBuf,
    /// The experiment config describing the model, its input normalisation ([data]) and
    /// post-processing ([test]) (default: the checkpoint's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
    /// Put decoding, the score threshold, top-k, NonMaxSuppression and the detection cap in
    /// the graph: outputs `boxes [K, 4]`, `scores [K]`, `landmarks [K, 5, 2]` (RetinaFace) and
    /// `batch_index [K]`. Without it the outputs are the raw per-anchor predictions.
    #[arg(long)]
    postprocess: bool,
    /// ONNX opset of the graph (13 to 21).
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    opset: i64,
    /// Take uint8 RGB pixels `[N, H, W, 3]` and normalise inside the graph, instead of
    /// float32 `[N, 3, H, W]` normalised as the config's [data] says.
    #[arg(long)]
    raw_input: bool,
    /// With --postprocess: `--score-threshold`, `--nms-threshold`, `--top-k`, `--keep`
    /// override the config's [test].
    #[command(flatten)]
    thresholds: PostprocessArgs,
}

impl ExportArgs {
    /// The config's `[test]` with the flags applied, validated (errors name the key).
    fn test_spec(&self, config: &ExperimentConfig) -> Result<TestSpec> {
        let mut test = config.test.clone();
        self.thresholds.apply(&mut test);
        test.validate()?;
        Ok(test)
    }
}

/// Runs `visage export`.
pub fn run(args: ExportArgs) -> Result<()> {
    if args.thresholds.any() && !args.postprocess {
        bail!(
            "--score-threshold, --nms-threshold, --top-k and --keep set the post-processing \
             in the graph: they need --postprocess"
        );
    }
    let (config, weights) = inference_source(&args.weights, args.config.as_deref())?;
    let postprocess = if args.postprocess {
        let test = args.test_spec(&config)?;
        if test.tta.is_some() || test.short_side.is_some() || test.max_size.is_some() {
            eprintln!(
                "note: test.tta, test.short_side and test.max_size are not part of the graph: \
                 resize images before running it"
            );
        }
        Some(test)
    } else {
        None
    };
    let data = &config.data;
    let norm = InputNormalisation {
        mean: data.mean,
        std: data.std,
        order: match data.channel_order {
            ChannelOrder::Rgb => PlaneOrder::Rgb,
            ChannelOrder::Bgr => PlaneOrder::Bgr,
        },
    };
    let options = ExportOptions {
        opset: args.opset,
        input: if args.raw_input {
            InputConvention::RawRgb(norm)
        } else {
            InputConvention::Normalised(norm)
        },
        postprocess,
        metadata: vec![
            (
                "visage.family".into(),
                config.model.architecture().name().into(),
            ),
            ("visage.config".into(), config.to_toml()),
        ],
    };
    let device = Default::default();
    let model = match &config.model {
        ModelSpec::RetinaNet(spec) => {
            export::<RetinaNet<Flex>>(inference_model(spec, &weights, &device)?, &options)
        }
        ModelSpec::RetinaFace(spec) => {
            export::<RetinaFace<Flex>>(inference_model(spec, &weights, &device)?, &options)
        }
        ModelSpec::Srn(spec) => {
            export::<Srn<Flex>>(inference_model(spec, &weights, &device)?, &options)
        }
    }
    .with_context(|| format!("exporting {}", source_name(&weights)))?;
    let bytes = write_model(&model, &args.out)?;
    println!(
        "wrote {} ({:.1} MB, opset {}, {} graph, {} input)",
        args.out.display(),
        bytes as f64 / 1e6,
        args.opset,
        if args.postprocess {
            "detections"
        } else {
            "raw-output"
        },
        if args.raw_input {
            "uint8 RGB [N, H, W, 3]"
        } else {
            "float32 [N, 3, H, W]"
        }
    );
    Ok(())
}

fn export<M: DetectorFamily<Flex> + ExportFamily>(
    model: M,
    options: &ExportOptions,
) -> Result<visage_export::proto::ModelProto, visage_export::ExportError> {
    export_model::<Flex, M>(&model, options)
}

fn source_name(weights: &WeightsSource) -> String {
    match weights {
        WeightsSource::Checkpoint(dir) => dir.display().to_string(),
        WeightsSource::File(path) => path.display().to_string(),
    }
}
