//! Depthwise 3×3 convolution (one filter per channel, padding 1, stride 1 or 2): MobileNet's
//! spatial layers. Each output row is one sweep in which a block of output vectors gathers its
//! nine taps from three input rows in independent chains of multiply-adds, compiled for
//! the running CPU's SIMD width through `pulp`'s run-time dispatch. The input is read in place:
//! the first and last output of a row (the ones that touch the zero padding) are computed
//! apart, and the rows above and below the image are a zero row. Stride 2 computes the
//! stride-1 row at the even input rows and keeps its even columns.

use pulp::bytemuck;
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// A depthwise 3×3 convolution of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise3x3 {
    /// Channels (= filters).
    pub channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Stride, 1 or 2 (both directions).
    pub stride: usize,
}

/// Scratch space of one worker: a zero row `[w]` (the padding above and below the image) and,
/// for stride 2, one stride-1 output row `[w]`.
struct Scratch {
    zeros: Vec<f32>,
    row: Vec<f32>,
}

impl Depthwise3x3 {
    /// Output height and width with padding 1: `(n − 1) / stride + 1`.
    pub fn output(&self) -> [usize; 2] {
        self.input.map(|n| (n + 2 - 3) / self.stride + 1)
    }

    fn scratch(&self) -> Scratch {
        let w = self.input[1];
        Scratch {
            zeros: vec![0.0; w],
            row: vec![0.0; if self.stride == 2 { w } else { 0 }],
        }
    }

    /// Runs the convolution on one image, followed by a leaky ReLU of `negative_slope` when one
    /// is given (applied channel by channel as each is written).
    ///
    /// # Shapes
    /// - `input`: `[C, h, w]`; `weight`: `[C, 1, 3, 3]`; `bias`: `[C]`
    /// - `output`: `[C, oh, ow]`
    ///
    /// # Panics
    /// If a slice length does not match, or the stride is not 1 or 2.
    pub fn run(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        negative_slope: Option<f32>,
        output: &mut [f32],
    ) {
        assert!(self.stride == 1 || self.stride == 2, "stride 1 or 2");
        let [h, w] = self.input;
        let [oh, ow] = self.output();
        assert_eq!(input.len(), self.channels * h * w);
        assert_eq!(weight.len(), self.channels * 9);
        assert_eq!(output.len(), self.channels * oh * ow);
        if oh * ow == 0 {
            return;
        }
        let channel = |scratch: &mut Scratch, (c, out): (usize, &mut [f32])| {
            pulp::Arch::new().dispatch(ChannelRows {
                geometry: self,
                plane: &input[c * h * w..(c + 1) * h * w],
                taps: weight[c * 9..c * 9 + 9].try_into().expect("nine taps"),
                bias: bias.map_or(0.0, |b| b[c]),
                scratch,
                out: &mut *out,
            });
            if let Some(slope) = negative_slope {
                super::activation::leaky_relu_in_place(out, slope);
            }
        };
        if output.len() >= 1 << 15 && rayon::current_num_threads() > 1 {
            output
                .par_chunks_mut(oh * ow)
                .enumerate()
                .for_each_init(|| self.scratch(), channel);
        } else {
            let mut scratch = self.scratch();
            for item in output.chunks_mut(oh * ow).enumerate() {
                channel(&mut scratch, item);
            }
        }
    }
}

/// The output rows of one channel, as a SIMD kernel.
struct ChannelRows<'a> {
    geometry: &'a Depthwise3x3,
    /// The channel's input `[h, w]`.
    plane: &'a [f32],
    taps: [f32; 9],
    bias: f32,
    scratch: &'a mut Scratch,
    /// The channel's output `[oh, ow]`.
    out: &'a mut [f32],
}

impl WithSimd for ChannelRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let [h, w] = self.geometry.input;
        let [_, ow] = self.geometry.output();
        let Scratch { zeros, row } = self.scratch;
        let zeros: &[f32] = zeros;
        // Input rows y − 1, y, y + 1, with the zero row outside the image.
        let rows = |y: usize| -> [&[f32]; 3] {
            std::array::from_fn(|k| match (y + k).checked_sub(1) {
                Some(r) if r < h => &self.plane[r * w..(r + 1) * w],
                _ => zeros,
            })
        };
        let kernel = RowKernel {
            simd,
            taps: self.taps,
            vector_taps: self.taps.map(|t| simd.splat_f32s(t)),
            bias: self.bias,
        };
        for (oy, out_row) in self.out.chunks_mut(ow).enumerate() {
            if self.geometry.stride == 1 {
                kernel.row(rows(oy), out_row);
            } else {
                kernel.row(rows(2 * oy), row);
                let pairs = row.chunks_exact(2);
                let last = pairs.remainder().first().copied();
                let mut outputs = out_row.iter_mut();
                // `pairs` first: zip stops on it without taking an output.
                for (pair, o) in pairs.zip(outputs.by_ref()) {
                    *o = pair[0];
                }
                if let (Some(o), Some(v)) = (outputs.next(), last) {
                    *o = v;
                }
            }
        }
    }
}

/// Vectors of outputs computed together: their independent chains of nine multiply-adds
/// hide the latency that one chain per vector would wait on.
const VECTORS_TOGETHER: usize = 4;

/// One channel's taps, for rows of stride-1 outputs.
struct RowKernel<S: Simd> {
    simd: S,
    taps: [f32; 9],
    vector_taps: [S::f32s; 9],
    bias: f32,
}

impl<S: Simd> RowKernel<S> {
    /// One stride-1 output row with padding 1:
    /// `out[x] = bias + Σ taps[3·ky + kx] · rows[ky][x + kx − 1]`, zero outside `0..n`.
    ///
    /// # Shapes
    /// `rows`: three input rows `[n]`; `out`: `[n]`.
    #[inline(always)]
    fn row(&self, rows: [&[f32]; 3], out: &mut [f32]) {
        let n = out.len();
        let taps = &self.taps;
        // The border outputs read the padding: out[0] lacks kx = 0, out[n − 1] lacks kx = 2.
        let border = |x: usize, kxs: std::ops::Range<usize>| {
            let mut acc = self.bias;
            for (ky, row) in rows.iter().enumerate() {
                for kx in kxs.clone() {
                    acc += taps[3 * ky + kx] * row[x + kx - 1];
                }
            }
            acc
        };
        out[0] = border(0, 1..if n > 1 { 3 } else { 2 });
        if n > 1 {
            out[n - 1] = border(n - 1, 0..2);
        }
        if n > 2 {
            self.interior(rows, &mut out[1..n - 1]);
        }
    }

    /// `out[x] = bias + Σ taps[3·ky + kx] · rows[ky][x + kx]` for every `x` of `out`.
    ///
    /// # Shapes
    /// `rows`: three rows `[m + 2]`; `out`: `[m]`.
    #[inline(always)]
    fn interior(&self, rows: [&[f32]; 3], out: &mut [f32]) {
        let simd = self.simd;
        let n = out.len();
        let whole = n / S::F32_LANES * S::F32_LANES;
        // The row under tap (ky, kx), shifted by kx, as whole vectors (the vector types have
        // the alignment of f32).
        let views: [&[S::f32s]; 9] = std::array::from_fn(|tap| {
            bytemuck::cast_slice(&rows[tap / 3][tap % 3..tap % 3 + whole])
        });
        let (vector_part, tail) = out.split_at_mut(whole);
        let out_vectors: &mut [S::f32s] = bytemuck::cast_slice_mut(vector_part);
        let bias = simd.splat_f32s(self.bias);
        // `acc + tap · v` rounded twice, tap after tap in (ky, kx) order: the sum the
        // definition writes, so results do not depend on the SIMD width.
        let taps = &self.vector_taps;
        #[inline(always)]
        fn multiply_add<S: Simd>(simd: S, acc: S::f32s, tap: S::f32s, v: S::f32s) -> S::f32s {
            simd.add_f32s(acc, simd.mul_f32s(tap, v))
        }
        let mut chunks = out_vectors.chunks_exact_mut(VECTORS_TOGETHER);
        let mut base = 0;
        for chunk in &mut chunks {
            let mut acc = [bias; VECTORS_TOGETHER];
            for (tap, view) in views.iter().enumerate() {
                let inputs: &[S::f32s; VECTORS_TOGETHER] = view[base..base + VECTORS_TOGETHER]
                    .try_into()
                    .expect("a block of vectors");
                for (a, &v) in acc.iter_mut().zip(inputs) {
                    *a = multiply_add(simd, *a, taps[tap], v);
                }
            }
            chunk.copy_from_slice(&acc);
            base += VECTORS_TOGETHER;
        }
        for o in chunks.into_remainder() {
            let mut acc = bias;
            for (tap, view) in views.iter().enumerate() {
                acc = multiply_add(simd, acc, taps[tap], view[base]);
            }
            *o = acc;
            base += 1;
        }
        if !tail.is_empty() {
            let mut acc = bias;
            for (tap, &weight) in self.vector_taps.iter().enumerate() {
                let shift = tap % 3;
                let v = simd.partial_load_f32s(&rows[tap / 3][whole + shift..n + shift]);
                acc = multiply_add(simd, acc, weight, v);
            }
            simd.partial_store_f32s(tail, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition.
    fn reference(d: &Depthwise3x3, x: &[f32], wt: &[f32], bias: &[f32]) -> Vec<f32> {
        let [h, w] = d.input;
        let [oh, ow] = d.output();
        let mut out = Vec::new();
        for c in 0..d.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[c];
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy * d.stride + ky) as isize - 1;
                            let ix = (ox * d.stride + kx) as isize - 1;
                            if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                acc += wt[c * 9 + ky * 3 + kx]
                                    * x[c * h * w + iy as usize * w + ix as usize];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    #[test]
    fn depthwise_equals_the_definition() {
        for (channels, input, stride) in [
            (3, [7, 9], 1),
            (2, [8, 5], 2),
            (4, [9, 10], 2),
            (1, [1, 1], 1),
            (1, [1, 2], 2),
            (2, [2, 3], 2),
            (5, [13, 11], 1),
            (3, [6, 37], 1),
            (2, [5, 41], 2),
        ] {
            let d = Depthwise3x3 {
                channels,
                input,
                stride,
            };
            let n = channels * input[0] * input[1];
            // Values whose products and sums round: the kernel must add the taps in the
            // definition's order to match it bit for bit.
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37) % 23) as f32 * 0.37 - 4.1)
                .collect();
            let wt: Vec<f32> = (0..channels * 9)
                .map(|i| (i % 7) as f32 * 0.13 - 0.41)
                .collect();
            let bias: Vec<f32> = (0..channels).map(|c| c as f32).collect();
            let [oh, ow] = d.output();
            let mut out = vec![f32::NAN; channels * oh * ow];
            d.run(&x, &wt, Some(&bias), None, &mut out);
            assert_eq!(out, reference(&d, &x, &wt, &bias), "{d:?}");
        }
    }
}
