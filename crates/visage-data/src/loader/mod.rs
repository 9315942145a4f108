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
//!
//! Files: `config.rs` ([`LoaderConfig`], [`OnBadImage`], validation) and [`defaults`] (every
//! field's default), `decode.rs` ([`load_rgb`], [`load_rgb_limited`] and the bad-image
//! checks), `jpeg_end.rs` (where a JPEG stream ends: truncated files are refused),
//! `sample.rs` (the per-sample pipeline above), `batch.rs` ([`Batch`] and the types
//! it holds, assembling a batch, replacing bad images), `prefetch.rs` ([`EpochIter`] and its
//! producer thread).

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Dataset;
use crate::error::DataError;

mod batch;
mod config;
mod decode;
pub mod defaults;
mod jpeg_end;
mod prefetch;
mod sample;

pub use batch::{Batch, EpochSummary, FaceStats, SkippedImage, Target};
pub use config::{LoaderConfig, OnBadImage, DEFAULT_MAX_IMAGE_PIXELS};
pub use decode::{load_rgb, load_rgb_limited};
pub use prefetch::EpochIter;

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
            inner: Arc::new(Inner {
                dataset,
                cfg,
                pool,
                slots: None,
            }),
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

    /// The loader of one machine of a data-parallel run: its batches hold only the images of
    /// `slots` (a range of `0..batch_size`) of each batch the whole loader makes — the same
    /// images, augmented the same way, in the same order. Bad images are replaced within
    /// the shard (from the images after the batch, as the whole batch does), so a shard
    /// with a bad image may take a replacement another shard also takes.
    ///
    /// # Errors
    /// [`DataError::Config`] (`batch`) when `slots` is empty or not inside the batch.
    pub fn sharded(self, slots: std::ops::Range<usize>) -> Result<Loader, DataError> {
        let bs = self.inner.cfg.batch_size;
        if slots.is_empty() || slots.end > bs {
            return Err(DataError::config(
                "batch",
                format!("shard {slots:?} is not a non-empty range of the batch's {bs} slots"),
            ));
        }
        let Inner {
            dataset, cfg, pool, ..
        } = Arc::try_unwrap(self.inner).map_err(|_| {
            DataError::config("batch", "a loader is sharded before its epochs start")
        })?;
        Ok(Loader {
            inner: Arc::new(Inner {
                dataset,
                cfg,
                pool,
                slots: Some(slots),
            }),
        })
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
        self.epoch_from(epoch, 0)
    }

    /// The batches `first..` of `epoch`: the rest of an epoch a run resumes in the middle of.
    /// Batch `k` is the same as [`epoch`](Self::epoch)'s `k`-th (order and augmentation
    /// depend only on the seed, the epoch and the batch); `first` past the end gives none.
    pub fn epoch_from(&self, epoch: usize, first: usize) -> EpochIter {
        EpochIter::start(
            Arc::clone(&self.inner),
            epoch,
            first,
            self.batches_per_epoch(),
        )
    }
}

/// What a loader shares with its prefetch thread: the dataset, the config and the worker
/// pool. Its per-sample work is in `sample`, batch assembly in `batch`.
struct Inner {
    dataset: Dataset,
    cfg: LoaderConfig,
    pool: rayon::ThreadPool,
    /// The slots of each batch this loader makes ([`Loader::sharded`]); all when `None`.
    slots: Option<std::ops::Range<usize>>,
}

impl Inner {
    /// The record order of `epoch`: `0..len` shuffled by an RNG seeded from (seed, epoch).
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(
            splitmix(self.cfg.seed) ^ (epoch as u64).wrapping_mul(0x5348_5546),
        ));
        order.shuffle(&mut rng);
        order
    }
}

/// SplitMix64 finaliser.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
