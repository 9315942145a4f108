//! The multi-threaded batch loader: shuffle, decode, augment, normalise.
//!
//! Per sample, in order (each optional step only draws from the RNG when enabled, so turning
//! one on leaves the default pipeline's draws unchanged): colour jitter (`colour_jitter`; first,
//! so that padding and expansion canvases keep the mean colour), SSD expand
//! (`expand_max_ratio` > 1, with probability `expand_prob`), random square crop (`crop_scale`;
//! when no crop keeps a face: a crop around a face, or with `pad_to_square` the whole image
//! padded to a square), horizontal flip (`flip_prob`), square resize (bilinear, or one of five
//! interpolations with `random_interpolation`), faces below `min_face_px` dropped, `[3, S, S]`
//! planes in `channel_order`, `(pixel − mean) / std`.
//!
//! Per epoch, the record order is shuffled by an RNG seeded from (seed, epoch); each sample is
//! augmented with its own RNG seeded from (seed, epoch, record index), so a batch is the same
//! whatever the thread count. Samples of a batch are processed on a rayon pool of `threads`
//! workers built once; a background thread prepares up to two batches ahead of the consumer
//! (bounded channel). The last incomplete batch is dropped.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::augment::{
    colour_jitter, expand, horizontal_flip, mean_pixel, random_square_crop, resize_square_with,
    to_chw_ordered, ChannelOrder, CropFallback, CropScale, Sample,
};
use crate::dataset::Dataset;
use crate::error::DataError;
use crate::label_txt::Landmarks;
use crate::resize::Interpolation;

/// Loader settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Images per batch (default 8).
    pub batch_size: usize,
    /// Side `S` of the square network input in pixels (default 640).
    pub input_size: u32,
    /// Seed of shuffling and augmentation (default 0).
    pub seed: u64,
    /// Worker threads decoding and augmenting; 0 = one per core (default 2).
    pub threads: usize,
    /// Random square crop side as a fraction of the short edge: uniform in `[min, max]` or one
    /// of a set (default uniform [0.3, 1]).
    pub crop_scale: CropScale,
    /// When no drawn crop keeps a face (after 250 tries), pad the whole image to a square with
    /// the mean colour, image at the top-left (Pytorch_Retinaface); otherwise (default false)
    /// crop around a face after 8 tries.
    #[serde(default)]
    pub pad_to_square: bool,
    /// SSD zoom-out before the crop: canvas `U(1, max_ratio)` × the image, filled with the mean
    /// colour, image at a random offset. 1 = off (default).
    #[serde(default = "one")]
    pub expand_max_ratio: f32,
    /// Probability of the zoom-out when `expand_max_ratio` > 1 (default 0.5, as SSD).
    #[serde(default = "half")]
    pub expand_prob: f32,
    /// Pytorch_Retinaface's photometric distortion (default false); see
    /// [`crate::augment::colour_jitter`].
    #[serde(default)]
    pub colour_jitter: bool,
    /// Resize with one of nearest, bilinear, area, bicubic, Lanczos-3 drawn uniformly
    /// (default false: bilinear).
    #[serde(default)]
    pub random_interpolation: bool,
    /// Probability of a horizontal flip (default 0.5).
    pub flip_prob: f32,
    /// Channel order of the network input (default RGB); `mean` and `std` are in this order.
    #[serde(default)]
    pub channel_order: ChannelOrder,
    /// Per-channel mean in `channel_order`, pixel units 0..255 (default ImageNet's, RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation in `channel_order`, pixel units (default ImageNet's).
    pub std: [f32; 3],
    /// Faces whose shorter box side is below this many pixels of the S×S input are dropped
    /// (default 2).
    pub min_face_px: f32,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 8,
            input_size: 640,
            seed: 0,
            threads: 2,
            crop_scale: CropScale::default(),
            pad_to_square: false,
            expand_max_ratio: 1.0,
            expand_prob: 0.5,
            colour_jitter: false,
            random_interpolation: false,
            flip_prob: 0.5,
            channel_order: ChannelOrder::Rgb,
            mean: [123.675, 116.28, 103.53],
            std: [58.395, 57.12, 57.375],
            min_face_px: 2.0,
        }
    }
}

impl LoaderConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.batch_size == 0 {
            return Err(DataError::config("batch_size", "must be at least 1"));
        }
        if self.input_size < 8 {
            return Err(DataError::config(
                "input_size",
                format!("{} is below 8 px", self.input_size),
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
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return Err(DataError::config(
                "std",
                format!("{:?} has a zero or non-finite entry", self.std),
            ));
        }
        if self.min_face_px.is_nan() || self.min_face_px < 0.0 {
            return Err(DataError::config(
                "min_face_px",
                format!("{} is not ≥ 0", self.min_face_px),
            ));
        }
        Ok(())
    }
}

/// The faces of one input image.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Boxes `[x1, y1, x2, y2]` in pixels of the S×S input.
    pub boxes: Vec<[f32; 4]>,
    /// Landmarks per box (pixels of the S×S input), `None` where the face has none.
    pub landmarks: Vec<Option<Landmarks>>,
}

fn one() -> f32 {
    1.0
}

fn half() -> f32 {
    0.5
}

/// A batch ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Images `[B, 3, S, S]`, row-major, planes in the config's channel order, normalised
    /// with its mean / std.
    pub images: Vec<f32>,
    /// The input side `S`.
    pub size: usize,
    /// One target per image, in batch order.
    pub targets: Vec<Target>,
    /// Dataset record index of each image, in batch order.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of images `B`.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True for a batch without images.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Decodes an image file to RGB (for training and inference). Errors name the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DataError::io(path, e))?;
    Ok(reader
        .decode()
        .map_err(|e| DataError::image(path, e))?
        .to_rgb8())
}

/// SplitMix64 finaliser.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Inner {
    dataset: Dataset,
    cfg: LoaderConfig,
    pool: rayon::ThreadPool,
}

impl Inner {
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(
            splitmix(self.cfg.seed) ^ (epoch as u64).wrapping_mul(0x5348_5546),
        ));
        order.shuffle(&mut rng);
        order
    }

    /// Decodes and augments record `index`: `[3, S, S]` values and the target.
    fn sample(&self, epoch: usize, index: usize) -> Result<(Vec<f32>, Target), DataError> {
        let cfg = &self.cfg;
        let rec = &self.dataset.records[index];
        let image = load_rgb(&self.dataset.images_dir.join(&rec.path))?;
        let (w, h) = (image.width() as f32, image.height() as f32);
        let boxes = rec
            .faces
            .iter()
            .map(|f| {
                let [x, y, bw, bh] = f.bbox;
                [
                    x.clamp(0.0, w),
                    y.clamp(0.0, h),
                    (x + bw).clamp(0.0, w),
                    (y + bh).clamp(0.0, h),
                ]
            })
            .collect();
        let landmarks = rec.faces.iter().map(|f| f.landmarks).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(
            splitmix(cfg.seed ^ 0xA5A5_0000) ^ ((epoch as u64) << 32) ^ index as u64,
        ));
        let fill = mean_pixel(cfg.mean, cfg.channel_order);
        let mut s = Sample {
            image,
            boxes,
            landmarks,
        };
        if cfg.colour_jitter {
            colour_jitter(&mut s.image, &mut rng);
        }
        if cfg.expand_max_ratio > 1.0 && rng.random::<f32>() < cfg.expand_prob {
            s = expand(s, &mut rng, cfg.expand_max_ratio, fill);
        }
        let fallback = if cfg.pad_to_square {
            CropFallback::PadToSquare(fill)
        } else {
            CropFallback::AroundFace
        };
        let s = random_square_crop(s, &mut rng, &cfg.crop_scale, fallback);
        let flip = rng.random::<f32>() < cfg.flip_prob;
        let s = if flip { horizontal_flip(s) } else { s };
        let interp = if cfg.random_interpolation {
            Interpolation::ALL[rng.random_range(0..Interpolation::ALL.len())]
        } else {
            Interpolation::Bilinear
        };
        let s = resize_square_with(s, cfg.input_size, interp);
        let mut target = Target {
            boxes: Vec::with_capacity(s.boxes.len()),
            landmarks: Vec::with_capacity(s.boxes.len()),
        };
        for (b, lm) in s.boxes.iter().zip(&s.landmarks) {
            if (b[2] - b[0]).min(b[3] - b[1]) >= cfg.min_face_px.max(f32::MIN_POSITIVE) {
                target.boxes.push(*b);
                target.landmarks.push(*lm);
            }
        }
        Ok((
            to_chw_ordered(&s.image, cfg.mean, cfg.std, cfg.channel_order),
            target,
        ))
    }

    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch, DataError> {
        let parts: Vec<(Vec<f32>, Target)> = self.pool.install(|| {
            indices
                .par_iter()
                .map(|&i| self.sample(epoch, i))
                .collect::<Result<_, _>>()
        })?;
        let s = self.cfg.input_size as usize;
        let mut images = Vec::with_capacity(parts.len() * 3 * s * s);
        let mut targets = Vec::with_capacity(parts.len());
        for (img, t) in parts {
            images.extend_from_slice(&img);
            targets.push(t);
        }
        Ok(Batch {
            images,
            size: s,
            targets,
            indices: indices.to_vec(),
        })
    }
}

/// Shuffling, augmenting, prefetching batch loader over a [`Dataset`].
pub struct Loader {
    inner: Arc<Inner>,
}

impl Loader {
    /// Validates `cfg` and builds the worker pool.
    pub fn new(dataset: Dataset, cfg: LoaderConfig) -> Result<Loader, DataError> {
        cfg.validate()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads)
            .thread_name(|i| format!("visage-data-{i}"))
            .build()
            .map_err(|e| DataError::Worker(e.to_string()))?;
        Ok(Loader {
            inner: Arc::new(Inner { dataset, cfg, pool }),
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.inner.dataset
    }

    /// The config.
    pub fn config(&self) -> &LoaderConfig {
        &self.inner.cfg
    }

    /// Full batches per epoch (the last incomplete batch is dropped).
    pub fn batches_per_epoch(&self) -> usize {
        self.inner.dataset.len() / self.inner.cfg.batch_size
    }

    /// Batch `batch` of `epoch`, computed on the calling thread (plus the worker pool).
    pub fn batch(&self, epoch: usize, batch: usize) -> Result<Batch, DataError> {
        let bs = self.inner.cfg.batch_size;
        if batch >= self.batches_per_epoch() {
            return Err(DataError::config(
                "batch",
                format!("batch {batch} of {} per epoch", self.batches_per_epoch()),
            ));
        }
        let order = self.inner.order(epoch);
        self.inner
            .batch(epoch, &order[batch * bs..(batch + 1) * bs])
    }

    /// The batches of `epoch`, prepared in a background thread up to two ahead. After an error
    /// (e.g. an unreadable image, named in the error) the iterator ends.
    pub fn epoch(&self, epoch: usize) -> EpochIter {
        let inner = Arc::clone(&self.inner);
        let n = self.batches_per_epoch();
        let (tx, rx) = sync_channel(2);
        let handle = std::thread::Builder::new()
            .name("visage-data-prefetch".into())
            .spawn(move || {
                let order = inner.order(epoch);
                let bs = inner.cfg.batch_size;
                for b in 0..n {
                    let item = inner.batch(epoch, &order[b * bs..(b + 1) * bs]);
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            });
        match handle {
            Ok(h) => EpochIter {
                rx: Some(rx),
                handle: Some(h),
                remaining: n,
                spawn_error: None,
            },
            Err(e) => EpochIter {
                rx: None,
                handle: None,
                remaining: 0,
                spawn_error: Some(DataError::Worker(format!(
                    "cannot spawn the prefetch thread: {e}"
                ))),
            },
        }
    }
}

/// Iterator over one epoch's batches (see [`Loader::epoch`]).
pub struct EpochIter {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
    spawn_error: Option<DataError>,
}

impl Iterator for EpochIter {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.spawn_error.take() {
            return Some(Err(e));
        }
        let rx = self.rx.as_ref()?;
        match rx.recv() {
            Ok(item) => {
                self.remaining = if item.is_ok() {
                    self.remaining.saturating_sub(1)
                } else {
                    0
                };
                Some(item)
            }
            Err(_) => {
                self.rx = None;
                let panicked = self.handle.take().is_some_and(|h| h.join().is_err());
                let unfinished = std::mem::take(&mut self.remaining) > 0;
                (panicked || unfinished).then(|| {
                    Err(DataError::Worker(
                        "the prefetch thread stopped early (panic)".into(),
                    ))
                })
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (
            0,
            Some(self.remaining + self.spawn_error.is_some() as usize),
        )
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Closing the channel makes the producer stop at its next send.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests;
