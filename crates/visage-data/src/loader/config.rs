//! The loader's settings ([`LoaderConfig`], [`OnBadImage`]) and their validation, the rules
//! the training config delegates to for its `[data]` table.

use crate::augment::{ChannelOrder, CropScale};
use crate::error::DataError;

use super::defaults;

/// Smallest accepted [`LoaderConfig::input_size`], pixels.
const MIN_INPUT_SIZE: u32 = 32;

/// Loader settings. Every default is a function of [`defaults`], named after its field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Images per batch, at least 1 (default [`defaults::batch_size`]).
    pub batch_size: usize,
    /// Side `S` of the square network input in pixels, at least 32 (default
    /// [`defaults::input_size`]).
    pub input_size: u32,
    /// Seed of shuffling and augmentation (default [`defaults::seed`]).
    pub seed: u64,
    /// Worker threads decoding and augmenting; 0 = one per core (default
    /// [`defaults::threads`]).
    pub threads: usize,
    /// Random square crop side as a fraction of the short edge: uniform in `[min, max]` or one
    /// of a set (default [`defaults::crop_scale`], uniform [0.3, 1]).
    pub crop_scale: CropScale,
    /// When no drawn crop keeps a face (after 250 tries), pad the whole image to a square with
    /// the mean colour, image at the top-left (Pytorch_Retinaface); otherwise (default
    /// [`defaults::pad_to_square`], off) crop around a face after 8 tries.
    #[serde(default = "defaults::pad_to_square")]
    pub pad_to_square: bool,
    /// SSD zoom-out before the crop: canvas `U(1, max_ratio)` × the image, filled with the mean
    /// colour, image at a random offset. 1 = off (default [`defaults::expand_max_ratio`]).
    #[serde(default = "defaults::expand_max_ratio")]
    pub expand_max_ratio: f32,
    /// Probability of the zoom-out when `expand_max_ratio` > 1 (default
    /// [`defaults::expand_prob`], as SSD).
    #[serde(default = "defaults::expand_prob")]
    pub expand_prob: f32,
    /// Pytorch_Retinaface's photometric distortion (default [`defaults::colour_jitter`], off);
    /// see [`crate::augment::colour_jitter`].
    #[serde(default = "defaults::colour_jitter")]
    pub colour_jitter: bool,
    /// Resize with one of nearest, bilinear, area, bicubic, Lanczos-3 drawn uniformly
    /// (default [`defaults::random_interpolation`], off: bilinear).
    #[serde(default = "defaults::random_interpolation")]
    pub random_interpolation: bool,
    /// Probability of a horizontal flip (default [`defaults::flip_prob`]).
    pub flip_prob: f32,
    /// Channel order of the network input (default [`defaults::channel_order`], RGB); `mean`
    /// and `std` are in this order.
    #[serde(default = "defaults::channel_order")]
    pub channel_order: ChannelOrder,
    /// Per-channel mean in `channel_order`, pixel units 0..255 (default [`defaults::mean`],
    /// ImageNet's, RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation in `channel_order`, pixel units, every entry finite and
    /// > 0 (default [`defaults::std`], ImageNet's).
    pub std: [f32; 3],
    /// Faces whose shorter box side is below this many pixels of the S×S input are dropped
    /// (default [`defaults::min_face_px`]).
    pub min_face_px: f32,
    /// What a bad image does: skip it (replaced, reported) or stop with an error (default
    /// [`defaults::on_bad_image`], skip).
    #[serde(default = "defaults::on_bad_image")]
    pub on_bad_image: OnBadImage,
    /// Images whose header says width × height is above this are bad (`too large`), checked
    /// before decoding (default [`defaults::max_image_pixels`]).
    #[serde(default = "defaults::max_image_pixels")]
    pub max_image_pixels: u64,
    /// Finished batches waiting in the prefetch channel, 1..=64 (default
    /// [`defaults::prefetch_batches`]).
    #[serde(default = "defaults::prefetch_batches")]
    pub prefetch_batches: usize,
}

/// Default of [`LoaderConfig::max_image_pixels`]: 50 megapixels.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// What the loader does with an image it cannot use (`[data] on_bad_image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadImage {
    /// Replace it in the batch by the next good image and report it (default).
    #[default]
    Skip,
    /// Stop with [`DataError::BadImage`] naming the file and the reason.
    Error,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: defaults::batch_size(),
            input_size: defaults::input_size(),
            seed: defaults::seed(),
            threads: defaults::threads(),
            crop_scale: defaults::crop_scale(),
            pad_to_square: defaults::pad_to_square(),
            expand_max_ratio: defaults::expand_max_ratio(),
            expand_prob: defaults::expand_prob(),
            colour_jitter: defaults::colour_jitter(),
            random_interpolation: defaults::random_interpolation(),
            flip_prob: defaults::flip_prob(),
            channel_order: defaults::channel_order(),
            mean: defaults::mean(),
            std: defaults::std(),
            min_face_px: defaults::min_face_px(),
            on_bad_image: defaults::on_bad_image(),
            max_image_pixels: defaults::max_image_pixels(),
            prefetch_batches: defaults::prefetch_batches(),
        }
    }
}

impl LoaderConfig {
    /// Checks ranges; an error names the field (`input_size`, `crop_scale.choices`, ...).
    ///
    /// The rules: `batch_size` ≥ 1, `input_size` ≥ 32, `crop_scale` per
    /// [`CropScale::check`], `expand_max_ratio` finite and ≥ 1, `expand_prob` and `flip_prob`
    /// in [0, 1], every `std` entry finite and > 0, `min_face_px` ≥ 0, `max_image_pixels` ≥ 1,
    /// `prefetch_batches` in 1..=64. `threads` is not checked: 0 means one per core.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.batch_size == 0 {
            return Err(DataError::config("batch_size", "must be at least 1"));
        }
        if self.input_size < MIN_INPUT_SIZE {
            return Err(DataError::config(
                "input_size",
                format!("must be at least {MIN_INPUT_SIZE}, got {}", self.input_size),
            ));
        }
        if let Err((sub, message)) = self.crop_scale.check() {
            let field = if sub == "choices" {
                "crop_scale.choices"
            } else {
                "crop_scale"
            };
            return Err(DataError::config(field, message));
        }
        if !(self.expand_max_ratio.is_finite() && self.expand_max_ratio >= 1.0) {
            return Err(DataError::config(
                "expand_max_ratio",
                format!("{} is not a finite ratio ≥ 1", self.expand_max_ratio),
            ));
        }
        if !(0.0..=1.0).contains(&self.expand_prob) {
            return Err(DataError::config(
                "expand_prob",
                format!("{} is not in [0, 1]", self.expand_prob),
            ));
        }
        if !(0.0..=1.0).contains(&self.flip_prob) {
            return Err(DataError::config(
                "flip_prob",
                format!("{} is not in [0, 1]", self.flip_prob),
            ));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(DataError::config(
                "std",
                format!("every entry must be finite and > 0, got {:?}", self.std),
            ));
        }
        if self.min_face_px.is_nan() || self.min_face_px < 0.0 {
            return Err(DataError::config(
                "min_face_px",
                format!("{} is not ≥ 0", self.min_face_px),
            ));
        }
        if self.max_image_pixels == 0 {
            return Err(DataError::config("max_image_pixels", "must be at least 1"));
        }
        if !(1..=64).contains(&self.prefetch_batches) {
            return Err(DataError::config(
                "prefetch_batches",
                format!("{} is not in 1..=64", self.prefetch_batches),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field a rejected config names.
    fn rejected_field(cfg: &LoaderConfig) -> &'static str {
        match cfg.validate() {
            Err(DataError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        LoaderConfig::default().validate().unwrap();
    }

    #[test]
    fn input_size_is_at_least_32() {
        let small = LoaderConfig {
            input_size: 31,
            ..LoaderConfig::default()
        };
        assert_eq!(rejected_field(&small), "input_size");
        let e = small.validate().unwrap_err().to_string();
        assert!(e.contains("must be at least 32, got 31"), "{e}");
        LoaderConfig {
            input_size: 32,
            ..LoaderConfig::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn std_entries_are_finite_and_positive() {
        for std in [
            [58.0, -1.0, 57.0],
            [0.0, 1.0, 1.0],
            [1.0, f32::INFINITY, 1.0],
            [1.0, 1.0, f32::NAN],
        ] {
            let cfg = LoaderConfig {
                std,
                ..LoaderConfig::default()
            };
            assert_eq!(rejected_field(&cfg), "std", "{std:?}");
        }
        LoaderConfig {
            std: [1.0; 3],
            ..LoaderConfig::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn other_rules_name_their_field() {
        let d = LoaderConfig::default;
        for (cfg, field) in [
            (
                LoaderConfig {
                    batch_size: 0,
                    ..d()
                },
                "batch_size",
            ),
            (
                LoaderConfig {
                    crop_scale: CropScale::Uniform([0.0, 1.0]),
                    ..d()
                },
                "crop_scale",
            ),
            (
                LoaderConfig {
                    crop_scale: CropScale::Choices(vec![]),
                    ..d()
                },
                "crop_scale.choices",
            ),
            (
                LoaderConfig {
                    expand_max_ratio: f32::INFINITY,
                    ..d()
                },
                "expand_max_ratio",
            ),
            (
                LoaderConfig {
                    expand_prob: -0.1,
                    ..d()
                },
                "expand_prob",
            ),
            (
                LoaderConfig {
                    flip_prob: 1.1,
                    ..d()
                },
                "flip_prob",
            ),
            (
                LoaderConfig {
                    min_face_px: -1.0,
                    ..d()
                },
                "min_face_px",
            ),
            (
                LoaderConfig {
                    max_image_pixels: 0,
                    ..d()
                },
                "max_image_pixels",
            ),
            (
                LoaderConfig {
                    prefetch_batches: 65,
                    ..d()
                },
                "prefetch_batches",
            ),
        ] {
            assert_eq!(rejected_field(&cfg), field);
        }
        // 0 threads is one per core, not an error.
        LoaderConfig { threads: 0, ..d() }.validate().unwrap();
    }
}
