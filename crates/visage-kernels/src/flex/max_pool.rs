//! 2-D max pooling (floor mode) for f32 on `Flex`, with the indices its backward needs in
//! Flex's own layout (`i64`, the flat position `iy·w + ix` inside the input plane), so that
//! Flex's `max_pool2d_with_indices_backward` scatters the gradient. The valid taps are found
//! once per output row and tap, and the inner loop runs over a row of outputs, branch-free
//! and contiguous; burn-flex 0.21 runs its 3-D pooling with a bounds test per tap and output
//! (7 % of the quickstart's training step, benches/RESULTS.md). Ties and NaN as Flex: the first valid tap starts the
//! maximum, a later one replaces it only when strictly greater; a window with no valid tap
//! gives −∞ and index −1.

use std::ops::Range;

use rayon::prelude::*;

use super::im2col::{phase_width, split_phases, ConvGeometry};

/// For each output position along one axis, the kernel taps that land inside the input.
fn valid_taps(
    input: usize,
    out: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dil: usize,
) -> Vec<Range<usize>> {
    (0..out)
        .map(|o| {
            let inside = |k: usize| {
                (o * stride + k * dil)
                    .checked_sub(pad)
                    .is_some_and(|i| i < input)
            };
            let first = (0..kernel).find(|&k| inside(k)).unwrap_or(kernel);
            let end = (first..kernel)
                .take_while(|&k| inside(k))
                .last()
                .map_or(first, |k| k + 1);
            first..end
        })
        .collect()
}

/// Max pooling of planes `input` (`[planes, h, w]`) with `geometry` (its `channels` unused;
/// `kernel`, `stride`, `padding`, `dilation` as a convolution's) into `output` and `indices`
/// (`[planes, oh, ow]` each).
///
/// # Panics
/// If a slice length does not match the geometry, or a plane has 2³¹ elements or more.
pub fn max_pool2d(input: &[f32], geometry: &ConvGeometry, output: &mut [f32], indices: &mut [i64]) {
    let [h, w] = geometry.input;
    let [oh, ow] = geometry.output();
    let (plane_in, plane_out) = (h * w, oh * ow);
    if plane_out == 0 {
        return;
    }
    assert!(
        i32::try_from(plane_in).is_ok(),
        "a plane under 2³¹ elements"
    );
    assert_eq!(
        input.len() / plane_in.max(1),
        output.len() / plane_out,
        "planes"
    );
    assert_eq!(output.len(), indices.len(), "indices of the output");
    let geometry = ConvGeometry {
        channels: 1,
        ..*geometry
    };
    let rows = valid_taps(
        h,
        oh,
        geometry.kernel[0],
        geometry.stride[0],
        geometry.padding[0],
        geometry.dilation[0],
    );
    let plane = |((src, dst), idx): ((&[f32], &mut [f32]), &mut [i64])| {
        pulp::Arch::new().dispatch(PoolPlane {
            src,
            geometry: &geometry,
            rows: &rows,
            dst,
            idx,
        });
    };
    if output.len() >= 1 << 16 && rayon::current_num_threads() > 1 {
        input
            .par_chunks(plane_in)
            .zip(output.par_chunks_mut(plane_out))
            .zip(indices.par_chunks_mut(plane_out))
            .for_each(plane);
    } else {
        input
            .chunks(plane_in)
            .zip(output.chunks_mut(plane_out))
            .zip(indices.chunks_mut(plane_out))
            .for_each(plane);
    }
}

/// [`pool_plane`] compiled for the running CPU's widest SIMD (pulp's run-time dispatch): its
/// branch-free row updates vectorise with the instruction set `with_simd` is built for.
struct PoolPlane<'a> {
    src: &'a [f32],
    geometry: &'a ConvGeometry,
    rows: &'a [Range<usize>],
    dst: &'a mut [f32],
    idx: &'a mut [i64],
}

impl pulp::WithSimd for PoolPlane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        pool_plane(self.src, self.geometry, self.rows, self.dst, self.idx);
    }
}

/// One plane (`src`, `[h, w]`), output row by output row: for each valid tap in the
/// window's row-major order, a branch-free update of the whole row's maxima over the output
/// columns where that tap lies inside the input. With a column stride the plane is first
/// split into its column phases ([`split_phases`]), so each tap reads contiguous values.
#[inline(always)]
fn pool_plane(
    src: &[f32],
    geometry: &ConvGeometry,
    rows: &[Range<usize>],
    dst: &mut [f32],
    idx: &mut [i64],
) {
    let [h, w] = geometry.input;
    let [_, ow] = geometry.output();
    let kw = geometry.kernel[1];
    let [sy, sx] = geometry.stride;
    let [py, px] = geometry.padding;
    let [dy, dx] = geometry.dilation;
    let phased;
    let (plane, row_len) = if sx > 1 {
        phased = split_phases(src, geometry);
        (&phased[..], phase_width(geometry))
    } else {
        (src, w)
    };
    let mut best_at = vec![-1i32; ow];
    for (oy, ky_range) in rows.iter().enumerate() {
        let best = &mut dst[oy * ow..(oy + 1) * ow];
        best.fill(f32::NEG_INFINITY);
        best_at.fill(-1);
        for ky in ky_range.clone() {
            let iy = oy * sy + ky * dy - py;
            for kx in 0..kw {
                let offset = kx * dx;
                let [first, end] = geometry.columns_inside(kx);
                if first >= end {
                    continue;
                }
                let ix = first * sx + offset - px;
                let (phase, start) = (ix % sx, ix / sx);
                let row = &plane[(phase * h + iy) * row_len..(phase * h + iy + 1) * row_len];
                let values = &row[start..start + (end - first)];
                let at = (iy * w + ix) as i32;
                let step = sx as i32;
                let n = end - first;
                let (b, a) = (&mut best[first..end], &mut best_at[first..end]);
                let values = &values[..n];
                for k in 0..n {
                    let take = values[k] > b[k] || a[k] < 0;
                    b[k] = if take { values[k] } else { b[k] };
                    let here = at.wrapping_add((k as i32).wrapping_mul(step));
                    a[k] = if take { here } else { a[k] };
                }
            }
        }
        for (out, &a) in idx[oy * ow..(oy + 1) * ow].iter_mut().zip(&best_at) {
            *out = i64::from(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_taps_stay_inside() {
        // 5 wide, kernel 3, stride 2, padding 1: windows [-1, 1], [1, 3], [3, 5].
        assert_eq!(valid_taps(5, 3, 3, 2, 1, 1), vec![1..3, 0..3, 0..2]);
        // Dilation 2, padding 2, 4 wide: taps at o − 2, o, o + 2.
        assert_eq!(valid_taps(4, 4, 3, 1, 2, 2), vec![1..3, 1..3, 0..2, 0..2]);
    }
}
