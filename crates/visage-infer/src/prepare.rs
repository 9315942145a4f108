//! Test-time pre-processing of one image: its passes (`[test] short_side` / `max_size`
//! sizing, the scales and mirroring of `[test.tta]`), each resized and normalised as the data
//! config says.

use image::imageops::FilterType;
use image::RgbImage;
use visage_data::{to_chw_ordered, ChannelOrder};
use visage_model::TestSpec;

/// How pixels become network input: `(pixel − mean) / std` per channel, planes in `order`
/// (`mean` and `std` listed in that order too), pixels in 0..255 — the `[data]` settings a
/// model was trained with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputNorm {
    /// Per-channel mean, in `order`.
    pub mean: [f32; 3],
    /// Per-channel divisor, in `order`.
    pub std: [f32; 3],
    /// Plane order of the network input.
    pub order: ChannelOrder,
}

/// One pass of an image, ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPass {
    /// `[3, H, W]` normalised pixels, row-major.
    pub pixels: Vec<f32>,
    /// Network input height.
    pub height: usize,
    /// Network input width.
    pub width: usize,
    /// Input pixels per original pixel (1 unless the image was resized).
    pub scale: f32,
    /// The original image's width when this pass mirrored it (detections are mirrored back);
    /// `None` otherwise.
    pub mirrored_width: Option<f32>,
}

impl PreparedPass {
    /// `(height, width)` of the network input: passes of one size share a forward pass.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
}

/// Every pass `test` asks for (see [`TestSpec::passes`]): one at `test.input_scale` without
/// `[test.tta]`; with it, each scale multiplier of that base scale, mirrored too with `flip`.
pub fn prepare_passes(image: &RgbImage, norm: &InputNorm, test: &TestSpec) -> Vec<PreparedPass> {
    let (w, h) = image.dimensions();
    let base = test.input_scale(w, h);
    test.passes()
        .into_iter()
        .map(|(multiplier, mirrored)| prepare_pass(image, norm, base * multiplier, mirrored))
        .collect()
}

/// `image` resized by `scale` (sides rounded, at least 1 px; unchanged at scale 1), mirrored
/// if asked, normalised.
pub fn prepare_pass(
    image: &RgbImage,
    norm: &InputNorm,
    scale: f32,
    mirrored: bool,
) -> PreparedPass {
    let (w, h) = image.dimensions();
    let (nw, nh) = if scale == 1.0 {
        (w, h)
    } else {
        (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        )
    };
    let resized;
    let mut view = image;
    if (nw, nh) != (w, h) {
        resized = image::imageops::resize(image, nw, nh, FilterType::Triangle);
        view = &resized;
    }
    let pixels = if mirrored {
        let flipped = image::imageops::flip_horizontal(view);
        to_chw_ordered(&flipped, norm.mean, norm.std, norm.order)
    } else {
        to_chw_ordered(view, norm.mean, norm.std, norm.order)
    };
    PreparedPass {
        pixels,
        height: nh as usize,
        width: nw as usize,
        scale: if (nw, nh) == (w, h) { 1.0 } else { scale },
        mirrored_width: mirrored.then_some(w as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(mean: [f32; 3], std: [f32; 3], order: ChannelOrder) -> InputNorm {
        InputNorm { mean, std, order }
    }

    /// One pass with only `max_size` set (no TTA).
    fn prepare_image(image: &RgbImage, norm: &InputNorm, max_size: Option<u32>) -> PreparedPass {
        let test = TestSpec {
            max_size,
            ..TestSpec::default()
        };
        prepare_passes(image, norm, &test).remove(0)
    }

    pub(crate) fn textured(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 7 % 251) as u8,
                (y * 13 % 241) as u8,
                ((x ^ y) % 200) as u8,
            ])
        })
    }

    #[test]
    fn large_images_are_shrunk_and_small_ones_kept() {
        let image = RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]));
        let p = prepare_image(
            &image,
            &norm([0.0; 3], [1.0; 3], ChannelOrder::Rgb),
            Some(100),
        );
        assert_eq!((p.width, p.height), (100, 50));
        assert!((p.scale - 0.5).abs() < 1e-6);
        assert_eq!(p.pixels.len(), 3 * 100 * 50);
        let p = prepare_image(
            &image,
            &norm([10.0, 20.0, 30.0], [1.0; 3], ChannelOrder::Rgb),
            None,
        );
        assert_eq!((p.width, p.height, p.scale), (200, 100, 1.0));
        assert!(p.pixels.iter().all(|&v| v == 0.0));
        // BGR: the first plane is blue, normalised with the first mean (the blue one).
        let p = prepare_image(
            &image,
            &norm([30.0, 20.0, 10.0], [1.0; 3], ChannelOrder::Bgr),
            None,
        );
        assert!(p.pixels.iter().all(|&v| v == 0.0));
        let p = prepare_image(&image, &norm([0.0; 3], [1.0; 3], ChannelOrder::Bgr), None);
        assert_eq!((p.pixels[0], p.pixels[200 * 100 * 2]), (30.0, 10.0));
    }

    #[test]
    fn short_side_and_tta_passes_are_sized_and_mirrored() {
        let image = textured(200, 100);
        let norm = norm([0.0; 3], [1.0; 3], ChannelOrder::Rgb);
        let mut test = TestSpec {
            short_side: Some(50),
            ..Default::default()
        };
        let passes = prepare_passes(&image, &norm, &test);
        assert_eq!(passes.len(), 1);
        assert_eq!((passes[0].width, passes[0].height), (100, 50));
        assert!((passes[0].scale - 0.5).abs() < 1e-6);
        test.short_side = None;
        test.tta = Some(visage_model::TtaSpec {
            scales: vec![1.0, 0.5],
            flip: true,
        });
        let passes = prepare_passes(&image, &norm, &test);
        let sizes: Vec<(usize, usize, Option<f32>)> = passes
            .iter()
            .map(|p| (p.width, p.height, p.mirrored_width))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (200, 100, None),
                (200, 100, Some(200.0)),
                (100, 50, None),
                (100, 50, Some(200.0))
            ]
        );
        // The mirrored pass holds the mirrored image: plane 0, row 3, column x is column
        // 199 - x of the plain pass.
        let (plain, mirrored) = (&passes[0].pixels, &passes[1].pixels);
        for x in [0usize, 17, 199] {
            assert_eq!(mirrored[3 * 200 + x], plain[3 * 200 + 199 - x]);
        }
    }
}
