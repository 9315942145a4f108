//! Depthwise 3×3 convolution (one filter per channel, padding 1, stride 1 or 2): MobileNet's
//! spatial layers. Each output row is nine `out += w · input_row` sweeps over contiguous
//! slices (stride 2 reads even / odd de-interleaved copies of the padded input), compiled
//! for the running CPU's SIMD width through `pulp`'s run-time dispatch.

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

impl Depthwise3x3 {
    /// Output height and width with padding 1: `(n − 1) / stride + 1`.
    pub fn output(&self) -> [usize; 2] {
        self.input.map(|n| (n + 2 - 3) / self.stride + 1)
    }

    /// Runs the convolution on one image.
    ///
    /// # Shapes
    /// - `input`: `[C, h, w]`; `weight`: `[C, 1, 3, 3]`; `bias`: `[C]`
    /// - `output`: `[C, oh, ow]`
    ///
    /// # Panics
    /// If a slice length does not match, or the stride is not 1 or 2.
    pub fn run(&self, input: &[f32], weight: &[f32], bias: Option<&[f32]>, output: &mut [f32]) {
        assert!(self.stride == 1 || self.stride == 2, "stride 1 or 2");
        let [h, w] = self.input;
        let [oh, ow] = self.output();
        assert_eq!(input.len(), self.channels * h * w);
        assert_eq!(weight.len(), self.channels * 9);
        assert_eq!(output.len(), self.channels * oh * ow);
        if oh * ow == 0 {
            return;
        }
        let channel = |(c, out): (usize, &mut [f32])| {
            let taps: &[f32; 9] = weight[c * 9..c * 9 + 9].try_into().expect("nine taps");
            let b = bias.map_or(0.0, |b| b[c]);
            let plane = &input[c * h * w..(c + 1) * h * w];
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || self.channel(plane, taps, b, out),
            );
        };
        if output.len() >= 1 << 15 && rayon::current_num_threads() > 1 {
            output.par_chunks_mut(oh * ow).enumerate().for_each(channel);
        } else {
            output.chunks_mut(oh * ow).enumerate().for_each(channel);
        }
    }

    /// One channel: `plane` `[h, w]` into `out` `[oh, ow]`.
    #[inline(always)]
    fn channel(&self, plane: &[f32], taps: &[f32; 9], bias: f32, out: &mut [f32]) {
        let [h, w] = self.input;
        let [_, ow] = self.output();
        // The plane with a zero border of one pixel, row by row; for stride 2 each padded row
        // is split into its even and odd columns so that every tap reads a contiguous run.
        let pw = w + 2;
        let mut padded = vec![0.0f32; (h + 2) * pw];
        for (y, row) in plane.chunks(w).enumerate() {
            padded[(y + 1) * pw + 1..(y + 1) * pw + 1 + w].copy_from_slice(row);
        }
        let (even_w, odd_w) = (pw.div_ceil(2), pw / 2);
        let (mut even, mut odd) = (Vec::new(), Vec::new());
        if self.stride == 2 {
            even = vec![0.0f32; (h + 2) * even_w];
            odd = vec![0.0f32; (h + 2) * odd_w];
            let rows = padded.chunks(pw).zip(even.chunks_mut(even_w));
            for ((row, e), o) in rows.zip(odd.chunks_mut(odd_w.max(1))) {
                for (i, pair) in row.chunks(2).enumerate() {
                    e[i] = pair[0];
                    if let [_, v] = pair {
                        o[i] = *v;
                    }
                }
            }
        }
        for (oy, out_row) in out.chunks_mut(ow).enumerate() {
            out_row.fill(bias);
            for ky in 0..3 {
                let y = oy * self.stride + ky;
                for kx in 0..3 {
                    let tap = taps[ky * 3 + kx];
                    let src = if self.stride == 1 {
                        &padded[y * pw + kx..y * pw + kx + ow]
                    } else {
                        // Padded column 2·ox + kx: even[ox] (kx 0), odd[ox] (kx 1),
                        // even[ox + 1] (kx 2).
                        let (rows, width, shift) = match kx {
                            0 => (&even, even_w, 0),
                            1 => (&odd, odd_w, 0),
                            _ => (&even, even_w, 1),
                        };
                        &rows[y * width + shift..y * width + shift + ow]
                    };
                    for (o, &v) in out_row.iter_mut().zip(src) {
                        *o += tap * v;
                    }
                }
            }
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
        ] {
            let d = Depthwise3x3 {
                channels,
                input,
                stride,
            };
            let n = channels * input[0] * input[1];
            let x: Vec<f32> = (0..n).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
            let wt: Vec<f32> = (0..channels * 9)
                .map(|i| (i % 7) as f32 * 0.5 - 1.5)
                .collect();
            let bias: Vec<f32> = (0..channels).map(|c| c as f32).collect();
            let [oh, ow] = d.output();
            let mut out = vec![f32::NAN; channels * oh * ow];
            d.run(&x, &wt, Some(&bias), &mut out);
            assert_eq!(out, reference(&d, &x, &wt, &bias), "{d:?}");
        }
    }
}
