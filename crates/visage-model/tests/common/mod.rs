//! Reading the experiment files of `configs/` in the config tests: the top-level keys are
//! checked against visage-train's `ExperimentConfig`, `[model]` parses (unknown keys rejected)
//! and validates, `[test]` parses and validates.

use std::path::PathBuf;

use serde::Deserialize;
use visage_model::{ModelSpec, TestSpec};

/// The experiment file's top-level keys (visage-train's `ExperimentConfig`).
const TOP_LEVEL: [&str; 6] = ["name", "run_dir", "data", "model", "train", "test"];

/// `configs/<name>` as a table, its `[model]` and its `[test]`.
pub fn read_config(name: &str) -> (toml::Table, ModelSpec, TestSpec) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    for key in table.keys() {
        assert!(
            TOP_LEVEL.contains(&key.as_str()),
            "{name}: unexpected key `{key}`"
        );
    }
    for key in ["name", "run_dir", "data", "model", "train"] {
        assert!(table.contains_key(key), "{name}: missing `{key}`");
    }
    let model = ModelSpec::deserialize(table["model"].clone())
        .unwrap_or_else(|e| panic!("{name} [model]: {e}"));
    model.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    let test = TestSpec::deserialize(table["test"].clone())
        .unwrap_or_else(|e| panic!("{name} [test]: {e}"));
    test.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    (table, model, test)
}
