//! Fixed cases of the geometric transforms: crop (plain, clipped, fallbacks, listed sides),
//! expand, pad to square and horizontal flip, with markers followed through them.

use image::Rgb;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::fixtures::{
    assert_markers, marked_sample, marker_near, marker_sample, same, DARK, PALETTE,
};
use crate::augment::crop::crop_at;
use crate::augment::*;

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
