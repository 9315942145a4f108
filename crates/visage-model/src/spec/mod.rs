//! The spec layer: what a config's `[model]` and `[test]` tables say, as plain serde structs
//! that reject unknown keys. `[model]`'s `architecture` key picks the family
//! (`"retinanet"`, the default when the key is absent, `"retinaface"` or `"srn"`); the rest of
//! the table is that family's spec (`crate::retinanet::RetinaNetSpec`, ...). This module holds
//! the parts every family shares: the backbone ([`backbone`]), anchors, matching and coding
//! ([`anchors`]), head normalisation ([`head`]), the focal / box loss settings ([`loss`]),
//! `[test]` ([`test_time`]), the defaults (`defaults`) and the mapping of component errors
//! to TOML keys (`keys`).

pub mod anchors;
pub mod backbone;
pub(crate) mod defaults;
pub mod head;
pub(crate) mod keys;
pub mod loss;
pub mod test_time;

use std::path::Path;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use visage_kernels::{KernelAutodiffBackend, KernelBackend};

pub use anchors::{AnchorSpec, AssignSpec, CoderSpec};
pub use backbone::{BackboneSpec, MobileNetSpec, ResNetSpec};
pub use head::HeadNormSpec;
pub use loss::{BoxLossSpec, LossSpec};
pub use test_time::{TestSpec, TtaSpec};

use crate::error::ModelError;
use crate::family::{FamilySpec, WithFamily, WithTrainableFamily};
use crate::retinaface::{RetinaFace, RetinaFaceSpec};
use crate::retinanet::{RetinaNet, RetinaNetSpec};
use crate::srn::{Srn, SrnSpec};

/// The key that selects the architecture.
const ARCHITECTURE: &str = "architecture";

/// The architecture families a `[model]` table can describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// RetinaNet-style: backbone + FPN + shared class / box subnets (FAN and DF²S² build on it).
    #[serde(rename = "retinanet")]
    RetinaNet,
    /// RetinaFace as Pytorch_Retinaface: FPN + SSH + class / box / landmark heads.
    #[serde(rename = "retinaface")]
    RetinaFace,
    /// SRN / AInnoFace: two feature sets, a head with RFE, selective two-step
    /// classification and regression.
    #[serde(rename = "srn")]
    Srn,
}

impl Architecture {
    /// The value of the `architecture` key.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::RetinaNet => "retinanet",
            Architecture::RetinaFace => "retinaface",
            Architecture::Srn => "srn",
        }
    }
}

/// `[model]` of an experiment: one variant per family. A new family is a folder with its
/// spec and its [`DetectorFamily`](crate::DetectorFamily) implementation, plus a variant here
/// (the matches below then name it).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `architecture = "retinanet"` or no `architecture` key.
    RetinaNet(RetinaNetSpec),
    /// `architecture = "retinaface"`.
    RetinaFace(RetinaFaceSpec),
    /// `architecture = "srn"`.
    Srn(SrnSpec),
}

impl From<RetinaNetSpec> for ModelSpec {
    fn from(spec: RetinaNetSpec) -> Self {
        ModelSpec::RetinaNet(spec)
    }
}

impl From<RetinaFaceSpec> for ModelSpec {
    fn from(spec: RetinaFaceSpec) -> Self {
        ModelSpec::RetinaFace(spec)
    }
}

impl From<SrnSpec> for ModelSpec {
    fn from(spec: SrnSpec) -> Self {
        ModelSpec::Srn(spec)
    }
}

impl ModelSpec {
    /// Whether the model has RetinaFace's dense 3D branch (`[model.mesh]`).
    pub fn has_mesh_branch(&self) -> bool {
        matches!(self, ModelSpec::RetinaFace(spec) if spec.mesh.is_some())
    }

    /// The family's spec behind the variant.
    fn family(&self) -> &dyn FamilySpec {
        match self {
            ModelSpec::RetinaNet(spec) => spec,
            ModelSpec::RetinaFace(spec) => spec,
            ModelSpec::Srn(spec) => spec,
        }
    }

    /// Which family this is.
    pub fn architecture(&self) -> Architecture {
        self.family().architecture()
    }

    /// Checks every rule serde cannot; errors name the `model.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.family().validate()
    }

    /// `[model.backbone.*]`.
    pub fn backbone(&self) -> &BackboneSpec {
        self.family().backbone()
    }

    /// The initial backbone weights file of a new run, if any.
    pub fn backbone_weights(&self) -> Option<&Path> {
        self.backbone().weights()
    }

    /// Runs `task` with the type of the family this spec names (inference: any backend).
    pub fn with_family<B: KernelBackend, T: WithFamily<B>>(&self, task: T) -> T::Output {
        match self {
            ModelSpec::RetinaNet(spec) => task.run::<RetinaNet<B>>(spec),
            ModelSpec::RetinaFace(spec) => task.run::<RetinaFace<B>>(spec),
            ModelSpec::Srn(spec) => task.run::<Srn<B>>(spec),
        }
    }

    /// Runs `task` with the type of the family this spec names, on an autodiff backend
    /// (training, where the model also validates on the inner backend).
    pub fn with_trainable_family<B: KernelAutodiffBackend, T: WithTrainableFamily<B>>(
        &self,
        task: T,
    ) -> T::Output {
        match self {
            ModelSpec::RetinaNet(spec) => task.run::<RetinaNet<B>>(spec),
            ModelSpec::RetinaFace(spec) => task.run::<RetinaFace<B>>(spec),
            ModelSpec::Srn(spec) => task.run::<Srn<B>>(spec),
        }
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let architecture = match table.remove(ARCHITECTURE) {
            None => Architecture::RetinaNet,
            Some(value) => Architecture::deserialize(value)
                .map_err(|e| D::Error::custom(format!("model.{ARCHITECTURE}: {}", tidy(&e))))?,
        };
        let rest = toml::Value::Table(table);
        let spec = match architecture {
            Architecture::RetinaNet => RetinaNetSpec::deserialize(rest).map(ModelSpec::RetinaNet),
            Architecture::RetinaFace => {
                RetinaFaceSpec::deserialize(rest).map(ModelSpec::RetinaFace)
            }
            Architecture::Srn => SrnSpec::deserialize(rest).map(ModelSpec::Srn),
        };
        spec.map_err(|e| {
            D::Error::custom(format!(
                "[model] ({} = \"{}\"): {}",
                ARCHITECTURE,
                architecture.name(),
                tidy(&e)
            ))
        })
    }
}

/// A TOML value error on one line, its key path written as `model.<path>`.
fn tidy(error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match message.rsplit_once(" in `") {
        Some((what, key)) => format!("{what} (key `model.{}`)", key.trim_end_matches('`')),
        None => message,
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match self {
            ModelSpec::RetinaNet(spec) => toml::Table::try_from(spec),
            ModelSpec::RetinaFace(spec) => toml::Table::try_from(spec),
            ModelSpec::Srn(spec) => toml::Table::try_from(spec),
        };
        let mut table = value.map_err(S::Error::custom)?;
        table.insert(
            ARCHITECTURE.to_string(),
            toml::Value::String(self.architecture().name().to_string()),
        );
        table.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        model: ModelSpec,
    }

    const RETINANET: &str = r#"
        [model.backbone.resnet]
        depth = 18
        [model.neck.fpn]
        channels = 16
        [model.head]
        channels = 16
        [model.anchors]
        base_factor = 2.0
        scales = [1.0]
        ratios = [1.0]
        [model.assign]
        positive_iou = 0.5
        negative_iou = 0.4
    "#;

    const RETINAFACE: &str = r#"
        [model]
        architecture = "retinaface"
        out_channels = 64
        min_sizes = [[16, 32], [64, 128], [256, 512]]
        [model.backbone.mobilenet]
        width_multiplier = 0.25
    "#;

    const SRN: &str = r#"
        [model]
        architecture = "srn"
        [model.backbone.resnet]
        depth = 50
        [model.neck]
        channels = 256
        [model.head]
        channels = 256
        [model.anchors]
        base_factor = 2.0
        scales = [1.0, 1.4142]
        ratios = [1.25]
        [model.assign]
        positive_iou = 0.5
        negative_iou = 0.4
        [model.stc]
        levels = 3
        [model.str]
        levels = 3
    "#;

    #[test]
    fn the_architecture_key_picks_the_family_and_defaults_to_retinanet() {
        let c: Config = toml::from_str(RETINANET).unwrap();
        assert_eq!(c.model.architecture(), Architecture::RetinaNet);
        let explicit = format!("[model]\narchitecture = \"retinanet\"\n{RETINANET}");
        assert_eq!(toml::from_str::<Config>(&explicit).unwrap(), c);
        let c: Config = toml::from_str(RETINAFACE).unwrap();
        assert_eq!(c.model.architecture(), Architecture::RetinaFace);
        c.model.validate().unwrap();
        let c: Config = toml::from_str(SRN).unwrap();
        assert_eq!(c.model.architecture(), Architecture::Srn);
        c.model.validate().unwrap();
    }

    #[test]
    fn both_families_round_trip_with_the_key_written() {
        for text in [RETINANET, RETINAFACE, SRN] {
            let c: Config = toml::from_str(text).unwrap();
            let written = toml::to_string_pretty(&c).unwrap();
            assert!(written.contains("architecture = "), "{written}");
            assert_eq!(toml::from_str::<Config>(&written).unwrap(), c);
        }
    }

    #[test]
    fn errors_name_the_key() {
        let err = toml::from_str::<Config>(&RETINAFACE.replace("min_sizes", "min_size"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("min_size") && err.contains("retinaface"),
            "{err}"
        );
        let err = toml::from_str::<Config>(&RETINAFACE.replace("\"retinaface\"", "\"yolo\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.architecture") && err.contains("yolo"),
            "{err}"
        );
        // RetinaNet keys are unknown to RetinaFace (and the reverse).
        let err = toml::from_str::<Config>(&format!("{RETINAFACE}\n[model.head]\nchannels = 16"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("head"), "{err}");
        let err = toml::from_str::<Config>(&RETINAFACE.replace(
            "width_multiplier = 0.25",
            "width_multiplier = 0.25\nwidth = 1",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("width"), "{err}");
    }
}
