//! Naming the TOML key of a bad value. Components (backbones, necks, heads, anchors, the box
//! coder) validate their own configs and name their own fields; the spec layer only maps a
//! component field to the key the user wrote (`model.neck.ffp` + `upsample_kernel`) and checks
//! the rules no single component owns (levels against the backbone's strides, loss weights).

use std::fmt::Display;

use visage_anchors::AnchorError;
use visage_backbone::BackboneError;
use visage_boxes::BoxError;
use visage_heads::HeadError;
use visage_neck::NeckError;

use crate::error::ModelError;

/// An error naming `key`.
pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        key: key.to_string(),
        message: message.into(),
    }
}

/// `value` must be finite and > 0.
pub(crate) fn check_positive(key: &str, value: f32) -> Result<(), ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

/// `value` must lie in `[0, 1]`.
pub(crate) fn check_unit(key: &str, value: f32) -> Result<(), ModelError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("must be in [0, 1], got {value}")))
    }
}

/// `value` must be finite and ≥ 0 (loss weights and parameters).
pub(crate) fn check_non_negative(key: &str, value: f32) -> Result<(), ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be a finite number >= 0, got {value}"),
        ))
    }
}

/// A component's config error: the component field it names and what is wrong.
pub(crate) trait ComponentError: Display {
    /// The component's field, e.g. `norm.groups` or `levels[0].sizes[1]`.
    fn component_field(&self) -> String;
}

/// The components whose errors name their field as a string slice.
macro_rules! static_field_errors {
    ($($error:ty),*) => {$(
        impl ComponentError for $error {
            fn component_field(&self) -> String {
                self.field().into()
            }
        }
    )*};
}

static_field_errors!(HeadError, NeckError, BackboneError, BoxError);

impl ComponentError for AnchorError {
    fn component_field(&self) -> String {
        self.field()
    }
}

/// How a component's fields are spelled in one TOML table: `(pattern, key)` pairs, the first
/// whose pattern occurs in the component's field wins (so `levels[0].sizes[1]` matches
/// `sizes`); a field no pair matches keeps its own name. E.g. `[("norm.groups",
/// "norm.group"), ("out_channels", "channels")]`.
pub(crate) type KeyMap<'a> = &'a [(&'a str, &'a str)];

/// `error` of a component configured by the TOML table `table`, reported at the key its
/// field maps to (`table.key`), with the component's own message.
pub(crate) fn at_key(table: &str, keys: KeyMap, error: impl ComponentError) -> ModelError {
    let field = error.component_field();
    let key = keys
        .iter()
        .find(|(pattern, _)| field.contains(pattern))
        .map_or(field.as_str(), |(_, key)| key);
    invalid(&format!("{table}.{key}"), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_fields_map_to_the_table_s_keys() {
        let keys: KeyMap = &[("norm.groups", "norm.group"), ("in_channels", "channels")];
        let err = at_key(
            "model.head",
            keys,
            HeadError::GroupsDoNotDivide {
                groups: 3,
                channels: 16,
            },
        );
        let text = err.to_string();
        assert!(text.contains("`model.head.norm.group`"), "{text}");
        assert!(text.contains("does not divide"), "{text}");
        let err = at_key("model.head", keys, HeadError::InvalidPrior(1.5));
        assert!(err.to_string().contains("`model.head.prior_prob`"));
        // A field with an index maps by its prefix.
        let err = at_key(
            "model.neck",
            keys,
            NeckError::ZeroChannels("in_channels[1]".into()),
        );
        assert!(err.to_string().contains("`model.neck.channels`"));
    }
}
