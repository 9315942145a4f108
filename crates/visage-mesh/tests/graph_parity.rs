//! The graph operations against a float64 NumPy reference (`tools/parity/mesh_graph.py`,
//! spectral Chebyshev filters): the Laplacian, `ChebConv` with K = 1, 3, 6 and a bias, and
//! up- and down-sampling, on a 4 × 4 grid mesh with an isolated vertex and a coarse level.

use burn::backend::Flex;
use burn::tensor::{DType, Int, Tensor, TensorData};
use serde::Deserialize;
use visage_mesh::graph::{
    down_sample, normalised_laplacian, up_sample, upsampling_matrix, ChebConv,
};
use visage_mesh::{MeshLevel, Upsampling};

type B = Flex;

const FIXTURE: &str = include_str!("fixtures/mesh_graph.json");
/// Largest error allowed against the float64 reference in float32.
const TOLERANCE: f64 = 1e-5;

#[derive(Deserialize)]
struct Fixture {
    fine: MeshLevel,
    coarse: MeshLevel,
    down: Vec<usize>,
    up: Upsampling,
    laplacian_fine: Vec<f64>,
    laplacian_coarse: Vec<f64>,
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    x: Vec<f64>,
    x_coarse: Vec<f64>,
    up_expected: Vec<f64>,
    down_expected: Vec<f64>,
    cheb: Vec<ChebCase>,
}

#[derive(Deserialize)]
struct ChebCase {
    k: usize,
    weight: Vec<f64>,
    bias: Vec<f64>,
    expected: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(FIXTURE).expect("the fixture parses")
}

fn max_error<T: Copy + Into<f64>>(got: &[T], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g.into() - w).abs())
        .fold(0.0, f64::max)
}

fn tensor<const D: usize>(values: &[f64], shape: [usize; D], dtype: DType) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape),
        (&Default::default(), dtype),
    )
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.cast(DType::F64).into_data().to_vec().unwrap()
}

#[test]
fn laplacians_match() {
    let f = fixture();
    for (level, want) in [
        (&f.fine, &f.laplacian_fine),
        (&f.coarse, &f.laplacian_coarse),
    ] {
        let got = normalised_laplacian(level.vertex_count, &level.triangles);
        let err = max_error(&got, want);
        println!(
            "laplacian ({} vertices): max |error| {err:.2e}",
            level.vertex_count
        );
        assert!(err < 1e-7, "{err}");
    }
}

#[test]
fn cheb_conv_matches_float32_and_float64() {
    let f = fixture();
    let v = f.fine.vertex_count;
    let (m, c_in, c_out) = (f.batch, f.in_channels, f.out_channels);
    let lap = normalised_laplacian(v, &f.fine.triangles);
    let lap: Vec<f64> = lap.iter().map(|&x| x as f64).collect();
    for case in &f.cheb {
        // float32: weights, Laplacian and input rounded to f32, computed in f32; float64: the
        // reference's own Laplacian and weights, computed in f64 end to end.
        for (dtype, lap, tolerance) in [
            (DType::F32, &lap, TOLERANCE),
            (DType::F64, &f.laplacian_fine, 1e-12),
        ] {
            let conv = ChebConv::<B>::from_weights(
                tensor(&case.weight, [case.k, c_in, c_out], dtype),
                Some(tensor(&case.bias, [c_out], dtype)),
            );
            let x = tensor(&f.x, [m, v, c_in], dtype);
            let y = conv.forward(x, tensor(lap, [v, v], dtype));
            assert_eq!(y.dtype(), dtype);
            assert_eq!(y.dims(), [m, v, c_out]);
            let err = max_error(&values(y), &case.expected);
            println!("ChebConv K = {} ({dtype:?}): max |error| {err:.2e}", case.k);
            assert!(err < tolerance, "K = {}: {err}", case.k);
        }
    }
}

#[test]
fn sampling_matches() {
    let f = fixture();
    let (m, c) = (f.batch, f.in_channels);
    let (fine, coarse) = (f.fine.vertex_count, f.coarse.vertex_count);
    let matrix: Vec<f64> = upsampling_matrix(&f.up).iter().map(|&x| x as f64).collect();
    let up = up_sample(
        tensor(&f.x_coarse, [m, coarse, c], DType::F32),
        tensor(&matrix, [fine, coarse], DType::F32),
    );
    let err = max_error(&values(up), &f.up_expected);
    println!("up-sampling: max |error| {err:.2e}");
    assert!(err < TOLERANCE, "{err}");

    let kept: Vec<i64> = f.down.iter().map(|&i| i as i64).collect();
    let kept = Tensor::<B, 1, Int>::from_data(TensorData::new(kept, [coarse]), &Default::default());
    let down = down_sample(tensor(&f.x, [m, fine, c], DType::F32), kept);
    let err = max_error(&values(down), &f.down_expected);
    assert!(err < 1e-7, "{err}");
}
