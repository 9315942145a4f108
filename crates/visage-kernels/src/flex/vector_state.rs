//! Leaves the vector registers' upper halves clean after faer's matrix products.
//!
//! faer's x86 micro-kernels (private-gemm-x86's generated AVX2 / AVX-512 assembly) return
//! without `vzeroupper`. Until the upper halves of the vector registers are cleared, every
//! switch between legacy-SSE code (our crates and Burn's, compiled for baseline x86-64) and
//! VEX code (glibc's `expf` / `memcpy` / `memset`, Flex's run-time dispatched kernels) pays the
//! AVX–SSE transition penalty. Measured on a 2-vCPU Xeon with AVX-512: 10 000 `f32::exp`
//! calls took 0.05 ms before a faer product and 1.6–2.9 ms after it, and back to 0.05 ms after
//! one `vzeroupper` (benches/RESULTS.md, issue 12). New threads inherit the dirty state.
//!
//! So [`super::batch`] runs [`clear_upper_halves`] on every thread that ran products, once per
//! convolution kernel call.

use faer::Par;

/// Clears the upper halves of this thread's vector registers (`vzeroupper`) where the CPU has
/// AVX; nothing elsewhere.
#[inline]
pub(super) fn clear_upper_halves() {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if let Some(avx) = pulp::core_arch::x86::Avx::try_new() {
        avx._mm256_zeroupper();
    }
}

/// [`clear_upper_halves`] on this thread and, when products ran on the rayon pool (`par` is
/// parallel), on every thread of the current pool.
pub(super) fn clear_after(par: Par) {
    clear_upper_halves();
    if matches!(par, Par::Rayon(_)) {
        rayon::broadcast(|_| clear_upper_halves());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat};

    /// Runs after a product and a clear without panicking, on one thread and on the pool.
    /// (The penalty itself is a timing, measured in benches/RESULTS.md, not asserted here.)
    #[test]
    fn clearing_after_products_keeps_their_results() {
        for par in [Par::Seq, Par::rayon(2)] {
            let a = Mat::<f32>::from_fn(8, 5, |i, j| (i + 2 * j) as f32);
            let b = Mat::<f32>::from_fn(5, 7, |i, j| (3 * i + j) as f32 - 4.0);
            let mut c = Mat::<f32>::zeros(8, 7);
            matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), 1.0, par);
            clear_after(par);
            for i in 0..8 {
                for j in 0..7 {
                    let want: f32 = (0..5).map(|k| a[(i, k)] * b[(k, j)]).sum();
                    assert_eq!(c[(i, j)], want, "({i}, {j}) with {par:?}");
                }
            }
        }
    }
}
