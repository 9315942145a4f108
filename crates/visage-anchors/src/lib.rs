//! Anchor generation per pyramid level and anchor-to-face assignment.
//!
//! - [`generator`]: [`AnchorGenerator`] lays anchors on each level's grid, in the order
//!   level → y → x → anchor (size-major, then aspect ratio), matching head outputs flattened
//!   from `[B, A·k, H, W]` after a permute to `[B, H, W, A, k]`.
//! - [`assign`]: [`MaxIouAssigner`] labels each anchor positive / negative / ignored by IoU with
//!   the faces, with an ignore band and forced best matches.
//!
//! Boxes are [`visage_boxes::BoxXyxy`]: `[x1, y1, x2, y2]` in input-image pixels.

pub mod assign;
pub mod error;
pub mod generator;

pub use assign::{AnchorMatch, Assignment, MaxIouAssigner};
pub use error::AnchorError;
pub use generator::{AnchorGenerator, Anchors, LevelAnchors, LevelSpec};
