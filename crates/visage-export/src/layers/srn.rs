//! SRN's two-step neck, receptive field enrichment and two-step head, mirroring
//! `visage_neck::SrnNeck` (its FPN through [`super::pyramid::fpn`]) and
//! `visage_heads::{ConvBlock, Rfe, RfeBranch, SrnBranch}`.
//!
//! SRN's head runs with the same weights on every level of both steps, so its convolutions
//! are written once as initialisers ([`SharedConv`]) and applied to each level: the graph
//! holds one copy of the head, not one per level and step (which is why the head is not
//! written with [`super::heads::conv_block`] / [`super::heads::group_norm`], which write
//! their initialisers at each call).

use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::prelude::*;
use visage_heads::{ConvBlock, Rfe, SrnBranch};
use visage_kernels::KernelBackend;
use visage_neck::SrnNeck;

use super::conv::{conv2d, geometry, read_conv};
use super::pyramid::fpn;
use crate::error::ExportError;
use crate::graph::{attr_float, attr_int, attr_ints, Graph, Value};
use crate::proto::AttributeProto;

/// Why the first-step projections of levels that neither STC nor STR reads are not in the
/// graph (the model computes them, but nothing consumes them, in training or inference).
const UNUSED_FIRST_STEP: &str =
    "first-step features of a level on which neither STC nor STR runs: never consumed";

/// SRN's two feature sets in the graph, finest first; both `[N, C, H_l, W_l]` per level.
#[derive(Debug, Clone)]
pub struct SrnFeaturesGraph {
    /// First step: the 1×1 projection of C_l, or `None` where no first-step branch reads
    /// the level (its projection is left out).
    pub first: Vec<Option<Value>>,
    /// Second step: the FPN levels P_min..P7.
    pub second: Vec<Value>,
}

/// SRN's neck on `inputs` (C_min..C5, finest first, `[N, C_i, H_i, W_i]`): C6 =
/// ReLU(conv(C5)), C7 = ReLU(conv(C6)), the first-step 1×1 projections of C_min..C7 where
/// `first_used[l]` says level `l` is read (the others, and C6 / C7 if nothing needs them,
/// are left out), and the FPN. `name` is the neck's parameter path.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a layer the graph cannot express.
///
/// # Panics
/// If `first_used` does not hold one flag per level (`inputs.len() + 2`).
pub fn srn_neck<B: KernelBackend>(
    g: &mut Graph,
    inputs: &[Value],
    neck: &SrnNeck<B>,
    first_used: &[bool],
    name: &str,
) -> Result<SrnFeaturesGraph, ExportError> {
    let n = inputs.len();
    assert_eq!(first_used.len(), n + 2, "one first-step flag per level");
    assert_eq!(neck.first_step.len(), n + 2, "one projection per level");
    let need_c7 = first_used[n + 1];
    let need_c6 = need_c7 || first_used[n];
    let mut c: Vec<Option<Value>> = inputs.iter().cloned().map(Some).collect();
    let c5 = inputs.last().expect("at least one input level");
    let c6 = if need_c6 {
        let y = conv2d(g, c5, &neck.c6, &format!("{name}.c6"))?;
        Some(g.relu(&y))
    } else {
        g.leave_out_module(&neck.c6, UNUSED_FIRST_STEP);
        None
    };
    let c7 = match (&c6, need_c7) {
        (Some(c6), true) => {
            let y = conv2d(g, c6, &neck.c7, &format!("{name}.c7"))?;
            Some(g.relu(&y))
        }
        _ => {
            g.leave_out_module(&neck.c7, UNUSED_FIRST_STEP);
            None
        }
    };
    c.push(c6);
    c.push(c7);
    let mut first = Vec::with_capacity(n + 2);
    for (l, (level, conv)) in c.iter().zip(&neck.first_step).enumerate() {
        first.push(match (level, first_used[l]) {
            (Some(x), true) => Some(conv2d(g, x, conv, &format!("{name}.first_step.{l}"))?),
            _ => {
                g.leave_out_module(conv, UNUSED_FIRST_STEP);
                None
            }
        });
    }
    let second = fpn(g, inputs, &neck.fpn, &format!("{name}.fpn"))?; // P_min..P7
    Ok(SrnFeaturesGraph { first, second })
}

/// A convolution whose weight and bias are written once and applied to many inputs.
#[derive(Debug, Clone)]
pub struct SharedConv {
    weight: Value,
    bias: Option<Value>,
    attributes: Vec<AttributeProto>,
}

impl SharedConv {
    /// Reads `conv` (parameter path `name`) into initialisers.
    ///
    /// # Errors
    /// [`ExportError::UnsupportedLayer`] for `Same` padding ONNX cannot state as fixed pads.
    pub fn new<B: KernelBackend>(
        g: &mut Graph,
        conv: &Conv2d<B>,
        name: &str,
    ) -> Result<Self, ExportError> {
        let geo = geometry(conv, name)?;
        let w = read_conv(g, conv);
        let i64s = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
        let attributes = vec![
            attr_ints("kernel_shape", &i64s(&w.dims[2..])),
            attr_ints("strides", &i64s(&geo.stride)),
            attr_ints("pads", &i64s(&geo.pads)),
            attr_ints("dilations", &i64s(&geo.dilation)),
            attr_int("group", geo.groups as i64),
        ];
        let weight = g.const_f32(&format!("{name}.weight"), &w.dims, w.weight);
        let bias = w
            .bias
            .map(|b| g.const_f32(&format!("{name}.bias"), &[w.dims[0]], b));
        Ok(Self {
            weight,
            bias,
            attributes,
        })
    }

    /// `Conv`: `[N, C_in, H, W]` → `[N, C_out, H', W']`.
    pub fn apply(&self, g: &mut Graph, x: &Value) -> Value {
        let attrs = self.attributes.clone();
        match &self.bias {
            Some(b) => g.node("Conv", &[x, &self.weight, b], attrs),
            None => g.node("Conv", &[x, &self.weight], attrs),
        }
    }
}

/// A group norm written once: `InstanceNormalization` over `[N, G, C/G · H · W]` (biased
/// variance, as Burn), then the per-channel affine map.
#[derive(Debug, Clone)]
struct SharedGroupNorm {
    groups: i64,
    unit_scale: Value,
    zero_bias: Value,
    epsilon: f32,
    gamma: Option<Value>,
    beta: Option<Value>,
}

impl SharedGroupNorm {
    fn new<B: KernelBackend>(g: &mut Graph, norm: &GroupNorm<B>, name: &str) -> Self {
        let groups = norm.num_groups;
        let c = norm.num_channels;
        let mut affine = |p: &Option<burn::module::Param<Tensor<B, 1>>>, what: &str| {
            p.as_ref().map(|p| {
                let (values, _) = g.read(p);
                g.const_f32(&format!("{name}.{what}"), &[1, c, 1, 1], values)
            })
        };
        let gamma = affine(&norm.gamma, "gamma");
        let beta = affine(&norm.beta, "beta");
        Self {
            groups: groups as i64,
            unit_scale: g.const_f32(&format!("{name}.unit_scale"), &[groups], vec![1.0; groups]),
            zero_bias: g.const_f32(&format!("{name}.zero_bias"), &[groups], vec![0.0; groups]),
            epsilon: norm.epsilon as f32,
            gamma,
            beta,
        }
    }

    /// `[N, C, H, W]` → `[N, C, H, W]`.
    fn apply(&self, g: &mut Graph, x: &Value) -> Value {
        let shape = g.shape(x);
        let grouped = g.reshape(x, &[0, self.groups, -1]);
        let normalised = g.node(
            "InstanceNormalization",
            &[&grouped, &self.unit_scale, &self.zero_bias],
            vec![attr_float("epsilon", self.epsilon)],
        );
        let mut y = g.reshape_to(&normalised, &shape);
        if let Some(gamma) = &self.gamma {
            y = g.mul(&y, gamma);
        }
        if let Some(beta) = &self.beta {
            y = g.add(&y, beta);
        }
        y
    }
}

/// A `visage_heads::ConvBlock` written once: conv, optional group norm, ReLU.
#[derive(Debug, Clone)]
struct SharedBlock {
    conv: SharedConv,
    norm: Option<SharedGroupNorm>,
}

impl SharedBlock {
    fn new<B: KernelBackend>(
        g: &mut Graph,
        block: &ConvBlock<B>,
        name: &str,
    ) -> Result<Self, ExportError> {
        Ok(Self {
            conv: SharedConv::new(g, &block.conv, &format!("{name}.conv"))?,
            norm: block
                .norm
                .as_ref()
                .map(|n| SharedGroupNorm::new(g, n, &format!("{name}.norm"))),
        })
    }

    fn apply(&self, g: &mut Graph, x: &Value) -> Value {
        let y = self.conv.apply(g, x);
        let y = match &self.norm {
            Some(norm) => norm.apply(g, &y),
            None => y,
        };
        g.relu(&y)
    }
}

/// Receptive field enrichment written once: `x + ReLU(fuse(cat(branches(x))))`, each branch
/// `ReLU(1×1) → ReLU(rectangular) → ReLU(1×1)`.
#[derive(Debug, Clone)]
struct SharedRfe {
    branches: Vec<[SharedConv; 3]>,
    fuse: SharedConv,
}

impl SharedRfe {
    fn new<B: KernelBackend>(g: &mut Graph, rfe: &Rfe<B>, name: &str) -> Result<Self, ExportError> {
        let mut branches = Vec::with_capacity(rfe.branches.len());
        for (i, b) in rfe.branches.iter().enumerate() {
            let path = format!("{name}.branches.{i}");
            branches.push([
                SharedConv::new(g, &b.reduce, &format!("{path}.reduce"))?,
                SharedConv::new(g, &b.spatial, &format!("{path}.spatial"))?,
                SharedConv::new(g, &b.expand, &format!("{path}.expand"))?,
            ]);
        }
        let fuse = SharedConv::new(g, &rfe.fuse, &format!("{name}.fuse"))?;
        Ok(Self { branches, fuse })
    }

    /// `[N, C, H, W]` → `[N, C, H, W]`.
    fn apply(&self, g: &mut Graph, x: &Value) -> Value {
        let outs: Vec<Value> = self
            .branches
            .iter()
            .map(|convs| {
                convs.iter().fold(x.clone(), |y, conv| {
                    let y = conv.apply(g, &y);
                    g.relu(&y)
                })
            })
            .collect();
        let cat = g.concat(&outs, 1);
        let fused = self.fuse.apply(g, &cat);
        let fused = g.relu(&fused);
        g.add(x, &fused)
    }
}

/// One of SRN's head branches written once, applied to any level of either step:
/// `3×3 block → RFE → 3×3 block → 1×1 predictor`.
#[derive(Debug, Clone)]
pub struct SrnBranchGraph {
    conv_in: SharedBlock,
    rfe: Option<SharedRfe>,
    conv_out: SharedBlock,
    predictor: SharedConv,
}

impl SrnBranchGraph {
    /// Reads `branch` (parameter path `name`, e.g. `head.cls_branch`) into initialisers.
    ///
    /// # Errors
    /// [`ExportError::UnsupportedLayer`] naming a layer the graph cannot express.
    pub fn new<B: KernelBackend>(
        g: &mut Graph,
        branch: &SrnBranch<B>,
        name: &str,
    ) -> Result<Self, ExportError> {
        Ok(Self {
            conv_in: SharedBlock::new(g, &branch.conv_in, &format!("{name}.conv_in"))?,
            rfe: match &branch.rfe {
                Some(rfe) => Some(SharedRfe::new(g, rfe, &format!("{name}.rfe"))?),
                None => None,
            },
            conv_out: SharedBlock::new(g, &branch.conv_out, &format!("{name}.conv_out"))?,
            predictor: SharedConv::new(g, &branch.predictor, &format!("{name}.predictor"))?,
        })
    }

    /// The branch on one level: `[N, C, H, W]` → `[N, out, H, W]` (raw).
    pub fn apply(&self, g: &mut Graph, x: &Value) -> Value {
        let y = self.conv_in.apply(g, x);
        let y = match &self.rfe {
            Some(rfe) => rfe.apply(g, &y),
            None => y,
        };
        let y = self.conv_out.apply(g, &y);
        self.predictor.apply(g, &y)
    }
}
