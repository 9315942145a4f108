//! Convolutions, with a following batch norm (trainable in eval mode, or frozen) folded into
//! the convolution's weight and bias: `w' = w · γ / √(σ² + ε)`, `b' = (b − μ) · γ / √(σ² + ε)
//! + β`, computed in f64.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use visage_backbone::{ConvNormAct, Norm};
use visage_kernels::KernelBackend;

use crate::error::ExportError;
use crate::graph::ops::{ConvGeometry, ConvWeights};
use crate::graph::{Graph, Value};

/// `conv(x)`; `name` is the layer's parameter path (errors and initialiser names).
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] for `Same` padding that ONNX cannot state as fixed pads.
pub fn conv2d<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    conv: &Conv2d<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let geometry = geometry(conv, name)?;
    let init = g.cached_conv(format!("{:?}", conv.weight.id), |g| {
        let weights = read_conv(g, conv);
        g.conv_initialisers(name, weights)
    });
    Ok(g.conv_with(x, &init, geometry))
}

/// `norm(conv(x))` as one `Conv` with the norm folded in.
///
/// # Errors
/// As [`conv2d`].
pub fn conv2d_norm<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    conv: &Conv2d<B>,
    norm: &Norm<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let geometry = geometry(conv, name)?;
    let norm_id = match norm {
        Norm::Batch(bn) => Some(bn.weight.id),
        Norm::Frozen(bn) => Some(bn.weight.id),
        // Already in the convolution's weight and bias.
        Norm::Folded(_) => None,
    };
    let key = format!("{:?}+{:?}", conv.weight.id, norm_id);
    let init = g.cached_conv(key, |g| {
        let weights = read_conv(g, conv);
        let affine = norm_affine(g, norm);
        g.conv_initialisers(name, fold(weights, &affine))
    });
    Ok(g.conv_with(x, &init, geometry))
}

/// A [`ConvNormAct`]: folded conv, then leaky ReLU (ReLU at slope 0) if it activates.
///
/// # Errors
/// As [`conv2d`].
pub fn conv_norm_act<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    layer: &ConvNormAct<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let y = conv2d_norm(g, x, &layer.conv, &layer.bn, &format!("{name}.conv"))?;
    Ok(if layer.activate {
        g.leaky_relu(&y, layer.leaky_slope)
    } else {
        y
    })
}

/// A norm's per-channel `(scale, shift)` at inference, in f64.
pub(crate) struct Affine {
    scale: Vec<f64>,
    shift: Vec<f64>,
}

/// The inference-time affine map of `norm` (running statistics), recording its parameters.
pub(crate) fn norm_affine<B: KernelBackend>(g: &mut Graph, norm: &Norm<B>) -> Affine {
    let (gamma, beta, mean, var, eps) = match norm {
        Norm::Batch(bn) => (
            g.read(&bn.weight).0,
            g.read(&bn.bias).0,
            g.read_running(&bn.running_mean),
            g.read_running(&bn.running_var),
            bn.epsilon,
        ),
        Norm::Frozen(bn) => (
            g.read(&bn.weight).0,
            g.read(&bn.bias).0,
            g.read(&bn.running_mean).0,
            g.read(&bn.running_var).0,
            bn.epsilon,
        ),
        Norm::Folded(folded) => {
            return Affine {
                scale: vec![1.0; folded.channels],
                shift: vec![0.0; folded.channels],
            }
        }
    };
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(&g, &v)| g as f64 / (v as f64 + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b as f64 - m as f64 * s)
        .collect();
    Affine { scale, shift }
}

/// The conv's weights with `affine` folded in: each output channel scaled, the bias shifted.
fn fold(w: ConvWeights, affine: &Affine) -> ConvWeights {
    let out_channels = w.dims[0];
    let per_channel = w.weight.len() / out_channels;
    let weight = w
        .weight
        .chunks(per_channel)
        .zip(&affine.scale)
        .flat_map(|(row, &s)| row.iter().map(move |&v| (v as f64 * s) as f32))
        .collect();
    let bias = (0..out_channels)
        .map(|c| {
            let b = w.bias.as_ref().map_or(0.0, |b| b[c] as f64);
            (b * affine.scale[c] + affine.shift[c]) as f32
        })
        .collect();
    ConvWeights {
        weight,
        dims: w.dims,
        bias: Some(bias),
    }
}

pub(crate) fn read_conv<B: KernelBackend>(g: &mut Graph, conv: &Conv2d<B>) -> ConvWeights {
    let (weight, dims) = g.read(&conv.weight);
    let bias = conv.bias.as_ref().map(|b| g.read(b).0);
    ConvWeights { weight, dims, bias }
}

pub(crate) fn geometry<B: KernelBackend>(
    conv: &Conv2d<B>,
    name: &str,
) -> Result<ConvGeometry, ExportError> {
    let pads = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => {
            let [kh, kw] = conv.kernel_size;
            let [dh, dw] = conv.dilation;
            if conv.stride != [1, 1] || kh % 2 == 0 || kw % 2 == 0 {
                return Err(ExportError::UnsupportedLayer {
                    layer: name.to_string(),
                    why: format!(
                        "`Same` padding with stride {:?} and kernel {:?} has no fixed pads",
                        conv.stride, conv.kernel_size
                    ),
                });
            }
            let (ph, pw) = ((kh - 1) / 2 * dh, (kw - 1) / 2 * dw);
            [ph, pw, ph, pw]
        }
    };
    Ok(ConvGeometry {
        stride: conv.stride,
        pads,
        dilation: conv.dilation,
        groups: conv.groups,
    })
}
