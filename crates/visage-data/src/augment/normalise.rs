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
    let mut out = vec![0.0f32; 3 * (w * h) as usize];
    write_chw(
        image.as_raw(),
        w as usize,
        (mean, std, order),
        false,
        &mut out,
    );
    out
}

/// Writes packed RGB pixels `src` (rows of `w` pixels) as `[3, H, W]` planes into `out`
/// (`3 · H · W` values), as [`to_chw_ordered`] computes them; with `mirror`, each row is written
/// right to left (a horizontal flip).
pub(crate) fn write_chw(
    src: &[u8],
    w: usize,
    (mean, std, order): ([f32; 3], [f32; 3], ChannelOrder),
    mirror: bool,
    out: &mut [f32],
) {
    let plane = src.len() / 3;
    assert_eq!(out.len(), 3 * plane, "CHW destination size");
    if plane == 0 || w == 0 {
        return;
    }
    // One table per output plane: 8-bit value → normalised value (the same arithmetic as a
    // per-pixel `(v − mean) / std`, bit for bit).
    let lut = |c: usize| -> [f32; 256] {
        let inv = 1.0 / std[c];
        std::array::from_fn(|p| (p as f32 - mean[c]) * inv)
    };
    let (l0, l1, l2) = (lut(0), lut(1), lut(2));
    let bgr = order == ChannelOrder::Bgr;
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    let rows = src
        .chunks_exact(3 * w)
        .zip(p0.chunks_exact_mut(w))
        .zip(p1.chunks_exact_mut(w))
        .zip(p2.chunks_exact_mut(w));
    for (((row, d0), d1), d2) in rows {
        let px = row.chunks_exact(3).map(|p| {
            let (a, b, c) = if bgr {
                (p[2], p[1], p[0])
            } else {
                (p[0], p[1], p[2])
            };
            (l0[a as usize], l1[b as usize], l2[c as usize])
        });
        if mirror {
            let dst = d0
                .iter_mut()
                .rev()
                .zip(d1.iter_mut().rev())
                .zip(d2.iter_mut().rev());
            for (((x, y), z), (a, b, c)) in dst.zip(px) {
                (*x, *y, *z) = (a, b, c);
            }
        } else {
            let dst = d0.iter_mut().zip(d1.iter_mut()).zip(d2.iter_mut());
            for (((x, y), z), (a, b, c)) in dst.zip(px) {
                (*x, *y, *z) = (a, b, c);
            }
        }
    }
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
