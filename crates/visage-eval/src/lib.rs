//! The official WIDER FACE evaluation (Easy / Medium / Hard AP exactly as the MATLAB
//! `eval_tools`), a MATLAB v5 `.mat` reader and writer, submission files, and precision-recall
//! plots like the toolbox's `wider_plot` ([`plot_pr_curves`]).
//!
//! ```no_run
//! # fn main() -> Result<(), visage_eval::EvalError> {
//! use std::path::Path;
//! let gt = visage_eval::GroundTruth::read_dir(Path::new("eval_tools/ground_truth"))?;
//! let sub = visage_eval::read_submission(Path::new("pred"), &gt)?;
//! let report = visage_eval::evaluate(&gt, &sub.predictions);
//! println!("{report}\n{}", report.to_json());
//! # Ok(()) }
//! ```

mod error;
mod ground_truth;
mod ground_truth_read;
mod mat;
mod mat_value;
mod mat_write;
pub mod plot;
mod protocol;
mod submission;
mod submission_layout;

pub use error::EvalError;
pub use ground_truth::{EventGt, FaceAttributes, GroundTruth, ImageGt, Setting};
pub use mat::{parse_mat, read_mat};
pub use mat_value::{MatValue, NumericClass};
pub use mat_write::write_mat;
pub use plot::{plot_pr_curves, PlotError};
pub use protocol::{
    evaluate, overlap_plus1, voc_ap, EvalReport, ReportFile, ReportParseError, SettingResult,
    IOU_THRESHOLD, NUM_THRESHOLDS,
};
pub use submission::{
    parse_submission, read_submission, write_submission, write_submission_all, Detection,
    Predictions, Submission,
};
