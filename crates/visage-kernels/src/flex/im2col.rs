//! Image-to-column in NCHW order: the patches of one image as a `[C·kh·kw, oh·ow]` row-major
//! matrix (row `(c, ky, kx)`, column `(oy, ox)`), so that a convolution is one matrix product
//! `weight[out, C·kh·kw] × columns` whose result is already the NCHW output plane by plane.

use rayon::prelude::*;

/// The geometry of one 2-D convolution (symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels (of one group).
    pub channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (≥ 1).
    pub stride: [usize; 2],
    /// Zero padding added on both sides.
    pub padding: [usize; 2],
    /// Dilation (≥ 1).
    pub dilation: [usize; 2],
}

impl ConvGeometry {
    /// Output height and width: `(n + 2·pad − dil·(k − 1) − 1) / stride + 1`, or 0 when the
    /// dilated kernel does not fit.
    pub fn output(&self) -> [usize; 2] {
        [0, 1].map(|d| {
            let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
            let padded = self.input[d] + 2 * self.padding[d];
            if padded < span {
                0
            } else {
                (padded - span) / self.stride[d] + 1
            }
        })
    }

    /// Rows of the column matrix: `C · kh · kw`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// The output columns `[first, end)` whose input column `ox·sx + kx·dx − px` for kernel
    /// column `kx` lies inside `[0, w)` (empty when `first ≥ end`).
    pub fn columns_inside(&self, kx: usize) -> [usize; 2] {
        let w = self.input[1];
        let ow = self.output()[1];
        let (sx, px, offset) = (self.stride[1], self.padding[1], kx * self.dilation[1]);
        let first = px.saturating_sub(offset).div_ceil(sx);
        let end = if w + px > offset {
            ((w + px - offset - 1) / sx + 1).min(ow)
        } else {
            0
        };
        [first, end]
    }

    /// Whether the columns are the input itself (1×1, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Fills `columns` (`[rows(), oh·ow]`, row-major) from one image `input` (`[C, h, w]`);
/// out-of-image taps are zero.
///
/// # Panics
/// If a slice length does not match the geometry.
pub fn im2col(input: &[f32], geometry: &ConvGeometry, columns: &mut [f32]) {
    let [h, w] = geometry.input;
    let [oh, ow] = geometry.output();
    let [kh, kw] = geometry.kernel;
    assert_eq!(
        input.len(),
        geometry.channels * h * w,
        "input of the geometry"
    );
    assert_eq!(
        columns.len(),
        geometry.rows() * oh * ow,
        "columns of the geometry"
    );
    // With a column stride, each input row is first split into its `sx` phases (columns
    // ≡ φ mod sx, one after the other): every tap then reads one phase's columns
    // contiguously, and the copy below is a plain slice copy instead of a strided gather.
    let phased;
    let (source, plane_len) = if geometry.stride[1] > 1 {
        phased = split_phases(input, geometry);
        (&phased[..], phased.len() / geometry.channels.max(1))
    } else {
        (input, h * w)
    };
    let fill_row = |(row, dst): (usize, &mut [f32])| {
        let c = row / (kh * kw);
        let ky = (row / kw) % kh;
        let kx = row % kw;
        let plane = &source[c * plane_len..(c + 1) * plane_len];
        fill_tap(plane, geometry, [ky, kx], dst);
    };
    let plane_out = (oh * ow).max(1);
    // Rows are independent; split them across threads when there is enough to copy.
    if columns.len() >= 1 << 16 {
        columns
            .par_chunks_mut(plane_out)
            .enumerate()
            .for_each(fill_row);
    } else {
        columns.chunks_mut(plane_out).enumerate().for_each(fill_row);
    }
}

/// Width of one phase of an input row split by a column stride `sx`: `⌈w / sx⌉`.
pub(super) fn phase_width(geometry: &ConvGeometry) -> usize {
    geometry.input[1].div_ceil(geometry.stride[1])
}

/// `input` (`[C, h, w]`) with every row split into its `sx` column phases:
/// `[C, sx, h, ⌈w/sx⌉]`, phase φ holding columns φ, φ + sx, … (zero past the row's end).
pub(super) fn split_phases(input: &[f32], geometry: &ConvGeometry) -> Vec<f32> {
    let [h, w] = geometry.input;
    let sx = geometry.stride[1];
    let wq = phase_width(geometry);
    let mut phased = vec![0.0f32; geometry.channels * sx * h * wq];
    for (plane, dst) in input.chunks(h * w).zip(phased.chunks_mut(sx * h * wq)) {
        for (iy, row) in plane.chunks(w).enumerate() {
            if sx == 2 {
                // The common case, as two contiguous rows (the compiler vectorises this).
                let (even, odd) = dst.split_at_mut(h * wq);
                let (even, odd) = (&mut even[iy * wq..][..wq], &mut odd[iy * wq..][..wq]);
                let pairs = row.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    even[wq - 1] = *last;
                }
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                    *e = pair[0];
                    *o = pair[1];
                }
                continue;
            }
            for (j, group) in row.chunks(sx).enumerate() {
                for (phase, &v) in group.iter().enumerate() {
                    dst[(phase * h + iy) * wq + j] = v;
                }
            }
        }
    }
    phased
}

/// One row of the column matrix: input plane `plane` sampled at kernel tap `[ky, kx]` for
/// every output position, written to `dst` (`[oh · ow]`). `plane` is `[h, w]` for a column
/// stride of 1, else the plane's phases (`[sx, h, ⌈w/sx⌉]`, [`split_phases`]).
fn fill_tap(plane: &[f32], geometry: &ConvGeometry, [ky, kx]: [usize; 2], dst: &mut [f32]) {
    let [h, w] = geometry.input;
    let [_, ow] = geometry.output();
    let [sy, sx] = geometry.stride;
    let [py, px] = geometry.padding;
    let [dy, dx] = geometry.dilation;
    // Output columns whose input column `ox·sx + kx·dx − px` lies inside [0, w).
    let offset = kx * dx;
    let [first, end] = geometry.columns_inside(kx);
    // The first input column read, as (phase, column within the phase).
    let start = (first * sx + offset).saturating_sub(px);
    let (phase, start, row_len) = if sx == 1 {
        (0, start, w)
    } else {
        (start % sx, start / sx, phase_width(geometry))
    };
    for (oy, out_row) in dst.chunks_mut(ow.max(1)).enumerate() {
        let iy = (oy * sy + ky * dy) as isize - py as isize;
        if iy < 0 || iy >= h as isize || first >= end {
            out_row.fill(0.0);
            continue;
        }
        let row = (phase * h + iy as usize) * row_len;
        let src = &plane[row..row + row_len];
        out_row[..first].fill(0.0);
        out_row[end..].fill(0.0);
        out_row[first..end].copy_from_slice(&src[start..start + (end - first)]);
    }
}

/// The adjoint of [`im2col`]: adds every entry of `columns` (`[rows(), oh·ow]`) into the
/// input position it was read from, giving the gradient of one image (`[C, h, w]`, overwritten)
/// from the gradient of its columns. Out-of-image taps are dropped.
///
/// # Panics
/// If a slice length does not match the geometry.
pub fn col2im(columns: &[f32], geometry: &ConvGeometry, input: &mut [f32]) {
    let [h, w] = geometry.input;
    let [oh, ow] = geometry.output();
    let [kh, kw] = geometry.kernel;
    assert_eq!(
        input.len(),
        geometry.channels * h * w,
        "input of the geometry"
    );
    assert_eq!(
        columns.len(),
        geometry.rows() * oh * ow,
        "columns of the geometry"
    );
    let plane_out = oh * ow;
    let channel = |(c, plane): (usize, &mut [f32])| {
        plane.fill(0.0);
        if plane_out == 0 {
            return;
        }
        let rows = &columns[c * kh * kw * plane_out..(c + 1) * kh * kw * plane_out];
        for (tap, row) in rows.chunks(plane_out).enumerate() {
            add_tap(row, geometry, [tap / kw, tap % kw], plane);
        }
    };
    if input.len() >= 1 << 16 && rayon::current_num_threads() > 1 {
        input.par_chunks_mut(h * w).enumerate().for_each(channel);
    } else {
        input.chunks_mut(h * w).enumerate().for_each(channel);
    }
}

/// The adjoint of [`fill_tap`]: `src` (`[oh · ow]`) added into `plane` (`[h, w]`) at kernel
/// tap `[ky, kx]`.
fn add_tap(src: &[f32], geometry: &ConvGeometry, [ky, kx]: [usize; 2], plane: &mut [f32]) {
    let [h, w] = geometry.input;
    let [_, ow] = geometry.output();
    let [sy, sx] = geometry.stride;
    let [py, px] = geometry.padding;
    let [dy, dx] = geometry.dilation;
    let offset = kx * dx;
    let [first, end] = geometry.columns_inside(kx);
    if first >= end {
        return;
    }
    for (oy, src_row) in src.chunks(ow).enumerate() {
        let iy = (oy * sy + ky * dy) as isize - py as isize;
        if iy < 0 || iy >= h as isize {
            continue;
        }
        let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
        let start = first * sx + offset - px;
        if sx == 1 {
            for (d, &v) in dst[start..start + (end - first)]
                .iter_mut()
                .zip(&src_row[first..end])
            {
                *d += v;
            }
        } else {
            for (d, &v) in dst[start..]
                .iter_mut()
                .step_by(sx)
                .zip(&src_row[first..end])
            {
                *d += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one tap at a time.
    fn reference(input: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [h, w] = g.input;
        let [oh, ow] = g.output();
        let mut out = Vec::new();
        for c in 0..g.channels {
            for ky in 0..g.kernel[0] {
                for kx in 0..g.kernel[1] {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                - g.padding[0] as isize;
                            let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                - g.padding[1] as isize;
                            let inside =
                                (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                            out.push(if inside {
                                input[c * h * w + iy as usize * w + ix as usize]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn columns_equal_the_definition() {
        for (channels, input, kernel, stride, padding, dilation) in [
            (3, [7, 9], [3, 3], [1, 1], [1, 1], [1, 1]),
            (2, [8, 5], [3, 3], [2, 2], [1, 1], [1, 1]),
            (2, [9, 10], [7, 7], [2, 2], [3, 3], [1, 1]),
            (1, [6, 6], [3, 3], [1, 2], [2, 0], [2, 1]),
            (4, [5, 4], [1, 1], [2, 2], [0, 0], [1, 1]),
            (1, [2, 3], [5, 5], [1, 1], [2, 2], [1, 1]),
            (1, [3, 3], [3, 3], [3, 3], [0, 0], [1, 1]),
        ] {
            let g = ConvGeometry {
                channels,
                input,
                kernel,
                stride,
                padding,
                dilation,
            };
            let n = channels * input[0] * input[1];
            let x: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
            let [oh, ow] = g.output();
            let mut cols = vec![f32::NAN; g.rows() * oh * ow];
            im2col(&x, &g, &mut cols);
            assert_eq!(cols, reference(&x, &g), "{g:?}");
        }
    }

    #[test]
    fn output_size_is_pytorchs() {
        let g = |n: usize, k: usize, s: usize, p: usize, d: usize| ConvGeometry {
            channels: 1,
            input: [n, n],
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [d, d],
        };
        assert_eq!(g(480, 3, 2, 1, 1).output(), [240, 240]);
        assert_eq!(g(7, 3, 2, 1, 1).output(), [4, 4]);
        assert_eq!(g(5, 3, 1, 0, 2).output(), [1, 1]);
        assert_eq!(g(2, 5, 1, 0, 1).output(), [0, 0]);
    }

    /// `<im2col(x), c> = <x, col2im(c)>` for every geometry of the test above (the adjoint
    /// property that makes col2im the input gradient).
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for (channels, input, kernel, stride, padding, dilation) in [
            (3, [7, 9], [3, 3], [1, 1], [1, 1], [1, 1]),
            (2, [8, 5], [3, 3], [2, 2], [1, 1], [1, 1]),
            (2, [9, 10], [7, 7], [2, 2], [3, 3], [1, 1]),
            (1, [6, 6], [3, 3], [1, 2], [2, 0], [2, 1]),
            (4, [5, 4], [1, 1], [2, 2], [0, 0], [1, 1]),
            (1, [2, 3], [5, 5], [1, 1], [2, 2], [1, 1]),
        ] {
            let g = ConvGeometry {
                channels,
                input,
                kernel,
                stride,
                padding,
                dilation,
            };
            let n = channels * input[0] * input[1];
            let x: Vec<f64> = (0..n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
            let [oh, ow] = g.output();
            let m = g.rows() * oh * ow;
            let c: Vec<f64> = (0..m).map(|i| ((i * 5) % 11) as f64 - 5.0).collect();
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
            let mut cols = vec![0.0f32; m];
            im2col(&x32, &g, &mut cols);
            let mut back = vec![f32::NAN; n];
            col2im(&c32, &g, &mut back);
            let lhs: f64 = cols.iter().zip(&c).map(|(&a, &b)| a as f64 * b).sum();
            let rhs: f64 = back.iter().zip(&x).map(|(&a, &b)| a as f64 * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }
}
