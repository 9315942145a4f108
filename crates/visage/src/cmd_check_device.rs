//! `visage check-device`: does a backend train as the CPU does? One training step of every
//! tiny family on the device and on the CPU (Flex) from the same weights and batch, compared
//! part by part (`visage_train::device_check`). Run it first on a new GPU machine.

use anyhow::{bail, Result};
use burn::backend::{Autodiff, Flex};
use clap::Args;
use visage_kernels::KernelAutodiffBackend;
use visage_train::device_check::{compare_every_family, Tolerances};

use crate::backend::{dispatch, BackendTask, DeviceArg};

/// Arguments of `visage check-device`.
#[derive(Debug, Args)]
pub struct CheckDeviceArgs {
    /// The device to check against the CPU: wgpu, cuda, cuda:N (cpu checks Flex against
    /// itself).
    #[arg(long)]
    device: DeviceArg,
}

struct CheckTask;

impl BackendTask for CheckTask {
    type Output = ();

    fn run<B: KernelAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let tolerances = Tolerances::default();
        let comparisons =
            compare_every_family::<Autodiff<Flex>, B>(&Default::default(), &device, tolerances)?;
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
            "family", "loss", "Δloss rel", "Δgrad rel", "Δweight", "cpu s", "device s"
        );
        let mut failures = Vec::new();
        for c in &comparisons {
            println!(
                "{:<16} {:>10.5} {:>10.1e} {:>10.1e} {:>10.1e} {:>9.2} {:>9.2}",
                c.name, c.loss[0].1, c.loss_rel, c.grad_rel, c.weight_abs, c.seconds.0, c.seconds.1
            );
            failures.extend(c.failures.iter().map(|f| format!("{}: {f}", c.name)));
        }
        println!(
            "tolerances: loss {:.0e} relative, gradients {:.0e} of each tensor's largest, \
             weights {:.0e}",
            tolerances.loss_rel, tolerances.grad_rel, tolerances.weight_abs
        );
        if !failures.is_empty() {
            bail!(
                "the device differs from the CPU:\n  {}",
                failures.join("\n  ")
            );
        }
        println!("every family agrees with the CPU");
        Ok(())
    }
}

/// Runs `visage check-device`.
pub fn run(args: CheckDeviceArgs) -> Result<()> {
    println!(
        "checking {} against the CPU (one training step per family)",
        args.device
    );
    dispatch(args.device, CheckTask)
}
