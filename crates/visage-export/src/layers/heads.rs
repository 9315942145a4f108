//! The class / box heads (RetinaNet's separate subnets or DF²S²'s shared stack, with group
//! norm), and FAN's attention subnet; each applied with the same weights to every level.
//!
//! Group norm is written with operators every supported opset has (13..21): reshape to
//! `[N, G, C/G · H · W]`, `InstanceNormalization` with unit scale and zero bias (one mean and
//! biased variance per `(n, g)`, as Burn's group norm), reshape back, then the per-channel
//! affine.

use burn::nn::GroupNorm;
use visage_heads::{AttentionHead, ConvBlock, DetectionHead, RetinaHead, SharedHead, Subnet};
use visage_kernels::KernelBackend;

use super::conv::conv2d;
use crate::error::ExportError;
use crate::graph::{attr_float, Graph, Value};

/// A [`GroupNorm`] of `x` `[N, C, H, W]` → `[N, C, H, W]`; `name` is its parameter path.
pub fn group_norm<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    norm: &GroupNorm<B>,
    name: &str,
) -> Value {
    let groups = norm.num_groups;
    let shape = g.shape(x);
    let grouped = g.reshape(x, &[0, groups as i64, -1]); // [N, G, C/G · H · W]
    let ones = g.const_f32(&format!("{name}.unit_scale"), &[groups], vec![1.0; groups]);
    let zeros = g.const_f32(&format!("{name}.zero_bias"), &[groups], vec![0.0; groups]);
    let normalised = g.node(
        "InstanceNormalization",
        &[&grouped, &ones, &zeros],
        vec![attr_float("epsilon", norm.epsilon as f32)],
    );
    let y = g.reshape_to(&normalised, &shape); // [N, C, H, W]
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => {
            let channels = norm.num_channels;
            let (gamma, _) = g.read(gamma);
            let (beta, _) = g.read(beta);
            let gamma = g.const_f32(&format!("{name}.gamma"), &[1, channels, 1, 1], gamma);
            let beta = g.const_f32(&format!("{name}.beta"), &[1, channels, 1, 1], beta);
            let scaled = g.mul(&y, &gamma);
            g.add(&scaled, &beta)
        }
        _ => y,
    }
}

/// A [`ConvBlock`]: 3×3 conv, optional group norm, ReLU; `[N, C_in, H, W]` →
/// `[N, C, H, W]`.
///
/// # Errors
/// As [`conv2d`].
pub fn conv_block<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    block: &ConvBlock<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let y = conv2d(g, x, &block.conv, &format!("{name}.conv"))?;
    let y = match &block.norm {
        Some(norm) => group_norm(g, &y, norm, &format!("{name}.norm")),
        None => y,
    };
    Ok(g.relu(&y))
}

/// The hidden blocks `convs.*` in order: `[N, C_in, H, W]` → `[N, C, H, W]` (`x` itself
/// when there are none).
///
/// # Errors
/// As [`conv2d`].
pub fn conv_blocks<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    blocks: &[ConvBlock<B>],
    name: &str,
) -> Result<Value, ExportError> {
    let mut x = x.clone();
    for (i, block) in blocks.iter().enumerate() {
        x = conv_block(g, &x, block, &format!("{name}.{i}"))?;
    }
    Ok(x)
}

/// A [`Subnet`]: hidden blocks then the predictor; `[N, C_in, H, W]` → `[N, C_out, H, W]`
/// (raw).
///
/// # Errors
/// As [`conv2d`].
pub fn subnet<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    net: &Subnet<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let hidden = conv_blocks(g, x, &net.convs, &format!("{name}.convs"))?;
    conv2d(g, &hidden, &net.predictor, &format!("{name}.predictor"))
}

/// A head's raw per-level outputs, finest level first.
#[derive(Debug, Clone)]
pub struct HeadGraph {
    /// `[N, A · K, H_l, W_l]` class logits per level.
    pub cls: Vec<Value>,
    /// `[N, A · 4, H_l, W_l]` box deltas per level.
    pub boxes: Vec<Value>,
}

/// A [`DetectionHead`] on every level of `levels` (`[N, C, H_l, W_l]`, finest first).
/// DF²S²'s segmentation predictor (training supervision only) is recorded as left out.
///
/// # Errors
/// As [`conv2d`].
pub fn detection_head<B: KernelBackend>(
    g: &mut Graph,
    levels: &[Value],
    head: &DetectionHead<B>,
    name: &str,
) -> Result<HeadGraph, ExportError> {
    match head {
        DetectionHead::Separate(head) => retina_head(g, levels, head, name),
        DetectionHead::Shared(head) => shared_head(g, levels, head, name),
    }
}

/// A [`RetinaHead`]: the class and box subnets on every level.
///
/// # Errors
/// As [`conv2d`].
pub fn retina_head<B: KernelBackend>(
    g: &mut Graph,
    levels: &[Value],
    head: &RetinaHead<B>,
    name: &str,
) -> Result<HeadGraph, ExportError> {
    let (cls_name, box_name) = (format!("{name}.cls_subnet"), format!("{name}.box_subnet"));
    let mut out = HeadGraph {
        cls: Vec::with_capacity(levels.len()),
        boxes: Vec::with_capacity(levels.len()),
    };
    for x in levels {
        out.cls.push(subnet(g, x, &head.cls_subnet, &cls_name)?);
        out.boxes.push(subnet(g, x, &head.box_subnet, &box_name)?);
    }
    Ok(out)
}

/// A [`SharedHead`]: the shared stack once per level, then the class and box predictors;
/// the segmentation predictor, if any, is left out (training only).
///
/// # Errors
/// As [`conv2d`].
pub fn shared_head<B: KernelBackend>(
    g: &mut Graph,
    levels: &[Value],
    head: &SharedHead<B>,
    name: &str,
) -> Result<HeadGraph, ExportError> {
    if let Some(seg) = &head.seg_predictor {
        g.leave_out_module(
            seg,
            "DF²S²'s segmentation predictor: training supervision only",
        );
    }
    let convs_name = format!("{name}.convs");
    let (cls_name, box_name) = (
        format!("{name}.cls_predictor"),
        format!("{name}.box_predictor"),
    );
    let mut out = HeadGraph {
        cls: Vec::with_capacity(levels.len()),
        boxes: Vec::with_capacity(levels.len()),
    };
    for x in levels {
        let hidden = conv_blocks(g, x, &head.convs, &convs_name)?;
        out.cls
            .push(conv2d(g, &hidden, &head.cls_predictor, &cls_name)?);
        out.boxes
            .push(conv2d(g, &hidden, &head.box_predictor, &box_name)?);
    }
    Ok(out)
}

/// FAN's attention on every level: each `[N, C, H_l, W_l]` level multiplied by
/// `exp(σ(logit))`, the logit `[N, 1, H_l, W_l]` from the attention subnet (as
/// [`AttentionHead::forward`] then [`AttentionHead::attend`]).
///
/// # Errors
/// As [`conv2d`].
pub fn attend<B: KernelBackend>(
    g: &mut Graph,
    levels: &[Value],
    head: &AttentionHead<B>,
    name: &str,
) -> Result<Vec<Value>, ExportError> {
    let subnet_name = format!("{name}.subnet");
    levels
        .iter()
        .map(|x| {
            let logit = subnet(g, x, &head.subnet, &subnet_name)?;
            let attention = g.sigmoid(&logit);
            let scale = g.exp(&attention);
            Ok(g.mul(x, &scale))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::module::Param;
    use burn::nn::GroupNormConfig;
    use burn::tensor::{Distribution, Tensor};
    use visage_heads::{HeadNorm, SubnetConfig};

    use crate::graph::{Dim, ElemType};
    use crate::proto::{ModelProto, OperatorSetIdProto};
    use crate::testing::{max_relative_error, run_tract};

    type B = Flex;

    fn random<const D: usize>(dims: [usize; D], lo: f64, hi: f64) -> Tensor<B, D> {
        Tensor::random(dims, Distribution::Uniform(lo, hi), &Default::default())
    }

    /// A one-input, one-output model of `body` at `opset`.
    fn model(opset: i64, body: impl FnOnce(&mut Graph, &Value) -> Value) -> ModelProto {
        let mut g = Graph::new(opset);
        let named = |s: &str| Dim::Named(s.into());
        let dims = [named("N"), named("C"), named("H"), named("W")];
        let x = g.input("x", ElemType::F32, &dims);
        let y = body(&mut g, &x);
        g.output(&y, "y", ElemType::F32, &dims);
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            graph: Some(g.finish("test")),
            ..Default::default()
        }
    }

    fn random_group_norm(groups: usize, channels: usize) -> GroupNorm<B> {
        let mut norm = GroupNormConfig::new(groups, channels).init::<B>(&Default::default());
        norm.gamma = Some(Param::from_tensor(random([channels], 0.5, 1.5)));
        norm.beta = Some(Param::from_tensor(random([channels], -0.5, 0.5)));
        norm
    }

    #[test]
    fn group_norm_matches_burn_at_opsets_13_and_21() {
        let _stream = crate::testing::seeded(28);
        for (opset, dims) in [(13, [2, 8, 5, 7]), (21, [1, 8, 6, 3])] {
            let norm = random_group_norm(4, 8);
            let x = random(dims, -2.0, 3.0);
            let expected = crate::graph::host_f32(norm.forward(x.clone()));
            let onnx = model(opset, |g, x| group_norm(g, x, &norm, "norm"));
            let got = run_tract(&onnx, &crate::graph::host_f32(x), &dims);
            assert_eq!(got[0].dims, dims.to_vec());
            let err = max_relative_error(&got[0].values, &expected);
            assert!(err <= 1e-4, "opset {opset}: {err}");
        }
    }

    #[test]
    fn subnet_with_group_norm_matches_burn() {
        let _stream = crate::testing::seeded(29);
        let mut net = SubnetConfig::new(6, 8, 2, 5)
            .with_norm(HeadNorm::GroupNorm { groups: 2 })
            .with_init_std(0.3)
            .init::<B>(&Default::default());
        for block in &mut net.convs {
            block.norm = Some(random_group_norm(2, 8));
            block.conv.bias = Some(Param::from_tensor(random([8], -0.5, 0.5)));
        }
        let dims = [2, 6, 9, 11];
        let x = random(dims, -1.0, 1.0);
        let expected = crate::graph::host_f32(net.forward(x.clone()));
        let onnx = model(17, |g, x| subnet(g, x, &net, "subnet").unwrap());
        let got = run_tract(&onnx, &crate::graph::host_f32(x), &dims);
        assert_eq!(got[0].dims, vec![2, 5, 9, 11]);
        let err = max_relative_error(&got[0].values, &expected);
        assert!(err <= 1e-4, "{err}");
    }
}
