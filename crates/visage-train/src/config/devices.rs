//! Device names as configs and the command line write them: `cpu`, `wgpu`, `cuda`,
//! `cuda:N`; the binary maps them to Burn's backends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A compute device by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceName {
    /// Burn's `Flex` CPU backend (always built in).
    Cpu,
    /// Burn's wgpu backend (Vulkan / Metal / DX12), default adapter.
    Wgpu,
    /// Burn's CUDA backend, GPU index N.
    Cuda(usize),
}

impl DeviceName {
    /// The backend's name without an index (`cpu`, `wgpu`, `cuda`).
    pub fn backend(self) -> &'static str {
        match self {
            DeviceName::Cpu => "cpu",
            DeviceName::Wgpu => "wgpu",
            DeviceName::Cuda(_) => "cuda",
        }
    }
}

impl FromStr for DeviceName {
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

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl Serialize for DeviceName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a device list (`train.devices`, `--devices`): one backend, no GPU twice.
///
/// # Errors
/// What is wrong, for the caller to put under its key.
pub fn check_devices(devices: &[DeviceName]) -> Result<(), String> {
    if let Some(other) = devices.iter().find(|d| d.backend() != devices[0].backend()) {
        return Err(format!(
            "mixes {} and {}: one backend per run",
            devices[0].backend(),
            other.backend()
        ));
    }
    for (k, d) in devices.iter().enumerate() {
        if *d != DeviceName::Cpu && devices[..k].contains(d) {
            return Err(format!("{d} is listed twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceName>(), Ok(DeviceName::Cpu));
        assert_eq!("cuda".parse::<DeviceName>(), Ok(DeviceName::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceName>(), Ok(DeviceName::Cuda(3)));
        assert!("tpu".parse::<DeviceName>().unwrap_err().contains("tpu"));
        assert!("cuda:x".parse::<DeviceName>().is_err());
        assert_eq!(DeviceName::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn device_lists_are_one_backend_without_repeats() {
        use DeviceName::*;
        assert!(check_devices(&[Cpu, Cpu]).is_ok());
        assert!(check_devices(&[Cuda(0), Cuda(1)]).is_ok());
        assert!(check_devices(&[Cuda(0), Cpu])
            .unwrap_err()
            .contains("mixes cuda and cpu"));
        assert!(check_devices(&[Cuda(1), Cuda(1)])
            .unwrap_err()
            .contains("cuda:1 is listed twice"));
    }
}
