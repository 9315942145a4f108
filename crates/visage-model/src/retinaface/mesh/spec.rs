//! `[model.mesh]` of a RetinaFace: turns on the dense 3D branch (RetinaFace §3.2) and fixes
//! what the paper leaves open. Plain serde structs that reject unknown keys;
//! [`MeshSpec::validate`] names the offending key.

use serde::{Deserialize, Serialize};
use visage_mesh::decoder::{MeshDecoderConfig, PretrainConfig};
use visage_mesh::MeshError;

use crate::error::ModelError;
use crate::spec::keys::{check_non_negative, invalid};

/// `[model.mesh]`: every key optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshSpec {
    /// `[model.mesh.decoder]`: the graph-convolution decoder (code size 128, channels
    /// `[64, 32, 32, 16]`, Chebyshev order K = 6, the CMD author's).
    pub decoder: MeshDecoderConfig,
    /// Side in pixels of the square crops the meshes are rendered into and compared with
    /// (the paper does not say; 32).
    pub crop_size: usize,
    /// Positive anchors rendered per batch (spread evenly over the batch's positives); the
    /// pixel loss averages over them.
    pub max_faces: usize,
    /// Weight of `L_pixel` in the total loss (the paper: 0.01).
    pub pixel_weight: f32,
    /// Keep the pre-trained decoder fixed while the detector trains (the author's code);
    /// gradients still reach the shape-and-texture code through it.
    pub freeze_decoder: bool,
    /// `[model.mesh.pretrain]`: the decoder's autoencoder pre-training at the start of a new
    /// run, on randomly deformed and coloured templates (no face scans exist here); `steps =
    /// 0` leaves the decoder at its random initialisation.
    pub pretrain: PretrainConfig,
}

impl Default for MeshSpec {
    fn default() -> Self {
        Self {
            decoder: MeshDecoderConfig::default(),
            crop_size: 32,
            max_faces: 16,
            pixel_weight: 0.01,
            freeze_decoder: true,
            pretrain: PretrainConfig::default(),
        }
    }
}

impl MeshSpec {
    /// Checks the values; errors name the `model.mesh.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.decoder
            .validate_for(visage_mesh::MeshHierarchy::stored())
            .map_err(|e| keyed("model.mesh.decoder", e))?;
        if self.crop_size < 4 {
            return Err(invalid("model.mesh.crop_size", "must be at least 4 pixels"));
        }
        if self.max_faces == 0 {
            return Err(invalid(
                "model.mesh.max_faces",
                "must be at least 1 (remove [model.mesh] to turn the branch off)",
            ));
        }
        check_non_negative("model.mesh.pixel_weight", self.pixel_weight)?;
        if self.pretrain.steps == 0 {
            return Ok(());
        }
        self.pretrain
            .validate()
            .map_err(|e| keyed("model.mesh.pretrain", e))
    }
}

/// A mesh crate error as a config error: its message starts with the full key
/// (`model.mesh.decoder.channels has ...`), else `table` is the key.
fn keyed(table: &str, error: MeshError) -> ModelError {
    let text = error.to_string();
    match text.split_once(' ') {
        Some((key, rest)) if key.starts_with(table) => invalid(key, rest),
        _ => invalid(table, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_where_it_says() {
        let spec: MeshSpec = toml::from_str("").unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.pixel_weight, 0.01);
        assert_eq!(spec.decoder.code_size, 128);
        assert!(spec.freeze_decoder);
    }

    #[test]
    fn errors_name_the_key() {
        let err = toml::from_str::<MeshSpec>("crop = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("crop"), "{err}");
        for (text, key) in [
            ("crop_size = 2", "model.mesh.crop_size"),
            ("max_faces = 0", "model.mesh.max_faces"),
            ("pixel_weight = -1.0", "model.mesh.pixel_weight"),
            ("[pretrain]\nlr = 0.0", "model.mesh.pretrain.lr"),
            ("[decoder]\nchannels = [8]", "model.mesh.decoder"),
        ] {
            let spec: MeshSpec = toml::from_str(text).unwrap();
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
