//! The WIDER FACE splits of a data root, and detection + official evaluation over them.
//!
//! ```text
//! <root>/WIDER_{train,val,test}/images/<event>/<image>.jpg
//! <root>/wider_face_split/wider_face_{train,val}_bbx_gt.txt, wider_face_test_filelist.txt
//! <root>/eval_tools/ground_truth/wider_{face,easy,medium,hard}_val.mat
//! ```

use std::path::{Path, PathBuf};

use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use visage_data::synth::{generate, SynthConfig};
use visage_data::{
    load_rgb, read_path_list, read_wider_txt, Dataset, SelectionPolicy, SelectionReport,
};
use visage_eval::{evaluate, write_submission, EvalReport, GroundTruth, Predictions};
use visage_model::FaceModel;

use crate::config::DataSpec;
use crate::error::TrainError;
use crate::infer::{detect_passes, prepare_passes};

/// A WIDER FACE split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `WIDER_train`.
    Train,
    /// `WIDER_val`.
    Val,
    /// `WIDER_test` (no public ground truth).
    Test,
}

impl Split {
    /// `train`, `val` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// `<root>/WIDER_<split>/images`.
pub fn images_dir(root: &Path, split: Split) -> PathBuf {
    root.join(format!("WIDER_{}", split.name())).join("images")
}

/// The annotation file of a split: the `_bbx_gt.txt` of train / val, the file list of test.
pub fn annotation_file(root: &Path, split: Split) -> PathBuf {
    let dir = root.join("wider_face_split");
    match split {
        Split::Test => dir.join("wider_face_test_filelist.txt"),
        other => dir.join(format!("wider_face_{}_bbx_gt.txt", other.name())),
    }
}

/// `<root>/eval_tools/ground_truth`.
pub fn ground_truth_dir(root: &Path) -> PathBuf {
    root.join("eval_tools").join("ground_truth")
}

/// Generates the synthetic set into `data.root` when `[data.synth]` is set and the root has
/// no training annotations yet. A root without data and without `[data.synth]` is an error
/// that says what is missing.
pub fn ensure_dataset(data: &DataSpec) -> Result<(), TrainError> {
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
    eprintln!(
        "generating the synthetic WIDER FACE set in {} ({} train, {} val images)",
        data.root.display(),
        synth.train_images,
        synth.val_images
    );
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
    let policy = SelectionPolicy {
        drop_invalid: data.drop_invalid,
        ..SelectionPolicy::default()
    };
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

/// `(event, image name without extension, relative path)` of every image of a split.
fn split_images(root: &Path, split: Split) -> Result<Vec<(String, String, String)>, TrainError> {
    let file = annotation_file(root, split);
    let paths: Vec<String> = match split {
        Split::Test => read_path_list(&file)?,
        _ => read_wider_txt(&file)?.into_iter().map(|a| a.path).collect(),
    };
    Ok(paths
        .into_iter()
        .map(|path| {
            let (event, file) = path.split_once('/').unwrap_or(("", path.as_str()));
            let name = file.strip_suffix(".jpg").unwrap_or(file).to_string();
            (event.to_string(), name, path.clone())
        })
        .collect())
}

/// Detects every image of `split` and writes the WIDER submission (`<out>/<event>/<name>.txt`).
/// Returns the detections as [`Predictions`] and the number of images.
fn detect_split<B: Backend>(
    model: &FaceModel<B>,
    data: &DataSpec,
    split: Split,
    out: Option<&Path>,
    progress: bool,
    device: &B::Device,
) -> Result<Predictions, TrainError> {
    let images = split_images(&data.root, split)?;
    let dir = images_dir(&data.root, split);
    let bar = if progress {
        let bar = ProgressBar::new(images.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("detect {prefix} [{bar:28}] {pos}/{len} {per_sec}")
                .expect("valid template"),
        );
        bar.set_prefix(split.name());
        bar
    } else {
        ProgressBar::hidden()
    };
    let test = model.test_spec().clone();
    let mut predictions = Predictions::new();
    for (event, name, relative) in images {
        let image = load_rgb(&dir.join(&relative))?;
        let passes = prepare_passes(&image, data.mean, data.std, data.channel_order, &test);
        let detections = to_wider(&detect_passes(model, passes, device));
        if let Some(out) = out {
            write_submission(out, &event, &name, &detections)?;
        }
        predictions.insert(&event, &name, &detections)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(predictions)
}

/// Detects over `split` and writes the submission to `out`; returns the image count.
pub fn detect_and_write_split<B: Backend>(
    model: &FaceModel<B>,
    data: &DataSpec,
    split: Split,
    out: &Path,
    progress: bool,
    device: &B::Device,
) -> Result<usize, TrainError> {
    let predictions = detect_split(model, data, split, Some(out), progress, device)?;
    Ok(predictions.num_images())
}

/// Detects over `split` (optionally writing the submission to `out`) and scores it with the
/// official protocol against `<root>/eval_tools/ground_truth`.
pub fn evaluate_split<B: Backend>(
    model: &FaceModel<B>,
    data: &DataSpec,
    split: Split,
    out: Option<&Path>,
    progress: bool,
    device: &B::Device,
) -> Result<EvalReport, TrainError> {
    let gt = GroundTruth::read_dir(&ground_truth_dir(&data.root))?;
    let predictions = detect_split(model, data, split, out, progress, device)?;
    Ok(evaluate(&gt, &predictions))
}

/// Detections as WIDER FACE submission entries (`x y w h score`, pixels).
pub fn to_wider(detections: &[visage_model::Detection]) -> Vec<visage_eval::Detection> {
    detections
        .iter()
        .map(|d| {
            let [x1, y1, x2, y2] = d.bbox;
            visage_eval::Detection {
                x: x1,
                y: y1,
                w: x2 - x1,
                h: y2 - y1,
                score: d.score,
            }
        })
        .collect()
}
