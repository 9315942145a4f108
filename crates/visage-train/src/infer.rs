//! Single-image inference: the test-time preprocessing (optional shrink to `test.max_size`,
//! mean/std normalisation) and detection with boxes mapped back to the original image.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::RgbImage;
use visage_data::{to_chw_ordered, ChannelOrder};
use visage_model::{Detection, FaceModel};

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

/// Normalises `image` as the data config says (`mean` / `std` listed in `order`'s channel
/// order), shrinking it first if its longer side exceeds `max_size`.
pub fn prepare_image(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
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
                pixels: to_chw_ordered(&resized, mean, std, order),
                height: nh as usize,
                width: nw as usize,
                scale,
            }
        }
        _ => PreparedImage {
            pixels: to_chw_ordered(image, mean, std, order),
            height: h as usize,
            width: w as usize,
            scale: 1.0,
        },
    }
}

/// Wall time of one batch, split between the network and the post-processing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchTiming {
    /// Seconds in `forward` (on an asynchronous GPU backend this is mostly the launch; the
    /// wait then shows up in `postprocess_s`, which reads the outputs back).
    pub forward_s: f64,
    /// Seconds in decoding, thresholding, top-k, NMS and mapping boxes back.
    pub postprocess_s: f64,
}

/// Runs the detector on a batch of prepared images of one size; `result[i]` are the boxes of
/// `images[i]` as `[x1, y1, x2, y2]` (and landmarks, where the architecture has them) in
/// pixels of that ORIGINAL image.
///
/// # Panics
/// If the images differ in size (group them by `(height, width)` first) or `images` is empty.
pub fn detect_batch<B: Backend>(
    model: &FaceModel<B>,
    images: Vec<PreparedImage>,
    device: &B::Device,
) -> (Vec<Vec<Detection>>, BatchTiming) {
    let first = images.first().expect("a batch has at least one image");
    let (height, width) = (first.height, first.width);
    assert!(
        images
            .iter()
            .all(|i| i.height == height && i.width == width),
        "detect_batch needs images of one size"
    );
    let batch = images.len();
    let scales: Vec<f32> = images.iter().map(|i| i.scale).collect();
    let mut pixels = Vec::with_capacity(batch * 3 * height * width);
    for image in images {
        pixels.extend(image.pixels);
    }
    let started = std::time::Instant::now();
    let input =
        Tensor::<B, 4>::from_data(TensorData::new(pixels, [batch, 3, height, width]), device);
    let outputs = model.forward(input);
    let forward_s = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let detections: Vec<Vec<Detection>> = model
        .postprocess(&outputs)
        .into_iter()
        .zip(scales)
        .map(|(dets, scale)| dets.into_iter().map(|d| d.unscaled(scale)).collect())
        .collect();
    let timing = BatchTiming {
        forward_s,
        postprocess_s: started.elapsed().as_secs_f64(),
    };
    (detections, timing)
}

/// Runs the detector on one prepared image; boxes are `[x1, y1, x2, y2]` in pixels of the
/// ORIGINAL image.
pub fn detect_prepared<B: Backend>(
    model: &FaceModel<B>,
    image: PreparedImage,
    device: &B::Device,
) -> Vec<Detection> {
    detect_batch(model, vec![image], device)
        .0
        .pop()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_each_image_its_own_detections() {
        use burn::backend::Flex;
        let spec: visage_model::DetectorSpec = toml::from_str(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.fpn]
            channels = 8
            max_level = 5
            [head]
            channels = 8
            convs = 1
            [anchors]
            base_factor = 2.0
            scales = [1.0]
            ratios = [1.0]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.4
            "#,
        )
        .unwrap();
        let test = visage_model::TestSpec {
            score_threshold: 0.0,
            ..Default::default()
        };
        let device = Default::default();
        let model = FaceModel::<Flex>::new(&spec.into(), &test, &device).unwrap();
        let image = |seed: u8| {
            RgbImage::from_fn(40, 32, |x, y| {
                image::Rgb([(x as u8).wrapping_mul(seed), (y as u8) ^ seed, seed])
            })
        };
        let prepared: Vec<PreparedImage> = [3u8, 7]
            .iter()
            .map(|&s| prepare_image(&image(s), [0.0; 3], [255.0; 3], ChannelOrder::Rgb, None))
            .collect();
        let single: Vec<Vec<Detection>> = prepared
            .iter()
            .map(|p| detect_prepared(&model, p.clone(), &device))
            .collect();
        let (batched, timing) = detect_batch(&model, prepared, &device);
        assert!(timing.forward_s > 0.0 && timing.postprocess_s > 0.0);
        assert_eq!(batched.len(), 2);
        assert_ne!(
            single[0], single[1],
            "different images, different detections"
        );
        for (b, s) in batched.iter().zip(&single) {
            assert_eq!(b.len(), s.len());
            for (x, y) in b.iter().zip(s) {
                assert!((x.score - y.score).abs() < 1e-5);
                assert!(x.bbox.iter().zip(y.bbox).all(|(u, v)| (u - v).abs() < 1e-3));
            }
        }
    }

    #[test]
    fn large_images_are_shrunk_and_small_ones_kept() {
        let image = RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]));
        let p = prepare_image(&image, [0.0; 3], [1.0; 3], ChannelOrder::Rgb, Some(100));
        assert_eq!((p.width, p.height), (100, 50));
        assert!((p.scale - 0.5).abs() < 1e-6);
        assert_eq!(p.pixels.len(), 3 * 100 * 50);
        let p = prepare_image(
            &image,
            [10.0, 20.0, 30.0],
            [1.0; 3],
            ChannelOrder::Rgb,
            None,
        );
        assert_eq!((p.width, p.height, p.scale), (200, 100, 1.0));
        assert!(p.pixels.iter().all(|&v| v == 0.0));
        // BGR: the first plane is blue, normalised with the first mean (the blue one).
        let p = prepare_image(
            &image,
            [30.0, 20.0, 10.0],
            [1.0; 3],
            ChannelOrder::Bgr,
            None,
        );
        assert!(p.pixels.iter().all(|&v| v == 0.0));
        let p = prepare_image(&image, [0.0; 3], [1.0; 3], ChannelOrder::Bgr, None);
        assert_eq!((p.pixels[0], p.pixels[200 * 100 * 2]), (30.0, 10.0));
    }
}
