//! The `[model.mesh.decoder]` table and how it builds a [`MeshDecoder`].

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::dense::Dense;
use super::{MeshDecoder, VERTEX_OUTPUTS};
use crate::graph::{ChebConv, ChebConvConfig, LevelOperators};
use crate::{FaceMesh, MeshError, MeshHierarchy};

/// The `[model.mesh.decoder]` table. Every field has a default (the CMD decoder's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshDecoderConfig {
    /// Length of the shape-and-texture code the detector predicts per face. Default 128.
    pub code_size: usize,
    /// Output channels of the graph convolution at each level, coarse to fine (the first is
    /// also the channels of the Dense layer's coarsest-level features). Needs one entry per
    /// up-sampling step of the hierarchy (4 for the stored one). Default `[64, 32, 32, 16]`.
    pub channels: Vec<usize>,
    /// Chebyshev order `K` of every graph convolution (filters reach `K − 1` edges). Default 6.
    pub cheb_k: usize,
}

impl Default for MeshDecoderConfig {
    fn default() -> Self {
        Self {
            code_size: 128,
            channels: vec![64, 32, 32, 16],
            cheb_k: 6,
        }
    }
}

/// The TOML path of the table, for error messages.
const KEY: &str = "model.mesh.decoder";

impl MeshDecoderConfig {
    /// Checks the values on their own.
    ///
    /// # Errors
    /// [`MeshError::Config`] naming the key (`model.mesh.decoder.channels`, ...).
    pub fn validate(&self) -> Result<(), MeshError> {
        if self.code_size == 0 {
            return Err(MeshError::Config(format!(
                "{KEY}.code_size must be at least 1"
            )));
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(MeshError::Config(format!(
                "{KEY}.channels must be a non-empty list of positive channel counts, got {:?}",
                self.channels
            )));
        }
        if !(1..=32).contains(&self.cheb_k) {
            return Err(MeshError::Config(format!(
                "{KEY}.cheb_k must be in 1..=32, got {}",
                self.cheb_k
            )));
        }
        Ok(())
    }

    /// Checks the values against a hierarchy: one channel count per up-sampling step.
    ///
    /// # Errors
    /// [`MeshError::Config`] naming `model.mesh.decoder.channels`, or what
    /// [`validate`](Self::validate) reports.
    pub fn validate_for(&self, hierarchy: &MeshHierarchy) -> Result<(), MeshError> {
        self.validate()?;
        let steps = hierarchy.levels.len().saturating_sub(1);
        if self.channels.len() != steps {
            return Err(MeshError::Config(format!(
                "{KEY}.channels has {} entries, the mesh hierarchy has {} levels and needs {steps} \
                 (one per up-sampling step)",
                self.channels.len(),
                hierarchy.levels.len()
            )));
        }
        Ok(())
    }

    /// The decoder on `hierarchy` (e.g. [`MeshHierarchy::stored`]) around the canonical
    /// template ([`FaceMesh::canonical`]), weights from Burn's generator (`B::seed`).
    ///
    /// # Errors
    /// [`MeshError::Config`] for a failed [`validate_for`](Self::validate_for) or a hierarchy
    /// whose finest level is not the template's vertex count; [`MeshError::Hierarchy`] for an
    /// inconsistent hierarchy.
    pub fn init<B: Backend>(
        &self,
        hierarchy: &MeshHierarchy,
        device: &B::Device,
    ) -> Result<MeshDecoder<B>, MeshError> {
        let rng = None::<&mut dyn RngCore>;
        self.build(hierarchy, &FaceMesh::canonical().vertices, rng, device)
    }

    /// The decoder around `template` (the level-0 vertex positions), weights drawn from `rng`
    /// (deterministic for a seeded generator).
    ///
    /// # Errors
    /// As [`init`](Self::init), comparing with `template.len()`.
    pub fn init_with<B: Backend>(
        &self,
        hierarchy: &MeshHierarchy,
        template: &[[f32; 3]],
        rng: &mut (impl RngCore + ?Sized),
        device: &B::Device,
    ) -> Result<MeshDecoder<B>, MeshError> {
        self.build(hierarchy, template, Some(rng), device)
    }

    fn build<B: Backend, R: RngCore + ?Sized>(
        &self,
        hierarchy: &MeshHierarchy,
        template: &[[f32; 3]],
        mut rng: Option<&mut R>,
        device: &B::Device,
    ) -> Result<MeshDecoder<B>, MeshError> {
        self.validate_for(hierarchy)?;
        let operators = LevelOperators::new(hierarchy, device)?;
        let template = template_tensor(hierarchy, template, device)?;
        let coarsest = operators.vertex_count(operators.levels() - 1);
        let dense = Dense::new(
            self.code_size,
            coarsest * self.channels[0],
            rng.as_deref_mut(),
            device,
        );
        let mut blocks = Vec::with_capacity(self.channels.len());
        let mut inputs = self.channels[0];
        for &outputs in &self.channels {
            let config = ChebConvConfig::new(inputs, outputs).with_k(self.cheb_k);
            blocks.push(conv(&config, rng.as_deref_mut(), device));
            inputs = outputs;
        }
        let head = conv(
            &ChebConvConfig::new(inputs, VERTEX_OUTPUTS).with_k(self.cheb_k),
            rng,
            device,
        );
        Ok(MeshDecoder {
            dense,
            blocks,
            head,
            operators,
            template,
        })
    }
}

/// A Chebyshev convolution from `rng` or from Burn's generator.
pub(crate) fn conv<B: Backend, R: RngCore + ?Sized>(
    config: &ChebConvConfig,
    rng: Option<&mut R>,
    device: &B::Device,
) -> ChebConv<B> {
    match rng {
        Some(rng) => config.init_with_rng(rng, device),
        None => config.init(device),
    }
}

/// The template as a `[V, 3]` tensor, checked against the hierarchy's finest level.
pub(crate) fn template_tensor<B: Backend>(
    hierarchy: &MeshHierarchy,
    template: &[[f32; 3]],
    device: &B::Device,
) -> Result<Tensor<B, 2>, MeshError> {
    let finest = hierarchy.levels.first().map_or(0, |l| l.vertex_count);
    if finest != template.len() {
        return Err(MeshError::Config(format!(
            "the mesh hierarchy's finest level has {finest} vertices, the template {}",
            template.len()
        )));
    }
    let flat: Vec<f32> = template.iter().flatten().copied().collect();
    Ok(Tensor::from_data(
        TensorData::new(flat, [template.len(), 3]),
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sampling_tests::tiny_hierarchy;
    use burn::backend::Flex;

    #[test]
    fn defaults_and_unknown_keys() {
        let config: MeshDecoderConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, MeshDecoderConfig::default());
        assert_eq!(
            (config.code_size, config.channels.as_slice(), config.cheb_k),
            (128, &[64, 32, 32, 16][..], 6)
        );
        let partial: MeshDecoderConfig = serde_json::from_str(r#"{"cheb_k": 3}"#).unwrap();
        assert_eq!((partial.cheb_k, partial.code_size), (3, 128));
        let err = serde_json::from_str::<MeshDecoderConfig>(r#"{"chanels": [1]}"#).unwrap_err();
        assert!(err.to_string().contains("chanels"), "{err}");
        let back: MeshDecoderConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn validation_errors_name_the_key() {
        let cases = [
            (
                MeshDecoderConfig {
                    code_size: 0,
                    ..Default::default()
                },
                "model.mesh.decoder.code_size",
            ),
            (
                MeshDecoderConfig {
                    channels: vec![],
                    ..Default::default()
                },
                "model.mesh.decoder.channels",
            ),
            (
                MeshDecoderConfig {
                    channels: vec![64, 0, 32, 16],
                    ..Default::default()
                },
                "model.mesh.decoder.channels",
            ),
            (
                MeshDecoderConfig {
                    cheb_k: 0,
                    ..Default::default()
                },
                "model.mesh.decoder.cheb_k",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        assert!(MeshDecoderConfig::default().validate().is_ok());
    }

    #[test]
    fn channels_must_match_the_hierarchy() {
        let device = Default::default();
        // The tiny hierarchy has 3 levels: 2 up-sampling steps, the default config has 4.
        let err = MeshDecoderConfig::default()
            .init::<Flex>(&tiny_hierarchy(), &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.mesh.decoder.channels") && err.contains("needs 2"),
            "{err}"
        );
        // A template of the wrong size.
        let config = MeshDecoderConfig {
            channels: vec![4, 4],
            ..Default::default()
        };
        let mut rng = rand::rng();
        let err = config
            .init_with::<Flex>(&tiny_hierarchy(), &[[0.0; 3]; 4], &mut rng, &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("5 vertices") && err.contains("template 4"),
            "{err}"
        );
    }
}
