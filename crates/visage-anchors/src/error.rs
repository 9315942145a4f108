//! Errors of anchor configuration: each names the offending field.

use thiserror::Error;

/// Why an anchor generator or assigner configuration was rejected.
///
/// `field` strings name the configuration field, e.g. `levels[1].sizes[2]` or `positive_iou`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AnchorError {
    /// No pyramid levels were given.
    #[error("anchors: `levels` is empty; at least one pyramid level is needed")]
    NoLevels,
    /// A stride is zero.
    #[error("anchors: `{field}` = 0; strides must be positive")]
    ZeroStride {
        /// The field, `levels[i].stride`.
        field: String,
    },
    /// A stride does not exceed the previous level's.
    #[error(
        "anchors: `{field}` = {stride} must be greater than the previous level's stride {previous}"
    )]
    StridesNotIncreasing {
        /// The field, `levels[i].stride`.
        field: String,
        /// This level's stride.
        stride: u32,
        /// The previous level's stride.
        previous: u32,
    },
    /// A list of sizes or aspect ratios is empty.
    #[error("anchors: `{field}` is empty")]
    Empty {
        /// The field, `levels[i].sizes` or `levels[i].aspect_ratios`.
        field: String,
    },
    /// A size or aspect ratio is not finite and > 0.
    #[error("anchors: `{field}` = {value} must be finite and > 0")]
    NotPositive {
        /// The field, e.g. `levels[i].sizes[j]`.
        field: String,
        /// The rejected value.
        value: f32,
    },
    /// An IoU threshold lies outside `[0, 1]` (or is NaN).
    #[error("assigner: `{field}` = {value} must lie in [0, 1]")]
    IouOutOfRange {
        /// The field: `positive_iou`, `negative_iou` or `force_best_min_iou`.
        field: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// `negative_iou` exceeds `positive_iou`.
    #[error("assigner: `negative_iou` = {negative} must not exceed `positive_iou` = {positive}")]
    NegativeAbovePositive {
        /// `negative_iou`.
        negative: f32,
        /// `positive_iou`.
        positive: f32,
    },
}

impl AnchorError {
    /// The configuration field the error is about (`levels`, `levels[1].sizes[2]`,
    /// `positive_iou`, ...), so that a config layer can name its own key.
    pub fn field(&self) -> String {
        match self {
            AnchorError::NoLevels => "levels".into(),
            AnchorError::ZeroStride { field }
            | AnchorError::StridesNotIncreasing { field, .. }
            | AnchorError::Empty { field }
            | AnchorError::NotPositive { field, .. } => field.clone(),
            AnchorError::IouOutOfRange { field, .. } => (*field).into(),
            AnchorError::NegativeAbovePositive { .. } => "negative_iou".into(),
        }
    }
}
