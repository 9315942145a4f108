//! Shared helpers of the parity tests: fixture files and the tolerance check.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::KernelBackend;

/// `max |Δ| / max |ref|` allowed per feature level (f32 against a float64 reference).
pub const TOLERANCE: f32 = 1e-4;

/// Path of a committed fixture.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// The float32 tensors of a fixture file, by name.
pub struct Fixture {
    pub name: String,
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Fixture {
    /// One tensor on `device`; panics with the fixture's name if absent or not 4-D.
    pub fn tensor<B: KernelBackend>(&self, name: &str, device: &B::Device) -> Tensor<B, 4> {
        let (shape, values) = self.get(name);
        assert_eq!(shape.len(), 4, "{}: {name} is not 4-D", self.name);
        Tensor::from_data(TensorData::new(values.clone(), shape.clone()), device)
    }

    /// Shape and values of one tensor.
    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("{} has no tensor {name}", self.name))
    }
}

/// Reads `tests/fixtures/<name>` (safetensors, float32).
pub fn fixture(name: &str) -> Fixture {
    let bytes = std::fs::read(fixture_path(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run tools/parity/backbone_fixtures.py)"));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}: {key}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, (view.shape().to_vec(), values))
        })
        .collect();
    Fixture {
        name: name.to_string(),
        tensors,
    }
}

/// Asserts that each output level equals the fixture's reference of the same name within
/// `max |Δ| / max |ref| ≤ tolerance`, and prints the measured ratio.
pub fn assert_levels_match<B: KernelBackend>(
    fx: &Fixture,
    names: &[&str],
    outputs: Vec<Tensor<B, 4>>,
    tolerance: f32,
) {
    assert_eq!(outputs.len(), names.len(), "{}: level count", fx.name);
    for (name, out) in names.iter().zip(outputs) {
        let (shape, want) = fx.get(name);
        assert_eq!(&out.dims().to_vec(), shape, "{}: {name} shape", fx.name);
        let got: Vec<f32> = out.into_data().to_vec().unwrap();
        let max_ref = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_diff = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let ratio = max_diff / max_ref;
        println!("{} {name}: max|Δ|/max|ref| = {ratio:.2e}", fx.name);
        assert!(
            ratio <= tolerance,
            "{} {name}: max|Δ| {max_diff} / max|ref| {max_ref} = {ratio:.2e} > {tolerance:.0e}",
            fx.name
        );
    }
}
