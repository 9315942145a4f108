//! Choosing the compute backend once, at the edge: `--device cpu | wgpu | cuda[:N]`.
//! Everything below the CLI is generic over Burn's `Backend`; this file is the only place
//! that names concrete backends. The GPU backends exist when built with the `wgpu` / `cuda`
//! cargo features.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;

/// The device a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    /// Burn's `Flex` CPU backend (always built in).
    Cpu,
    /// Burn's wgpu backend (Vulkan / Metal / DX12), default adapter.
    Wgpu,
    /// Burn's CUDA backend, GPU index N.
    Cuda(usize),
}

impl FromStr for DeviceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(Self::Cuda(index)),
                _ => Err(format!(
                    "unknown device `{other}`: expected cpu, wgpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// A command body generic over the backend; `dispatch` instantiates it for the chosen one.
/// Inference code uses `B::InnerBackend` (same device type, no autodiff overhead).
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `task` on the backend `device` names.
pub fn dispatch<T: BackendTask>(device: DeviceArg, task: T) -> Result<T::Output> {
    match device {
        DeviceArg::Cpu => {
            task.run::<Autodiff<burn::backend::Flex>>(burn::backend::flex::FlexDevice)
        }
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => {
            task.run::<Autodiff<burn::backend::Wgpu>>(burn::backend::wgpu::WgpuDevice::default())
        }
        #[cfg(feature = "cuda")]
        DeviceArg::Cuda(index) => {
            task.run::<Autodiff<burn::backend::Cuda>>(burn::backend::cuda::CudaDevice::new(index))
        }
        #[allow(unreachable_patterns)]
        other => bail!(
            "this visage binary was built without support for `{other}`: rebuild with \
             `cargo build --release --features {}`",
            if other == DeviceArg::Wgpu {
                "wgpu"
            } else {
                "cuda"
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceArg>(), Ok(DeviceArg::Cpu));
        assert_eq!("cuda".parse::<DeviceArg>(), Ok(DeviceArg::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceArg>(), Ok(DeviceArg::Cuda(3)));
        assert!("tpu".parse::<DeviceArg>().unwrap_err().contains("tpu"));
        assert!("cuda:x".parse::<DeviceArg>().is_err());
    }
}
