//! Deterministic, non-trivial weights from a formula both Rust and Python evaluate, so parity
//! fixtures need to hold only inputs and outputs, never weights.
//!
//! The same formula is implemented in `tools/parity/backbone_fixtures.py`; change both or
//! neither. For the tensor with PyTorch key `key`, shape `shape` and row-major element index
//! `i`, with `u = sin(1.618034·i + 0.137·seed(key))` in `f64` and
//! `seed(key) = Σ_j (j + 1)·byte_j mod 9973` over the key's UTF-8 bytes:
//!
//! | tensor                                    | value                      |
//! |-------------------------------------------|----------------------------|
//! | rank ≥ 2 (convolution or linear weight)   | `2·u / √fan_in`, fan_in = Π shape[1..] |
//! | `*.running_mean`                          | `0.2·u`                    |
//! | `*.running_var`                           | `0.8 + 0.4·u` (in [0.4, 1.2]) |
//! | other rank-1 `*.weight` (norm scale)      | `0.3 + 0.1·u` (keeps a 152-layer net's activations in range) |
//! | other rank-1 `*.bias`                     | `0.1·u`                    |
//! | anything else                             | `u`                        |
//!
//! Values are computed in `f64` and rounded once to `f32`.

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::KernelBackend;

use super::load::parameter_shapes;
use super::{StateDict, TorchLayout};

/// `Σ_j (j + 1)·byte_j mod 9973` over the UTF-8 bytes of `key`.
pub fn key_seed(key: &str) -> u64 {
    key.bytes().enumerate().fold(0u64, |acc, (j, b)| {
        (acc + (j as u64 + 1) * u64::from(b)) % 9973
    })
}

/// The formula's values for one tensor, row-major.
pub fn formula_values(key: &str, shape: &[usize]) -> Vec<f32> {
    let seed = key_seed(key) as f64;
    let n: usize = shape.iter().product();
    let fan_in: usize = shape.iter().skip(1).product();
    let rank = shape.len();
    let value = |u: f64| -> f64 {
        if rank >= 2 {
            2.0 * u / (fan_in.max(1) as f64).sqrt()
        } else if key.ends_with("running_mean") {
            0.2 * u
        } else if key.ends_with("running_var") {
            0.8 + 0.4 * u
        } else if key.ends_with("weight") {
            0.3 + 0.1 * u
        } else if key.ends_with("bias") {
            0.1 * u
        } else {
            u
        }
    };
    (0..n)
        .map(|i| value((1.618034 * i as f64 + 0.137 * seed).sin()) as f32)
        .collect()
}

/// A state dict holding the formula's values for every parameter of `module`, keyed by
/// `layout`'s PyTorch names (as the reference module's `state_dict()` would be).
pub fn formula_state_dict<B: KernelBackend, M: Module<B>>(
    module: &M,
    layout: &TorchLayout,
) -> StateDict {
    let tensors = parameter_shapes::<B, M>(module)
        .into_iter()
        .map(|(path, shape)| {
            let key = (layout.path_to_key)(&path);
            let data = TensorData::new(formula_values(&key, &shape), shape);
            (key, data)
        });
    StateDict::from_tensors(format!("<formula weights for a {}>", layout.name), tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_values_are_pinned() {
        // "a.b": (1·97 + 2·46 + 3·98) mod 9973 = 483.
        assert_eq!(key_seed("a.b"), 483);
        let v = formula_values("x.running_var", &[3]);
        let seed = key_seed("x.running_var") as f64;
        for (i, got) in v.iter().enumerate() {
            let want = 0.8 + 0.4 * (1.618034 * i as f64 + 0.137 * seed).sin();
            assert_eq!(*got, want as f32);
            assert!((0.4..=1.2).contains(got));
        }
        let w = formula_values("conv.weight", &[2, 3, 3, 3]);
        let bound = 2.0 / 27f32.sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound + 1e-6));
        assert!(
            w.iter().any(|x| x.abs() > bound * 0.5),
            "values are not degenerate"
        );
    }
}
