//! Marker property tests (proptest): every geometric transform keeps the markers under their
//! landmarks and box corners, colour jitter leaves the geometry alone, and a seed fixes the
//! whole pipeline.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fixtures::{check_markers, marker_sample, same, DARK};
use crate::augment::*;
use crate::resize::Interpolation;

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
