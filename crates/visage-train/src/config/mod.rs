//! The experiment config: one self-contained TOML file (`configs/*.toml`) holding the data,
//! model, training and test settings. Unknown keys are errors; value errors name the key.
//! Each table validates through the component it configures: `[model]` and `[test]` through
//! visage-model, `[data]` through the loader's own rules (`data.*` keys), `[train]` here.

mod data;
mod devices;
mod train;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_model::{ModelSpec, TestSpec};

pub use data::{DataSpec, SynthSpec};
pub use devices::{check_devices, DeviceName};
pub use train::{NonFinitePolicy, OptimizerKind, TrainSpec};

use crate::error::TrainError;

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the experiment (used in logs).
    pub name: String,
    /// Where checkpoints, metrics and the resolved config go.
    pub run_dir: PathBuf,
    /// `[data]`.
    pub data: DataSpec,
    /// `[model]`: `architecture = "retinanet"` (the default), `"retinaface"` or `"srn"`, and
    /// that architecture's keys.
    pub model: ModelSpec,
    /// `[train]`.
    pub train: TrainSpec,
    /// `[test]`.
    #[serde(default)]
    pub test: TestSpec,
}

/// An error naming `key`.
pub(crate) fn invalid(key: &str, message: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig {
        key: key.to_string(),
        message: message.into(),
    }
}

impl ExperimentConfig {
    /// Reads, parses and validates a config file. Errors name the file and the key (with its
    /// line for parse errors).
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| TrainError::ConfigParse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| match e {
            TrainError::InvalidConfig { key, message } => TrainError::InvalidConfig {
                key,
                message: format!("{message} (in {})", path.display()),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Serialises the fully resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config is always representable in TOML")
    }

    /// Checks value ranges and cross-field rules; errors name the key.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.test.validate()?;
        self.data.validate(&self.train)?;
        self.train.validate()
    }
}

#[cfg(test)]
mod tests;
