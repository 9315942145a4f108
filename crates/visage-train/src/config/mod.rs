//! The experiment config: one self-contained TOML file (`configs/*.toml`) holding the data,
//! model, training and test settings. Unknown keys are errors; value errors name the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_data::{ChannelOrder, CropScale, OnBadImage, DEFAULT_MAX_IMAGE_PIXELS};
use visage_model::{ModelSpec, TestSpec};

use crate::error::TrainError;

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the experiment (used in logs).
    pub name: String,
    /// Where checkpoints, metrics and the resolved config go.
    pub run_dir: PathBuf,
    /// `[data]`.
    pub data: DataSpec,
    /// `[model]`: `architecture = "retinanet"` (the default) or `"retinaface"`, and that
    /// architecture's keys.
    pub model: ModelSpec,
    /// `[train]`.
    pub train: TrainSpec,
    /// `[test]`.
    #[serde(default)]
    pub test: TestSpec,
}

/// `[data]`: where the WIDER-layout data set lives and how training batches are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Root of a WIDER FACE layout (`WIDER_train/`, `WIDER_val/`, `wider_face_split/`,
    /// `eval_tools/ground_truth/`).
    pub root: PathBuf,
    /// If set and `root` has no data, `visage train` generates the synthetic set there first.
    #[serde(default)]
    pub synth: Option<SynthSpec>,
    /// Drop faces marked `invalid` in the annotations.
    #[serde(default = "yes")]
    pub drop_invalid: bool,
    /// Train from a RetinaFace `label.txt` (boxes and five landmarks per face;
    /// Pytorch_Retinaface's `train/label.txt`, which the synthetic set also writes) instead of
    /// `wider_face_split/wider_face_train_bbx_gt.txt` (boxes only). Relative to `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_labels: Option<PathBuf>,
    /// The folder the training annotations' image paths are relative to, relative to `root`
    /// (default `WIDER_train/images`; Pytorch_Retinaface's layout: `train/images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<PathBuf>,
    /// Side of the square training input, pixels.
    pub input_size: u32,
    /// Random square crop side, as a fraction of the image's short edge: `[a, b]` (or
    /// `{ uniform = [a, b] }`) draws it uniformly (FAN: [0.3, 1], the default);
    /// `{ choices = [0.3, 0.45, 0.6, 0.8, 1.0] }` picks one (Pytorch_Retinaface).
    #[serde(default)]
    pub crop_scale: CropScale,
    /// When no drawn crop keeps a face: pad the whole image to a square (mean colour, image at
    /// the top-left; Pytorch_Retinaface) instead of cropping around a face (default false).
    #[serde(default)]
    pub pad_to_square: bool,
    /// SSD zoom-out before the crop: a canvas of `U(1, expand_max_ratio)` × the image filled
    /// with the mean colour, the image at a random offset. 1 = off (default).
    #[serde(default = "one")]
    pub expand_max_ratio: f32,
    /// Probability of the zoom-out when `expand_max_ratio` > 1 (default 0.5).
    #[serde(default = "half")]
    pub expand_prob: f32,
    /// Pytorch_Retinaface's photometric distortion: brightness, contrast, saturation, hue
    /// (default false).
    #[serde(default)]
    pub colour_jitter: bool,
    /// Resize each training crop with nearest, bilinear, area, bicubic or Lanczos-3 drawn at
    /// random (default false: bilinear).
    #[serde(default)]
    pub random_interpolation: bool,
    /// Probability of a horizontal flip.
    #[serde(default = "half")]
    pub flip_prob: f32,
    /// Channel order of the network input, `"rgb"` (default) or `"bgr"` (Pytorch_Retinaface
    /// checkpoints, with mean [104, 117, 123] and std [1, 1, 1]). `mean` and `std` are listed
    /// in this order.
    #[serde(default)]
    pub channel_order: ChannelOrder,
    /// Faces smaller than this (pixels, after resizing) are dropped from the targets.
    #[serde(default = "min_face_px")]
    pub min_face_px: f32,
    /// Per-channel mean subtracted from pixel values in 0..255, in `channel_order`.
    #[serde(default = "imagenet_mean")]
    pub mean: [f32; 3],
    /// Per-channel divisor applied after the mean.
    #[serde(default = "imagenet_std")]
    pub std: [f32; 3],
    /// Decoding / augmentation threads.
    #[serde(default = "two")]
    pub threads: usize,
    /// A training image that is missing, unreadable, empty, not an image, corrupt or over
    /// `max_image_pixels`: `"skip"` (default) replaces it in its batch by the next good image
    /// and reports it at the end of the epoch; `"error"` stops training naming the file.
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// Largest width × height decoded; larger images (by their header) are bad images
    /// (default 50 000 000).
    #[serde(default = "max_image_pixels")]
    pub max_image_pixels: u64,
    /// Batches prepared ahead of the training step (bounded channel), 1..=64 (default 2).
    #[serde(default = "two")]
    pub prefetch_batches: usize,
}

/// `[data.synth]`: the synthetic WIDER FACE set generated when `data.root` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    /// Generator seed.
    #[serde(default)]
    pub seed: u64,
    /// Training images.
    pub train_images: usize,
    /// Validation images.
    pub val_images: usize,
}

/// The optimiser: `"sgd"` (momentum, no dampening, L2 weight decay — the papers' recipe) or
/// `"adamw"` (decoupled weight decay; β = 0.9 / 0.999, ε = 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum.
    #[default]
    Sgd,
    /// AdamW.
    Adamw,
}

/// `[train]`: optimiser, schedule, checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Passes over the training set.
    pub epochs: usize,
    /// Which optimiser.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Images per batch.
    pub batch_size: usize,
    /// Data-parallel replicas on the one device (default 1): each batch is split into this
    /// many shards that run forward, loss and backward on their own threads against forks of
    /// the model, and their gradients are summed for one optimiser step (see
    /// `visage_train::data_parallel`). Each shard normalises its loss by its own positives
    /// and batch norm sees per-shard statistics, as with PyTorch's DDP on that many workers.
    /// For CPU training; keep 1 on a GPU. At most `batch_size`.
    #[serde(default = "one_replica")]
    pub replicas: usize,
    /// Base learning rate (after warm-up, before decay).
    pub lr: f64,
    /// SGD momentum (no dampening, as PyTorch's SGD); unused by AdamW.
    #[serde(default = "momentum")]
    pub momentum: f64,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    #[serde(default = "weight_decay")]
    pub weight_decay: f32,
    /// Linear warm-up length in iterations.
    #[serde(default)]
    pub warmup_iters: usize,
    /// Learning-rate factor at the first warm-up iteration.
    #[serde(default = "warmup_factor")]
    pub warmup_factor: f64,
    /// Epochs at which the learning rate is multiplied by `lr_gamma`.
    #[serde(default)]
    pub lr_steps: Vec<usize>,
    /// Step decay factor.
    #[serde(default = "lr_gamma")]
    pub lr_gamma: f64,
    /// Clip the gradient norm of each parameter tensor to this value, if set.
    #[serde(default)]
    pub grad_clip_norm: Option<f32>,
    /// Seed of the data order and augmentations.
    #[serde(default)]
    pub seed: u64,
    /// Write a metrics line every this many iterations.
    #[serde(default = "log_every")]
    pub log_every: usize,
    /// Evaluate on the val split every this many epochs (0: never); the best checkpoint is the
    /// one with the highest mean of Easy, Medium and Hard AP (else the last one).
    #[serde(default)]
    pub eval_every: usize,
    /// Keep this many per-epoch checkpoints besides `last` and `best` (0: keep all).
    #[serde(default = "keep_checkpoints")]
    pub keep_checkpoints: usize,
}

fn yes() -> bool {
    true
}
fn half() -> f32 {
    0.5
}
fn two() -> usize {
    2
}
fn one_replica() -> usize {
    1
}

fn one() -> f32 {
    1.0
}
fn max_image_pixels() -> u64 {
    DEFAULT_MAX_IMAGE_PIXELS
}
fn min_face_px() -> f32 {
    2.0
}
fn imagenet_mean() -> [f32; 3] {
    [123.675, 116.28, 103.53]
}
fn imagenet_std() -> [f32; 3] {
    [58.395, 57.12, 57.375]
}
fn momentum() -> f64 {
    0.9
}
fn weight_decay() -> f32 {
    1e-4
}
fn warmup_factor() -> f64 {
    0.001
}
fn lr_gamma() -> f64 {
    0.1
}
fn log_every() -> usize {
    10
}
fn keep_checkpoints() -> usize {
    3
}

fn invalid(key: &str, message: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig {
        key: key.to_string(),
        message: message.into(),
    }
}

impl ExperimentConfig {
    /// Reads, parses and validates a config file. Errors name the file and the key (with its
    /// line for parse errors).
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| TrainError::ConfigParse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| match e {
            TrainError::InvalidConfig { key, message } => TrainError::InvalidConfig {
                key,
                message: format!("{message} (in {})", path.display()),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Serialises the fully resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config is always representable in TOML")
    }

    /// Checks value ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.test.validate()?;
        let d = &self.data;
        if d.input_size < 32 {
            return Err(invalid("data.input_size", "must be at least 32"));
        }
        match &d.crop_scale {
            CropScale::Uniform([lo, hi]) => {
                if !(*lo > 0.0 && lo <= hi && *hi <= 1.0) {
                    return Err(invalid(
                        "data.crop_scale",
                        format!("must satisfy 0 < a <= b <= 1, got [{lo}, {hi}]"),
                    ));
                }
            }
            CropScale::Choices(c) => {
                if c.is_empty() || c.iter().any(|f| !(*f > 0.0 && *f <= 1.0)) {
                    return Err(invalid(
                        "data.crop_scale.choices",
                        format!("must be a non-empty list of fractions in (0, 1], got {c:?}"),
                    ));
                }
            }
        }
        if !(d.expand_max_ratio.is_finite() && d.expand_max_ratio >= 1.0) {
            return Err(invalid(
                "data.expand_max_ratio",
                format!(
                    "must be a finite ratio >= 1 (1 = off), got {}",
                    d.expand_max_ratio
                ),
            ));
        }
        if !(0.0..=1.0).contains(&d.expand_prob) {
            return Err(invalid("data.expand_prob", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&d.flip_prob) {
            return Err(invalid("data.flip_prob", "must be in [0, 1]"));
        }
        if d.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(invalid("data.std", "every entry must be > 0"));
        }
        if d.threads == 0 {
            return Err(invalid("data.threads", "must be at least 1"));
        }
        if d.max_image_pixels == 0 {
            return Err(invalid("data.max_image_pixels", "must be at least 1"));
        }
        if !(1..=64).contains(&d.prefetch_batches) {
            return Err(invalid("data.prefetch_batches", "must be in 1..=64"));
        }
        if let Some(s) = &d.synth {
            if s.train_images == 0 || s.val_images == 0 {
                return Err(invalid(
                    "data.synth",
                    "train_images and val_images must be > 0",
                ));
            }
        }
        let t = &self.train;
        if t.epochs == 0 {
            return Err(invalid("train.epochs", "must be > 0"));
        }
        if t.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be > 0"));
        }
        if !(1..=t.batch_size).contains(&t.replicas) {
            return Err(invalid(
                "train.replicas",
                format!(
                    "must be in 1..=batch_size ({}), got {}",
                    t.batch_size, t.replicas
                ),
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(invalid("train.lr", "must be > 0"));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return Err(invalid("train.momentum", "must be in [0, 1)"));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return Err(invalid("train.weight_decay", "must be >= 0"));
        }
        if !(t.warmup_factor > 0.0 && t.warmup_factor <= 1.0) {
            return Err(invalid("train.warmup_factor", "must be in (0, 1]"));
        }
        if !(t.lr_gamma > 0.0 && t.lr_gamma <= 1.0) {
            return Err(invalid("train.lr_gamma", "must be in (0, 1]"));
        }
        if t.lr_steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("train.lr_steps", "must be strictly increasing"));
        }
        if let Some(c) = t.grad_clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(invalid("train.grad_clip_norm", "must be > 0 when set"));
            }
        }
        if t.log_every == 0 {
            return Err(invalid("train.log_every", "must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/quickstart.toml")
    }

    #[test]
    fn the_quickstart_config_loads_and_round_trips() {
        let config = ExperimentConfig::load(&quickstart_path()).unwrap();
        let again: ExperimentConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(config, again);
    }

    /// Whether building the model of `spec` is too slow for a unit test (full-width ResNet-50
    /// and deeper: tens of millions of parameters to initialise); those are validated only.
    fn is_large(spec: &ModelSpec) -> bool {
        matches!(spec.backbone(), visage_model::BackboneSpec::Resnet(r)
            if r.depth >= 50 && r.width_multiplier >= 0.5)
    }

    #[test]
    fn every_shipped_config_loads_round_trips_and_builds() {
        use burn::backend::Flex;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let config = ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                let again: ExperimentConfig = toml::from_str(&config.to_toml())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(config, again, "{}", path.display());
                if !is_large(&config.model) {
                    visage_model::FaceModel::<Flex>::new(
                        &config.model,
                        &config.test,
                        &Default::default(),
                    )
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        // Each detector of the seed papers with its paper recipe and a CPU-sized variant.
        for expected in [
            "quickstart",
            "fan",
            "fan-tiny",
            "srn",
            "srn-tiny",
            "ainnoface",
            "ainnoface-tiny",
            "df2s2",
            "df2s2-tiny",
            "retinaface-mnet",
            "retinaface-r50",
            "retinaface-mnet-tiny",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
    }

    #[test]
    fn retinaface_configs_follow_pytorch_retinaface() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["retinaface-mnet", "retinaface-r50"] {
            let config = ExperimentConfig::load(&dir.join(format!("{name}.toml"))).unwrap();
            let ModelSpec::RetinaFace(spec) = &config.model else {
                panic!("{name} is not a RetinaFace config")
            };
            assert_eq!(
                spec.min_sizes,
                vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]]
            );
            assert_eq!(spec.variances, [0.1, 0.2]);
            assert_eq!(spec.assign.match_iou, 0.35);
            assert_eq!(spec.loss.neg_pos_ratio, 7.0);
            assert_eq!(spec.loss.box_weight, 2.0);
            assert_eq!(config.data.channel_order, ChannelOrder::Bgr);
            assert_eq!(config.data.mean, [104.0, 117.0, 123.0]);
            assert_eq!(config.data.std, [1.0; 3]);
            let t = &config.test;
            assert_eq!(
                (
                    t.score_threshold,
                    t.pre_nms_top_k,
                    t.nms_threshold,
                    t.max_detections
                ),
                (0.02, 5000, 0.4, 750)
            );
            assert_eq!(t.max_size, None, "detect.py runs at the original size");
        }
    }

    #[test]
    fn an_unknown_key_names_the_file_and_line() {
        let text = std::fs::read_to_string(quickstart_path())
            .unwrap()
            .replace("[train]\n", "[train]\nlearning_rate = 0.1\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let err = ExperimentConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(err.contains("learning_rate"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let text = std::fs::read_to_string(quickstart_path()).unwrap();
        let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
        config.data.crop_scale = CropScale::Uniform([0.8, 0.5]);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("data.crop_scale"), "{err}");
        let mut config: ExperimentConfig = toml::from_str(&text).unwrap();
        config.train.lr_steps = vec![5, 3];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("train.lr_steps"), "{err}");
    }

    #[test]
    fn data_augmentation_keys_parse_round_trip_and_name_their_key() {
        let base = std::fs::read_to_string(quickstart_path()).unwrap();
        let quick: ExperimentConfig = toml::from_str(&base).unwrap();
        assert_eq!(quick.data.crop_scale, CropScale::Uniform([0.3, 1.0]));
        assert!(!quick.data.colour_jitter && !quick.data.pad_to_square);
        assert!(!quick.data.random_interpolation);
        assert_eq!(quick.data.expand_max_ratio, 1.0);
        assert_eq!(quick.data.channel_order, ChannelOrder::Rgb);
        let with = |lines: &str| {
            let text = base.replace("crop_scale = [0.3, 1.0]", lines);
            assert_ne!(text, base);
            toml::from_str::<ExperimentConfig>(&text)
        };
        let c = with(
            "crop_scale = { choices = [0.3, 0.45, 0.6, 0.8, 1.0] }\ncolour_jitter = true\n\
             pad_to_square = true\nexpand_max_ratio = 4.0\nrandom_interpolation = true\n\
             channel_order = \"bgr\"",
        )
        .unwrap();
        assert_eq!(
            c.data.crop_scale,
            CropScale::Choices(vec![0.3, 0.45, 0.6, 0.8, 1.0])
        );
        assert_eq!(c.data.channel_order, ChannelOrder::Bgr);
        assert!(c.data.colour_jitter && c.data.pad_to_square && c.data.random_interpolation);
        c.validate().unwrap();
        let again: ExperimentConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(c, again);
        let u = with("crop_scale = { uniform = [0.5, 1.0] }").unwrap();
        assert_eq!(u.data.crop_scale, CropScale::Uniform([0.5, 1.0]));
        for bad in [
            "crop_scale = { uniform = [0.5, 1.0], choices = [1.0] }",
            "crop_scale = { range = [0.5, 1.0] }",
            "crop_scale = [0.5]",
            "channel_order = \"rbg\"",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
        for (line, key) in [
            ("crop_scale = { choices = [] }", "data.crop_scale.choices"),
            (
                "crop_scale = { choices = [0.5, 1.5] }",
                "data.crop_scale.choices",
            ),
            ("expand_max_ratio = 0.5", "data.expand_max_ratio"),
            (
                "expand_max_ratio = 2.0\nexpand_prob = 2.0",
                "data.expand_prob",
            ),
        ] {
            let err = with(line).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn bad_image_and_prefetch_keys_default_parse_and_validate() {
        let base = std::fs::read_to_string(quickstart_path()).unwrap();
        let quick: ExperimentConfig = toml::from_str(&base).unwrap();
        assert_eq!(quick.data.on_bad_image, OnBadImage::Skip);
        assert_eq!(quick.data.max_image_pixels, 50_000_000);
        assert_eq!(quick.data.prefetch_batches, 2);
        let with = |lines: &str| {
            let text = base.replace("crop_scale = [0.3, 1.0]", lines);
            assert_ne!(text, base);
            toml::from_str::<ExperimentConfig>(&text)
        };
        let c = with(
            "crop_scale = [0.3, 1.0]
on_bad_image = \"error\"
max_image_pixels = 1000
             prefetch_batches = 4",
        )
        .unwrap();
        assert_eq!(c.data.on_bad_image, OnBadImage::Error);
        assert_eq!(
            (c.data.max_image_pixels, c.data.prefetch_batches),
            (1000, 4)
        );
        c.validate().unwrap();
        let again: ExperimentConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(c, again);
        for bad in [
            "on_bad_image = \"ignore\"",
            "on_bad_image = true",
            "max_image_pixels = -1",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
        for (line, key) in [
            ("max_image_pixels = 0", "data.max_image_pixels"),
            ("prefetch_batches = 0", "data.prefetch_batches"),
            ("prefetch_batches = 65", "data.prefetch_batches"),
        ] {
            let err = with(line).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
    }
}
