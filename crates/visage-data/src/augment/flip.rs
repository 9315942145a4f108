//! Horizontal flip with the landmark left/right swap.

use image::imageops;

use super::Sample;

/// Mirrors the image left-right; boxes and landmarks follow (`x → W − x`), and the left/right
/// eye and left/right mouth corner are swapped so that index 0 stays the image-left eye
/// (Pytorch_Retinaface's `_mirror`).
pub fn horizontal_flip(sample: Sample) -> Sample {
    let w = sample.image.width() as f32;
    let boxes = sample
        .boxes
        .iter()
        .map(|b| [w - b[2], b[1], w - b[0], b[3]])
        .collect();
    let landmarks = sample
        .landmarks
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
    Sample {
        image: imageops::flip_horizontal(&sample.image),
        boxes,
        landmarks,
    }
}
