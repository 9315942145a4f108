//! Augmentation tests: fixed cases and marker property tests.

use super::crop::crop_at;
use super::*;
use image::Rgb;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const RED: Rgb<u8> = Rgb([250, 0, 0]);
const BLUE: Rgb<u8> = Rgb([0, 0, 250]);

/// A 200×140 grey image with one face; its five landmarks carry 7×7 marker squares, the
/// left eye red and every other point blue.
fn marked_sample() -> Sample {
    let mut image = RgbImage::from_pixel(200, 140, Rgb([128, 128, 128]));
    let points = [
        [80.5, 60.5],
        [110.5, 60.5],
        [95.5, 75.5],
        [84.5, 90.5],
        [106.5, 90.5],
    ];
    for (k, p) in points.iter().enumerate() {
        let colour = if k == 0 { RED } else { BLUE };
        for dy in -3i32..=3 {
            for dx in -3i32..=3 {
                image.put_pixel((p[0] as i32 + dx) as u32, (p[1] as i32 + dy) as u32, colour);
            }
        }
    }
    Sample {
        image,
        boxes: vec![[70.0, 45.0, 121.0, 100.0]],
        landmarks: vec![Some(Landmarks {
            points,
            visible: [true; 5],
        })],
    }
}

fn colour_at(s: &Sample, p: [f32; 2]) -> Rgb<u8> {
    *s.image.get_pixel(p[0].floor() as u32, p[1].floor() as u32)
}

/// Checks the marker colour under every visible landmark; returns how many were checked.
fn assert_markers(s: &Sample, red_index: usize) -> usize {
    let lm = s.landmarks[0].expect("landmarks kept");
    let mut checked = 0;
    for k in 0..5 {
        if !lm.visible[k] {
            continue;
        }
        checked += 1;
        let c = colour_at(s, lm.points[k]);
        if k == red_index {
            assert!(c[0] > 200 && c[2] < 50, "point {k} should be red, is {c:?}");
        } else {
            assert!(
                c[2] > 200 && c[0] < 50,
                "point {k} should be blue, is {c:?}"
            );
        }
    }
    checked
}

#[test]
fn markers_follow_crop_flip_resize() {
    let mut checked = 0;
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s = random_square_crop(
            marked_sample(),
            &mut rng,
            &CropScale::Uniform([0.5, 1.0]),
            CropFallback::AroundFace,
        );
        assert_eq!(s.image.width(), s.image.height());
        assert_eq!(s.boxes.len(), 1, "the only face must survive (fallback)");
        let n = assert_markers(&s, 0);
        let s = horizontal_flip(s);
        // The red marker (originally the left eye) is now on the right: index 1.
        assert_eq!(assert_markers(&s, 1), n);
        let lm = s.landmarks[0].unwrap();
        assert!(
            lm.points[0][0] < lm.points[1][0],
            "left eye is left after flip"
        );
        let s = resize_square(s, 96);
        assert_eq!(s.image.dimensions(), (96, 96));
        assert_eq!(assert_markers(&s, 1), n);
        checked += n;
    }
    assert!(
        checked >= 60,
        "too few visible landmarks checked: {checked}"
    );
}

#[test]
fn flip_mirrors_boxes_and_swaps_eyes() {
    let s = horizontal_flip(marked_sample());
    assert_eq!(s.boxes[0], [200.0 - 121.0, 45.0, 200.0 - 70.0, 100.0]);
    let lm = s.landmarks[0].unwrap();
    assert_eq!(lm.points[0], [200.0 - 110.5, 60.5]);
    assert_eq!(lm.points[1], [200.0 - 80.5, 60.5]);
    assert_eq!(lm.points[3], [200.0 - 106.5, 90.5]);
    assert_eq!(lm.points[2], [200.0 - 95.5, 75.5]);
    let twice = horizontal_flip(s);
    assert_eq!(twice.boxes, marked_sample().boxes);
    assert_eq!(twice.landmarks, marked_sample().landmarks);
    assert_eq!(twice.image, marked_sample().image);
}

#[test]
fn crop_keeps_centre_inside_and_clips() {
    let mut s = marked_sample();
    s.boxes.push([0.0, 0.0, 20.0, 20.0]);
    s.landmarks.push(None);
    let out = crop_at(&s, 60, 10, 100);
    assert_eq!(out.boxes, vec![[10.0, 35.0, 61.0, 90.0]]);
    let out = crop_at(&s, 5, 5, 100);
    assert_eq!(out.boxes.len(), 2);
    assert_eq!(out.boxes[0], [65.0, 40.0, 100.0, 95.0]);
    assert_eq!(out.boxes[1], [0.0, 0.0, 15.0, 15.0]);
    assert_eq!(out.landmarks[1], None);
}

#[test]
fn crop_without_faces_is_square() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let s = Sample {
        image: RgbImage::new(50, 30),
        boxes: vec![],
        landmarks: vec![],
    };
    let out = random_square_crop(s, &mut rng, &CropScale::default(), CropFallback::AroundFace);
    let (w, h) = out.image.dimensions();
    assert!(w == h && (9..=30).contains(&w), "{w}x{h}");
}

#[test]
fn chw_layout_and_normalisation() {
    let mut img = RgbImage::new(2, 1);
    img.put_pixel(0, 0, Rgb([10, 20, 30]));
    img.put_pixel(1, 0, Rgb([40, 50, 60]));
    let v = to_chw(&img, [10.0, 20.0, 30.0], [1.0, 2.0, 5.0]);
    assert_eq!(v, vec![0.0, 30.0, 0.0, 15.0, 0.0, 6.0]);
}

// ---- Marker property tests --------------------------------------------------------------

use crate::resize::Interpolation;
use proptest::prelude::*;
use rand::Rng;

/// Landmark `k` carries a 3×3 block of `PALETTE[k]`; box corners carry white blocks 3.5 px
/// inside each corner; everything else is near-black.
const PALETTE: [[u8; 3]; 5] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 0, 255],
    [255, 255, 0],
];
const WHITE: [u8; 3] = [255, 255, 255];
const DARK: Rgb<u8> = Rgb([8, 8, 8]);
const CORNER_INSET: f32 = 3.5;

fn block(image: &mut RgbImage, p: [f32; 2], colour: [u8; 3]) {
    let (cx, cy) = (p[0].floor() as i64, p[1].floor() as i64);
    for y in cy - 1..=cy + 1 {
        for x in cx - 1..=cx + 1 {
            if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
                image.put_pixel(x as u32, y as u32, Rgb(colour));
            }
        }
    }
}

/// A `w × h` dark image with one `bw × bh` face at `(bx, by)` (integers), markers drawn.
fn marker_sample(w: u32, h: u32, bx: u32, by: u32, bw: u32, bh: u32) -> Sample {
    let mut image = RgbImage::from_pixel(w, h, DARK);
    let (x, y, fw, fh) = (bx as f32, by as f32, bw as f32, bh as f32);
    let at = |fx: f32, fy: f32| [(x + fx * fw).floor() + 0.5, (y + fy * fh).floor() + 0.5];
    let points = [
        at(0.28, 0.35),
        at(0.72, 0.35),
        at(0.5, 0.55),
        at(0.3, 0.8),
        at(0.7, 0.8),
    ];
    for (k, p) in points.iter().enumerate() {
        block(&mut image, *p, PALETTE[k]);
    }
    let b = [x, y, x + fw, y + fh];
    for p in corner_points(&b, 1.0, 1.0) {
        block(&mut image, p, WHITE);
    }
    Sample {
        image,
        boxes: vec![b],
        landmarks: vec![Some(Landmarks {
            points,
            visible: [true; 5],
        })],
    }
}

/// The corner marker positions of box `b` whose image was scaled by `(sx, sy)` in total.
fn corner_points(b: &[f32; 4], sx: f32, sy: f32) -> [[f32; 2]; 4] {
    let (dx, dy) = (CORNER_INSET * sx, CORNER_INSET * sy);
    [
        [b[0] + dx, b[1] + dy],
        [b[2] - dx, b[1] + dy],
        [b[0] + dx, b[3] - dy],
        [b[2] - dx, b[3] - dy],
    ]
}

/// Whether a pixel within `radius` of `p` shows `colour` (its lit channels bright, the others
/// at most half as bright: blurring against the dark background keeps the hue).
fn marker_near(image: &RgbImage, p: [f32; 2], colour: [u8; 3], radius: i64) -> bool {
    let (cx, cy) = (p[0].floor() as i64, p[1].floor() as i64);
    for y in cy - radius..=cy + radius {
        for x in cx - radius..=cx + radius {
            if x < 0 || y < 0 || x as u32 >= image.width() || y as u32 >= image.height() {
                continue;
            }
            let px = image.get_pixel(x as u32, y as u32).0;
            let on = (0..3)
                .filter(|&c| colour[c] > 0)
                .map(|c| px[c])
                .min()
                .unwrap();
            let off = (0..3).filter(|&c| colour[c] == 0).map(|c| px[c]).max();
            if on >= 90 && off.is_none_or(|o| (o as u32) * 2 <= on as u32) {
                return true;
            }
        }
    }
    false
}

/// Checks every visible landmark (landmark `k` must show `PALETTE[perm[k]]`) and, when the box
/// was not clipped, its four corner markers. `scale` is the total resize factor.
fn check_markers(s: &Sample, perm: [usize; 5], bw: f32, bh: f32, scale: [f32; 2], radius: i64) {
    assert_eq!(s.boxes.len(), 1, "the face is kept");
    let lm = s.landmarks[0].expect("landmarks kept");
    for k in 0..5 {
        if lm.visible[k] {
            assert!(
                marker_near(&s.image, lm.points[k], PALETTE[perm[k]], radius),
                "landmark {k} at {:?} lost its marker",
                lm.points[k]
            );
        }
    }
    let b = s.boxes[0];
    let unclipped = ((b[2] - b[0]) - bw * scale[0]).abs() < 1e-2
        && ((b[3] - b[1]) - bh * scale[1]).abs() < 1e-2;
    if unclipped {
        for p in corner_points(&b, scale[0], scale[1]) {
            assert!(
                marker_near(&s.image, p, WHITE, radius),
                "box corner at {p:?} lost its marker"
            );
        }
    }
}

fn same(a: &Sample, b: &Sample) -> bool {
    a.image == b.image && a.boxes == b.boxes && a.landmarks == b.landmarks
}

#[derive(Debug, Clone)]
struct Geometry {
    seed: u64,
    expand: Option<f32>,
    choices: bool,
    pad: bool,
    flip: bool,
    interp: usize,
    factor: f32,
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (
        any::<u64>(),
        proptest::option::of(1.0f32..2.5),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..5,
        0.6f32..1.6,
    )
        .prop_map(
            |(seed, expand, choices, pad, flip, interp, factor)| Geometry {
                seed,
                expand,
                choices,
                pad,
                flip,
                interp,
                factor,
            },
        )
}

fn face() -> impl Strategy<Value = (u32, u32, u32, u32, u32, u32)> {
    (80u32..220, 80u32..220, 40u32..70, 40u32..70).prop_flat_map(|(w, h, bw, bh)| {
        (Just(w), Just(h), 0..=w - bw, 0..=h - bh, Just(bw), Just(bh))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Expand, crop (uniform or choices, either fallback), flip and resize (any
    /// interpolation), checked after every step: markers stay under their landmarks and box
    /// corners, and after a flip the image-left eye is landmark 0.
    #[test]
    fn markers_follow_every_geometric_transform(
        (w, h, bx, by, bw, bh) in face(),
        g in geometry(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
        let mut s = marker_sample(w, h, bx, by, bw, bh);
        let (fw, fh) = (bw as f32, bh as f32);
        let id = [0, 1, 2, 3, 4];
        if let Some(r) = g.expand {
            s = expand(s, &mut rng, r, DARK);
            check_markers(&s, id, fw, fh, [1.0, 1.0], 0);
        }
        let scale = if g.choices {
            CropScale::Choices(CropScale::RETINAFACE.to_vec())
        } else {
            CropScale::default()
        };
        let fallback = if g.pad {
            CropFallback::PadToSquare(DARK)
        } else {
            CropFallback::AroundFace
        };
        s = random_square_crop(s, &mut rng, &scale, fallback);
        prop_assert_eq!(s.image.width(), s.image.height());
        check_markers(&s, id, fw, fh, [1.0, 1.0], 0);
        let perm = if g.flip {
            s = horizontal_flip(s);
            let lm = s.landmarks[0].unwrap();
            prop_assert!(lm.points[0][0] < lm.points[1][0], "left eye is image-left");
            prop_assert!(lm.points[3][0] < lm.points[4][0], "left mouth is image-left");
            [1, 0, 2, 4, 3]
        } else {
            id
        };
        check_markers(&s, perm, fw, fh, [1.0, 1.0], 0);
        let side = s.image.width();
        let size = ((side as f32 * g.factor).round() as u32).max(8);
        let f = size as f32 / side as f32;
        s = resize_square_with(s, size, Interpolation::ALL[g.interp]);
        check_markers(&s, perm, fw, fh, [f, f], 1);
    }

    /// Colour jitter is pointwise: jittering then cropping and flipping equals cropping and
    /// flipping then jittering with the same draws, and it never moves boxes or landmarks.
    #[test]
    fn colour_jitter_leaves_geometry_alone(
        (w, h, bx, by, bw, bh) in face(),
        seed in any::<u64>(),
        jitter_seed in any::<u64>(),
        flip in any::<bool>(),
    ) {
        let geom = |s: Sample| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let s = random_square_crop(s, &mut rng, &CropScale::default(), CropFallback::AroundFace);
            if flip { horizontal_flip(s) } else { s }
        };
        let jitter = |mut s: Sample| {
            colour_jitter(&mut s.image, &mut ChaCha8Rng::seed_from_u64(jitter_seed));
            s
        };
        let original = marker_sample(w, h, bx, by, bw, bh);
        let a = geom(jitter(original.clone()));
        let b = jitter(geom(original.clone()));
        prop_assert!(same(&a, &b));
        let plain = geom(original);
        prop_assert_eq!(&plain.boxes, &b.boxes);
        prop_assert_eq!(&plain.landmarks, &b.landmarks);
        prop_assert_eq!(plain.image.dimensions(), b.image.dimensions());
    }

    /// Same seed, same sample: the whole pipeline with every step on.
    #[test]
    fn same_seed_same_output(
        (w, h, bx, by, bw, bh) in face(),
        seed in any::<u64>(),
    ) {
        let run = || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut s = marker_sample(w, h, bx, by, bw, bh);
            colour_jitter(&mut s.image, &mut rng);
            let s = expand(s, &mut rng, 2.0, DARK);
            let scale = CropScale::Choices(CropScale::RETINAFACE.to_vec());
            let s = random_square_crop(s, &mut rng, &scale, CropFallback::PadToSquare(DARK));
            let s = horizontal_flip(s);
            let i = Interpolation::ALL[rng.random_range(0..5)];
            resize_square_with(s, 64, i)
        };
        prop_assert!(same(&run(), &run()));
    }
}

#[test]
fn retinaface_flip_swaps_eyes_and_mouth_corners() {
    let s = horizontal_flip(marker_sample(120, 100, 30, 20, 50, 60));
    let lm = s.landmarks[0].unwrap();
    assert!(lm.points[0][0] < lm.points[1][0]);
    assert!(lm.points[3][0] < lm.points[4][0]);
    // The new left eye is the old right eye: green.
    assert!(marker_near(&s.image, lm.points[0], PALETTE[1], 0));
    assert!(marker_near(&s.image, lm.points[1], PALETTE[0], 0));
    assert!(marker_near(&s.image, lm.points[3], PALETTE[4], 0));
}

#[test]
fn pad_to_square_keeps_geometry_and_fills_the_rest() {
    let s = marker_sample(120, 90, 30, 20, 50, 60);
    let p = pad_to_square(s.clone(), Rgb([1, 2, 3]));
    assert_eq!(p.image.dimensions(), (120, 120));
    assert_eq!(p.boxes, s.boxes);
    assert_eq!(p.landmarks, s.landmarks);
    assert_eq!(*p.image.get_pixel(5, 100), Rgb([1, 2, 3]));
    assert_eq!(*p.image.get_pixel(5, 5), DARK);
    let tall = pad_to_square(marker_sample(90, 120, 10, 20, 50, 60), Rgb([1, 2, 3]));
    assert_eq!(tall.image.dimensions(), (120, 120));
    assert_eq!(*tall.image.get_pixel(100, 5), Rgb([1, 2, 3]));
}

#[test]
fn pad_fallback_pads_when_no_crop_keeps_a_face() {
    let mut s = marker_sample(120, 90, 30, 20, 50, 60);
    // A face whose centre is outside the image: no crop can keep it.
    s.boxes[0] = [-20.0, -20.0, -4.0, -4.0];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let out = random_square_crop(
        s.clone(),
        &mut rng,
        &CropScale::default(),
        CropFallback::PadToSquare(Rgb([9, 9, 9])),
    );
    assert_eq!(out.image.dimensions(), (120, 120));
    assert_eq!(out.boxes, s.boxes);
}

#[test]
fn expand_places_the_image_on_a_mean_canvas() {
    let s = marker_sample(100, 80, 20, 10, 50, 60);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let e = expand(s.clone(), &mut rng, 3.0, Rgb([7, 7, 7]));
    let (w, h) = e.image.dimensions();
    assert!(
        (100..=300).contains(&w) && (80..=240).contains(&h),
        "{w}x{h}"
    );
    let (dx, dy) = (e.boxes[0][0] - 20.0, e.boxes[0][1] - 10.0);
    assert_eq!(dx.fract(), 0.0);
    for (x, y, p) in s.image.enumerate_pixels() {
        assert_eq!(e.image.get_pixel(x + dx as u32, y + dy as u32), p);
    }
    let filled = e.image.pixels().filter(|p| **p == Rgb([7, 7, 7])).count();
    assert_eq!(filled as u32, w * h - 100 * 80);
    let unchanged = expand(s.clone(), &mut rng, 1.0, Rgb([7, 7, 7]));
    assert!(same(&unchanged, &s));
}

#[test]
fn crop_choices_draw_only_the_listed_sides() {
    let s = Sample {
        image: RgbImage::new(300, 200),
        boxes: vec![],
        landmarks: vec![],
    };
    let scale = CropScale::Choices(CropScale::RETINAFACE.to_vec());
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let out = random_square_crop(s.clone(), &mut rng, &scale, CropFallback::AroundFace);
        seen.insert(out.image.width());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![60, 90, 120, 160, 200]
    );
}

#[test]
fn opencv_hsv_conventions() {
    assert_eq!(rgb_to_hsv_cv([255, 0, 0]), [0, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 255, 0]), [60, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 0, 255]), [120, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 0, 0]), [0, 0, 0]);
    assert_eq!(rgb_to_hsv_cv([128, 128, 128]), [0, 0, 128]);
    assert_eq!(hsv_cv_to_rgb([60, 255, 255]), [0, 255, 0]);
    assert_eq!(hsv_cv_to_rgb([90, 255, 255]), [0, 255, 255]);
    // Colours where exact division and OpenCV's 12-bit fixed-point tables disagree on S
    // (`cv2.cvtColor(..., COLOR_RGB2HSV)`, OpenCV 5.0): ours is OpenCV's integer code.
    for (rgb, hsv) in [
        ([52, 104, 72], [72, 127, 104]),
        ([46, 102, 33], [54, 173, 102]),
        ([212, 185, 37], [25, 211, 212]),
        ([75, 12, 245], [128, 242, 245]),
        ([73, 189, 184], [89, 156, 189]),
        ([130, 180, 30], [40, 213, 180]),
    ] {
        assert_eq!(rgb_to_hsv_cv(rgb), hsv, "{rgb:?}");
    }
    // `cv2.cvtColor(..., COLOR_HSV2RGB)`.
    for (hsv, rgb) in [
        ([17, 200, 180], [180, 119, 39]),
        ([95, 33, 250], [218, 245, 250]),
        ([179, 255, 128], [128, 0, 4]),
        ([44, 128, 77], [59, 77, 38]),
    ] {
        assert_eq!(hsv_cv_to_rgb(hsv), rgb, "{hsv:?}");
    }
    // Round trips lose at most a few levels (8-bit H is 2 degrees; OpenCV's own 8-bit round
    // trip is off by up to 5 over all 2^24 colours).
    let mut worst = 0;
    for r in (0..256).step_by(15) {
        for g in (0..256).step_by(17) {
            for b in (0..256).step_by(13) {
                let rgb = [r as u8, g as u8, b as u8];
                let back = hsv_cv_to_rgb(rgb_to_hsv_cv(rgb));
                for c in 0..3 {
                    worst = worst.max((back[c] as i32 - rgb[c] as i32).abs());
                }
            }
        }
    }
    assert!(worst <= 5, "round trip error {worst}");
}

#[test]
fn convert_clips_and_truncates_like_numpy_uint8() {
    let mut img = RgbImage::from_raw(2, 1, vec![3, 250, 100, 0, 128, 255]).unwrap();
    super::colour::convert(&mut img, 1.0, 10.7);
    assert_eq!(img.as_raw(), &vec![13, 255, 110, 10, 138, 255]);
    super::colour::convert(&mut img, 0.5, 0.0);
    assert_eq!(img.as_raw(), &vec![6, 127, 55, 5, 69, 127]);
}

/// The one-pass table-driven distortion equals the per-pixel reference (OpenCV's HSV, the
/// saturation and hue steps, back to RGB in floating point) within one level (two after a
/// contrast step), on a colour cube.
#[test]
fn fast_distortion_matches_the_per_pixel_reference() {
    let cube: Vec<u8> = (0..32u32 * 32 * 32)
        .flat_map(|i| {
            [(i % 32) * 8 + 3, (i / 32 % 32) * 8 + 5, (i / 1024) * 8 + 1].map(|c| c as u8)
        })
        .collect();
    let image = RgbImage::from_raw(32 * 32, 32, cube).unwrap();
    let mut checked_hsv = 0;
    for seed in 0..64u64 {
        // Replays the draws of `Distortion::draw` to know the parameters.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let contrast_first = rng.random_bool(0.5);
        let bright = rng
            .random_bool(0.5)
            .then(|| rng.random_range(-32.0..=32.0f64));
        let c_pre =
            (contrast_first && rng.random_bool(0.5)).then(|| rng.random_range(0.5..=1.5f64));
        let sat = rng.random_bool(0.5).then(|| rng.random_range(0.5..=1.5f64));
        let hue = rng.random_bool(0.5).then(|| rng.random_range(-18..=18i32));
        let c_post =
            (!contrast_first && rng.random_bool(0.5)).then(|| rng.random_range(0.5..=1.5f64));
        let store = |x: f64| x.clamp(0.0, 255.0) as u8;
        let reference = |p: [u8; 3]| {
            let mut p = p;
            if let Some(d) = bright {
                p = p.map(|v| store(v as f64 + d));
            }
            if let Some(a) = c_pre {
                p = p.map(|v| store(v as f64 * a));
            }
            if sat.is_some() || hue.is_some() {
                let mut hsv = rgb_to_hsv_cv(p);
                if let Some(a) = sat {
                    hsv[1] = store(hsv[1] as f64 * a);
                }
                if let Some(k) = hue {
                    hsv[0] = (hsv[0] as i32 + k).rem_euclid(180) as u8;
                }
                p = hsv_cv_to_rgb(hsv);
            }
            if let Some(a) = c_post {
                p = p.map(|v| store(v as f64 * a));
            }
            p
        };
        let mut out = image.clone();
        colour_jitter(&mut out, &mut ChaCha8Rng::seed_from_u64(seed));
        // One level from HSV → RGB, scaled by up to 1.5 by a later contrast step.
        let tolerance = if c_post.is_some() { 2 } else { 1 };
        for (a, b) in image.pixels().zip(out.pixels()) {
            let want = reference(a.0);
            for c in 0..3 {
                assert!(
                    (want[c] as i32 - b[c] as i32).abs() <= tolerance,
                    "seed {seed}: {a:?} -> {b:?}, reference {want:?}"
                );
            }
        }
        checked_hsv += (sat.is_some() || hue.is_some()) as usize;
    }
    assert!(checked_hsv > 20);
}

#[test]
fn colour_jitter_probabilities() {
    // Four independent coins (brightness, contrast, saturation, hue) at ½: an image is left
    // untouched 1/16 of the time.
    let image = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 30) as u8, (y * 30) as u8, 100]));
    let unchanged = (0..800)
        .filter(|&seed| {
            let mut out = image.clone();
            colour_jitter(&mut out, &mut ChaCha8Rng::seed_from_u64(seed));
            out == image
        })
        .count();
    assert!(
        (25..=80).contains(&unchanged),
        "{unchanged} of 800 (expect 50)"
    );
}

#[test]
fn bgr_normalisation_reverses_planes_and_mean_pixel() {
    let mut img = RgbImage::new(2, 1);
    img.put_pixel(0, 0, Rgb([10, 20, 30]));
    img.put_pixel(1, 0, Rgb([40, 50, 60]));
    let v = to_chw_ordered(&img, [30.0, 20.0, 10.0], [1.0, 2.0, 5.0], ChannelOrder::Bgr);
    assert_eq!(v, vec![0.0, 30.0, 0.0, 15.0, 0.0, 6.0]);
    assert_eq!(
        mean_pixel([104.0, 117.0, 123.0], ChannelOrder::Bgr),
        Rgb([123, 117, 104])
    );
    assert_eq!(
        mean_pixel([123.675, 116.28, 103.53], ChannelOrder::Rgb),
        Rgb([124, 116, 104])
    );
}
