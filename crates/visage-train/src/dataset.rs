//! The training set of a run: generating the synthetic set when `[data.synth]` asks for it,
//! and opening the training annotations (`_bbx_gt.txt` or a RetinaFace `label.txt`) with the
//! selection policy applied. The WIDER FACE layout itself is `visage_data::layout`.

use std::path::PathBuf;

use visage_data::layout::{annotation_file, images_dir, Split};
use visage_data::synth::{generate, SynthConfig};
use visage_data::{Dataset, SelectionReport};

use crate::config::{DataSpec, SynthSpec};
use crate::error::TrainError;

/// Generates the synthetic set into `data.root` when `[data.synth]` is set and the root has
/// no training annotations yet, calling `before` first (generation takes a while). A root
/// without data and without `[data.synth]` is an error that says what is missing.
pub fn ensure_dataset(data: &DataSpec, before: impl FnOnce(&SynthSpec)) -> Result<(), TrainError> {
    let train_txt = train_annotation_file(data);
    if train_txt.is_file() {
        return Ok(());
    }
    let Some(synth) = &data.synth else {
        return Err(TrainError::InvalidConfig {
            key: "data.root".into(),
            message: format!(
                "{} does not exist; point data.root at a WIDER FACE copy or add [data.synth]",
                train_txt.display()
            ),
        });
    };
    before(synth);
    let config = SynthConfig {
        seed: synth.seed,
        train_images: synth.train_images,
        val_images: synth.val_images,
        ..SynthConfig::default()
    };
    generate(&data.root, &config)?;
    Ok(())
}

/// The training annotations: `data.train_labels` (a RetinaFace `label.txt`) if set, else the
/// train split's `_bbx_gt.txt`.
pub fn train_annotation_file(data: &DataSpec) -> PathBuf {
    match &data.train_labels {
        Some(labels) => data.root.join(labels),
        None => annotation_file(&data.root, Split::Train),
    }
}

/// The training set of `data`, with the annotation policy applied.
pub fn train_dataset(data: &DataSpec) -> Result<(Dataset, SelectionReport), TrainError> {
    let policy = data.selection_policy();
    let images = match &data.train_images {
        Some(dir) => data.root.join(dir),
        None => images_dir(&data.root, Split::Train),
    };
    let annotations = train_annotation_file(data);
    Ok(match data.train_labels {
        Some(_) => Dataset::open_label(&annotations, &images, &policy)?,
        None => Dataset::open_wider(&annotations, &images, &policy)?,
    })
}
