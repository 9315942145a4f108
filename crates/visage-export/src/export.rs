//! The whole export: the input convention, the family's network, the raw outputs or the
//! post-processing graph, the coverage check and the model's metadata.

use burn::prelude::*;
use visage_kernels::KernelBackend;
use visage_model::TestSpec;

use crate::coverage::check_every_parameter_used;
use crate::error::ExportError;
use crate::families::{ExportFamily, NetworkGraph};
use crate::graph::{Dim, ElemType, Graph, Value};
use crate::postprocess::detection_graph;
use crate::proto::tensor_proto::DataType;
use crate::proto::{ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// Opsets the exporter writes: 13 (axes as inputs, `Resize` with sizes) to 21.
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// The default opset.
pub const DEFAULT_OPSET: i64 = 17;

/// Plane order of the network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Pytorch_Retinaface).
    Bgr,
}

/// How pixels become the network's input: `(pixel − mean) / std` per plane, in `order`
/// (`mean` and `std` listed in that order), pixels in 0..255.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputNormalisation {
    /// Per-plane mean, in `order`.
    pub mean: [f32; 3],
    /// Per-plane divisor, in `order`.
    pub std: [f32; 3],
    /// Plane order.
    pub order: PlaneOrder,
}

/// What the exported graph takes as `images`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputConvention {
    /// float32 `[N, 3, H, W]`, already normalised as described.
    Normalised(InputNormalisation),
    /// uint8 RGB `[N, H, W, 3]`; the normalisation (and plane order) is inside the graph.
    RawRgb(InputNormalisation),
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// ONNX opset of the default domain (see [`OPSETS`]).
    pub opset: i64,
    /// The `images` input.
    pub input: InputConvention,
    /// With `Some`, decoding, score threshold, top-k, NMS and the cap inside the graph, with
    /// these `[test]` settings (test-time augmentation and resizing are not part of a graph).
    pub postprocess: Option<TestSpec>,
    /// Extra metadata entries (e.g. `visage.config`), written after the exporter's own.
    pub metadata: Vec<(String, String)>,
}

/// The ONNX model of `model`.
///
/// # Errors
/// [`ExportError::InvalidOption`] for an opset out of [`OPSETS`];
/// [`ExportError::UnsupportedLayer`] / [`ExportError::UnknownLayers`] naming what the
/// exporter cannot write.
pub fn export_model<B: KernelBackend, M: ExportFamily + Module<B>>(
    model: &M,
    options: &ExportOptions,
) -> Result<ModelProto, ExportError> {
    if !OPSETS.contains(&options.opset) {
        return Err(ExportError::InvalidOption {
            option: "--opset".into(),
            why: format!(
                "{} is not supported; the exporter writes opsets {} to {}",
                options.opset,
                OPSETS.start(),
                OPSETS.end()
            ),
        });
    }
    let mut g = Graph::new(options.opset);
    let images = input(&mut g, &options.input);
    let network = model.export_network(&mut g, &images)?;
    check_every_parameter_used(model, g.param_uses())?;
    let outputs = match &options.postprocess {
        Some(test) => {
            let detections = detection_graph(&mut g, &images, &network.decode, test)?;
            detections.declare_outputs(&mut g);
            detections.describe()
        }
        None => raw_outputs(&mut g, &network),
    };
    let mut metadata = vec![
        (
            "visage.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("visage.input".to_string(), describe_input(&options.input)),
        ("visage.outputs".to_string(), outputs),
        ("visage.anchors".to_string(), describe_anchors(&network)),
        (
            "visage.box_coder.variances".to_string(),
            format!("{:?}", network.decode.coder.variances),
        ),
        (
            "visage.decode_rules".to_string(),
            format!("{:?}", network.decode.rules),
        ),
    ];
    metadata.extend(options.metadata.iter().cloned());
    Ok(ModelProto {
        ir_version: ir_version(options.opset),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: options.opset,
        }],
        producer_name: "visage".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(g.finish("visage")),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
        ..Default::default()
    })
}

/// The IR version that goes with `opset` (ONNX's versioning table).
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// The `images` input and, for raw pixels, the normalisation in the graph; returns the
/// normalised `[N, 3, H, W]` float32 value.
fn input(g: &mut Graph, convention: &InputConvention) -> Value {
    let named = |s: &str| Dim::Named(s.to_string());
    match convention {
        InputConvention::Normalised(_) => g.input(
            "images",
            ElemType::F32,
            &[named("N"), Dim::Fixed(3), named("H"), named("W")],
        ),
        InputConvention::RawRgb(norm) => {
            let raw = g.input(
                "images",
                ElemType::U8,
                &[named("N"), named("H"), named("W"), Dim::Fixed(3)],
            );
            let x = g.cast(&raw, DataType::Float);
            let x = g.transpose(&x, &[0, 3, 1, 2]);
            let x = match norm.order {
                PlaneOrder::Rgb => x,
                PlaneOrder::Bgr => {
                    let planes = g.ints(&[2, 1, 0]);
                    g.gather(&x, &planes, 1)
                }
            };
            let mean = g.const_f32("input_mean", &[1, 3, 1, 1], norm.mean.to_vec());
            let std = g.const_f32("input_std", &[1, 3, 1, 1], norm.std.to_vec());
            let centred = g.sub(&x, &mean);
            g.div(&centred, &std)
        }
    }
}

fn raw_outputs(g: &mut Graph, network: &NetworkGraph) -> String {
    let mut text = Vec::new();
    for out in &network.raw {
        let dims = [
            Dim::Named("N".into()),
            Dim::Named(out.anchors.into()),
            Dim::Fixed(out.channels as i64),
        ];
        g.output(&out.value, out.name, ElemType::F32, &dims);
        let (name, anchors, channels) = (out.name, out.anchors, out.channels);
        text.push(format!("{name} [N, {anchors}, {channels}]: {}", out.doc));
    }
    text.join("\n")
}

fn describe_input(convention: &InputConvention) -> String {
    let (kind, norm) = match convention {
        InputConvention::Normalised(n) => (
            "float32 [N, 3, H, W], planes in the order below, already (pixel - mean) / std",
            n,
        ),
        InputConvention::RawRgb(n) => (
            "uint8 RGB [N, H, W, 3], pixels 0..255; the graph reorders planes and normalises",
            n,
        ),
    };
    format!(
        "{kind}; order {:?}, mean {:?}, std {:?}",
        norm.order, norm.mean, norm.std
    )
}

fn describe_anchors(network: &NetworkGraph) -> String {
    let levels: Vec<String> = network
        .anchors
        .levels()
        .iter()
        .map(|l| {
            format!(
                "{{\"stride\": {}, \"sizes\": {:?}, \"aspect_ratios\": {:?}}}",
                l.stride, l.sizes, l.aspect_ratios
            )
        })
        .collect();
    format!(
        "{{\"order\": \"level, y, x, size, aspect ratio\", \"centre\": \"((x + 0.5) * stride, \
         (y + 0.5) * stride)\", \"shape\": \"w = size / sqrt(ratio), h = size * sqrt(ratio)\", \
         \"feature_size\": \"the level's feature map\", \"levels\": [{}]}}",
        levels.join(", ")
    )
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
