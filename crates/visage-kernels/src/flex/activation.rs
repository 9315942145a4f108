//! Leaky ReLU applied in place to a freshly written convolution output, while it is still in
//! cache: `x ≥ 0 ? x : slope · x`, Flex's `leaky_relu` element for element (ReLU is slope 0).

use pulp::bytemuck;
use pulp::{Simd, WithSimd};

/// `values[i] = values[i] ≥ 0 ? values[i] : negative_slope · values[i]`.
pub fn leaky_relu_in_place(values: &mut [f32], negative_slope: f32) {
    if (0.0..=1.0).contains(&negative_slope) {
        pulp::Arch::new().dispatch(LeakyRelu {
            values,
            negative_slope,
        });
    } else {
        for v in values {
            *v = leaky_relu(*v, negative_slope);
        }
    }
}

/// One element, as Flex computes it.
#[inline(always)]
fn leaky_relu(x: f32, negative_slope: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        negative_slope * x
    }
}

/// For a slope in `[0, 1]`, `max(x, slope · x)` is the leaky ReLU: `x` wins for `x ≥ 0` and
/// `slope · x` for `x < 0` (both are NaN for a NaN).
struct LeakyRelu<'a> {
    values: &'a mut [f32],
    negative_slope: f32,
}

impl WithSimd for LeakyRelu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let whole = self.values.len() / S::F32_LANES * S::F32_LANES;
        let (head, tail) = self.values.split_at_mut(whole);
        let vectors: &mut [S::f32s] = bytemuck::cast_slice_mut(head);
        let slope = simd.splat_f32s(self.negative_slope);
        for v in vectors {
            *v = simd.max_f32s(*v, simd.mul_f32s(slope, *v));
        }
        for v in tail {
            *v = leaky_relu(*v, self.negative_slope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_definition_for_every_slope_and_length() {
        for slope in [0.0, 0.1, 1.0, 1.5, -0.25] {
            for n in [0, 1, 7, 8, 17, 64, 75] {
                let x: Vec<f32> = (0..n).map(|i| (i as f32 - 30.0) * 0.37).collect();
                let mut y = x.clone();
                leaky_relu_in_place(&mut y, slope);
                for (a, b) in x.iter().zip(&y) {
                    let expected = if *a >= 0.0 { *a } else { slope * a };
                    assert_eq!(expected.to_bits(), b.to_bits(), "slope {slope}, x {a}");
                }
            }
        }
    }
}
