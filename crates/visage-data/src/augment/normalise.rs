//! The network input: `[3, H, W]` planes in RGB or BGR order, `(pixel − mean) / std`.

use image::{Rgb, RgbImage};

/// The channel order of the network input, as the checkpoint expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Planes R, G, B (torchvision; the default).
    #[default]
    Rgb,
    /// Planes B, G, R (OpenCV-trained checkpoints such as Pytorch_Retinaface's, with mean
    /// (104, 117, 123) and std (1, 1, 1)).
    Bgr,
}

/// The image as a `[3, H, W]` row-major `f32` array in RGB order: `(pixel − mean[c]) / std[c]`
/// with pixels in 0..255.
pub fn to_chw(image: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    to_chw_ordered(image, mean, std, ChannelOrder::Rgb)
}

/// The image as a `[3, H, W]` row-major `f32` array with planes in `order`:
/// plane `c` is `(pixel channel − mean[c]) / std[c]`, pixels in 0..255. `mean` and `std` are
/// listed in `order` too (BGR: `mean[0]` is the blue mean).
pub fn to_chw_ordered(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    let inv = [1.0 / std[0], 1.0 / std[1], 1.0 / std[2]];
    // Source channel of each output plane.
    let src = match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    for (((px, a), b), c) in image.as_raw().chunks_exact(3).zip(p0).zip(p1).zip(p2) {
        *a = (px[src[0]] as f32 - mean[0]) * inv[0];
        *b = (px[src[1]] as f32 - mean[1]) * inv[1];
        *c = (px[src[2]] as f32 - mean[2]) * inv[2];
    }
    out
}

/// The RGB pixel whose normalised value is (about) zero: `mean` (listed in `order`), rounded —
/// the fill colour of padding and expansion canvases.
pub fn mean_pixel(mean: [f32; 3], order: ChannelOrder) -> Rgb<u8> {
    let px = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    match order {
        ChannelOrder::Rgb => Rgb([px(mean[0]), px(mean[1]), px(mean[2])]),
        ChannelOrder::Bgr => Rgb([px(mean[2]), px(mean[1]), px(mean[0])]),
    }
}
