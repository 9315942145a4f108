//! Whole scenes: recovery of camera, light and colour by gradient descent through the
//! renderer, the template's default view, and the timing of a training-sized batch.

use super::super::*;
use super::{bumpy_grid, host, tensor, uniform, Ad};
use crate::FaceMesh;
use burn::backend::Flex;
use burn::tensor::DType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// A textured dome (`n × n` grid over [−1, 1]², z = 0.6 (1 − (x² + y²) / 2)): positions and
/// smoothly varying vertex colours.
fn textured_dome(n: usize) -> (Vec<f64>, Vec<f64>, Vec<[usize; 3]>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut positions, triangles) = bumpy_grid(n, &mut rng);
    let mut colours = Vec::new();
    for p in positions.chunks_mut(3) {
        let (x, y) = (p[0] / 0.8, p[1] / 0.8);
        p[0] = x;
        p[1] = y;
        p[2] = 0.6 * (1.0 - 0.5 * (x * x + y * y));
        colours.extend([
            0.5 + 0.3 * (3.0 * x + 2.0 * y).sin(),
            0.5 + 0.3 * (2.0 * x - 3.0 * y).cos(),
            0.5 + 0.2 * (4.0 * y).sin(),
        ]);
    }
    (positions, colours, triangles)
}

#[test]
fn recovers_camera_light_and_colour() {
    // Target: the camera orbited to (0.3, −0.2, 4) and zoomed (f_c = 0.15), the light
    // moved to (1.5, 1, 4) and tinted (+0.2, 0, −0.15), the albedo shifted by
    // (0.1, −0.1, 0.05). Start from zeros; Adam on the mean squared pixel difference over a
    // grey background, re-rasterising every step. (z_c is left out: moving the camera back
    // and zooming in nearly cancel on this shallow dome, and Adam trades one for the other.)
    let (size, n) = (32, 12);
    let (positions, texture, triangles) = textured_dome(n);
    let v = n * n;
    let f32_ = DType::F32;
    // (x_c, y_c, f_c, x_l, y_l, r_l, g_l, b_l, albedo shift r, g, b)
    let truth = [0.3, -0.2, 0.15, 1.5, 1.0, 0.2, 0.0, -0.15, 0.1, -0.1, 0.05];
    let k = truth.len();
    let background = vec![0.5; 3 * size * size];
    let scene = |x: Tensor<Ad, 2>| -> Tensor<Ad, 4> {
        let zeros = |n: usize| Tensor::<Ad, 2>::zeros([1, n], (&Default::default(), f32_));
        let part = |a: usize, b: usize| x.clone().slice([0..1, a..b]);
        let camera = Tensor::cat(vec![part(0, 2), zeros(4), part(2, 3)], 1);
        let light = Tensor::cat(vec![part(3, 5), zeros(1), part(5, 8), zeros(3)], 1);
        let colours = tensor::<Ad, 3>(&texture, [1, v, 3], f32_) + part(8, 11).reshape([1, 1, 3]);
        render(
            tensor(&positions, [1, v, 3], f32_),
            colours,
            camera,
            light,
            &triangles,
            size,
        )
        .images(tensor(&background, [1, 3, size, size], f32_))
    };
    let target = scene(tensor(&truth, [1, k], f32_)).detach();

    let start = Instant::now();
    let steps = 300;
    let mut x = vec![0.0f64; k];
    let (mut m1, mut m2) = (vec![0.0; k], vec![0.0; k]);
    let (beta1, beta2) = (0.9f64, 0.999f64);
    let mut last_loss = f64::NAN;
    for step in 1..=steps {
        let theta = tensor::<Ad, 2>(&x, [1, k], f32_).require_grad();
        let loss = (scene(theta.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        last_loss = host(loss.clone())[0];
        let g = host(theta.grad(&loss.backward()).expect("grad"));
        let lr = 0.05 * (1.0 - 0.9 * step as f64 / steps as f64);
        for i in 0..k {
            m1[i] = beta1 * m1[i] + (1.0 - beta1) * g[i];
            m2[i] = beta2 * m2[i] + (1.0 - beta2) * g[i] * g[i];
            let (h1, h2) = (
                m1[i] / (1.0 - beta1.powi(step)),
                m2[i] / (1.0 - beta2.powi(step)),
            );
            x[i] -= lr * h1 / (h2.sqrt() + 1e-8);
        }
    }
    let worst = (0..k).map(|i| (x[i] - truth[i]).abs()).fold(0.0, f64::max);
    println!(
        "recovery: {steps} steps in {:.1} s, final loss {last_loss:.2e}, max |error| {worst:.1e}\n  truth     {truth:?}\n  recovered {:?}",
        start.elapsed().as_secs_f64(),
        x.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>()
    );
    for i in 0..k {
        assert!(
            (x[i] - truth[i]).abs() <= 1e-3,
            "parameter {i}: {} vs {}",
            x[i],
            truth[i]
        );
    }
}

#[test]
fn template_fills_the_default_view() {
    // At zeros the canonical face (half-extent 1) spans about 90 % of the crop; facing the
    // light, its shading is close to its albedo.
    let mesh = FaceMesh::canonical();
    let v = mesh.vertices.len();
    let positions: Vec<f64> = mesh
        .vertices
        .iter()
        .flatten()
        .map(|&x| f64::from(x))
        .collect();
    let size = 32;
    let f32_ = DType::F32;
    let r = render::<Flex>(
        tensor(&positions, [1, v, 3], f32_),
        tensor(&vec![0.8; v * 3], [1, v, 3], f32_),
        tensor(&[0.0; 7], [1, 7], f32_),
        tensor(&[0.0; 9], [1, 9], f32_),
        &mesh.triangles,
        size,
    );
    let fraction = r.pixel_index.len() as f64 / (size * size) as f64;
    assert!((0.45..0.9).contains(&fraction), "coverage {fraction}");
    // The crop centre is covered, the corners are not.
    let coverage = r.coverage();
    assert!(coverage[16 * 32 + 16] && !coverage[0] && !coverage[31] && !coverage[32 * 32 - 1]);
    let colours = host(r.colours);
    let mean = colours.iter().sum::<f64>() / colours.len() as f64;
    assert!(
        colours.iter().all(|c| (0.0..=0.8 + 1e-6).contains(c)),
        "{colours:?}"
    );
    assert!(mean > 0.6, "mean shade {mean}");
}

/// Forward and backward time of the configuration the detector trains with: 16 crops of
/// 32² of the template. Run with
/// `cargo test -p visage-mesh render::tests::scenes::timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    let mesh = FaceMesh::canonical();
    let (m, v, size) = (16, mesh.vertices.len(), 32);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let positions: Vec<f64> = (0..m)
        .flat_map(|_| {
            mesh.vertices
                .iter()
                .flatten()
                .map(|&x| f64::from(x) * 0.95)
                .collect::<Vec<_>>()
        })
        .collect();
    let colours: Vec<f64> = (0..m * v * 3).map(|_| rng.random_range(0.2..0.9)).collect();
    let camera = uniform(&mut rng, m * 7, 0.1);
    let light = uniform(&mut rng, m * 9, 0.1);
    let f32_ = DType::F32;
    let background = vec![0.5; m * 3 * size * size];
    let runs = 20;
    let (mut forward, mut backward) = (0.0, 0.0);
    for run in 0..=runs {
        let pos = tensor::<Ad, 3>(&positions, [m, v, 3], f32_).require_grad();
        let col = tensor::<Ad, 3>(&colours, [m, v, 3], f32_).require_grad();
        let cam = tensor::<Ad, 2>(&camera, [m, 7], f32_).require_grad();
        let li = tensor::<Ad, 2>(&light, [m, 9], f32_).require_grad();
        let t0 = Instant::now();
        let r = render(pos.clone(), col, cam, li, &mesh.triangles, size);
        let images = r.images(tensor(&background, [m, 3, size, size], f32_));
        let loss = images.sum();
        let _ = host(loss.clone());
        let t1 = Instant::now();
        let grads = loss.backward();
        let _ = host(pos.grad(&grads).expect("grad"));
        let t2 = Instant::now();
        if run > 0 {
            forward += (t1 - t0).as_secs_f64();
            backward += (t2 - t1).as_secs_f64();
        }
    }
    // The host rasteriser's share of the forward time.
    let projected = host(project(
        tensor::<Flex, 3>(&positions, [m, v, 3], f32_),
        tensor(&camera, [m, 7], f32_),
        size,
    ));
    let projected: Vec<f32> = projected.iter().map(|&x| x as f32).collect();
    let t0 = Instant::now();
    for _ in 0..runs {
        for k in 0..m {
            rasterise(
                &projected[3 * v * k..3 * v * (k + 1)],
                &mesh.triangles,
                size,
            );
        }
    }
    let raster = t0.elapsed().as_secs_f64();
    let per = |t: f64| 1e3 * t / runs as f64;
    println!(
        "render {m} × {v} vertices × {} triangles at {size}²: forward {:.2} ms (rasterise {:.2} ms), backward {:.2} ms",
        mesh.triangles.len(),
        per(forward),
        per(raster),
        per(backward)
    );
}
