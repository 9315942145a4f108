//! Stride-1 convolutions without columns: the image is zero-padded once (`[C, Hp·Wp + slack]`,
//! Hp = h + 2·pad_y, Wp = w + 2·pad_x) and every kernel tap `(ky, kx)` is the same padded
//! matrix read from column `ky·dil_y·Wp + kx·dil_x` on. On the "wide" output grid (`oh` rows
//! of `Wp` columns, of which the first `ow` are the output), the convolution is then
//!
//! `out_wide = Σ_taps W_tap · padded[:, offset_tap ..][:, ..oh·Wp]`
//!
//! with `W_tap` the `[out, C]` weights of one tap: `kh·kw` accumulated faer products over
//! views of one buffer, instead of building the `kh·kw`-times larger column matrix
//! ([`super::im2col`]) that a stride-1 convolution reads nine times over for a 3×3 kernel.
//! The wide columns past `ow` hold values that belong to no output; they are dropped when
//! cropping, and set to zero in the output gradient so that they contribute nothing.
//!
//! The gradients use the same views:
//! - input: `padded_grad[:, offset_tap ..] += W_tapᵀ · dY_wide` for each tap, then the interior;
//! - weight: `dW_tap = Σ_images dY_wide · padded[:, offset_tap ..]ᵀ`.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::batch;
use super::im2col::ConvGeometry;

/// A stride-1 convolution's padded layout (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shifted {
    geometry: ConvGeometry,
    /// Padded height and width `[Hp, Wp]`.
    padded: [usize; 2],
    /// Length of one channel's padded plane and its slack: `Hp·Wp + dil_x·(kw − 1)`.
    len: usize,
}

impl Shifted {
    /// The layout of `geometry` when it is a stride-1 convolution with a kernel or padding
    /// (a plain 1×1 needs no copy at all) and a non-empty output; else `None`.
    pub fn new(geometry: &ConvGeometry) -> Option<Self> {
        let [oh, ow] = geometry.output();
        if geometry.stride != [1, 1] || geometry.is_pointwise() || oh * ow == 0 {
            return None;
        }
        let [h, w] = geometry.input;
        let [py, px] = geometry.padding;
        let padded = [h + 2 * py, w + 2 * px];
        let len = padded[0] * padded[1] + geometry.dilation[1] * (geometry.kernel[1] - 1);
        Some(Self {
            geometry: *geometry,
            padded,
            len,
        })
    }

    /// Number of kernel taps, `kh · kw`.
    fn taps(&self) -> usize {
        self.geometry.kernel[0] * self.geometry.kernel[1]
    }

    /// Columns of the wide output grid, `oh · Wp`.
    fn wide(&self) -> usize {
        self.geometry.output()[0] * self.padded[1]
    }

    /// Where tap `t` (row-major over the kernel) starts in a padded plane.
    fn offset(&self, t: usize) -> usize {
        let kw = self.geometry.kernel[1];
        let [dy, dx] = self.geometry.dilation;
        (t / kw) * dy * self.padded[1] + (t % kw) * dx
    }

    /// `weight` (`[out, C, kh, kw]`) as one `[out, C]` matrix per tap (`[kh·kw, out, C]`).
    pub fn weight_taps(&self, weight: &[f32], out_channels: usize) -> Vec<f32> {
        let (taps, channels) = (self.taps(), self.geometry.channels);
        assert_eq!(weight.len(), out_channels * channels * taps, "weight shape");
        let mut by_tap = vec![0.0f32; weight.len()];
        for (row, filter) in weight.chunks(taps).enumerate() {
            for (t, &v) in filter.iter().enumerate() {
                by_tap[t * out_channels * channels + row] = v;
            }
        }
        by_tap
    }

    /// The inverse of [`Self::weight_taps`]: `[kh·kw, out, C]` back to `[out, C, kh, kw]` (the
    /// weight gradient from [`Self::add_weight_grad`]'s per-tap sums).
    pub fn weight_grad(&self, by_tap: &[f32]) -> Vec<f32> {
        let taps = self.taps();
        let per_tap = by_tap.len() / taps;
        let mut weight = vec![0.0f32; by_tap.len()];
        for (row, filter) in weight.chunks_mut(taps).enumerate() {
            for (t, v) in filter.iter_mut().enumerate() {
                *v = by_tap[t * per_tap + row];
            }
        }
        weight
    }

    /// One image (`[C, h, w]`) zero-padded into `padded` (`[C, len]`, overwritten).
    fn pad(&self, image: &[f32], padded: &mut [f32]) {
        let [h, w] = self.geometry.input;
        let [py, px] = self.geometry.padding;
        let wp = self.padded[1];
        padded.fill(0.0);
        for (plane, dst) in image.chunks(h * w).zip(padded.chunks_mut(self.len)) {
            for (row, src) in plane.chunks(w).enumerate() {
                let start = (row + py) * wp + px;
                dst[start..start + w].copy_from_slice(src);
            }
        }
    }

    /// The interior of padded planes (`[C, len]`) into `image` (`[C, h, w]`).
    fn unpad(&self, padded: &[f32], image: &mut [f32]) {
        let [h, w] = self.geometry.input;
        let [py, px] = self.geometry.padding;
        let wp = self.padded[1];
        for (plane, src) in image.chunks_mut(h * w).zip(padded.chunks(self.len)) {
            for (row, dst) in plane.chunks_mut(w).enumerate() {
                let start = (row + py) * wp + px;
                dst.copy_from_slice(&src[start..start + w]);
            }
        }
    }

    /// Rows of wide planes (`[rows, oh·Wp]`) cropped to the output (`[rows, oh·ow]`).
    fn crop(&self, wide: &[f32], out: &mut [f32]) {
        let [oh, ow] = self.geometry.output();
        let wp = self.padded[1];
        for (src, dst) in wide.chunks(oh * wp).zip(out.chunks_mut(oh * ow)) {
            for (s, d) in src.chunks(wp).zip(dst.chunks_mut(ow)) {
                d.copy_from_slice(&s[..ow]);
            }
        }
    }

    /// Output planes (`[rows, oh·ow]`) spread onto the wide grid (`[rows, oh·Wp]`), the extra
    /// columns zero.
    fn widen(&self, out: &[f32], wide: &mut [f32]) {
        let [oh, ow] = self.geometry.output();
        let wp = self.padded[1];
        for (src, dst) in out.chunks(oh * ow).zip(wide.chunks_mut(oh * wp)) {
            for (s, d) in src.chunks(ow).zip(dst.chunks_mut(wp)) {
                d[..ow].copy_from_slice(s);
                d[ow..].fill(0.0);
            }
        }
    }

    /// The convolution of one image (`[C, h, w]`) by `taps` ([`Self::weight_taps`] of
    /// `out_channels` filters), plus `bias`, into `out` (`[out, oh, ow]`). `padded` and `wide`
    /// are scratch (resized here); `par`: the threads of the products.
    pub fn forward(
        &self,
        image: &[f32],
        taps: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        [padded, wide]: [&mut Vec<f32>; 2],
        par: Par,
    ) {
        let out_channels = self.out_channels_and_scratch(out.len(), padded, wide);
        let channels = self.geometry.channels;
        self.pad(image, padded);
        match bias {
            Some(bias) => {
                for (plane, &b) in wide.chunks_mut(self.wide()).zip(bias) {
                    plane.fill(b);
                }
            }
            None => wide.fill(0.0),
        }
        let source = MatRef::from_row_major_slice(&padded[..], channels, self.len);
        let dst = MatMut::from_row_major_slice_mut(&mut wide[..], out_channels, self.wide());
        // One image on several threads: each thread takes a band of output columns through
        // every tap.
        batch::by_column_blocks(dst, par, |columns, mut block| {
            for (t, w_tap) in taps.chunks(out_channels * channels).enumerate() {
                let w_tap = MatRef::from_row_major_slice(w_tap, out_channels, channels);
                let src = source.subcols(self.offset(t) + columns.start, columns.len());
                matmul(block.as_mut(), Accum::Add, w_tap, src, 1.0f32, Par::Seq);
            }
        });
        self.crop(wide, out);
    }

    /// The input gradient of one image (`dx`, `[C, h, w]`, overwritten) from its output
    /// gradient `dy` (`[out, oh, ow]`). `padded` and `wide` are scratch.
    pub fn input_grad(
        &self,
        dy: &[f32],
        taps: &[f32],
        dx: &mut [f32],
        [padded, wide]: [&mut Vec<f32>; 2],
        par: Par,
    ) {
        let out_channels = self.out_channels_and_scratch(dy.len(), padded, wide);
        let channels = self.geometry.channels;
        self.widen(dy, wide);
        padded.fill(0.0);
        let dy_wide = MatRef::from_row_major_slice(&wide[..], out_channels, self.wide());
        for (t, w_tap) in taps.chunks(out_channels * channels).enumerate() {
            let w_tap_t = MatRef::from_row_major_slice(w_tap, out_channels, channels).transpose();
            let grad = MatMut::from_row_major_slice_mut(&mut padded[..], channels, self.len);
            let dst = grad.subcols_mut(self.offset(t), self.wide());
            matmul(dst, Accum::Add, w_tap_t, dy_wide, 1.0f32, par);
        }
        self.unpad(padded, dx);
    }

    /// Adds one image's weight gradient (per tap, `[kh·kw, out, C]`) into `dw_taps`, from the
    /// image (`[C, h, w]`) and its output gradient `dy` (`[out, oh, ow]`).
    pub fn add_weight_grad(
        &self,
        image: &[f32],
        dy: &[f32],
        dw_taps: &mut [f32],
        [padded, wide]: [&mut Vec<f32>; 2],
        par: Par,
    ) {
        let out_channels = self.out_channels_and_scratch(dy.len(), padded, wide);
        let channels = self.geometry.channels;
        self.pad(image, padded);
        self.widen(dy, wide);
        let source = MatRef::from_row_major_slice(&padded[..], channels, self.len);
        let dy_wide = MatRef::from_row_major_slice(&wide[..], out_channels, self.wide());
        for (t, dw_tap) in dw_taps.chunks_mut(out_channels * channels).enumerate() {
            let dst = MatMut::from_row_major_slice_mut(dw_tap, out_channels, channels);
            let src_t = source.subcols(self.offset(t), self.wide()).transpose();
            matmul(dst, Accum::Add, dy_wide, src_t, 1.0f32, par);
        }
    }

    /// The output channels of an `[out, oh, ow]` slice of `len` values, with the two scratch
    /// buffers sized for them: `padded` `[C, len]`, `wide` `[out, oh·Wp]`.
    fn out_channels_and_scratch(
        &self,
        len: usize,
        padded: &mut Vec<f32>,
        wide: &mut Vec<f32>,
    ) -> usize {
        let [oh, ow] = self.geometry.output();
        let out_channels = len / (oh * ow);
        padded.resize(self.geometry.channels * self.len, 0.0);
        wide.resize(out_channels * self.wide(), 0.0);
        out_channels
    }
}

#[cfg(test)]
mod tests {
    use super::super::im2col::im2col;
    use super::*;

    fn geometries() -> Vec<ConvGeometry> {
        // (channels, input, kernel, padding, dilation), stride 1.
        [
            (3, [7, 9], [3, 3], [1, 1], [1, 1]),
            (2, [5, 8], [3, 3], [0, 0], [1, 1]),
            (2, [9, 6], [3, 5], [2, 1], [2, 1]),
            (1, [2, 3], [5, 5], [2, 2], [1, 1]),
            (4, [6, 5], [1, 1], [1, 0], [1, 1]),
            (2, [1, 1], [3, 3], [1, 1], [1, 1]),
        ]
        .into_iter()
        .map(
            |(channels, input, kernel, padding, dilation)| ConvGeometry {
                channels,
                input,
                kernel,
                stride: [1, 1],
                padding,
                dilation,
            },
        )
        .collect()
    }

    fn series(n: usize, a: usize, b: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * a) % b) as f32 - (b / 2) as f32)
            .collect()
    }

    /// `weight · im2col(x)`, the definition the column path is tested on.
    fn by_columns(g: &ConvGeometry, x: &[f32], weight: &[f32], out: usize) -> Vec<f32> {
        let [oh, ow] = g.output();
        let mut cols = vec![0.0f32; g.rows() * oh * ow];
        im2col(x, g, &mut cols);
        let mut y = vec![0.0f32; out * oh * ow];
        for o in 0..out {
            for p in 0..oh * ow {
                y[o * oh * ow + p] = (0..g.rows())
                    .map(|r| weight[o * g.rows() + r] * cols[r * oh * ow + p])
                    .sum();
            }
        }
        y
    }

    /// Integer-valued data: every sum is exact, so the two paths agree bit for bit.
    #[test]
    fn forward_equals_the_column_product() {
        for g in geometries() {
            let s = Shifted::new(&g).expect("stride 1");
            let out = 3;
            let [oh, ow] = g.output();
            let x = series(g.channels * g.input[0] * g.input[1], 7, 5);
            let weight = series(out * g.rows(), 5, 7);
            let bias = [1.0, -2.0, 0.5];
            let mut y = vec![f32::NAN; out * oh * ow];
            let taps = s.weight_taps(&weight, out);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            s.forward(&x, &taps, Some(&bias), &mut y, [&mut a, &mut b], Par::Seq);
            let mut expected = by_columns(&g, &x, &weight, out);
            for (plane, b) in expected.chunks_mut(oh * ow).zip(bias) {
                plane.iter_mut().for_each(|v| *v += b);
            }
            assert_eq!(y, expected, "{g:?}");
        }
    }

    /// `<conv(x), dy> = <x, input_grad(dy)>` and `<conv_w(x), dy> = <w, weight_grad>`: the
    /// gradients are the adjoints of the forward, in exact integer arithmetic.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward() {
        for g in geometries() {
            let s = Shifted::new(&g).expect("stride 1");
            let out = 2;
            let [oh, ow] = g.output();
            let x = series(g.channels * g.input[0] * g.input[1], 3, 5);
            let weight = series(out * g.rows(), 5, 7);
            let dy = series(out * oh * ow, 11, 9);
            let taps = s.weight_taps(&weight, out);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut y = vec![0.0f32; out * oh * ow];
            s.forward(&x, &taps, None, &mut y, [&mut a, &mut b], Par::Seq);
            let mut dx = vec![f32::NAN; x.len()];
            s.input_grad(&dy, &taps, &mut dx, [&mut a, &mut b], Par::Seq);
            let mut dw_taps = vec![0.0f32; weight.len()];
            s.add_weight_grad(&x, &dy, &mut dw_taps, [&mut a, &mut b], Par::Seq);
            let dw = s.weight_grad(&dw_taps);
            let dot = |p: &[f32], q: &[f32]| -> f64 {
                p.iter().zip(q).map(|(&a, &b)| a as f64 * b as f64).sum()
            };
            let lhs = dot(&y, &dy);
            assert_eq!(lhs, dot(&x, &dx), "input gradient, {g:?}");
            assert_eq!(lhs, dot(&weight, &dw), "weight gradient, {g:?}");
        }
    }

    #[test]
    fn only_stride_one_convolutions_with_a_kernel_or_padding() {
        let g = |kernel, stride, padding| ConvGeometry {
            channels: 1,
            input: [4, 4],
            kernel,
            stride,
            padding,
            dilation: [1, 1],
        };
        assert!(Shifted::new(&g([3, 3], [1, 1], [1, 1])).is_some());
        assert!(Shifted::new(&g([3, 3], [2, 2], [1, 1])).is_none());
        assert!(Shifted::new(&g([1, 1], [1, 1], [0, 0])).is_none());
        assert!(Shifted::new(&g([3, 3], [1, 1], [0, 0])).is_some());
        assert!(
            Shifted::new(&g([5, 5], [1, 1], [0, 0])).is_none(),
            "no output"
        );
    }
}
