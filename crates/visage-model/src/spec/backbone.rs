//! `[model.backbone.<kind>]`: which backbone every family builds on, its freezing, and the
//! initial weights of a new run. The Burn config is built here ([`BackboneSpec::config`]);
//! the backbone crate validates it and errors are reported at the `model.backbone.*` key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_backbone::{Backbone, BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_kernels::KernelBackend;

use super::defaults;
use super::keys::{at_key, invalid};
use crate::error::ModelError;

/// `[model.backbone.<kind>]`: a closed set of backbones; an unknown kind fails at parse time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BackboneSpec {
    /// torchvision-layout ResNet returning C2..C5 (strides 4..32).
    Resnet(ResNetSpec),
    /// Pytorch_Retinaface's MobileNetV1 returning strides 8, 16, 32.
    Mobilenet(MobileNetSpec),
}

/// `[model.backbone.resnet]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetSpec {
    /// 18, 34, 50, 101 or 152.
    pub depth: u32,
    /// Scales every channel count (1.0 = torchvision's ResNet; 0.25 = a tiny CPU model).
    #[serde(default = "defaults::resnet_width_multiplier")]
    pub width_multiplier: f32,
    /// BatchNorm statistics and affine parameters fixed (as when fine-tuning from ImageNet).
    #[serde(default)]
    pub frozen_bn: bool,
    /// Freeze the stem (`conv1`, `bn1`): no gradients, batch norm frozen.
    #[serde(default)]
    pub freeze_stem: bool,
    /// Freeze `layer1..layerN` (0..=4): no gradients, batch norms frozen.
    #[serde(default)]
    pub frozen_stages: usize,
    /// Initial weights for a new run: a torchvision `.pth` state dict (e.g.
    /// `resnet50-0676ba61.pth`; `fc.*` ignored, a `module.` prefix removed) or a safetensors
    /// file from `visage import`. Relative paths are relative to the working directory.
    /// Not read when resuming or loading a checkpoint (which holds all weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

/// `[model.backbone.mobilenet]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileNetSpec {
    /// Scales MobileNetV1-1.0's channels; Pytorch_Retinaface's network is 0.25.
    #[serde(default = "defaults::mobilenet_width_multiplier")]
    pub width_multiplier: f32,
    /// BatchNorm statistics and affine parameters fixed.
    #[serde(default)]
    pub frozen_bn: bool,
    /// Initial weights for a new run: Pytorch_Retinaface's `mobilenetV1X0.25_pretrain.tar`
    /// (its `state_dict` and `module.` prefix are unwrapped) or a safetensors file from
    /// `visage import`. Relative paths are relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

impl BackboneSpec {
    /// The backbone's TOML table, for error messages: `model.backbone.resnet` or
    /// `model.backbone.mobilenet`.
    pub fn key(&self) -> &'static str {
        match self {
            BackboneSpec::Resnet(_) => "model.backbone.resnet",
            BackboneSpec::Mobilenet(_) => "model.backbone.mobilenet",
        }
    }

    /// The initial-weights file, if any.
    pub fn weights(&self) -> Option<&Path> {
        match self {
            BackboneSpec::Resnet(r) => r.weights.as_deref(),
            BackboneSpec::Mobilenet(m) => m.weights.as_deref(),
        }
    }

    /// Strides of the levels the backbone returns, finest first.
    pub fn strides(&self) -> Vec<usize> {
        match self {
            BackboneSpec::Resnet(_) => visage_backbone::resnet::RESNET_STRIDES.to_vec(),
            BackboneSpec::Mobilenet(_) => visage_backbone::mobilenet::MOBILENET_STRIDES.to_vec(),
        }
    }

    /// The Burn config this spec describes, validated by the backbone crate; errors name the
    /// `model.backbone.<kind>.*` key.
    pub fn config(&self) -> Result<BackboneConfig, ModelError> {
        let config = match self {
            BackboneSpec::Resnet(r) => {
                let depth = match r.depth {
                    18 => ResNetDepth::D18,
                    34 => ResNetDepth::D34,
                    50 => ResNetDepth::D50,
                    101 => ResNetDepth::D101,
                    152 => ResNetDepth::D152,
                    other => {
                        return Err(invalid(
                            "model.backbone.resnet.depth",
                            format!("must be 18, 34, 50, 101 or 152, got {other}"),
                        ))
                    }
                };
                let config = ResNetConfig::new(depth)
                    .with_width_multiplier(r.width_multiplier)
                    .with_frozen_bn(r.frozen_bn)
                    .with_freeze_stem(r.freeze_stem)
                    .with_frozen_stages(r.frozen_stages);
                config.validate().map(|()| BackboneConfig::ResNet(config))
            }
            BackboneSpec::Mobilenet(m) => {
                let config = MobileNetV1Config::new()
                    .with_width_multiplier(m.width_multiplier)
                    .with_frozen_bn(m.frozen_bn);
                config
                    .validate()
                    .map(|()| BackboneConfig::MobileNet(config))
            }
        };
        config.map_err(|e| at_key(self.key(), &[], e))
    }

    /// `backbone` with the initial weights this spec names, if any (a new run's
    /// initialisation), and the file that was loaded.
    ///
    /// # Errors
    /// [`ModelError::Weights`] naming the file and every missing / unexpected / mis-shaped key.
    pub fn load_initial<B: KernelBackend>(
        &self,
        backbone: Backbone<B>,
    ) -> Result<(Backbone<B>, Option<PathBuf>), ModelError> {
        match self.weights() {
            None => Ok((backbone, None)),
            Some(path) => Ok((backbone.load_file(path)?, Some(path.to_path_buf()))),
        }
    }
}

/// The channels of the backbone levels of the given strides (finest first); an error naming
/// `min_level_key` when the backbone lacks one.
pub(crate) fn neck_in_channels(
    backbone: &BackboneConfig,
    strides: &[usize],
    min_level_key: &str,
) -> Result<Vec<usize>, ModelError> {
    strides
        .iter()
        .map(|stride| {
            let level = backbone.strides().iter().position(|s| s == stride);
            level.map(|i| backbone.out_channels()[i])
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| ModelError::InvalidConfig {
            key: min_level_key.into(),
            message: "the backbone lacks a level the neck needs".into(),
        })
}

/// The finest level `min_level` a neck may start at on `backbone` (2 or 3, and the backbone
/// must have that stride); errors name `key`.
pub(crate) fn check_min_level(
    backbone: &BackboneSpec,
    min_level: u32,
    key: &str,
) -> Result<(), ModelError> {
    if !(2..=3).contains(&min_level) {
        return Err(invalid(key, format!("must be 2 or 3, got {min_level}")));
    }
    let finest = 1usize << min_level;
    if !backbone.strides().contains(&finest) {
        return Err(invalid(
            key,
            format!(
                "the backbone has no stride-{finest} level (its strides: {:?})",
                backbone.strides()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_errors_name_the_backbone_key() {
        let resnet = |width: f32, frozen_stages: usize| {
            BackboneSpec::Resnet(ResNetSpec {
                depth: 18,
                width_multiplier: width,
                frozen_bn: false,
                freeze_stem: false,
                frozen_stages,
                weights: None,
            })
        };
        resnet(0.5, 4).config().unwrap();
        let err = resnet(0.0, 0).config().unwrap_err().to_string();
        assert!(
            err.contains("model.backbone.resnet.width_multiplier"),
            "{err}"
        );
        let err = resnet(1.0, 5).config().unwrap_err().to_string();
        assert!(err.contains("model.backbone.resnet.frozen_stages"), "{err}");
        let mobilenet = BackboneSpec::Mobilenet(MobileNetSpec {
            width_multiplier: -1.0,
            frozen_bn: false,
            weights: None,
        });
        let err = mobilenet.config().unwrap_err().to_string();
        assert!(
            err.contains("model.backbone.mobilenet.width_multiplier"),
            "{err}"
        );
    }
}
