//! How a convolution's per-image work is spread over the current rayon pool: with several
//! images and several threads, across images (each image's matrix products on one thread,
//! `Par::Seq`); otherwise image after image, with every thread inside each product. At
//! training sizes (a batch of 8 at 192 px, 16–128 channels) a product split over threads
//! waits on its threads more than it computes; one image per thread does not.
//!
//! One image on several threads ([`by_column_blocks`]): each thread computes a band of the
//! output's columns (pixels) through every product, instead of each small product being
//! split over the threads.
//!
//! All three leave the vector registers clean on every thread that ran products
//! ([`vector_state`]).

use std::ops::Range;

use faer::{MatMut, Par};
use rayon::prelude::*;

use super::{parallelism, vector_state};

/// Whether the images go to separate threads.
fn across_images(batch: usize) -> bool {
    batch > 1 && rayon::current_num_threads() > 1
}

/// Runs `work(image, out_image, scratch, par)` for each image's `per_image`-long chunk of `out`;
/// `scratch` is one per thread, `par` the threads `work`'s products may use.
pub(super) fn for_each_image<S, F>(out: &mut [f32], per_image: usize, work: F)
where
    S: Default + Send,
    F: Fn(usize, &mut [f32], &mut S, Par) + Sync + Send,
{
    if per_image == 0 {
        return;
    }
    if across_images(out.len() / per_image) {
        out.par_chunks_mut(per_image).enumerate().for_each_init(
            S::default,
            |scratch, (image, dst)| {
                work(image, dst, scratch, Par::Seq);
                vector_state::clear_upper_halves();
            },
        );
    } else {
        let (mut scratch, par) = (S::default(), parallelism());
        for (image, dst) in out.chunks_mut(per_image).enumerate() {
            work(image, dst, &mut scratch, par);
        }
        vector_state::clear_after(par);
    }
}

/// `Σ_images` of what `work(image, acc, scratch, par)` adds into `acc` (`len` long, zero at
/// first). Across threads each thread sums a contiguous run of images and the runs are added
/// in image order, so a given thread count always gives the same result.
pub(super) fn sum_over_images<S, F>(batch: usize, len: usize, work: F) -> Vec<f32>
where
    S: Default + Send,
    F: Fn(usize, &mut [f32], &mut S, Par) + Sync + Send,
{
    if !across_images(batch) {
        let (mut acc, mut scratch, par) = (vec![0.0f32; len], S::default(), parallelism());
        for image in 0..batch {
            work(image, &mut acc, &mut scratch, par);
        }
        vector_state::clear_after(par);
        return acc;
    }
    let runs = rayon::current_num_threads().min(batch);
    let per_run = batch.div_ceil(runs);
    let partial: Vec<Vec<f32>> = (0..runs)
        .into_par_iter()
        .map(|run| {
            let (mut acc, mut scratch) = (vec![0.0f32; len], S::default());
            for image in run * per_run..((run + 1) * per_run).min(batch) {
                work(image, &mut acc, &mut scratch, Par::Seq);
            }
            vector_state::clear_upper_halves();
            acc
        })
        .collect();
    let mut partial = partial.into_iter();
    let mut total = partial.next().unwrap_or_else(|| vec![0.0f32; len]);
    for run in partial {
        total.iter_mut().zip(&run).for_each(|(t, r)| *t += r);
    }
    total
}

/// Fewest columns a block of [`by_column_blocks`] gets.
const MIN_BLOCK_COLUMNS: usize = 64;

/// Runs `work(columns, block)` over column blocks of `dst` (`[rows, cols]`, `block` =
/// `dst[:, columns]`): with `par` on several threads, one contiguous block per thread (at
/// least [`MIN_BLOCK_COLUMNS`] wide), in parallel; otherwise once, over every column. `work`
/// runs its products sequentially (`Par::Seq`) either way.
pub(super) fn by_column_blocks<F>(dst: MatMut<'_, f32>, par: Par, work: F)
where
    F: Fn(Range<usize>, MatMut<'_, f32>) + Sync,
{
    let cols = dst.ncols();
    let threads = match par {
        Par::Rayon(n) => n.get(),
        Par::Seq => 1,
    };
    let blocks = threads.min(cols / MIN_BLOCK_COLUMNS);
    if blocks <= 1 {
        work(0..cols, dst);
        return;
    }
    let per_block = cols.div_ceil(blocks);
    let mut parts = Vec::with_capacity(blocks);
    let (mut rest, mut start) = (dst, 0);
    while start < cols {
        let len = per_block.min(cols - start);
        let (block, tail) = rest.split_at_col_mut(len);
        parts.push((start..start + len, block));
        (rest, start) = (tail, start + len);
    }
    parts.into_par_iter().for_each(|(columns, block)| {
        work(columns, block);
        vector_state::clear_upper_halves();
    });
}
