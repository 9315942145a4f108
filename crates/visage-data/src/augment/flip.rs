//! Horizontal flip with the landmark left/right swap.

use image::imageops;

use super::{Faces, Sample};
use crate::label_txt::Landmarks;

/// Mirrors the image left-right; boxes and landmarks follow (`x → W − x`), and the left/right
/// eye and left/right mouth corner are swapped so that index 0 stays the image-left eye
/// (Pytorch_Retinaface's `_mirror`).
pub fn horizontal_flip(sample: Sample) -> Sample {
    let (boxes, landmarks) = flip_faces(
        &sample.boxes,
        &sample.landmarks,
        sample.image.width() as f32,
    );
    Sample {
        image: imageops::flip_horizontal(&sample.image),
        boxes,
        landmarks,
    }
}

/// The faces of [`horizontal_flip`] for an image `w` pixels wide.
pub(crate) fn flip_faces(boxes: &[[f32; 4]], landmarks: &[Option<Landmarks>], w: f32) -> Faces {
    let boxes = boxes
        .iter()
        .map(|b| [w - b[2], b[1], w - b[0], b[3]])
        .collect();
    let landmarks = landmarks
        .iter()
        .map(|lm| {
            lm.map(|l| {
                let order = [1, 0, 2, 4, 3];
                let mut out = l;
                for (dst, &src) in order.iter().enumerate() {
                    out.points[dst] = [w - l.points[src][0], l.points[src][1]];
                    out.visible[dst] = l.visible[src];
                }
                out
            })
        })
        .collect();
    (boxes, landmarks)
}
