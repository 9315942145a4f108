//! [`Predictor`]: images in, detections out, for any family on any backend. Files are
//! decoded and pre-processed on rayon's worker threads while the model runs; up to
//! `batch_size` images at a time have their passes grouped by input size, each group one
//! forward pass; each image's passes are post-processed and merged ([`merge_passes`]).
//! Results come back in file order.
//!
//! Files are decoded with [`load_rgb_limited`]: an image whose header says it is larger than
//! the pixel limit ([`Predictor::with_max_image_pixels`], by default
//! [`DEFAULT_MAX_IMAGE_PIXELS`], as the training config's `[data] max_image_pixels`) is
//! refused before any pixel is decoded, and a truncated file is refused rather than detected
//! on as grey; either comes back as that file's error, and the other files are still run.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use visage_data::{load_rgb_limited, DataError, DEFAULT_MAX_IMAGE_PIXELS};
use visage_kernels::{on_pool_worker_if, KernelBackend};
use visage_model::{Detection, DetectorFamily, ModelError, TestSpec};

use crate::batch::{detect_batch, group_by_size, BatchTiming};
use crate::merge::merge_passes;
use crate::prepare::{prepare_passes, InputNorm, PreparedPass};

/// Runs a model over images with fixed test-time settings.
#[derive(Debug)]
pub struct Predictor<'m, B: KernelBackend, M: DetectorFamily<B>> {
    model: &'m M,
    test: TestSpec,
    norm: InputNorm,
    batch_size: usize,
    max_image_pixels: u64,
    device: B::Device,
}

/// One image's result, in the order the files were given.
#[derive(Debug)]
pub struct Detected {
    /// Position of the file in the list given to [`Predictor::run`].
    pub index: usize,
    /// The file.
    pub path: PathBuf,
    /// The decoded image (for drawing), or why it could not be read.
    pub image: Result<RgbImage, DataError>,
    /// Its detections, best first, `[x1, y1, x2, y2]` pixels of the original image (empty
    /// when it could not be read).
    pub detections: Vec<Detection>,
}

/// What a [`Predictor::run`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunStats {
    /// Images detected.
    pub images: usize,
    /// Files that could not be read.
    pub failures: usize,
    /// Time in the network and in post-processing.
    pub timing: BatchTiming,
    /// Wall time of the run, seconds.
    pub seconds: f64,
}

/// A decoded file and its passes, from the decoder thread.
struct Decoded {
    index: usize,
    path: PathBuf,
    result: Result<(RgbImage, Vec<PreparedPass>), DataError>,
}

impl<'m, B: KernelBackend, M: DetectorFamily<B>> Predictor<'m, B, M> {
    /// A predictor of `model` with `[test]` settings `test` (validated here) and the input
    /// normalisation the model was trained with; batches of 8 images, files over
    /// [`DEFAULT_MAX_IMAGE_PIXELS`] refused.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the `test.*` key.
    pub fn new(
        model: &'m M,
        test: TestSpec,
        norm: InputNorm,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        test.validate()?;
        Ok(Self {
            model,
            test,
            norm,
            batch_size: 8,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            device: device.clone(),
        })
    }

    /// Refuse files whose header says width × height is above `max_pixels` (at least 1),
    /// before decoding them ([`Predictor::run`] reports them as that file's
    /// [`DataError::BadImage`], kind `TooLarge`); pass the experiment's
    /// `[data] max_image_pixels`.
    pub fn with_max_image_pixels(mut self, max_pixels: u64) -> Self {
        self.max_image_pixels = max_pixels.max(1);
        self
    }

    /// Images per forward pass (images of one size are batched together; at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The detections of one decoded image (its passes batched by size).
    pub fn detect_image(&self, image: &RgbImage) -> Vec<Detection> {
        let passes = prepare_passes(image, &self.norm, &self.test);
        self.detect_prepared(vec![passes])
            .0
            .pop()
            .unwrap_or_default()
    }

    /// The detections of several images, from their passes: every pass of every image
    /// grouped by input size, one forward pass per size, then each image's passes merged.
    pub fn detect_prepared(
        &self,
        images: Vec<Vec<PreparedPass>>,
    ) -> (Vec<Vec<Detection>>, BatchTiming) {
        let count = images.len();
        let owner: Vec<usize> = images
            .iter()
            .enumerate()
            .flat_map(|(i, passes)| std::iter::repeat_n(i, passes.len()))
            .collect();
        let mut passes: Vec<Option<PreparedPass>> =
            images.into_iter().flatten().map(Some).collect();
        let sizes: Vec<(usize, usize)> = passes
            .iter()
            .map(|p| p.as_ref().map_or((0, 0), PreparedPass::size))
            .collect();
        let per_pass_test = self.test.per_pass();
        let mut per_pass: Vec<Vec<Detection>> = vec![Vec::new(); passes.len()];
        let mut timing = BatchTiming::default();
        for group in group_by_size(&sizes) {
            let batch: Vec<PreparedPass> = group
                .iter()
                .map(|&i| passes[i].take().expect("each pass runs once"))
                .collect();
            let (detections, t) = on_pool_worker_if(B::HOST_THREADS, || {
                detect_batch(self.model, batch, &per_pass_test, &self.device)
            });
            timing.add(t);
            for (i, d) in group.into_iter().zip(detections) {
                per_pass[i] = d;
            }
        }
        let mut by_image: Vec<Vec<Vec<Detection>>> = vec![Vec::new(); count];
        for (i, dets) in owner.into_iter().zip(per_pass) {
            by_image[i].push(dets);
        }
        let merged = by_image
            .into_iter()
            .map(|passes| merge_passes(passes, &self.test))
            .collect();
        (merged, timing)
    }

    /// Detects every file of `paths`, calling `on_image` once per file in order (a file that
    /// cannot be read, is truncated or is over the pixel limit comes with its error and no
    /// detections). Decoding runs ahead on
    /// rayon's threads, `2 × batch_size` files at a time, at most two such chunks ahead of
    /// the model.
    ///
    /// # Errors
    /// The first error `on_image` returns (the run stops there).
    pub fn run<E>(
        &self,
        paths: Vec<PathBuf>,
        mut on_image: impl FnMut(Detected) -> Result<(), E>,
    ) -> Result<RunStats, E> {
        let started = Instant::now();
        let (receiver, decoder) = spawn_decoder(
            paths,
            2 * self.batch_size,
            self.max_image_pixels,
            self.norm,
            self.test.clone(),
        );
        let mut stats = RunStats::default();
        let outcome = (|| loop {
            let batch = next_batch(&receiver, self.batch_size);
            if batch.is_empty() {
                return Ok(());
            }
            let mut ready = Vec::with_capacity(batch.len());
            let mut prepared = Vec::with_capacity(batch.len());
            for decoded in batch {
                match decoded.result {
                    Ok((image, passes)) => {
                        prepared.push(passes);
                        ready.push((decoded.index, decoded.path, Ok(image)));
                    }
                    Err(error) => {
                        stats.failures += 1;
                        prepared.push(Vec::new());
                        ready.push((decoded.index, decoded.path, Err(error)));
                    }
                }
            }
            let (detections, timing) = self.detect_prepared(prepared);
            stats.timing.add(timing);
            for ((index, path, image), detections) in ready.into_iter().zip(detections) {
                stats.images += usize::from(image.is_ok());
                on_image(Detected {
                    index,
                    path,
                    image,
                    detections,
                })?;
            }
        })();
        // Dropping the receiver stops the decoder at its next send.
        drop(receiver);
        decoder.join().expect("the decoder thread does not panic");
        stats.seconds = started.elapsed().as_secs_f64();
        outcome.map(|()| stats)
    }
}

/// Decodes (refusing files over `max_pixels`) and pre-processes `paths` in chunks on rayon's
/// worker threads, sending them in order through a channel of `chunk` slots: at most one
/// chunk waits decoded while the next is being decoded.
fn spawn_decoder(
    paths: Vec<PathBuf>,
    chunk: usize,
    max_pixels: u64,
    norm: InputNorm,
    test: TestSpec,
) -> (Receiver<Decoded>, JoinHandle<()>) {
    let (sender, receiver) = sync_channel::<Decoded>(chunk);
    let handle = std::thread::spawn(move || {
        // A pool of its own: decoding never queues ahead of the backend's kernels on the
        // global pool (the CPU backend runs its parallel kernels there).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("visage-decode-{i}"))
            .build()
            .expect("a decoding thread pool");
        let indexed: Vec<(usize, PathBuf)> = paths.into_iter().enumerate().collect();
        for files in indexed.chunks(chunk) {
            let decoded: Vec<Decoded> = pool.install(|| {
                files
                    .par_iter()
                    .map(|(index, path)| Decoded {
                        index: *index,
                        path: path.clone(),
                        result: load_rgb_limited(path, max_pixels).map(|image| {
                            let passes = prepare_passes(&image, &norm, &test);
                            (image, passes)
                        }),
                    })
                    .collect()
            });
            for d in decoded {
                if sender.send(d).is_err() {
                    return;
                }
            }
        }
    });
    (receiver, handle)
}

/// Up to `size` decoded files: blocks for each until the decoder has sent them all.
fn next_batch(receiver: &Receiver<Decoded>, size: usize) -> Vec<Decoded> {
    let mut batch = Vec::with_capacity(size);
    while batch.len() < size {
        match receiver.recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    batch
}
