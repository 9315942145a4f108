//! Reproductions of Burn 0.21 bugs in its cubecl backends (wgpu, CUDA) that visage works
//! around, each asserting what Burn should do and ignored until a Burn release fixes it: run
//! them with `cargo test -p visage --features wgpu --test wgpu_burn_bugs -- --ignored` after
//! upgrading Burn, and drop the workaround each one names when it passes.

#![cfg(feature = "wgpu")]

mod wgpu_common;
mod wgpu_values;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Flex, Wgpu};
use burn::prelude::*;
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{TensorData, TensorPrimitive};
use visage_kernels::KernelBackend;
use wgpu_values::{tensor, worst, REL};

/// Burn 0.21's cubecl backends (wgpu, CUDA) reshape a strided `[2, n, 1]` view (a slice along
/// dimension 1) to a higher rank with the wrong batch stride: burn-std's `split_strides` does
/// not skip the old shape's trailing unit dimension. The autodiff backward of `Tensor::cat`
/// produces exactly such views, which is how this showed: the classification gradients of
/// every family differed from Flex. visage works around it in `flatten_levels`; this test
/// asserts what Burn should do and is ignored until a Burn release fixes it.
#[test]
#[ignore = "fails on Burn 0.21 (reshape of a sliced view with a trailing unit dimension)"]
fn burn_reshapes_a_sliced_view_with_a_trailing_unit_dimension() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    fn sliced_then_reshaped<B: KernelBackend>(device: &B::Device) -> Vec<f32> {
        let values: Vec<f32> = (0..96).map(|i| i as f32).collect();
        let whole = Tensor::<B, 3>::from_data(TensorData::new(values, [2, 48, 1]), device);
        let first_half = whole.slice([0..2, 0..24, 0..1]);
        first_half
            .reshape([2, 3, 2, 4])
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    }
    let flex = sliced_then_reshaped::<Flex>(&Default::default());
    let wgpu = sliced_then_reshaped::<Wgpu>(&WgpuDevice::default());
    // Image 1's rows are 48..72; wgpu reads 24..48 (image 0's second half).
    assert_eq!(
        flex[24..],
        (48..72).map(|i| i as f32).collect::<Vec<_>>()[..]
    );
    assert_eq!(wgpu, flex);
}

/// Burn 0.21's cubecl `conv_transpose2d` has two kernels that autotune times against each
/// other: col2im, and a direct one whose input window `kernel·dilation − stride` is negative
/// when the kernel is smaller than the stride, so it sums nothing and returns zeros. The
/// backward of a 1×1 stride-2 convolution (ResNet's shortcut) is such a transpose: its input
/// gradient was zero whenever the direct kernel happened to time faster (CI failed on another
/// machine, not here). visage computes that convolution as a subsampling plus a stride-1
/// convolution (`visage_backbone`'s `Downsample`); this calls both kernels directly and
/// asserts each equals Flex. Ignored until a Burn release fixes the direct kernel.
#[test]
#[ignore = "fails on Burn 0.21 (direct conv_transpose2d kernel with kernel < stride)"]
fn burn_transposes_a_convolution_whose_kernel_is_smaller_than_its_stride() {
    use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
    use burn_cubecl::kernel::conv::{conv_transpose2d as cube_transpose, ConvTranspose2dStrategy};
    type Cube = CubeBackend<WgpuRuntime, f32, i32, u32>;
    if !wgpu_common::wgpu_available() {
        return;
    }
    // conv2d's input gradient for x [2, 8, 13, 11], w [12, 8, 1, 1], stride 2.
    let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
    let flex_device = Default::default();
    let expected = conv_transpose2d(
        tensor::<Flex, 4>([2, 12, 7, 6], 1, &flex_device),
        tensor::<Flex, 4>([12, 8, 1, 1], 2, &flex_device),
        None,
        options.clone(),
    )
    .into_data();
    assert_eq!(expected.shape.dims::<4>(), [2, 8, 13, 11]);
    let device = WgpuDevice::default();
    let mut failures = Vec::new();
    for (name, strategy) in [
        ("col2im", ConvTranspose2dStrategy::Gemm),
        ("direct", ConvTranspose2dStrategy::Direct),
    ] {
        let x = tensor::<Cube, 4>([2, 12, 7, 6], 1, &device);
        let w = tensor::<Cube, 4>([12, 8, 1, 1], 2, &device);
        let y = cube_transpose(
            x.into_primitive().tensor(),
            w.into_primitive().tensor(),
            None,
            options.clone(),
            strategy,
        )
        .expect("a supported convolution");
        let y = Tensor::<Cube, 4>::from_primitive(TensorPrimitive::Float(y)).into_data();
        let (diff, scale) = worst(&expected, &y);
        println!("{name}: max |Δ| {diff:.3e}, max |flex| {scale:.3e}");
        if diff > REL * scale + 1e-6 {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "wrong kernels: {failures:?}");
}

/// Burn 0.21's cubecl 1×1 convolution (`conv_im2col_1x1`, a matmul of `[N·H·W, C]` by
/// `[C, C_out]`, both kernels chosen by autotune timing) gives entirely wrong outputs (max |Δ|
/// = max |y|) for some shapes under some kernel choices; 8 → 16 channels at batch 2 hit it
/// here: [2, 8, 64, 64] with the default autotune level, [2, 8, 32, 32] and [2, 8, 16, 16]
/// with `CUBECL_AUTOTUNE_LEVEL=minimal` (which buckets shapes differently), others not. It
/// is what makes a RetinaFace MobileNet-0.25 training step on wgpu differ from Flex in the
/// loss itself (its first pointwise convolution is 8 → 16 at 32² for 64² images). Not worked
/// around and not isolated to one matmul kernel yet; ignored because whether it fails depends
/// on which kernel autotune timed fastest on the machine.
#[test]
#[ignore = "fails on Burn 0.21 under some autotune choices (1×1 convolution 8 → 16, batch 2)"]
fn burn_convolves_1x1_at_batch_2() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    if !wgpu_common::wgpu_available() {
        return;
    }
    fn convolve<B: KernelBackend>(device: &B::Device, shape: [usize; 4]) -> TensorData {
        let x = tensor::<B, 4>(shape, 1, device);
        let w = tensor::<B, 4>([16, shape[1], 1, 1], 2, device);
        conv2d(x, w, None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)).into_data()
    }
    let mut failures = Vec::new();
    for side in [16, 32, 64] {
        let shape = [2, 8, side, side];
        let flex = convolve::<Flex>(&Default::default(), shape);
        let wgpu = convolve::<Wgpu>(&WgpuDevice::default(), shape);
        let (diff, scale) = worst(&flex, &wgpu);
        println!("{shape:?} → 16: max |Δ| {diff:.3e}, max |flex| {scale:.3e}");
        if diff > REL * scale + 1e-6 {
            failures.push(shape);
        }
    }
    assert!(failures.is_empty(), "wrong 1×1 convolutions: {failures:?}");
}
