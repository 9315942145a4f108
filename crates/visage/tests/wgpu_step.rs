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
use visage_train::device_check::{compare_every_family, compare_family, Tolerances};

/// Ignored: on Mesa's lavapipe with Burn 0.21 (stop 22), the losses agreed (≤ 2.2e-6) and
/// DF²S² agreed in everything (`df2s2_steps_on_wgpu_as_on_flex`); the families with RetinaNet's
/// FPN got wrong gradients from Burn's nearest-interpolate backward, now worked around in
/// `visage_neck::upsample_nearest_to` (`wgpu_ops::fpn_gradients_match_flex_on_wgpu`), but the
/// whole table has not been re-run since, and RetinaFace's smallest batch-norm gradients
/// differed by up to 7 % of their tensor's largest. It takes about 6 minutes there. Run it
/// with `cargo test -p visage --features wgpu --test wgpu_step -- --ignored`, or
/// `visage check-device --device wgpu` for the table.
#[test]
#[ignore = "not every family agrees with Flex yet on wgpu (Burn 0.21, lavapipe); 6 min"]
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

/// DF²S² (FFP neck, shared head convolutions, segmentation branch, ResNet with batch norm in
/// training mode): forward, loss, backward and an SGD step on wgpu equal Flex's within
/// [`Tolerances::default`].
#[test]
fn df2s2_steps_on_wgpu_as_on_flex() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let (name, spec) = visage_model::tiny::every_family()
        .into_iter()
        .find(|(name, _)| *name == "df2s2")
        .expect("the tiny DF²S² spec");
    let c = compare_family::<Autodiff<Flex>, Autodiff<Wgpu>>(
        name,
        &spec,
        &Default::default(),
        &WgpuDevice::default(),
        Tolerances::default(),
    )
    .unwrap();
    println!(
        "{name}: worst relative errors: loss {:.1e}, gradients {:.1e} ({} tensors); weights {:.1e}",
        c.loss_rel, c.grad_rel, c.gradients, c.weight_abs
    );
    assert!(c.gradients > 50, "only {} gradients compared", c.gradients);
    assert!(
        c.agrees(),
        "wgpu differs from Flex:\n{}",
        c.failures.join("\n")
    );
}
