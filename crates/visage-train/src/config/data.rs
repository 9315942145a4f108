//! `[data]`: where the WIDER-layout data set lives and how training batches are made. The
//! batch pipeline's keys are the loader's ([`LoaderConfig`]): their defaults and rules are
//! the loader's own, reported here at `data.<key>`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use visage_data::loader::defaults;
use visage_data::{ChannelOrder, CropScale, DataError, LoaderConfig, OnBadImage, SelectionPolicy};
use visage_infer::InputNorm;

use super::{invalid, TrainSpec};
use crate::error::TrainError;

/// `[data]`.
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
    #[serde(default = "drop_invalid")]
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
    #[serde(default = "defaults::expand_max_ratio")]
    pub expand_max_ratio: f32,
    /// Probability of the zoom-out when `expand_max_ratio` > 1 (default 0.5).
    #[serde(default = "defaults::expand_prob")]
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
    #[serde(default = "defaults::flip_prob")]
    pub flip_prob: f32,
    /// Channel order of the network input, `"rgb"` (default) or `"bgr"` (Pytorch_Retinaface
    /// checkpoints, with mean [104, 117, 123] and std [1, 1, 1]). `mean` and `std` are listed
    /// in this order.
    #[serde(default)]
    pub channel_order: ChannelOrder,
    /// Faces smaller than this (pixels, after resizing) are dropped from the targets.
    #[serde(default = "defaults::min_face_px")]
    pub min_face_px: f32,
    /// Per-channel mean subtracted from pixel values in 0..255, in `channel_order`.
    #[serde(default = "defaults::mean")]
    pub mean: [f32; 3],
    /// Per-channel divisor applied after the mean.
    #[serde(default = "defaults::std")]
    pub std: [f32; 3],
    /// Decoding / augmentation threads (at least 1).
    #[serde(default = "defaults::threads")]
    pub threads: usize,
    /// A training image that is missing, unreadable, empty, not an image, corrupt, truncated
    /// or over `max_image_pixels`: `"skip"` (default) replaces it in its batch by the next good
    /// image and reports it at the end of the epoch; `"error"` stops training naming the file.
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// Largest width × height decoded; larger images (by their header) are bad images
    /// (default 50 000 000).
    #[serde(default = "defaults::max_image_pixels")]
    pub max_image_pixels: u64,
    /// Batches prepared ahead of the training step (bounded channel), 1..=64 (default 2).
    #[serde(default = "defaults::prefetch_batches")]
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

/// `data.drop_invalid`: the annotation selection's default (drop faces marked invalid).
fn drop_invalid() -> bool {
    SelectionPolicy::default().drop_invalid
}

impl DataSpec {
    /// The loader settings of a training run with `train`'s batch size and seed.
    pub fn loader_config(&self, train: &TrainSpec) -> LoaderConfig {
        LoaderConfig {
            batch_size: train.batch_size,
            input_size: self.input_size,
            seed: train.seed,
            threads: self.threads,
            crop_scale: self.crop_scale.clone(),
            pad_to_square: self.pad_to_square,
            expand_max_ratio: self.expand_max_ratio,
            expand_prob: self.expand_prob,
            colour_jitter: self.colour_jitter,
            random_interpolation: self.random_interpolation,
            flip_prob: self.flip_prob,
            channel_order: self.channel_order,
            mean: self.mean,
            std: self.std,
            min_face_px: self.min_face_px,
            on_bad_image: self.on_bad_image,
            max_image_pixels: self.max_image_pixels,
            prefetch_batches: self.prefetch_batches,
        }
    }

    /// The input normalisation as the model sees it (the mesh branch's pixel loss undoes it).
    pub fn pixel_normalisation(&self) -> visage_model::PixelNormalisation {
        visage_model::PixelNormalisation {
            mean: self.mean,
            std: self.std,
            bgr: self.channel_order == ChannelOrder::Bgr,
        }
    }

    /// The input normalisation of training, used again by validation and detection.
    pub fn input_norm(&self) -> InputNorm {
        InputNorm {
            mean: self.mean,
            std: self.std,
            order: self.channel_order,
        }
    }

    /// The annotation selection of the training set.
    pub fn selection_policy(&self) -> SelectionPolicy {
        SelectionPolicy {
            drop_invalid: self.drop_invalid,
            ..SelectionPolicy::default()
        }
    }

    /// The loader's rules (at `data.<field>`, the batch size at `train.batch_size`), and
    /// what only the config has: at least one thread, a non-empty synthetic set.
    pub(crate) fn validate(&self, train: &TrainSpec) -> Result<(), TrainError> {
        self.loader_config(train).validate().map_err(|e| match e {
            DataError::Config { field, message } => {
                let key = match field {
                    "batch_size" => "train.batch_size".to_string(),
                    other => format!("data.{other}"),
                };
                invalid(&key, message)
            }
            other => other.into(),
        })?;
        if self.threads == 0 {
            return Err(invalid("data.threads", "must be at least 1"));
        }
        if let Some(s) = &self.synth {
            if s.train_images == 0 || s.val_images == 0 {
                return Err(invalid(
                    "data.synth",
                    "train_images and val_images must be > 0",
                ));
            }
        }
        Ok(())
    }
}
