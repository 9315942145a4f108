//! The per-sample pipeline: decode one record, expand, crop, jitter, flip, resize, and write
//! its normalised `[3, S, S]` planes straight into its slot of the batch (steps 1–6 of the
//! module docs), with the sample's own RNG stream.

use std::cell::RefCell;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::augment::{
    crop_faces, expand_placed, flip_faces, map_faces, mean_pixel, pad_to_square, plan_crop,
    write_chw, CropFallback, CropPlan, Distortion, Sample,
};
use crate::error::DataError;
use crate::resize::{resize_region_into, Interpolation};

use super::batch::{FaceStats, Target};
use super::decode::load_rgb_limited;
use super::{splitmix, Inner};

thread_local! {
    /// Each worker's resized `S × S` RGB image, reused from sample to sample.
    static RESIZED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Inner {
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
    pub(super) fn samples(
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
}
