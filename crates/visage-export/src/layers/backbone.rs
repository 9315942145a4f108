//! The backbones: ResNet (C2..C5) and MobileNetV1 (strides 8, 16, 32), every norm folded.

use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use visage_backbone::mobilenet::{ConvDw, MobileBlock, MobileNetV1};
use visage_backbone::resnet::{BasicBlock, Bottleneck, Downsample, ResNet, ResidualBlock};
use visage_backbone::Backbone;
use visage_kernels::KernelBackend;

use super::conv::{conv2d_norm, conv_norm_act};
use crate::error::ExportError;
use crate::graph::{Graph, Value};

/// One level of a backbone's output in the graph: `[N, C, H / stride, W / stride]`.
#[derive(Debug, Clone)]
pub struct GraphLevel {
    /// Input pixels per feature cell.
    pub stride: usize,
    /// The feature map.
    pub value: Value,
}

/// The backbone's levels, finest first; `name` is its parameter path (e.g. `backbone`).
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a layer the graph cannot express.
pub fn backbone<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    net: &Backbone<B>,
    name: &str,
) -> Result<Vec<GraphLevel>, ExportError> {
    match net {
        Backbone::ResNet(net) => resnet(g, x, net, name),
        Backbone::MobileNet(net) => mobilenet(g, x, net, name),
    }
}

/// The stride of a level with `stride` among `levels`, or an error naming the layer.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] if the backbone has no such level (a wiring error).
pub fn level(levels: &[GraphLevel], stride: usize, name: &str) -> Result<Value, ExportError> {
    levels
        .iter()
        .find(|l| l.stride == stride)
        .map(|l| l.value.clone())
        .ok_or_else(|| ExportError::UnsupportedLayer {
            layer: name.to_string(),
            why: format!("the backbone has no level of stride {stride}"),
        })
}

fn resnet<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    net: &ResNet<B>,
    name: &str,
) -> Result<Vec<GraphLevel>, ExportError> {
    let stem = conv2d_norm(g, x, &net.conv1, &net.bn1, &format!("{name}.conv1"))?;
    let stem = g.relu(&stem);
    let mut x = max_pool(g, &stem, &net.maxpool, &format!("{name}.maxpool"))?;
    let layers = [&net.layer1, &net.layer2, &net.layer3, &net.layer4];
    let mut levels = Vec::with_capacity(4);
    for (i, (layer, stride)) in layers
        .into_iter()
        .zip(visage_backbone::resnet::RESNET_STRIDES)
        .enumerate()
    {
        for (j, block) in layer.iter().enumerate() {
            let path = format!("{name}.layer{}.{j}", i + 1);
            x = match block {
                ResidualBlock::Basic(b) => basic_block(g, &x, b, &path)?,
                ResidualBlock::Bottleneck(b) => bottleneck(g, &x, b, &path)?,
            };
        }
        levels.push(GraphLevel {
            stride,
            value: x.clone(),
        });
    }
    Ok(levels)
}

fn basic_block<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    block: &BasicBlock<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let identity = shortcut(g, x, &block.downsample, name)?;
    let y = conv2d_norm(g, x, &block.conv1, &block.bn1, &format!("{name}.conv1"))?;
    let y = g.relu(&y);
    let y = conv2d_norm(g, &y, &block.conv2, &block.bn2, &format!("{name}.conv2"))?;
    let sum = g.add(&y, &identity);
    Ok(g.relu(&sum))
}

fn bottleneck<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    block: &Bottleneck<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let identity = shortcut(g, x, &block.downsample, name)?;
    let y = conv2d_norm(g, x, &block.conv1, &block.bn1, &format!("{name}.conv1"))?;
    let y = g.relu(&y);
    let y = conv2d_norm(g, &y, &block.conv2, &block.bn2, &format!("{name}.conv2"))?;
    let y = g.relu(&y);
    let y = conv2d_norm(g, &y, &block.conv3, &block.bn3, &format!("{name}.conv3"))?;
    let sum = g.add(&y, &identity);
    Ok(g.relu(&sum))
}

fn shortcut<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    downsample: &Option<Downsample<B>>,
    name: &str,
) -> Result<Value, ExportError> {
    match downsample {
        Some(d) => conv2d_norm(g, x, &d.conv, &d.bn, &format!("{name}.downsample")),
        None => Ok(x.clone()),
    }
}

fn mobilenet<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    net: &MobileNetV1<B>,
    name: &str,
) -> Result<Vec<GraphLevel>, ExportError> {
    let mut x = x.clone();
    let mut levels = Vec::with_capacity(3);
    let stages = [&net.stage1, &net.stage2, &net.stage3];
    for (i, (stage, stride)) in stages
        .into_iter()
        .zip(visage_backbone::mobilenet::MOBILENET_STRIDES)
        .enumerate()
    {
        for (j, block) in stage.iter().enumerate() {
            let path = format!("{name}.stage{}.{j}", i + 1);
            x = match block {
                MobileBlock::ConvBn(b) => conv_norm_act(g, &x, b, &path)?,
                MobileBlock::ConvDw(b) => conv_dw(g, &x, b, &path)?,
            };
        }
        levels.push(GraphLevel {
            stride,
            value: x.clone(),
        });
    }
    Ok(levels)
}

fn conv_dw<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    block: &ConvDw<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let dw = format!("{name}.depthwise");
    let y = conv2d_norm(g, x, &block.depthwise, &block.depthwise_bn, &dw)?;
    let y = g.leaky_relu(&y, block.leaky_slope);
    let pw = format!("{name}.pointwise");
    let y = conv2d_norm(g, &y, &block.pointwise, &block.pointwise_bn, &pw)?;
    Ok(g.leaky_relu(&y, block.leaky_slope))
}

/// A [`MaxPool2d`] with explicit or no padding.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] for `Same` padding or dilation.
pub fn max_pool(
    g: &mut Graph,
    x: &Value,
    pool: &MaxPool2d,
    name: &str,
) -> Result<Value, ExportError> {
    let pads = match pool.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => {
            return Err(ExportError::UnsupportedLayer {
                layer: name.to_string(),
                why: "max pooling with `Same` padding".into(),
            })
        }
    };
    if pool.dilation != [1, 1] {
        return Err(ExportError::UnsupportedLayer {
            layer: name.to_string(),
            why: format!("max pooling with dilation {:?}", pool.dilation),
        });
    }
    Ok(g.max_pool(x, pool.kernel_size, pool.stride, pads, pool.ceil_mode))
}

#[cfg(test)]
#[path = "backbone_tests.rs"]
pub(crate) mod tests;
