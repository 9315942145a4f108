//! Burn's cubecl code path (the one CUDA also takes) checked without a GPU: every tiny family
//! — RetinaNet, FAN (attention), DF²S² (FFP, segmentation), SRN, AInnoFace, RetinaFace and its
//! dense 3D branch — runs forward, loss, backward and one SGD step on the wgpu backend and on
//! Flex from the same weights and batch, and the loss parts, every gradient and every updated
//! weight agree within [`Tolerances::default`] (`visage_train::device_check`).
//!
//! On a machine without a GPU, wgpu runs on Mesa's software Vulkan (lavapipe); see
//! `wgpu_common` for when the test is skipped.

#![cfg(feature = "wgpu")]

mod wgpu_common;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Flex, Wgpu};
use visage_train::device_check::{compare_every_family, Tolerances};

/// Ignored: on Mesa's lavapipe with Burn 0.21, the loss agrees (≤ 2.2e-6) but the gradients
/// do not (worst per-tensor error up to 1.6× the tensor's largest gradient in the ResNet
/// families, 7e-2 in RetinaFace); which backend is wrong is not settled yet (see the closing
/// note of the scale-out issue). It also takes about 11 minutes there. Run it with
/// `cargo test -p visage --features wgpu --test wgpu_step -- --ignored`, or
/// `visage check-device --device wgpu` for the table.
#[test]
#[ignore = "wgpu gradients differ from Flex on lavapipe (under investigation); 11 min"]
fn every_family_steps_on_wgpu_as_on_flex() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let comparisons = compare_every_family::<Autodiff<Flex>, Autodiff<Wgpu>>(
        &Default::default(),
        &WgpuDevice::default(),
        Tolerances::default(),
    )
    .unwrap();
    assert_eq!(comparisons.len(), visage_model::tiny::every_family().len());
    let mut failures = Vec::new();
    for c in &comparisons {
        println!(
            "{}: loss {:?}; worst relative errors: loss {:.1e}, gradients {:.1e} ({} tensors); \
             weights {:.1e}; {:.1} s on Flex, {:.1} s on wgpu",
            c.name,
            c.loss,
            c.loss_rel,
            c.grad_rel,
            c.gradients,
            c.weight_abs,
            c.seconds.0,
            c.seconds.1
        );
        failures.extend(c.failures.iter().map(|f| format!("{}: {f}", c.name)));
    }
    assert!(
        failures.is_empty(),
        "wgpu differs from Flex:\n{}",
        failures.join("\n")
    );
}
