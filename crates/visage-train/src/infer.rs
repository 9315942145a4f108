//! Single-image inference: the test-time preprocessing (optional shrink to `test.max_size`,
//! mean/std normalisation) and detection with boxes mapped back to the original image.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::RgbImage;
use visage_data::augment::to_chw;
use visage_model::{Detection, Detector};

/// An image ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedImage {
    /// `[3, H, W]` normalised pixels, row-major.
    pub pixels: Vec<f32>,
    /// Network input height.
    pub height: usize,
    /// Network input width.
    pub width: usize,
    /// Input pixels per original pixel (1 unless the image was shrunk).
    pub scale: f32,
}

/// Normalises `image` as the data config says, shrinking it first if its longer side exceeds
/// `max_size`.
pub fn prepare_image(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    max_size: Option<u32>,
) -> PreparedImage {
    let (w, h) = image.dimensions();
    let longer = w.max(h).max(1);
    match max_size {
        Some(limit) if longer > limit => {
            let scale = limit as f32 / longer as f32;
            let nw = ((w as f32 * scale).round() as u32).max(1);
            let nh = ((h as f32 * scale).round() as u32).max(1);
            let resized = image::imageops::resize(image, nw, nh, FilterType::Triangle);
            PreparedImage {
                pixels: to_chw(&resized, mean, std),
                height: nh as usize,
                width: nw as usize,
                scale,
            }
        }
        _ => PreparedImage {
            pixels: to_chw(image, mean, std),
            height: h as usize,
            width: w as usize,
            scale: 1.0,
        },
    }
}

/// Runs the detector on one prepared image; boxes are `[x1, y1, x2, y2]` in pixels of the
/// ORIGINAL image.
pub fn detect_prepared<B: Backend>(
    model: &Detector<B>,
    image: PreparedImage,
    device: &B::Device,
) -> Vec<Detection> {
    let input = Tensor::<B, 4>::from_data(
        TensorData::new(image.pixels, [1, 3, image.height, image.width]),
        device,
    );
    let outputs = model.forward(input);
    let mut detections = model
        .postprocess(&outputs)
        .into_iter()
        .next()
        .unwrap_or_default();
    if image.scale != 1.0 {
        for d in &mut detections {
            for v in &mut d.bbox {
                *v /= image.scale;
            }
        }
    }
    detections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_are_shrunk_and_small_ones_kept() {
        let image = RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]));
        let p = prepare_image(&image, [0.0; 3], [1.0; 3], Some(100));
        assert_eq!((p.width, p.height), (100, 50));
        assert!((p.scale - 0.5).abs() < 1e-6);
        assert_eq!(p.pixels.len(), 3 * 100 * 50);
        let p = prepare_image(&image, [10.0, 20.0, 30.0], [1.0; 3], None);
        assert_eq!((p.width, p.height, p.scale), (200, 100, 1.0));
        assert!(p.pixels.iter().all(|&v| v == 0.0));
    }
}
