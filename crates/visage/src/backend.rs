//! Choosing the compute backend once, at the edge: `--device cpu | wgpu | cuda[:N]`, or for
//! training a list of devices of one backend (`--devices cuda:0,cuda:1`). Everything below
//! the CLI is generic over Burn's `Backend`; this file is the only place that names
//! concrete backends. The GPU backends exist when built with the `wgpu` / `cuda` cargo
//! features.

use anyhow::{bail, Result};
use burn::backend::Autodiff;
use visage_kernels::KernelAutodiffBackend;
pub use visage_train::DeviceName as DeviceArg;

/// A command body generic over the backend; `dispatch` instantiates it for the chosen one.
/// Inference code uses `B::InnerBackend` (same device type, no autodiff overhead).
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: KernelAutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// A command body over several devices of one backend (data-parallel training).
pub trait DevicesTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `devices` (at least one).
    fn run<B: KernelAutodiffBackend>(self, devices: Vec<B::Device>) -> Result<Self::Output>;
}

/// Runs `task` on the backend `device` names.
pub fn dispatch<T: BackendTask>(device: DeviceArg, task: T) -> Result<T::Output> {
    struct One<T>(T);
    impl<T: BackendTask> DevicesTask for One<T> {
        type Output = T::Output;
        fn run<B: KernelAutodiffBackend>(self, mut devices: Vec<B::Device>) -> Result<T::Output> {
            self.0.run::<B>(devices.remove(0))
        }
    }
    dispatch_devices(&[device], One(task))
}

/// The float type a run computes in (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// 32-bit floats (every backend).
    #[default]
    F32,
    /// IEEE half precision, on the GPU backends (CUDA, wgpu where the adapter has
    /// shader-f16).
    F16,
    /// bfloat16, on CUDA.
    Bf16,
}

/// Runs `task` on the devices `devices` name (one backend, checked by the caller) in
/// `precision`: Burn's backend with that float element (weights, activations and gradients
/// all in it; no f32 master copy, no loss scaling).
pub fn dispatch_devices_in<T: DevicesTask>(
    devices: &[DeviceArg],
    precision: Precision,
    task: T,
) -> Result<T::Output> {
    if precision == Precision::F32 {
        return dispatch_devices(devices, task);
    }
    let first = devices.first().copied().unwrap_or(DeviceArg::Cpu);
    match (first, precision) {
        (DeviceArg::Cpu, _) => bail!(
            "--precision {precision:?} is for the GPU backends: the CPU backend (Flex) trains \
             in f32"
        ),
        #[cfg(feature = "wgpu")]
        (DeviceArg::Wgpu, Precision::F16) => task.run::<Autodiff<burn::backend::Wgpu<half::f16>>>(
            vec![burn::backend::wgpu::WgpuDevice::default(); devices.len()],
        ),
        #[cfg(feature = "cuda")]
        (DeviceArg::Cuda(_), Precision::F16) => {
            task.run::<Autodiff<burn::backend::Cuda<half::f16>>>(cuda_devices(devices))
        }
        #[cfg(feature = "cuda")]
        (DeviceArg::Cuda(_), Precision::Bf16) => {
            task.run::<Autodiff<burn::backend::Cuda<half::bf16>>>(cuda_devices(devices))
        }
        (DeviceArg::Wgpu, Precision::Bf16) => {
            bail!("--precision bf16 is not available on wgpu (WGSL has no bfloat16); use f16")
        }
        #[allow(unreachable_patterns)]
        (other, _) => bail!(
            "this visage binary was built without support for `{other}`: rebuild with \
             `cargo build --release --features {}`",
            other.backend()
        ),
    }
}

#[cfg(feature = "cuda")]
fn cuda_devices(devices: &[DeviceArg]) -> Vec<burn::backend::cuda::CudaDevice> {
    devices
        .iter()
        .map(|d| match d {
            DeviceArg::Cuda(index) => burn::backend::cuda::CudaDevice::new(*index),
            other => unreachable!("one backend per run, got {other}"),
        })
        .collect()
}

/// Runs `task` on the devices `devices` name (one backend, checked by the caller).
pub fn dispatch_devices<T: DevicesTask>(devices: &[DeviceArg], task: T) -> Result<T::Output> {
    let first = devices.first().copied().unwrap_or(DeviceArg::Cpu);
    match first {
        DeviceArg::Cpu => task.run::<Autodiff<burn::backend::Flex>>(vec![
            burn::backend::flex::FlexDevice;
            devices.len().max(1)
        ]),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => task.run::<Autodiff<burn::backend::Wgpu>>(vec![
            burn::backend::wgpu::WgpuDevice::default();
            devices.len().max(1)
        ]),
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda(_) => task.run::<Autodiff<burn::backend::Cuda>>(cuda_devices(devices)),
        #[allow(unreachable_patterns)]
        other => bail!(
            "this visage binary was built without support for `{other}`: rebuild with \
             `cargo build --release --features {}`",
            other.backend()
        ),
    }
}
