//! Errors of inference over files and data sets.

use thiserror::Error;

/// What can go wrong detecting over a data set.
#[derive(Debug, Error)]
pub enum InferError {
    /// An image or an annotation list could not be read (the error names the file).
    #[error(transparent)]
    Data(#[from] visage_data::DataError),
    /// The ground truth could not be read, or a submission file written.
    #[error(transparent)]
    Eval(#[from] visage_eval::EvalError),
    /// The model or its test settings are invalid.
    #[error(transparent)]
    Model(#[from] visage_model::ModelError),
}
