//! End-to-end tests of the renderer: gradients against finite differences (f64), the
//! batch layout, robustness; [`scenes`]: recovery of scene parameters by gradient descent,
//! the template's default view and the timing. The rasteriser's hand-computed cases are in
//! `raster.rs`, the camera's and the shading's in theirs.

mod scenes;

use super::*;
use burn::backend::{Autodiff, Flex};
use burn::tensor::DType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(super) type Ad = Autodiff<Flex>;

pub(super) fn tensor<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    dtype: DType,
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (&Default::default(), dtype),
    )
}

pub(super) fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// An `n × n` grid over [−0.8, 0.8]², its x, y jittered and its z bumped at random,
/// triangles counter-clockwise seen from +z. Returns `(positions [V · 3], triangles)`.
pub(super) fn bumpy_grid(n: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<[usize; 3]>) {
    let step = 1.6 / (n - 1) as f64;
    let mut positions = Vec::new();
    for r in 0..n {
        for c in 0..n {
            let x = -0.8 + step * c as f64 + rng.random_range(-0.2..0.2) * step;
            let y = -0.8 + step * r as f64 + rng.random_range(-0.2..0.2) * step;
            positions.extend([x, y, rng.random_range(-0.15..0.15)]);
        }
    }
    let mut triangles = Vec::new();
    for r in 0..n - 1 {
        for c in 0..n - 1 {
            let (a, b, d, e) = (
                r * n + c,
                r * n + c + 1,
                (r + 1) * n + c + 1,
                (r + 1) * n + c,
            );
            triangles.extend([[a, b, d], [a, d, e]]);
        }
    }
    (positions, triangles)
}

pub(super) fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

#[test]
fn gradients_match_finite_differences() {
    // Two meshes (so that the batch indexing is exercised), 16 px, f64 end to end.
    let (m, size, n) = (2, 16, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let (grid, triangles) = bumpy_grid(n, &mut rng);
    let v = n * n;
    let mut positions = grid.clone();
    positions.extend(grid.iter().map(|x| x * 0.9 + rng.random_range(-0.02..0.02)));
    let colours: Vec<f64> = (0..m * v * 3).map(|_| rng.random_range(0.2..0.9)).collect();
    let camera = uniform(&mut rng, m * 7, 0.15);
    let mut light = uniform(&mut rng, m * 9, 0.1);
    light[0] += 1.0; // the light off to one side
    let weights = uniform(&mut rng, m * 3 * size * size, 1.0);
    let background: Vec<f64> = (0..m * 3 * size * size)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let f64_ = DType::F64;
    let shapes: [Vec<usize>; 4] = [vec![m, v, 3], vec![m, v, 3], vec![m, 7], vec![m, 9]];
    let params = [positions, colours, camera, light];

    let build = |p: &[Vec<f64>]| -> [Tensor<Ad, 3>; 2] {
        [
            tensor(&p[0], [m, v, 3], f64_),
            tensor(&p[1], [m, v, 3], f64_),
        ]
    };
    let loss = |pos: Tensor<Ad, 3>,
                col: Tensor<Ad, 3>,
                cam: Tensor<Ad, 2>,
                li: Tensor<Ad, 2>,
                ids: &[Vec<Option<u32>>]| {
        let r = render_with_ids(pos, col, cam, li, &triangles, size, ids);
        let images = r.images(tensor(&background, [m, 3, size, size], f64_));
        assert_eq!(images.dtype(), DType::F64);
        (images * tensor(&weights, [m, 3, size, size], f64_)).sum()
    };

    // Ids from the unperturbed scene, held fixed below.
    let [pos, col] = build(&params);
    let first = render(
        pos,
        col,
        tensor(&params[2], [m, 7], f64_),
        tensor(&params[3], [m, 9], f64_),
        &triangles,
        size,
    );
    assert_eq!(first.colours.dtype(), DType::F64);
    assert_eq!(first.projected.dtype(), DType::F64);
    let covered = first.pixel_index.len();
    assert!(
        covered > 100 && first.pixel_index.iter().any(|&p| p >= size * size),
        "{covered}"
    );
    let ids = first.ids.clone();

    let [pos, col] = build(&params);
    let inputs = (
        pos.require_grad(),
        col.require_grad(),
        tensor::<Ad, 2>(&params[2], [m, 7], f64_).require_grad(),
        tensor::<Ad, 2>(&params[3], [m, 9], f64_).require_grad(),
    );
    let grads = loss(
        inputs.0.clone(),
        inputs.1.clone(),
        inputs.2.clone(),
        inputs.3.clone(),
        &ids,
    )
    .backward();
    let analytic = [
        host(inputs.0.grad(&grads).expect("positions grad")),
        host(inputs.1.grad(&grads).expect("colours grad")),
        host(inputs.2.grad(&grads).expect("camera grad")),
        host(inputs.3.grad(&grads).expect("light grad")),
    ];

    let eval = |p: &[Vec<f64>]| -> f64 {
        let [pos, col] = build(p);
        host(loss(
            pos,
            col,
            tensor(&p[2], [m, 7], f64_),
            tensor(&p[3], [m, 9], f64_),
            &ids,
        ))[0]
    };
    let h = 1e-6;
    let names = ["positions", "colours", "camera", "light"];
    let mut worst = (0.0f64, "", 0);
    let mut worst_relative = 0.0f64;
    for group in 0..4 {
        assert_eq!(
            analytic[group].len(),
            shapes[group].iter().product::<usize>()
        );
        for i in 0..params[group].len() {
            let mut plus = params.clone();
            plus[group][i] += h;
            let mut minus = params.clone();
            minus[group][i] -= h;
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * h);
            let error = (analytic[group][i] - numeric).abs() / numeric.abs().max(1.0);
            if numeric.abs() >= 1e-2 {
                worst_relative =
                    worst_relative.max((analytic[group][i] - numeric).abs() / numeric.abs());
            }
            if error > worst.0 {
                worst = (error, names[group], i);
            }
            assert!(
                error <= 1e-5,
                "d/d{}[{i}]: autodiff {} vs finite difference {numeric}",
                names[group],
                analytic[group][i]
            );
        }
    }
    // Every camera and light value matters in this scene.
    for g in &analytic[2..] {
        assert!(g.iter().all(|g| g.abs() > 1e-6), "{g:?}");
    }
    println!(
        "max FD error |ad − fd| / max(|fd|, 1) = {:.2e} at {}[{}]; max |ad − fd| / |fd| over \
         |fd| ≥ 1e-2: {:.2e}",
        worst.0, worst.1, worst.2, worst_relative
    );
}

#[test]
fn images_replace_exactly_the_covered_pixels() {
    // Two meshes in one batch render the same pixels as each alone; images() puts the
    // colours at pixel_index and leaves the background elsewhere.
    let (size, n) = (12, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (grid, triangles) = bumpy_grid(n, &mut rng);
    let v = n * n;
    let colours: Vec<f64> = (0..2 * v * 3).map(|_| rng.random_range(0.0..1.0)).collect();
    let camera = uniform(&mut rng, 14, 0.2);
    let light = uniform(&mut rng, 18, 0.2);
    let f32_ = DType::F32;
    let both = render::<Flex>(
        tensor(&[grid.clone(), grid.clone()].concat(), [2, v, 3], f32_),
        tensor(&colours, [2, v, 3], f32_),
        tensor(&camera, [2, 7], f32_),
        tensor(&light, [2, 9], f32_),
        &triangles,
        size,
    );
    let all = host(both.colours.clone());
    let pixels = size * size;
    for k in 0..2 {
        let one = render::<Flex>(
            tensor(&grid, [1, v, 3], f32_),
            tensor(&colours[k * v * 3..(k + 1) * v * 3], [1, v, 3], f32_),
            tensor(&camera[k * 7..(k + 1) * 7], [1, 7], f32_),
            tensor(&light[k * 9..(k + 1) * 9], [1, 9], f32_),
            &triangles,
            size,
        );
        assert_eq!(one.ids[0], both.ids[k]);
        let offset = both
            .pixel_index
            .iter()
            .position(|&p| p >= k * pixels)
            .unwrap_or(0);
        let own: Vec<usize> = one.pixel_index.iter().map(|p| p + k * pixels).collect();
        assert_eq!(own, both.pixel_index[offset..offset + own.len()]);
        for (a, b) in host(one.colours).iter().zip(&all[3 * offset..]) {
            assert!((a - b).abs() < 1e-6);
        }
    }
    let background = vec![-1.0; 2 * 3 * pixels];
    let images = host(both.images(tensor(&background, [2, 3, size, size], f32_)));
    let coverage = both.coverage();
    assert_eq!(
        coverage.iter().filter(|&&c| c).count(),
        both.pixel_index.len()
    );
    for (k, &p) in both.pixel_index.iter().enumerate() {
        let (m, pixel) = (p / pixels, p % pixels);
        for c in 0..3 {
            assert_eq!(images[(m * 3 + c) * pixels + pixel], all[3 * k + c]);
        }
    }
    for (p, covered) in coverage.iter().enumerate() {
        let (m, pixel) = (p / pixels, p % pixels);
        if !covered {
            assert!((0..3).all(|c| images[(m * 3 + c) * pixels + pixel] == -1.0));
        }
    }
}

/// Renders (f32) and backpropagates a weighted sum of the images; asserts that everything
/// is finite and returns the rendering's coverage count.
fn finite_render_and_gradients(
    positions: &[f64],
    triangles: &[[usize; 3]],
    camera: &[f64],
) -> usize {
    let v = positions.len() / 3;
    let f32_ = DType::F32;
    let pos = tensor::<Ad, 3>(positions, [1, v, 3], f32_).require_grad();
    let colours = tensor::<Ad, 3>(&vec![0.6; v * 3], [1, v, 3], f32_).require_grad();
    let cam = tensor::<Ad, 2>(camera, [1, 7], f32_).require_grad();
    let light = tensor::<Ad, 2>(&[0.0; 9], [1, 9], f32_).require_grad();
    let r = render(
        pos.clone(),
        colours.clone(),
        cam.clone(),
        light.clone(),
        triangles,
        16,
    );
    let colour_values = host(r.colours.clone());
    assert!(
        colour_values.iter().all(|c| c.is_finite()),
        "{colour_values:?}"
    );
    let images = r.images(tensor(&vec![0.25; 3 * 256], [1, 3, 16, 16], f32_));
    assert!(host(images.clone()).iter().all(|c| c.is_finite()));
    let grads = images.sum().backward();
    for (name, g) in [
        ("positions", pos.grad(&grads).map(host)),
        ("colours", colours.grad(&grads).map(host)),
        ("camera", cam.grad(&grads).map(host)),
        ("light", light.grad(&grads).map(host)),
    ] {
        let g = g.unwrap_or_default();
        assert!(g.iter().all(|x| x.is_finite()), "{name}: {g:?}");
    }
    r.pixel_index.len()
}

#[test]
fn no_nan_behind_the_camera_degenerate_or_looking_up() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut grid, mut triangles) = bumpy_grid(5, &mut rng);
    let zeros = [0.0; 7];
    // Degenerate triangles: a repeated index, collinear and coincident corners.
    grid.extend([0.1, 0.1, 0.5, 0.2, 0.2, 0.5, 0.3, 0.3, 0.5, 0.1, 0.1, 0.5]);
    triangles.extend([[25, 25, 26], [25, 26, 27], [25, 28, 26], [0, 0, 0]]);
    assert!(finite_render_and_gradients(&grid, &triangles, &zeros) > 50);
    // Part of the mesh behind the eye (z > 4) and a vertex exactly in the eye's plane.
    let mut behind = grid.clone();
    for k in [0, 1, 2, 5, 6] {
        behind[3 * k + 2] = 5.0;
    }
    behind[3 * 7 + 2] = 4.0;
    assert!(finite_render_and_gradients(&behind, &triangles, &zeros) > 20);
    // Looking straight up (forward = +y): a plane y = 3 in front of the eye, right = +x.
    let above: Vec<f64> = grid
        .chunks(3)
        .flat_map(|p| [p[0], 3.0, 4.0 - p[1]])
        .collect();
    let up = [0.0, 0.0, 0.0, 0.0, 5.0, 4.0, 0.0];
    assert!(finite_render_and_gradients(&above, &triangles, &up) > 50);
    // Nothing in view (the camera turned around): no covered pixel, the background.
    assert_eq!(
        finite_render_and_gradients(&grid, &triangles, &[0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 0.0]),
        0
    );
    // The target at the eye: a degenerate view, still finite.
    finite_render_and_gradients(&grid, &triangles, &[0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 0.0]);
}
