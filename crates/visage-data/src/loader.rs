//! The multi-threaded batch loader: shuffle, decode, augment, normalise.
//!
//! Per sample, in order (each optional step only draws from the RNG when enabled, so turning
//! one on leaves the default pipeline's draws unchanged), which with Pytorch_Retinaface's
//! settings is its `preproc` order (`_crop` → `_distort` → `_pad_to_square` → `_mirror` →
//! `_resize_subtract_mean`):
//! 1. SSD expand (`expand_max_ratio` > 1, with probability `expand_prob`; not in
//!    Pytorch_Retinaface): the image at a random offset on a mean-coloured canvas;
//! 2. random square crop (`crop_scale`); when no drawn crop keeps a face: with `pad_to_square`
//!    the whole image, padded to a square after step 3 (Pytorch_Retinaface), otherwise a crop
//!    around a face;
//! 3. colour jitter (`colour_jitter`, Pytorch_Retinaface's `_distort`), drawn after the crop and
//!    applied to the image's pixels inside the crop only: padding and expansion canvases keep
//!    the mean colour (as in SSD, which distorts before expanding; the jitter is pointwise, so
//!    this is the same as jittering the whole image first, at a fraction of the cost);
//! 4. horizontal flip (`flip_prob`);
//! 5. square resize to `input_size` (bilinear, or one of five interpolations drawn with
//!    `random_interpolation`, the last draw), faces below `min_face_px` dropped;
//! 6. `[3, S, S]` planes in `channel_order`, `(pixel − mean) / std`, written straight into the
//!    sample's slot of the batch.
//!
//! No pixel is copied for the crop or the flip: the jitter works in place on the decoded image,
//! the resize reads the crop rectangle from it, and the flip happens while writing the planes
//! (resizing then mirroring equals mirroring then resizing, up to fixed-point rounding).
//!
//! Per epoch, the record order is shuffled by an RNG seeded from (seed, epoch); each sample is
//! augmented with its own RNG seeded from (seed, epoch, record index), so a batch is the same
//! whatever the thread count. Samples of a batch are processed on a rayon pool of `threads`
//! workers built once.
//!
//! Prefetching: [`Loader::epoch`] runs a producer thread that prepares batches in order and
//! sends them through a bounded channel of `prefetch_batches` slots, so while the consumer
//! (the training step) holds batch `k`, batches `k+1 ..= k+prefetch_batches` wait finished in
//! the channel and batch `k+prefetch_batches+1` is being decoded. Order and content do not
//! depend on the prefetch depth or the thread count. The last incomplete batch is dropped.
//!
//! Bad images (missing, unreadable, empty, not an image, corrupt or truncated, or over
//! `max_image_pixels`, checked on the header before decoding): with
//! [`OnBadImage::Error`] the batch fails with [`DataError::BadImage`] naming the file and the
//! reason, and the epoch ends. With [`OnBadImage::Skip`] (default) the batch stays full: each
//! bad slot is filled, in slot order, by the next good images of the epoch order after the
//! batch (wrapping around), augmented with their own RNG stream; the bad files are listed in
//! [`Batch::skipped`] and an [`EpochSummary`] aggregates them per epoch. Which image replaces
//! which depends only on (seed, epoch, batch, the files), never on the thread count.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::augment::{
    crop_faces, expand_placed, flip_faces, map_faces, mean_pixel, pad_to_square, plan_crop,
    write_chw, ChannelOrder, CropFallback, CropPlan, CropScale, Distortion, Sample,
};
use crate::dataset::Dataset;
use crate::error::{BadImageKind, DataError};
use crate::label_txt::Landmarks;
use crate::resize::{resize_region_into, Interpolation};

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
    /// What a bad image does: skip it (replaced, reported; default) or stop with an error.
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// Images whose header says width × height is above this are bad (`too large`), checked
    /// before decoding (default 50 000 000).
    #[serde(default = "default_max_image_pixels")]
    pub max_image_pixels: u64,
    /// Finished batches waiting in the prefetch channel, 1..=64 (default 2).
    #[serde(default = "default_prefetch")]
    pub prefetch_batches: usize,
}

/// Default of [`LoaderConfig::max_image_pixels`]: 50 megapixels.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;

fn default_max_image_pixels() -> u64 {
    DEFAULT_MAX_IMAGE_PIXELS
}

fn default_prefetch() -> usize {
    2
}

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
            on_bad_image: OnBadImage::Skip,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            prefetch_batches: 2,
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
    /// Dataset record index of each image, in batch order (a replacement's own index).
    pub indices: Vec<usize>,
    /// Bad images met while making this batch (skip mode), in the order they were tried.
    pub skipped: Vec<SkippedImage>,
    /// What happened to the annotated faces of the batch's images.
    pub faces: FaceStats,
}

/// An image skipped by the loader (see [`OnBadImage::Skip`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedImage {
    /// Dataset record index.
    pub index: usize,
    /// The image file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: BadImageKind,
    /// The decoder / I/O message.
    pub detail: String,
}

/// Face counts of a batch (or an epoch, summed): boxes after dataset selection, clipped to
/// the decoded image (only when the selection did not clip them), dropped by the random crop
/// (centre outside; the others are clipped to the crop), and dropped below `min_face_px`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceStats {
    /// Annotated faces of the images used.
    pub annotated: usize,
    /// Boxes the loader had to clip to the decoded image.
    pub clipped_to_image: usize,
    /// Faces the crop left out (centre outside the crop).
    pub dropped_by_crop: usize,
    /// Faces below `min_face_px` after resizing.
    pub dropped_small: usize,
    /// Faces in the targets.
    pub kept: usize,
}

impl FaceStats {
    fn add(&mut self, o: &FaceStats) {
        self.annotated += o.annotated;
        self.clipped_to_image += o.clipped_to_image;
        self.dropped_by_crop += o.dropped_by_crop;
        self.dropped_small += o.dropped_small;
        self.kept += o.kept;
    }
}

/// Per-epoch totals of the loader's [`Batch::skipped`] and [`Batch::faces`], for the trainer's
/// end-of-epoch report. A file skipped twice in an epoch (tried as a replacement, then in its
/// own batch) counts once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochSummary {
    /// Batches added.
    pub batches: usize,
    /// Distinct skipped images by record index.
    pub skipped: BTreeMap<usize, SkippedImage>,
    /// Face counts, summed.
    pub faces: FaceStats,
}

impl EpochSummary {
    /// Adds one batch.
    pub fn add(&mut self, batch: &Batch) {
        self.batches += 1;
        for s in &batch.skipped {
            self.skipped.entry(s.index).or_insert_with(|| s.clone());
        }
        self.faces.add(&batch.faces);
    }

    /// `"2 images skipped (corrupt: a.jpg, b.jpg; missing: c.jpg)"`, naming at most
    /// `max_files` files (file names only), or `None` when nothing was skipped.
    pub fn skipped_line(&self, max_files: usize) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut by_kind: BTreeMap<BadImageKind, Vec<String>> = BTreeMap::new();
        for s in self.skipped.values() {
            let name = s.path.file_name().unwrap_or(s.path.as_os_str());
            by_kind
                .entry(s.kind)
                .or_default()
                .push(name.to_string_lossy().into_owned());
        }
        let mut left = max_files;
        let mut parts = Vec::new();
        for (kind, names) in by_kind {
            let shown: Vec<String> = names.iter().take(left).cloned().collect();
            left -= shown.len();
            let more = names.len() - shown.len();
            let mut p = format!("{kind}: {}", shown.join(", "));
            if more > 0 {
                if shown.is_empty() {
                    p = format!("{kind}: {more}");
                } else {
                    p.push_str(&format!(" and {more} more"));
                }
            }
            parts.push(p);
        }
        let n = self.skipped.len();
        Some(format!(
            "{n} image{} skipped ({})",
            if n == 1 { "" } else { "s" },
            parts.join("; ")
        ))
    }
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
        .into_rgb8())
}

/// Decodes an image file to RGB, refusing files whose header says width × height is above
/// `max_pixels` before any pixel is decoded. Every failure is a [`DataError::BadImage`] naming
/// the file and the reason.
pub fn load_rgb_limited(path: &Path, max_pixels: u64) -> Result<RgbImage, DataError> {
    let bad = |kind: BadImageKind, detail: String| DataError::BadImage {
        path: path.to_path_buf(),
        kind,
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad(BadImageKind::Missing, e.to_string()),
        _ => bad(BadImageKind::Unreadable, e.to_string()),
    })?;
    let len = file
        .metadata()
        .map_err(|e| bad(BadImageKind::Unreadable, e.to_string()))?
        .len();
    if len == 0 {
        return Err(bad(BadImageKind::Empty, "zero-byte file".into()));
    }
    // Without a path, the reader guesses the format from the content only.
    let mut reader = image::ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| bad(BadImageKind::Unreadable, e.to_string()))?;
    let from_content = reader.format().is_some();
    if !from_content {
        match image::ImageFormat::from_path(path) {
            Ok(f) => reader.set_format(f),
            Err(_) => {
                return Err(bad(
                    BadImageKind::NotAnImage,
                    "unknown format (content and extension)".into(),
                ))
            }
        }
    }
    let fail = |e: image::ImageError| {
        let kind = match &e {
            image::ImageError::IoError(_) if from_content => BadImageKind::Corrupt,
            image::ImageError::IoError(_) => BadImageKind::NotAnImage,
            image::ImageError::Limits(_) => BadImageKind::TooLarge,
            _ if from_content => BadImageKind::Corrupt,
            _ => BadImageKind::NotAnImage,
        };
        bad(kind, e.to_string())
    };
    let decoder = reader.into_decoder().map_err(fail)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(bad(
            BadImageKind::TooLarge,
            format!("{w}×{h} = {pixels} pixels, over max_image_pixels = {max_pixels}"),
        ));
    }
    if pixels == 0 {
        return Err(bad(BadImageKind::Corrupt, format!("{w}×{h} image")));
    }
    Ok(image::DynamicImage::from_decoder(decoder)
        .map_err(fail)?
        .into_rgb8())
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

    /// Decodes and augments record `index`, writing its `[3, S, S]` values into `out`; returns
    /// the target and its face counts. `salt` 0 is the record's own RNG stream; replacements
    /// use another. On error `out` is left untouched.
    fn sample(
        &self,
        epoch: usize,
        index: usize,
        salt: u64,
        out: &mut [f32],
    ) -> Result<(Target, FaceStats), DataError> {
        let cfg = &self.cfg;
        let rec = &self.dataset.records[index];
        let image = load_rgb_limited(
            &self.dataset.images_dir.join(&rec.path),
            cfg.max_image_pixels,
        )?;
        let (iw, ih) = image.dimensions();
        let (w, h) = (iw as f32, ih as f32);
        let mut stats = FaceStats {
            annotated: rec.faces.len(),
            ..FaceStats::default()
        };
        let boxes: Vec<[f32; 4]> = rec
            .faces
            .iter()
            .map(|f| {
                let [x, y, bw, bh] = f.bbox;
                let b = [
                    x.clamp(0.0, w),
                    y.clamp(0.0, h),
                    (x + bw).clamp(0.0, w),
                    (y + bh).clamp(0.0, h),
                ];
                if b != [x, y, x + bw, y + bh] {
                    stats.clipped_to_image += 1;
                }
                b
            })
            .collect();
        let landmarks = rec.faces.iter().map(|f| f.landmarks).collect();
        let mut seed = splitmix(cfg.seed ^ 0xA5A5_0000) ^ ((epoch as u64) << 32) ^ index as u64;
        if salt != 0 {
            seed = splitmix(seed ^ splitmix(salt));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(seed));
        let fill = mean_pixel(cfg.mean, cfg.channel_order);
        let mut s = Sample {
            image,
            boxes,
            landmarks,
        };
        // Where the decoded image lies in `s.image` (moved by an expansion).
        let mut photo = [0, 0, iw, ih];
        if cfg.expand_max_ratio > 1.0 && rng.random::<f32>() < cfg.expand_prob {
            let (e, [left, top]) = expand_placed(s, &mut rng, cfg.expand_max_ratio, fill);
            s = e;
            photo = [left, top, iw, ih];
        }
        let fallback = if cfg.pad_to_square {
            CropFallback::PadToSquare(fill)
        } else {
            CropFallback::AroundFace
        };
        let before_crop = s.boxes.len();
        let (cw, ch) = s.image.dimensions();
        let plan = plan_crop(cw, ch, &s.boxes, &mut rng, &cfg.crop_scale, fallback);
        let distortion = cfg.colour_jitter.then(|| Distortion::draw(&mut rng));
        let distort = |image: &mut RgbImage, [x, y, w, h]: [u32; 4]| {
            if let Some(d) = &distortion {
                // The decoded image's pixels inside the rectangle.
                let (x0, y0) = (x.max(photo[0]), y.max(photo[1]));
                let x1 = (x + w).min(photo[0] + photo[2]);
                let y1 = (y + h).min(photo[1] + photo[3]);
                if x0 < x1 && y0 < y1 {
                    d.apply_rect(image, x0, y0, x1 - x0, y1 - y0);
                }
            }
        };
        let (region, (boxes, landmarks)) = match plan {
            CropPlan::At { x0, y0, side } => {
                let region = [x0, y0, side, side];
                distort(&mut s.image, region);
                (region, crop_faces(&s.boxes, &s.landmarks, x0, y0, side))
            }
            CropPlan::Pad(fill) => {
                distort(&mut s.image, [0, 0, cw, ch]);
                s = pad_to_square(s, fill);
                let (pw, ph) = s.image.dimensions();
                let faces = (
                    std::mem::take(&mut s.boxes),
                    std::mem::take(&mut s.landmarks),
                );
                ([0, 0, pw, ph], faces)
            }
            CropPlan::Keep => {
                distort(&mut s.image, [0, 0, cw, ch]);
                let faces = (
                    std::mem::take(&mut s.boxes),
                    std::mem::take(&mut s.landmarks),
                );
                ([0, 0, cw, ch], faces)
            }
        };
        stats.dropped_by_crop = before_crop.saturating_sub(boxes.len());
        let flip = rng.random::<f32>() < cfg.flip_prob;
        let (rw, rh) = (region[2] as f32, region[3] as f32);
        let (boxes, landmarks) = if flip {
            flip_faces(&boxes, &landmarks, rw)
        } else {
            (boxes, landmarks)
        };
        let interp = if cfg.random_interpolation {
            Interpolation::ALL[rng.random_range(0..Interpolation::ALL.len())]
        } else {
            Interpolation::Bilinear
        };
        let size = cfg.input_size;
        let (sx, sy) = (size as f32 / rw.max(1.0), size as f32 / rh.max(1.0));
        let (boxes, landmarks) = if (region[2], region[3]) == (size, size) {
            (boxes, landmarks)
        } else {
            map_faces(&boxes, &landmarks, |x, y| [x * sx, y * sy])
        };
        let mut target = Target {
            boxes: Vec::with_capacity(boxes.len()),
            landmarks: Vec::with_capacity(boxes.len()),
        };
        for (b, lm) in boxes.iter().zip(&landmarks) {
            if (b[2] - b[0]).min(b[3] - b[1]) >= cfg.min_face_px.max(f32::MIN_POSITIVE) {
                target.boxes.push(*b);
                target.landmarks.push(*lm);
            } else {
                stats.dropped_small += 1;
            }
        }
        stats.kept = target.boxes.len();
        let norm = (cfg.mean, cfg.std, cfg.channel_order);
        RESIZED.with_borrow_mut(|buf| {
            buf.resize(size as usize * size as usize * 3, 0);
            if region[2] == 0 || region[3] == 0 {
                buf.fill(0);
            } else {
                resize_region_into(&s.image, region, buf, (size, size), interp);
            }
            write_chw(buf, size as usize, norm, flip, out);
        });
        Ok((target, stats))
    }

    /// Samples `(index, salt)` on the pool, in order, each written into its `outs` slice.
    fn samples(
        &self,
        epoch: usize,
        jobs: &[(usize, u64)],
        outs: Vec<&mut [f32]>,
    ) -> Vec<Result<(Target, FaceStats), DataError>> {
        self.pool.install(|| {
            jobs.par_iter()
                .zip(outs)
                .map(|(&(i, salt), out)| self.sample(epoch, i, salt, out))
                .collect()
        })
    }

    /// In skip mode, a bad image's error becomes a [`SkippedImage`]; any other error stays.
    fn skip_or_fail(&self, index: usize, e: DataError) -> Result<SkippedImage, DataError> {
        match e {
            DataError::BadImage { path, kind, detail }
                if self.cfg.on_bad_image == OnBadImage::Skip =>
            {
                Ok(SkippedImage {
                    index,
                    path,
                    kind,
                    detail,
                })
            }
            e => Err(e),
        }
    }

    /// Batch `b` of `epoch` (`order` is the epoch's record order).
    fn batch(&self, epoch: usize, order: &[usize], b: usize) -> Result<Batch, DataError> {
        let bs = self.cfg.batch_size;
        let s = self.cfg.input_size as usize;
        let n = 3 * s * s;
        // Zeroed lazily by the allocator; each worker writes (and so faults in) its own slots.
        let mut images = vec![0.0f32; bs * n];
        let own: Vec<(usize, u64)> = order[b * bs..(b + 1) * bs]
            .iter()
            .map(|&i| (i, 0))
            .collect();
        let mut slots = Vec::with_capacity(bs);
        let mut skipped = Vec::new();
        let results = self.samples(epoch, &own, images.chunks_exact_mut(n).collect());
        for (&(i, _), r) in own.iter().zip(results) {
            match r {
                Ok(part) => slots.push(Some((i, part))),
                Err(e) => {
                    skipped.push(self.skip_or_fail(i, e)?);
                    slots.push(None);
                }
            }
        }
        // Fill the bad slots, in slot order, with the next good images of the epoch order
        // after this batch (wrapping around). Candidates are tried in chunks of the number of
        // slots still empty, so the result is the sequential one whatever the thread count.
        let mut next = (b + 1) * bs;
        let mut tried = 0;
        loop {
            let empty: Vec<usize> = (0..bs).filter(|&k| slots[k].is_none()).collect();
            if empty.is_empty() {
                break;
            }
            let m = empty.len().min(order.len() - tried);
            if m == 0 {
                let last = skipped.last().map_or_else(String::new, |s: &SkippedImage| {
                    format!("{}: {}", s.path.display(), s.kind)
                });
                return Err(DataError::NoReadableImage { tried, last });
            }
            let jobs: Vec<(usize, u64)> = (0..m)
                .map(|k| {
                    let pos = (next + k) % order.len();
                    (order[pos], ((b as u64) << 32 | pos as u64) + 1)
                })
                .collect();
            // Which slot a candidate fills depends on which earlier candidates fail, so they
            // are written aside and copied (rare: only after a bad image).
            let mut aside = vec![0.0f32; m * n];
            let results = self.samples(epoch, &jobs, aside.chunks_exact_mut(n).collect());
            let mut fill = empty.into_iter();
            for ((&(i, _), r), values) in jobs.iter().zip(results).zip(aside.chunks_exact(n)) {
                match r {
                    Ok(part) => {
                        if let Some(k) = fill.next() {
                            images[k * n..(k + 1) * n].copy_from_slice(values);
                            slots[k] = Some((i, part));
                        }
                    }
                    Err(e) => skipped.push(self.skip_or_fail(i, e)?),
                }
            }
            next += m;
            tried += m;
        }
        let mut targets = Vec::with_capacity(bs);
        let mut indices = Vec::with_capacity(bs);
        let mut faces = FaceStats::default();
        for (i, (t, st)) in slots.into_iter().flatten() {
            targets.push(t);
            indices.push(i);
            faces.add(&st);
        }
        Ok(Batch {
            images,
            size: s,
            targets,
            indices,
            skipped,
            faces,
        })
    }
}

thread_local! {
    /// Each worker's resized `S × S` RGB image, reused from sample to sample.
    static RESIZED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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
        if batch >= self.batches_per_epoch() {
            return Err(DataError::config(
                "batch",
                format!("batch {batch} of {} per epoch", self.batches_per_epoch()),
            ));
        }
        let order = self.inner.order(epoch);
        self.inner.batch(epoch, &order, batch)
    }

    /// The batches of `epoch`, prepared in a background thread: `prefetch_batches` finished
    /// ones wait in a bounded channel while the next is being made (see the module docs).
    /// After an error (e.g. a bad image in error mode, named in the error) the iterator ends.
    pub fn epoch(&self, epoch: usize) -> EpochIter {
        let inner = Arc::clone(&self.inner);
        let n = self.batches_per_epoch();
        let prepared = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&prepared);
        let (tx, rx) = sync_channel(self.inner.cfg.prefetch_batches);
        let handle = std::thread::Builder::new()
            .name("visage-data-prefetch".into())
            .spawn(move || {
                let order = inner.order(epoch);
                for b in 0..n {
                    let item = inner.batch(epoch, &order, b);
                    counter.fetch_add(1, Ordering::SeqCst);
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
                prepared,
            },
            Err(e) => EpochIter {
                rx: None,
                handle: None,
                remaining: 0,
                spawn_error: Some(DataError::Worker(format!(
                    "cannot spawn the prefetch thread: {e}"
                ))),
                prepared,
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
    prepared: Arc<AtomicUsize>,
}

impl EpochIter {
    /// Batches the producer thread has finished so far (received or waiting in the channel).
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::SeqCst)
    }
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
