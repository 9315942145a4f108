//! [`KernelBackend`] for the backends whose kernels are Burn's, with the `gpu` feature: cubecl
//! (wgpu, CUDA) with or without fusion. (Autodiff: [`crate::autodiff`].)

#[cfg(feature = "gpu")]
use crate::KernelBackend;

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
