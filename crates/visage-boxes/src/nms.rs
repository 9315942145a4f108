//! Greedy non-maximum suppression on `xyxy` boxes.
//!
//! [`nms`] buckets box centres on a uniform grid and lets a kept box visit only the alive boxes
//! whose centres can be close enough: IoU > t implies an x-overlap `w_ov > t·max(w_a, w_b)`
//! (since IoU ≤ w_ov·h / (w·h)), hence `w_b < w_a / t` and `|Δcx| ≤ (w_a + w_b)/2 − w_ov <
//! w_a·(1 − t)/t`, and the same in y. Every candidate's IoU is then computed with the all-pairs
//! formula, so the result is exactly the greedy all-pairs result; suppressed boxes are skipped by
//! path-halving "next alive" links and never revisited. [`nms_burn_vision`] wraps burn-vision's
//! SIMD all-pairs kernel; a test checks that both keep the same indices, and
//! `benches/nms.rs` (also `examples/nms_bench.rs`) times both.

use crate::iou::{area, BoxXyxy};
use burn::tensor::{Tensor, TensorData};
use burn::vision::{Nms, NmsOptions, VisionBackend};

/// Greedy NMS: returns the indices of the kept boxes, highest score first.
///
/// `boxes` are xyxy pixels, `scores[i]` belongs to `boxes[i]`. Boxes are visited in descending
/// score (ties: lower index first; `f32::total_cmp` order, so NaN scores sort as largest); a
/// visited box that survives suppresses every remaining box with IoU **>** `iou_threshold`.
/// A negative threshold suppresses everything but the top box.
///
/// # Panics
/// If `boxes.len() != scores.len()` (a programming error, not a data error).
pub fn nms(boxes: &[BoxXyxy], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    nms_at_most(boxes, scores, iou_threshold, usize::MAX)
}

/// [`nms`] that stops once `max_keep` boxes are kept: the first `max_keep` indices of
/// [`nms`]'s result (greedy NMS keeps boxes in score order, and a kept box is never
/// suppressed later), without visiting the boxes that would come after them. What a detector
/// with a per-image cap on detections needs.
///
/// # Panics
/// If `boxes.len() != scores.len()`.
pub fn nms_at_most(
    boxes: &[BoxXyxy],
    scores: &[f32],
    iou_threshold: f32,
    max_keep: usize,
) -> Vec<usize> {
    assert_eq!(
        boxes.len(),
        scores.len(),
        "nms: {} boxes but {} scores",
        boxes.len(),
        scores.len()
    );
    let n = boxes.len();
    if n == 0 || max_keep == 0 {
        return Vec::new();
    }
    let mut by_score: Vec<u32> = (0..n as u32).collect();
    // Post-processing hands over candidates already best first: a stable sort of those is
    // the identity, so it is skipped (RetinaFace's post-processing sorts 5 000 at most).
    let best_first = scores
        .windows(2)
        .all(|pair| pair[0].total_cmp(&pair[1]).is_ge());
    if !best_first {
        by_score.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    }
    if iou_threshold < 0.0 {
        return vec![by_score[0] as usize];
    }

    let grid = CentreGrid::new(boxes);
    // Half-extent factor of the search window: IoU > t needs |Δcx| < w·(1 - t)/t (see the module
    // doc), padded by 1 % (plus `slack` below) against rounding. t = 0 gives ∞: the whole grid.
    let reach = (1.0 - iou_threshold) / iou_threshold * 1.01;
    // `next[s] == s` ⇔ slot s is still alive (neither kept nor suppressed); a removed slot points
    // further right and `alive_from` skips runs of removed slots with path halving, so scans never
    // revisit suppressed boxes. `next[n] = n` is the sentinel.
    let mut next: Vec<u32> = (0..=n as u32).collect();
    let mut keep = Vec::new();
    for &i in &by_score {
        if keep.len() == max_keep {
            break;
        }
        let p = grid.slot_of[i as usize] as usize;
        if next[p] as usize != p {
            continue;
        }
        next[p] = p as u32 + 1;
        keep.push(i as usize);
        let (rx1, ry1, rx2, ry2, ra) =
            (grid.x1[p], grid.y1[p], grid.x2[p], grid.y2[p], grid.area[p]);
        let (cx, cy, w, h) = (0.5 * (rx1 + rx2), 0.5 * (ry1 + ry2), rx2 - rx1, ry2 - ry1);
        let slack = 1e-5 * (cx.abs() + cy.abs() + w + h);
        let (gx0, gx1) = grid.cells_x(cx, w * reach + slack);
        let (gy0, gy1) = grid.cells_y(cy, h * reach + slack);
        for gy in gy0..=gy1 {
            // Cells of one grid row are contiguous slots: scan gx0..=gx1 as one run.
            let (start, end) = grid.row_span(gy, gx0, gx1);
            let mut j = alive_from(&mut next, start);
            while j < end {
                let w = (rx2.min(grid.x2[j]) - rx1.max(grid.x1[j])).max(0.0);
                let h = (ry2.min(grid.y2[j]) - ry1.max(grid.y1[j])).max(0.0);
                let inter = w * h;
                if inter > 0.0 && inter / (ra + grid.area[j] - inter) > iou_threshold {
                    next[j] = j as u32 + 1;
                }
                j = alive_from(&mut next, j + 1);
            }
        }
    }
    keep
}

/// Boxes bucketed by centre on a uniform grid (counting sort, row-major cells), as structure of
/// arrays in slot order; `slot_of[i]` is box i's slot.
struct CentreGrid {
    x1: Vec<f32>,
    y1: Vec<f32>,
    x2: Vec<f32>,
    y2: Vec<f32>,
    area: Vec<f32>,
    slot_of: Vec<u32>,
    /// `cell_start[c]..cell_start[c + 1]`: the slots of cell `c = gy * nx + gx`.
    cell_start: Vec<u32>,
    origin: [f32; 2],
    inv_cell: f32,
    nx: usize,
    ny: usize,
}

impl CentreGrid {
    fn new(boxes: &[BoxXyxy]) -> Self {
        let n = boxes.len();
        let centre = |b: &BoxXyxy| [0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])];
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        let mut sides: Vec<f32> = Vec::with_capacity(n);
        for b in boxes {
            let c = centre(b);
            for k in 0..2 {
                if c[k].is_finite() {
                    lo[k] = lo[k].min(c[k]);
                    hi[k] = hi[k].max(c[k]);
                }
            }
            let side = (b[2] - b[0]).max(b[3] - b[1]);
            sides.push(if side.is_finite() && side > 0.0 {
                side
            } else {
                0.0
            });
        }
        if lo[0] > hi[0] || lo[1] > hi[1] {
            (lo, hi) = ([0.0; 2], [0.0; 2]);
        }
        // Cell side: half the median box side, enlarged until there are at most ~2 cells per box
        // (a row of empty cells costs one lookup: rows are contiguous runs of slots).
        let mid = n / 2;
        let median = *sides.select_nth_unstable_by(mid, f32::total_cmp).1;
        let (span_x, span_y) = ((hi[0] - lo[0]) as f64, (hi[1] - lo[1]) as f64);
        let mut cell = (0.5 * median as f64).max(1e-3);
        let budget = (2 * n + 16) as f64;
        let cells = |c: f64| (span_x / c + 1.0) * (span_y / c + 1.0);
        while cells(cell) > budget {
            cell *= 1.5;
        }
        let inv_cell = (1.0 / cell) as f32;
        let nx = (span_x / cell) as usize + 1;
        let ny = (span_y / cell) as usize + 1;
        let cell_of = |b: &BoxXyxy| {
            let c = centre(b);
            // NaN and ±∞ centres land in an edge cell via the saturating float → int cast.
            let gx = (((c[0] - lo[0]) * inv_cell) as usize).min(nx - 1);
            let gy = (((c[1] - lo[1]) * inv_cell) as usize).min(ny - 1);
            gy * nx + gx
        };
        let mut cell_start = vec![0u32; nx * ny + 1];
        let cell_ids: Vec<u32> = boxes.iter().map(|b| cell_of(b) as u32).collect();
        for &c in &cell_ids {
            cell_start[c as usize + 1] += 1;
        }
        for c in 0..nx * ny {
            cell_start[c + 1] += cell_start[c];
        }
        let mut fill = cell_start.clone();
        let mut slot_of = vec![0u32; n];
        let mut x1 = vec![0.0; n];
        let mut y1 = vec![0.0; n];
        let mut x2 = vec![0.0; n];
        let mut y2 = vec![0.0; n];
        let mut areas = vec![0.0; n];
        for (i, (b, &c)) in boxes.iter().zip(&cell_ids).enumerate() {
            let s = fill[c as usize] as usize;
            fill[c as usize] += 1;
            slot_of[i] = s as u32;
            (x1[s], y1[s], x2[s], y2[s], areas[s]) = (b[0], b[1], b[2], b[3], area(b));
        }
        Self {
            x1,
            y1,
            x2,
            y2,
            area: areas,
            slot_of,
            cell_start,
            origin: lo,
            inv_cell,
            nx,
            ny,
        }
    }

    /// Inclusive cell range along one axis covering centres in `centre ± reach` (the same
    /// monotone float expression as the cell of a centre, so no centre in range is missed).
    fn cells(&self, centre: f32, reach: f32, origin: f32, count: usize) -> (usize, usize) {
        let lo = ((centre - reach - origin) * self.inv_cell).floor();
        let hi = ((centre + reach - origin) * self.inv_cell).floor();
        // Saturating casts: NaN → 0, −∞ → 0, +∞ → usize::MAX.
        let lo = (lo.max(0.0) as usize).min(count - 1);
        let hi = if hi.is_nan() {
            count - 1
        } else {
            (hi.max(0.0) as usize).min(count - 1)
        };
        (lo, hi)
    }

    fn cells_x(&self, centre: f32, reach: f32) -> (usize, usize) {
        self.cells(centre, reach, self.origin[0], self.nx)
    }

    fn cells_y(&self, centre: f32, reach: f32) -> (usize, usize) {
        self.cells(centre, reach, self.origin[1], self.ny)
    }

    /// Slots of cells `gx0..=gx1` in row `gy`, a contiguous half-open range.
    fn row_span(&self, gy: usize, gx0: usize, gx1: usize) -> (usize, usize) {
        let row = gy * self.nx;
        (
            self.cell_start[row + gx0] as usize,
            self.cell_start[row + gx1 + 1] as usize,
        )
    }
}

/// The first alive position at or after `j` (see `nms`), halving the paths it walks.
#[inline]
fn alive_from(next: &mut [u32], mut j: usize) -> usize {
    loop {
        let nj = next[j] as usize;
        if nj == j {
            return j;
        }
        let nnj = next[nj];
        next[j] = nnj;
        j = nnj as usize;
    }
}

/// burn-vision's NMS on backend `B` (same contract as [`nms`]): uploads `boxes` `[N, 4]` and
/// `scores` `[N]`, runs `Tensor::nms`, downloads the kept indices.
///
/// # Panics
/// If `boxes.len() != scores.len()`.
pub fn nms_burn_vision<B: VisionBackend>(
    boxes: &[BoxXyxy],
    scores: &[f32],
    iou_threshold: f32,
    device: &B::Device,
) -> Vec<usize> {
    assert_eq!(
        boxes.len(),
        scores.len(),
        "nms: boxes and scores differ in length"
    );
    let n = boxes.len();
    if n == 0 {
        return Vec::new();
    }
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    let b = Tensor::<B, 2>::from_data(TensorData::new(flat, [n, 4]), device);
    let s = Tensor::<B, 1>::from_data(TensorData::new(scores.to_vec(), [n]), device);
    let options = NmsOptions {
        iou_threshold,
        score_threshold: f32::NEG_INFINITY,
        max_output_boxes: 0,
    };
    b.nms(s, options)
        .into_data()
        .iter::<i64>()
        .map(|i| i as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn hand_cases() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],   // 0, score 0.9
            [1.0, 0.0, 11.0, 10.0],   // 1, IoU with 0 = 90/110 ≈ 0.82 → suppressed
            [5.0, 0.0, 15.0, 10.0],   // 2, IoU with 0 = 1/3, with 1 = 60/140
            [20.0, 20.0, 30.0, 30.0], // 3, disjoint
        ];
        let scores = [0.9, 0.8, 0.7, 0.1];
        assert_eq!(nms(&boxes, &scores, 0.5), vec![0, 2, 3]);
        // IoU(0, 2) = 1/3 > 0.3: box 2 goes too.
        assert_eq!(nms(&boxes, &scores, 0.3), vec![0, 3]);
        assert_eq!(nms(&boxes, &scores, 0.9), vec![0, 1, 2, 3]);
        // Order follows scores: 3, 2, then 1 (IoU(1, 2) = 60/140 < 0.5), which suppresses 0.
        assert_eq!(nms(&boxes, &[0.1, 0.2, 0.3, 0.4], 0.5), vec![3, 2, 1]);
        // Negative threshold keeps only the top box; empty input keeps nothing.
        assert_eq!(nms(&boxes, &scores, -0.1), vec![0]);
        assert!(nms(&[], &[], 0.5).is_empty());
    }

    #[test]
    fn at_most_is_the_prefix_of_the_full_result() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (n, thr) in [(1, 0.5), (400, 0.3), (2000, 0.4), (2000, 0.9), (500, -0.1)] {
            let (boxes, scores) = clustered(&mut rng, n);
            let all = nms(&boxes, &scores, thr);
            for max_keep in [0, 1, 2, all.len() / 2, all.len(), all.len() + 5] {
                let want = &all[..max_keep.min(all.len())];
                assert_eq!(
                    nms_at_most(&boxes, &scores, thr, max_keep),
                    want,
                    "n = {n}, threshold = {thr}, at most {max_keep}"
                );
            }
        }
    }

    #[test]
    fn strict_threshold_and_ties() {
        // Two boxes with IoU exactly 0.5 (inter 50, union 100): not suppressed at 0.5.
        let boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]];
        assert_eq!(nms(&boxes, &[0.5, 0.5], 0.5), vec![0, 1]);
        assert_eq!(nms(&boxes, &[0.5, 0.5], 0.49), vec![0]); // tie: lower index first
        assert_eq!(nms(&boxes, &[0.4, 0.5], 0.49), vec![1]);
    }

    #[test]
    fn far_wide_box_is_still_found() {
        // A wide box whose centre lies far from the kept box must still be found.
        let boxes = [
            [100.0, 0.0, 110.0, 10.0],
            [0.0, 0.0, 110.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        let scores = [0.9, 0.5, 0.8];
        assert_eq!(nms(&boxes, &scores, 0.05), vec![0, 2]); // IoU = 100 / 1100 ≈ 0.09
        assert_eq!(nms(&boxes, &scores, 0.1), vec![0, 2, 1]);
    }

    /// Face-like clusters: a few "faces", each with many jittered detections around it.
    fn clustered(rng: &mut ChaCha8Rng, n: usize) -> (Vec<BoxXyxy>, Vec<f32>) {
        let faces: Vec<[f32; 3]> = (0..(n / 50).max(1))
            .map(|_| {
                let s = 8.0 + rng.random::<f32>().powi(2) * 300.0;
                [
                    rng.random::<f32>() * 1024.0,
                    rng.random::<f32>() * 1024.0,
                    s,
                ]
            })
            .collect();
        let mut boxes = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        for _ in 0..n {
            let [cx, cy, s] = faces[rng.random_range(0..faces.len())];
            let j = |rng: &mut ChaCha8Rng| (rng.random::<f32>() - 0.5) * 0.4 * s;
            let (w, h) = (
                s * (0.8 + 0.4 * rng.random::<f32>()),
                s * (1.0 + 0.5 * rng.random::<f32>()),
            );
            let (x, y) = (cx + j(rng), cy + j(rng));
            boxes.push([x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0]);
            scores.push(rng.random::<f32>());
        }
        (boxes, scores)
    }

    #[test]
    fn same_as_burn_vision_on_random_boxes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (n, thr) in [
            (1, 0.5),
            (50, 0.3),
            (500, 0.4),
            (2000, 0.5),
            (3000, 0.7),
            (800, 0.0),
            (800, 0.05),
            (800, 0.95),
            (300, 1.0),
        ] {
            let (boxes, scores) = clustered(&mut rng, n);
            let ours = nms(&boxes, &scores, thr);
            let theirs = nms_burn_vision::<Flex>(&boxes, &scores, thr, &Default::default());
            assert_eq!(ours, theirs, "n = {n}, threshold = {thr}");
            assert!(!ours.is_empty());
        }
        // Uniform boxes (no clusters) too.
        let boxes: Vec<BoxXyxy> = (0..1000)
            .map(|_| {
                let (x, y) = (rng.random::<f32>() * 500.0, rng.random::<f32>() * 500.0);
                [
                    x,
                    y,
                    x + 1.0 + rng.random::<f32>() * 80.0,
                    y + 1.0 + rng.random::<f32>() * 80.0,
                ]
            })
            .collect();
        let scores: Vec<f32> = (0..1000).map(|_| rng.random()).collect();
        for thr in [0.02, 0.15, 0.45, 0.8] {
            let theirs = nms_burn_vision::<Flex>(&boxes, &scores, thr, &Default::default());
            assert_eq!(
                nms(&boxes, &scores, thr),
                theirs,
                "uniform, threshold = {thr}"
            );
        }
    }

    #[test]
    fn candidates_already_best_first_keep_burn_visions_result() {
        // Sorted input (with tied scores) takes the path without a sort.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (boxes, scores) = clustered(&mut rng, 1500);
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let boxes: Vec<BoxXyxy> = order.iter().map(|&i| boxes[i]).collect();
        let scores: Vec<f32> = order
            .iter()
            .map(|&i| (scores[i] * 20.0).round() / 20.0)
            .collect();
        for thr in [0.3, 0.5] {
            let theirs = nms_burn_vision::<Flex>(&boxes, &scores, thr, &Default::default());
            assert_eq!(nms(&boxes, &scores, thr), theirs, "threshold = {thr}");
        }
    }
}
