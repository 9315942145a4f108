//! The default of every [`LoaderConfig`] field, declared once.
//!
//! Each function is named after the field it is the default of. `LoaderConfig`'s serde
//! attributes and its `Default` impl call these, and the training config's `[data]` table
//! refers to them, so a default value is written in exactly one place.
//!
//! [`LoaderConfig`]: super::LoaderConfig

use crate::augment::{ChannelOrder, CropScale};

use super::config::{OnBadImage, DEFAULT_MAX_IMAGE_PIXELS};

/// [`LoaderConfig::batch_size`](super::LoaderConfig::batch_size): 8 images.
pub fn batch_size() -> usize {
    8
}

/// [`LoaderConfig::input_size`](super::LoaderConfig::input_size): 640 px.
pub fn input_size() -> u32 {
    640
}

/// [`LoaderConfig::seed`](super::LoaderConfig::seed): 0.
pub fn seed() -> u64 {
    0
}

/// [`LoaderConfig::threads`](super::LoaderConfig::threads): 2 workers.
pub fn threads() -> usize {
    2
}

/// [`LoaderConfig::crop_scale`](super::LoaderConfig::crop_scale): [`CropScale::default`],
/// uniform in [0.3, 1].
pub fn crop_scale() -> CropScale {
    CropScale::default()
}

/// [`LoaderConfig::pad_to_square`](super::LoaderConfig::pad_to_square): off (crop around a
/// face).
pub fn pad_to_square() -> bool {
    false
}

/// [`LoaderConfig::expand_max_ratio`](super::LoaderConfig::expand_max_ratio): 1, no zoom-out.
pub fn expand_max_ratio() -> f32 {
    1.0
}

/// [`LoaderConfig::expand_prob`](super::LoaderConfig::expand_prob): 0.5, as SSD.
pub fn expand_prob() -> f32 {
    0.5
}

/// [`LoaderConfig::colour_jitter`](super::LoaderConfig::colour_jitter): off.
pub fn colour_jitter() -> bool {
    false
}

/// [`LoaderConfig::random_interpolation`](super::LoaderConfig::random_interpolation): off
/// (bilinear).
pub fn random_interpolation() -> bool {
    false
}

/// [`LoaderConfig::flip_prob`](super::LoaderConfig::flip_prob): 0.5.
pub fn flip_prob() -> f32 {
    0.5
}

/// [`LoaderConfig::channel_order`](super::LoaderConfig::channel_order):
/// [`ChannelOrder::default`], RGB.
pub fn channel_order() -> ChannelOrder {
    ChannelOrder::default()
}

/// [`LoaderConfig::mean`](super::LoaderConfig::mean): ImageNet's RGB mean in pixel units.
pub fn mean() -> [f32; 3] {
    [123.675, 116.28, 103.53]
}

/// [`LoaderConfig::std`](super::LoaderConfig::std): ImageNet's RGB standard deviation in
/// pixel units.
pub fn std() -> [f32; 3] {
    [58.395, 57.12, 57.375]
}

/// [`LoaderConfig::min_face_px`](super::LoaderConfig::min_face_px): 2 px.
pub fn min_face_px() -> f32 {
    2.0
}

/// [`LoaderConfig::on_bad_image`](super::LoaderConfig::on_bad_image):
/// [`OnBadImage::Skip`].
pub fn on_bad_image() -> OnBadImage {
    OnBadImage::default()
}

/// [`LoaderConfig::max_image_pixels`](super::LoaderConfig::max_image_pixels):
/// [`DEFAULT_MAX_IMAGE_PIXELS`] (50 megapixels).
pub fn max_image_pixels() -> u64 {
    DEFAULT_MAX_IMAGE_PIXELS
}

/// [`LoaderConfig::prefetch_batches`](super::LoaderConfig::prefetch_batches): 2 batches.
pub fn prefetch_batches() -> usize {
    2
}
