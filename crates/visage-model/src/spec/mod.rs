//! `[model]`: which architecture, and its description. The table's `architecture` key picks
//! the family (`"retinanet"`, the default when the key is absent, `"retinaface"` or `"srn"`);
//! the rest of the table is that family's spec, read with unknown keys rejected.

use std::path::Path;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ModelError;
use crate::retinaface_spec::RetinaFaceSpec;
use crate::spec::{BackboneSpec, DetectorSpec};
use crate::srn_spec::SrnSpec;

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

/// `[model]` of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `architecture = "retinanet"` or no `architecture` key.
    RetinaNet(DetectorSpec),
    /// `architecture = "retinaface"`.
    RetinaFace(RetinaFaceSpec),
    /// `architecture = "srn"`.
    Srn(SrnSpec),
}

impl From<DetectorSpec> for ModelSpec {
    fn from(spec: DetectorSpec) -> Self {
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
    /// Which family this is.
    pub fn architecture(&self) -> Architecture {
        match self {
            ModelSpec::RetinaNet(_) => Architecture::RetinaNet,
            ModelSpec::RetinaFace(_) => Architecture::RetinaFace,
            ModelSpec::Srn(_) => Architecture::Srn,
        }
    }

    /// Checks every rule serde cannot; errors name the `model.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            ModelSpec::RetinaNet(spec) => spec.validate(),
            ModelSpec::RetinaFace(spec) => spec.validate(),
            ModelSpec::Srn(spec) => spec.validate(),
        }
    }

    /// `[model.backbone.*]`.
    pub fn backbone(&self) -> &BackboneSpec {
        match self {
            ModelSpec::RetinaNet(spec) => &spec.backbone,
            ModelSpec::RetinaFace(spec) => &spec.backbone,
            ModelSpec::Srn(spec) => &spec.backbone,
        }
    }

    /// The initial backbone weights file of a new run, if any.
    pub fn backbone_weights(&self) -> Option<&Path> {
        self.backbone().weights()
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
            Architecture::RetinaNet => DetectorSpec::deserialize(rest).map(ModelSpec::RetinaNet),
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
