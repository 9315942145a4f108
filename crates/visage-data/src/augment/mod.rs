//! Training augmentation: expand / pad to square, random square crop, colour jitter, horizontal
//! flip, square resize with a chosen interpolation, CHW tensor layout in RGB or BGR order.
//!
//! Coordinates are continuous pixels: pixel `(i, j)` covers `[i, i+1) × [j, j+1)`, so a crop
//! at `(x0, y0)` subtracts `(x0, y0)`, a flip maps `x → W − x`, and a resize multiplies by the
//! size ratio. Boxes are `[x1, y1, x2, y2]` in pixels of the sample's own image. Every transform
//! moves the image, its boxes and its landmarks together.

mod colour;
mod crop;
mod expand;
mod flip;
mod normalise;

use image::RgbImage;

use crate::label_txt::Landmarks;
use crate::resize::{resize_rgb_with, Interpolation};

pub(crate) use colour::Distortion;
pub use colour::{colour_jitter, hsv_cv_to_rgb, rgb_to_hsv_cv};
pub(crate) use crop::{crop_faces, plan_crop, CropPlan};
pub use crop::{random_square_crop, CropFallback, CropScale};
pub(crate) use expand::expand_placed;
pub use expand::{expand, pad_to_square};
pub(crate) use flip::flip_faces;
pub use flip::horizontal_flip;
pub(crate) use normalise::write_chw;
pub use normalise::{mean_pixel, to_chw, to_chw_ordered, ChannelOrder};

/// An image with its faces. `boxes[i]` and `landmarks[i]` describe the same face.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The RGB image.
    pub image: RgbImage,
    /// Face boxes `[x1, y1, x2, y2]`, pixels of `image`.
    pub boxes: Vec<[f32; 4]>,
    /// Landmarks per face (pixels of `image`), `None` when the face has none.
    pub landmarks: Vec<Option<Landmarks>>,
}

impl Sample {
    /// `image` with this sample's faces moved by `map` (pixel `(x, y)` → new pixel), applied to
    /// both box corners and every landmark. For monotone per-axis maps (shifts, scales).
    pub(crate) fn remapped(&self, image: RgbImage, map: impl Fn(f32, f32) -> [f32; 2]) -> Sample {
        let (boxes, landmarks) = map_faces(&self.boxes, &self.landmarks, map);
        Sample {
            image,
            boxes,
            landmarks,
        }
    }
}

/// Faces: boxes `[x1, y1, x2, y2]` and their landmarks.
pub(crate) type Faces = (Vec<[f32; 4]>, Vec<Option<Landmarks>>);

/// The faces moved by `map` (pixel `(x, y)` → new pixel), applied to both box corners and every
/// landmark. For monotone per-axis maps (shifts, scales).
pub(crate) fn map_faces(
    boxes: &[[f32; 4]],
    landmarks: &[Option<Landmarks>],
    map: impl Fn(f32, f32) -> [f32; 2],
) -> Faces {
    let boxes = boxes
        .iter()
        .map(|b| {
            let ([x1, y1], [x2, y2]) = (map(b[0], b[1]), map(b[2], b[3]));
            [x1, y1, x2, y2]
        })
        .collect();
    let landmarks = landmarks
        .iter()
        .map(|lm| {
            lm.map(|mut l| {
                for p in &mut l.points {
                    *p = map(p[0], p[1]);
                }
                l
            })
        })
        .collect();
    (boxes, landmarks)
}

/// Resizes to `size × size` with a triangle (bilinear) filter ([`crate::resize_rgb`]); boxes
/// and landmarks are scaled per axis. A non-square input is stretched.
pub fn resize_square(sample: Sample, size: u32) -> Sample {
    resize_square_with(sample, size, Interpolation::Bilinear)
}

/// [`resize_square`] with a chosen interpolation.
pub fn resize_square_with(sample: Sample, size: u32, interp: Interpolation) -> Sample {
    let (w, h) = sample.image.dimensions();
    if w == size && h == size {
        return sample;
    }
    let (sx, sy) = (size as f32 / w.max(1) as f32, size as f32 / h.max(1) as f32);
    let image = resize_rgb_with(&sample.image, size, size, interp);
    sample.remapped(image, |x, y| [x * sx, y * sy])
}

#[cfg(test)]
mod tests;
