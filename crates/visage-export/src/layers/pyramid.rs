//! RetinaNet's FPN and DF²S²'s feature fusion pyramid, mirroring `Fpn::forward` and
//! `Ffp::forward`: backbone levels `[N, C_l, H_l, W_l]` in (finest first), pyramid levels
//! `[N, C, H_l, W_l]` out, then the extra coarser levels.

use burn::nn::conv::ConvTranspose2d;
use visage_kernels::KernelBackend;
use visage_neck::{ExtraSource, Ffp, Fpn};

use super::backbone::max_pool;
use super::conv::conv2d;
use crate::error::ExportError;
use crate::graph::ops::ConvWeights;
use crate::graph::{Graph, Value};

/// RetinaNet's [`Fpn`]: 1×1 laterals, the top-down path (nearest up-sampling to the finer
/// level's exact size, added), 3×3 smoothing, then the stride-2 extra levels (P6 from C5, P5
/// or C5's lateral as `extra_source` says; ReLU before every later one). `inputs` are the
/// configured input levels, finest first.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] for a level count that differs from the FPN's, or a
/// conv the graph cannot express.
pub fn fpn<B: KernelBackend>(
    g: &mut Graph,
    inputs: &[Value],
    net: &Fpn<B>,
    name: &str,
) -> Result<Vec<Value>, ExportError> {
    let n = inputs.len();
    if n == 0 || n != net.lateral.len() || n != net.output.len() {
        return Err(ExportError::UnsupportedLayer {
            layer: name.to_string(),
            why: format!(
                "the FPN has {} lateral convs, the export gives it {n} levels",
                net.lateral.len()
            ),
        });
    }
    let laterals = inputs
        .iter()
        .zip(&net.lateral)
        .enumerate()
        .map(|(i, (x, conv))| conv2d(g, x, conv, &format!("{name}.lateral.{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = vec![None; n];
    let mut top_down: Option<Value> = None;
    for i in (0..n).rev() {
        let merged = match &top_down {
            None => laterals[i].clone(),
            Some(coarser) => {
                let up = g.resize_nearest_like(coarser, &laterals[i]);
                g.add(&laterals[i], &up)
            }
        };
        outputs[i] = Some(conv2d(
            g,
            &merged,
            &net.output[i],
            &format!("{name}.output.{i}"),
        )?);
        top_down = Some(merged);
    }
    let mut levels: Vec<Value> = outputs.into_iter().flatten().collect();
    let mut previous = match net.extra_source {
        ExtraSource::C5 => inputs[n - 1].clone(),
        ExtraSource::P5 => levels[n - 1].clone(),
        ExtraSource::Lateral => laterals[n - 1].clone(),
    };
    for (i, conv) in net.extra.iter().enumerate() {
        let x = if i == 0 { previous } else { g.relu(&previous) };
        let p = conv2d(g, &x, conv, &format!("{name}.extra.{i}"))?;
        levels.push(p.clone());
        previous = p;
    }
    Ok(levels)
}

/// DF²S²'s [`Ffp`]: top-down F-blocks `φ_i ← φ_i · Ψ(φ_{i+1}) + φ_i` (`Ψ` a stride-2
/// transposed conv, its output cropped to `φ_i`'s size), the extra levels max-pooled from
/// the coarsest fused level, then each level's 1×1 projection. `inputs` are the configured
/// input levels, finest first.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] for a level count that differs from the FFP's, or a
/// layer the graph cannot express.
pub fn ffp<B: KernelBackend>(
    g: &mut Graph,
    inputs: &[Value],
    net: &Ffp<B>,
    name: &str,
) -> Result<Vec<Value>, ExportError> {
    let n = inputs.len();
    if n == 0 || n != net.upsample.len() + 1 || n + net.extra_levels != net.projection.len() {
        return Err(ExportError::UnsupportedLayer {
            layer: name.to_string(),
            why: format!(
                "the FFP has {} up-sampling layers and {} projections, the export gives it \
                 {n} levels",
                net.upsample.len(),
                net.projection.len()
            ),
        });
    }
    let mut fused = inputs.to_vec();
    for i in (0..n - 1).rev() {
        let path = format!("{name}.upsample.{i}");
        let up = conv_transpose2d(g, &fused[i + 1], &net.upsample[i], &path);
        let up = crop_like(g, &up, &fused[i]);
        let product = g.mul(&fused[i], &up);
        fused[i] = g.add(&product, &fused[i]);
    }
    let mut previous = fused[n - 1].clone();
    for _ in 0..net.extra_levels {
        previous = max_pool(g, &previous, &net.pool, &format!("{name}.pool"))?;
        fused.push(previous.clone());
    }
    fused
        .iter()
        .zip(&net.projection)
        .enumerate()
        .map(|(i, (x, conv))| conv2d(g, x, conv, &format!("{name}.projection.{i}")))
        .collect()
}

/// A [`ConvTranspose2d`]: `[N, C_in, h, w]` → `[N, C_out, (h − 1)·s − 2p + d·(k − 1) +
/// p_out + 1, …]`.
fn conv_transpose2d<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    conv: &ConvTranspose2d<B>,
    name: &str,
) -> Value {
    let (weight, dims) = g.read(&conv.weight);
    let bias = conv.bias.as_ref().map(|b| g.read(b).0);
    let [ph, pw] = conv.padding;
    g.conv_transpose(
        x,
        name,
        ConvWeights { weight, dims, bias },
        conv.stride,
        [ph, pw, ph, pw],
        conv.dilation,
        conv.padding_out,
        conv.groups,
    )
}

/// `x` `[N, C, H', W']` cropped to the top-left `[H, W]` of `like` `[N, C', H, W]`.
fn crop_like(g: &mut Graph, x: &Value, like: &Value) -> Value {
    let shape = g.shape(like);
    let ends = g.slice(&shape, &[2], &[4], &[0]);
    let starts = g.ints(&[0, 0]);
    let axes = g.ints(&[2, 3]);
    g.node("Slice", &[x, &starts, &ends, &axes], vec![])
}
