//! [`Backbone`]: the closed set of backbones a detector can hold, behind one module.

use std::path::Path;

use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::weights::{load_state_dict, save_safetensors, StateDict, TorchLayout, WeightsError};
use crate::{
    FeatureLevels, MobileNetV1, MobileNetV1Config, ResNet, ResNetConfig, RETINAFACE_MOBILENET,
    TORCHVISION_RESNET,
};

/// Which backbone to build, with its settings.
#[derive(Debug, Clone)]
pub enum BackboneConfig {
    /// A torchvision-layout ResNet (C2..C5, strides 4..32).
    ResNet(ResNetConfig),
    /// Pytorch_Retinaface's MobileNetV1 (strides 8, 16, 32).
    MobileNet(MobileNetV1Config),
}

/// A backbone module. The variant is not part of parameter paths (burn-store skips enum
/// variants), so a ResNet's weights are addressed `backbone.layer1.0.conv1.weight` in a
/// detector whatever the variant.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone<B: Backend> {
    /// ResNet-18..152.
    ResNet(ResNet<B>),
    /// MobileNetV1 ×0.25.
    MobileNet(MobileNetV1<B>),
}

impl BackboneConfig {
    /// Builds the backbone (freshly initialised).
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> Backbone<B> {
        match self {
            BackboneConfig::ResNet(c) => Backbone::ResNet(c.init(device)),
            BackboneConfig::MobileNet(c) => Backbone::MobileNet(c.init(device)),
        }
    }

    /// Strides of the levels `forward` returns, finest first.
    pub fn strides(&self) -> Vec<usize> {
        match self {
            BackboneConfig::ResNet(_) => crate::resnet::RESNET_STRIDES.to_vec(),
            BackboneConfig::MobileNet(_) => crate::mobilenet::MOBILENET_STRIDES.to_vec(),
        }
    }

    /// Channels of the levels `forward` returns, finest first.
    pub fn out_channels(&self) -> Vec<usize> {
        match self {
            BackboneConfig::ResNet(c) => c.out_channels().to_vec(),
            BackboneConfig::MobileNet(c) => c.out_channels().to_vec(),
        }
    }
}

impl<B: KernelBackend> Backbone<B> {
    /// Runs the backbone.
    ///
    /// # Shapes
    /// - `input`: `[batch, 3, h, w]`
    /// - output: one level per stride of [`BackboneConfig::strides`],
    ///   `[batch, channels, ceil(h / stride), ceil(w / stride)]`.
    pub fn forward(&self, input: Tensor<B, 4>) -> FeatureLevels<B> {
        match self {
            Backbone::ResNet(net) => net.forward(input),
            Backbone::MobileNet(net) => net.forward(input),
        }
    }

    /// The PyTorch key layout this backbone's checkpoints use.
    pub fn torch_layout(&self) -> &'static TorchLayout {
        match self {
            Backbone::ResNet(_) => &TORCHVISION_RESNET,
            Backbone::MobileNet(_) => &RETINAFACE_MOBILENET,
        }
    }

    /// Loads a PyTorch state dict (see [`crate::weights`]): all tensors or an error.
    ///
    /// # Errors
    /// As [`load_state_dict`].
    pub fn load_state_dict(self, dict: &StateDict) -> Result<Self, WeightsError> {
        let layout = self.torch_layout();
        Ok(match self {
            Backbone::ResNet(net) => Backbone::ResNet(load_state_dict::<B, _>(net, dict, layout)?),
            Backbone::MobileNet(net) => {
                Backbone::MobileNet(load_state_dict::<B, _>(net, dict, layout)?)
            }
        })
    }

    /// Reads `path` (`.pth` or `.safetensors`) and loads it.
    ///
    /// # Errors
    /// As [`StateDict::read`] and [`load_state_dict`].
    pub fn load_file(self, path: &Path) -> Result<Self, WeightsError> {
        self.load_state_dict(&StateDict::read(path)?)
    }

    /// Writes the weights as safetensors with PyTorch key names (see [`save_safetensors`]).
    ///
    /// # Errors
    /// As [`save_safetensors`].
    pub fn save_safetensors(
        &self,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<(), WeightsError> {
        let layout = self.torch_layout();
        match self {
            Backbone::ResNet(net) => save_safetensors::<B, _>(net, layout, path, metadata),
            Backbone::MobileNet(net) => save_safetensors::<B, _>(net, layout, path, metadata),
        }
    }
}
