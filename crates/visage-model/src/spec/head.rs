//! What the heads of the anchor families share in their tables: the normalisation of their
//! convs (`norm = "none" | { group = G }`) and how the heads crate's fields are spelled in a
//! head's TOML table.

use serde::{Deserialize, Serialize};
use visage_heads::HeadNorm;

use super::keys::KeyMap;

/// Normalisation in the head subnets.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadNormSpec {
    /// Plain conv + ReLU (RetinaNet).
    #[default]
    None,
    /// GroupNorm with this many groups.
    Group(usize),
}

impl HeadNormSpec {
    /// The heads crate's normalisation.
    pub fn norm(self) -> HeadNorm {
        match self {
            HeadNormSpec::None => HeadNorm::None,
            HeadNormSpec::Group(groups) => HeadNorm::GroupNorm { groups },
        }
    }
}

/// The heads crate's fields as a head table spells them (`[model.head]`,
/// `[model.attention]`): the group count is `norm.group`; `channels` and `prior_prob` keep
/// their names. (A head's `in_channels` are the neck's, checked before the head.)
pub(crate) const HEAD_KEYS: KeyMap<'static> = &[("norm.groups", "norm.group")];
