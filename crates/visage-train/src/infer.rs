//! Single-image inference: the test-time preprocessing (`[test] short_side` / `max_size`
//! sizing, mean/std normalisation, the passes of `[test.tta]`) and detection with boxes mapped
//! back to the original image.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::RgbImage;
use visage_data::{to_chw_ordered, ChannelOrder};
use visage_model::{merge_passes, Detection, FaceModel, TestSpec};

/// One pass of an image, ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedImage {
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

/// Normalises `image` as the data config says (`mean` / `std` listed in `order`'s channel
/// order), shrinking it first if its longer side exceeds `max_size`.
pub fn prepare_image(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
    max_size: Option<u32>,
) -> PreparedImage {
    let test = TestSpec {
        max_size,
        ..TestSpec::default()
    };
    let (w, h) = image.dimensions();
    prepare_pass(image, mean, std, order, test.input_scale(w, h), false)
}

/// Every pass `test` asks for (see [`TestSpec::passes`]): one at `test.input_scale` without
/// `[test.tta]`; with it, each scale multiplier of that base scale, mirrored too with `flip`.
pub fn prepare_passes(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
    test: &TestSpec,
) -> Vec<PreparedImage> {
    let (w, h) = image.dimensions();
    let base = test.input_scale(w, h);
    test.passes()
        .into_iter()
        .map(|(multiplier, mirrored)| {
            prepare_pass(image, mean, std, order, base * multiplier, mirrored)
        })
        .collect()
}

/// `image` resized by `scale` (sides rounded, at least 1 px; unchanged at scale 1), mirrored
/// if asked, normalised.
fn prepare_pass(
    image: &RgbImage,
    mean: [f32; 3],
    std: [f32; 3],
    order: ChannelOrder,
    scale: f32,
    mirrored: bool,
) -> PreparedImage {
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
        to_chw_ordered(&image::imageops::flip_horizontal(view), mean, std, order)
    } else {
        to_chw_ordered(view, mean, std, order)
    };
    PreparedImage {
        pixels,
        height: nh as usize,
        width: nw as usize,
        scale: if (nw, nh) == (w, h) { 1.0 } else { scale },
        mirrored_width: mirrored.then_some(w as f32),
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

/// Runs the detector on a batch of prepared passes of one size; `result[i]` are the boxes of
/// `images[i]` as `[x1, y1, x2, y2]` (and landmarks, where the architecture has them) in
/// pixels of that ORIGINAL image (unscaled, and mirrored back for a mirrored pass). With
/// `[test.tta]` they are one pass's candidates (post-processed with
/// [`TestSpec::per_pass`]), to be merged per image by [`merge_passes`].
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
    let frames: Vec<(f32, Option<f32>)> =
        images.iter().map(|i| (i.scale, i.mirrored_width)).collect();
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
        .postprocess_with(&outputs, &model.test_spec().per_pass())
        .into_iter()
        .zip(frames)
        .map(|(dets, (scale, mirrored_width))| {
            dets.into_iter()
                .map(|d| {
                    let d = d.unscaled(scale);
                    match mirrored_width {
                        Some(w) => d.flipped(w),
                        None => d,
                    }
                })
                .collect()
        })
        .collect();
    let timing = BatchTiming {
        forward_s,
        postprocess_s: started.elapsed().as_secs_f64(),
    };
    (detections, timing)
}

/// The detections of one image from its passes' detections: the single pass's as they are,
/// or, with `[test.tta]`, every pass's candidates merged by [`merge_passes`].
pub fn combine_passes(passes: Vec<Vec<Detection>>, test: &TestSpec) -> Vec<Detection> {
    match test.tta {
        None => passes.into_iter().flatten().collect(),
        Some(_) => merge_passes(passes, test),
    }
}

/// Runs the detector on the passes of one image (from [`prepare_passes`]; passes of one size
/// share a forward pass); boxes are `[x1, y1, x2, y2]` in pixels of the ORIGINAL image.
pub fn detect_passes<B: Backend>(
    model: &FaceModel<B>,
    passes: Vec<PreparedImage>,
    device: &B::Device,
) -> Vec<Detection> {
    let mut results: Vec<Vec<Detection>> = Vec::with_capacity(passes.len());
    let mut passes = passes.into_iter().peekable();
    while let Some(first) = passes.next() {
        let size = (first.height, first.width);
        let mut group = vec![first];
        while let Some(next) = passes.next_if(|p| (p.height, p.width) == size) {
            group.push(next);
        }
        results.extend(detect_batch(model, group, device).0);
    }
    combine_passes(results, model.test_spec())
}

/// Runs the detector on one prepared image; boxes are `[x1, y1, x2, y2]` in pixels of the
/// ORIGINAL image.
pub fn detect_prepared<B: Backend>(
    model: &FaceModel<B>,
    image: PreparedImage,
    device: &B::Device,
) -> Vec<Detection> {
    detect_passes(model, vec![image], device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_each_image_its_own_detections() {
        let test = visage_model::TestSpec {
            score_threshold: 0.0,
            ..Default::default()
        };
        let device = Default::default();
        let model = tiny_model(test);
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

    fn tiny_model(test: visage_model::TestSpec) -> FaceModel<burn::backend::Flex> {
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
        FaceModel::new(&spec.into(), &test, &Default::default()).unwrap()
    }

    fn textured(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 7 % 251) as u8,
                (y * 13 % 241) as u8,
                ((x ^ y) % 200) as u8,
            ])
        })
    }

    #[test]
    fn short_side_and_tta_passes_are_sized_and_mirrored() {
        let image = textured(200, 100);
        let mut test = visage_model::TestSpec {
            short_side: Some(50),
            ..Default::default()
        };
        let passes = prepare_passes(&image, [0.0; 3], [1.0; 3], ChannelOrder::Rgb, &test);
        assert_eq!(passes.len(), 1);
        assert_eq!((passes[0].width, passes[0].height), (100, 50));
        assert!((passes[0].scale - 0.5).abs() < 1e-6);
        test.short_side = None;
        test.tta = Some(visage_model::TtaSpec {
            scales: vec![1.0, 0.5],
            flip: true,
        });
        let passes = prepare_passes(&image, [0.0; 3], [1.0; 3], ChannelOrder::Rgb, &test);
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

    #[test]
    fn one_unmirrored_pass_at_scale_one_equals_no_tta() {
        let base = visage_model::TestSpec {
            score_threshold: 0.0,
            nms_threshold: 0.3,
            max_detections: 40,
            ..Default::default()
        };
        let image = textured(96, 64);
        let mut model = tiny_model(base.clone());
        let mut run = |test: &visage_model::TestSpec| {
            model.set_test_spec(test.clone()).unwrap();
            let passes = prepare_passes(&image, [0.0; 3], [255.0; 3], ChannelOrder::Rgb, test);
            detect_passes(&model, passes, &Default::default())
        };
        let plain = run(&base);
        assert!(!plain.is_empty() && plain.len() <= 40, "{}", plain.len());
        let single = visage_model::TestSpec {
            tta: Some(visage_model::TtaSpec {
                scales: vec![1.0],
                flip: false,
            }),
            ..base.clone()
        };
        assert_eq!(run(&single), plain);
    }

    #[test]
    fn tta_merges_passes_into_the_original_frame() {
        let test = visage_model::TestSpec {
            score_threshold: 0.0,
            nms_threshold: 0.4,
            max_detections: 50,
            tta: Some(visage_model::TtaSpec {
                scales: vec![1.0, 0.5, 1.5],
                flip: true,
            }),
            ..Default::default()
        };
        let model = tiny_model(test.clone());
        let image = textured(96, 64);
        let passes = prepare_passes(&image, [0.0; 3], [255.0; 3], ChannelOrder::Rgb, &test);
        assert_eq!(passes.len(), 6);
        let dets = detect_passes(&model, passes, &Default::default());
        assert!(!dets.is_empty() && dets.len() <= 50, "{}", dets.len());
        assert!(dets.windows(2).all(|w| w[0].score >= w[1].score));
        for d in &dets {
            let [x1, y1, x2, y2] = d.bbox;
            assert!(0.0 <= x1 && x1 < x2 && x2 <= 96.0 + 1e-3, "{:?}", d.bbox);
            assert!(0.0 <= y1 && y1 < y2 && y2 <= 64.0 + 1e-3, "{:?}", d.bbox);
        }
        // After the merge no two kept boxes overlap by more than the NMS threshold.
        for (i, a) in dets.iter().enumerate() {
            for b in &dets[i + 1..] {
                assert!(visage_boxes::iou(&a.bbox, &b.bbox) <= 0.4 + 1e-6);
            }
        }
    }
}
