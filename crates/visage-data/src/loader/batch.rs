//! What a batch is ([`Batch`], [`Target`], [`SkippedImage`], [`FaceStats`], the per-epoch
//! [`EpochSummary`]) and how one is assembled: its samples on the worker pool, then, in skip
//! mode, each bad slot refilled by the next good images of the epoch order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{BadImageKind, DataError};
use crate::label_txt::Landmarks;

use super::config::OnBadImage;
use super::Inner;

/// The faces of one input image.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Boxes `[x1, y1, x2, y2]` in pixels of the S×S input.
    pub boxes: Vec<[f32; 4]>,
    /// Landmarks per box (pixels of the S×S input), `None` where the face has none.
    pub landmarks: Vec<Option<Landmarks>>,
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

impl Inner {
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
    pub(super) fn batch(
        &self,
        epoch: usize,
        order: &[usize],
        b: usize,
    ) -> Result<Batch, DataError> {
        let bs = self.cfg.batch_size;
        // This loader's slots of the batch (all of them unless sharded).
        let range = self.slots.clone().unwrap_or(0..bs);
        let s = self.cfg.input_size as usize;
        let n = 3 * s * s;
        let count = range.len();
        // Zeroed lazily by the allocator; each worker writes (and so faults in) its own slots.
        let mut images = vec![0.0f32; count * n];
        let own: Vec<(usize, u64)> = order[b * bs + range.start..b * bs + range.end]
            .iter()
            .map(|&i| (i, 0))
            .collect();
        let mut slots = Vec::with_capacity(count);
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
            let empty: Vec<usize> = (0..count).filter(|&k| slots[k].is_none()).collect();
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
        let mut targets = Vec::with_capacity(count);
        let mut indices = Vec::with_capacity(count);
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
