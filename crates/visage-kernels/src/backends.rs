//! [`KernelBackend`] for the backends whose kernels are Burn's: autodiff (gradients of Burn's
//! op, whatever the inner backend) and, with the `gpu` feature, cubecl (wgpu, CUDA) with or
//! without fusion.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;

use crate::KernelBackend;

impl<B: KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {}

#[cfg(feature = "gpu")]
impl<R, F, I, BT> KernelBackend for burn_cubecl::CubeBackend<R, F, I, BT>
where
    Self: burn::prelude::Backend,
    R: burn_cubecl::CubeRuntime,
    F: burn_cubecl::FloatElement,
    I: burn_cubecl::IntElement,
    BT: burn_cubecl::BoolElement,
{
}

#[cfg(feature = "gpu")]
impl<B: burn_fusion::FusionBackend> KernelBackend for burn_fusion::Fusion<B> {}
