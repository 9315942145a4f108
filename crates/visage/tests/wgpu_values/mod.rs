//! Deterministic test tensors and the comparison the wgpu-against-Flex tests share.

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::KernelBackend;

/// Relative tolerance of every compared tensor.
pub const REL: f32 = 1e-4;

/// Deterministic values in [-1, 1) from a 64-bit LCG.
pub fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tensor of `shape` filled by [`values`].
pub fn tensor<B: KernelBackend, const D: usize>(
    shape: [usize; D],
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(len, seed), shape), device)
}

/// `(max |a − b|, max |a|)` of two tensors of the same size (a NaN difference counts).
pub fn worst(a: &TensorData, b: &TensorData) -> (f32, f32) {
    let a = a.to_vec::<f32>().unwrap();
    let b = b.to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (p, q)| {
        if (p - q).abs() > m || (p - q).is_nan() {
            (p - q).abs()
        } else {
            m
        }
    });
    (diff, scale)
}
