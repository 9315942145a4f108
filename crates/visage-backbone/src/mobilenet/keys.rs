//! Mapping between Pytorch_Retinaface's MobileNetV1 state-dict keys and this module's
//! parameter paths (as burn-store builds them, enum variants skipped).
//!
//! | torch key                 | parameter path                     |
//! |---------------------------|------------------------------------|
//! | `stage1.0.0.weight`       | `stage1.0.conv.weight`             |
//! | `stage1.0.1.running_var`  | `stage1.0.bn.running_var`          |
//! | `stageS.I.0.weight`       | `stageS.I.depthwise.weight`        |
//! | `stageS.I.1.<p>`          | `stageS.I.depthwise_bn.<p>`        |
//! | `stageS.I.3.weight`       | `stageS.I.pointwise.weight`        |
//! | `stageS.I.4.<p>`          | `stageS.I.pointwise_bn.<p>`        |
//!
//! (`S.I` ≠ `1.0` in the last four rows: only the first block of `stage1` is a `conv_bn`.)
//! Any other key or path (`fc.weight`, a `module.` or `body.` prefix, an index without
//! parameters) is returned unchanged; callers strip or add such prefixes themselves.

use crate::weights::{is_batch_norm_counter, TorchLayout};

/// The ImageNet classifier (`fc.*`) and BatchNorm step counters, which the backbone does not
/// hold.
pub fn is_ignored(key: &str) -> bool {
    key.starts_with("fc.") || is_batch_norm_counter(key)
}

/// The key layout of Pytorch_Retinaface's `MobileNetV1` state dict (its ImageNet checkpoint
/// `mobilenetV1X0.25_pretrain.tar` after the `module.` prefix, or a RetinaFace checkpoint's
/// `body.` sub-dict).
pub const RETINAFACE_MOBILENET: TorchLayout = TorchLayout {
    name: "Pytorch_Retinaface MobileNetV1",
    key_to_path: torch_key_to_path,
    path_to_key: path_to_torch_key,
    is_ignored,
};

/// `(torch index, field name)` of the layers with parameters in a `conv_bn` block.
const CONV_BN: [(&str, &str); 2] = [("0", "conv"), ("1", "bn")];

/// `(torch index, field name)` of the layers with parameters in a `conv_dw` block.
const CONV_DW: [(&str, &str); 4] = [
    ("0", "depthwise"),
    ("1", "depthwise_bn"),
    ("3", "pointwise"),
    ("4", "pointwise_bn"),
];

/// `(torch index, field name)` pairs of one kind of block.
type LayerTable = &'static [(&'static str, &'static str)];

/// A key or path of the form `stageS.I.<layer>.<rest>`.
struct BlockKey<'a> {
    /// The layers of the block's kind (`conv_bn` for `stage1.0`, `conv_dw` otherwise).
    table: LayerTable,
    /// `stageS.I.`, dot included.
    prefix: &'a str,
    /// The torch index or the field name of the layer.
    layer: &'a str,
    /// Everything after `<layer>.` (`weight`, `running_mean`, ...).
    rest: &'a str,
}

/// Splits `stageS.I.<layer>.<rest>`; `None` if `key` does not have that form.
fn split(key: &str) -> Option<BlockKey<'_>> {
    let mut parts = key.splitn(4, '.');
    let stage = parts.next()?;
    let block = parts.next()?;
    let layer = parts.next()?;
    let rest = parts.next()?;
    if !matches!(stage, "stage1" | "stage2" | "stage3")
        || block.is_empty()
        || !block.bytes().all(|b| b.is_ascii_digit())
        || rest.is_empty()
    {
        return None;
    }
    let is_conv_bn = stage == "stage1" && block.parse::<usize>().ok()? == 0;
    Some(BlockKey {
        table: if is_conv_bn { &CONV_BN } else { &CONV_DW },
        prefix: &key[..stage.len() + 1 + block.len() + 1],
        layer,
        rest,
    })
}

/// Replaces the layer segment of `key`: torch index → field name if `to_path`, else back.
fn remap(key: &str, to_path: bool) -> String {
    let Some(BlockKey {
        table,
        prefix,
        layer,
        rest,
    }) = split(key)
    else {
        return key.to_string();
    };
    let mapped = table.iter().find_map(|&(index, field)| {
        let (from, to) = if to_path {
            (index, field)
        } else {
            (field, index)
        };
        (from == layer).then_some(to)
    });
    match mapped {
        Some(to) => format!("{prefix}{to}.{rest}"),
        None => key.to_string(),
    }
}

/// Maps a Pytorch_Retinaface MobileNetV1 state-dict key to this module's parameter path:
/// `stage1.0.0.weight` → `stage1.0.conv.weight`, `stage2.3.4.bias` →
/// `stage2.3.pointwise_bn.bias`. Any other key is returned unchanged.
pub fn torch_key_to_path(key: &str) -> String {
    remap(key, true)
}

/// The inverse of [`torch_key_to_path`]: `stage1.1.depthwise_bn.running_mean` →
/// `stage1.1.1.running_mean`. Any other path is returned unchanged.
pub fn path_to_torch_key(path: &str) -> String {
    remap(path, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_conv_bn_and_conv_dw_keys() {
        for (key, path) in [
            ("stage1.0.0.weight", "stage1.0.conv.weight"),
            ("stage1.0.1.running_var", "stage1.0.bn.running_var"),
            (
                "stage1.0.1.num_batches_tracked",
                "stage1.0.bn.num_batches_tracked",
            ),
            ("stage1.1.0.weight", "stage1.1.depthwise.weight"),
            (
                "stage1.1.1.running_mean",
                "stage1.1.depthwise_bn.running_mean",
            ),
            ("stage1.1.3.weight", "stage1.1.pointwise.weight"),
            ("stage2.0.1.weight", "stage2.0.depthwise_bn.weight"),
            ("stage2.3.3.weight", "stage2.3.pointwise.weight"),
            ("stage3.1.4.bias", "stage3.1.pointwise_bn.bias"),
            ("stage2.10.4.bias", "stage2.10.pointwise_bn.bias"),
        ] {
            assert_eq!(torch_key_to_path(key), path, "{key}");
            assert_eq!(path_to_torch_key(path), key, "{path}");
        }
    }

    #[test]
    fn leaves_other_keys_unchanged() {
        for key in [
            "fc.weight",
            "fc.bias",
            "stage1.0.2.weight",
            "stage1.1.2.weight",
            "stage1.0.3.weight",
            "stage4.0.0.weight",
            "stage1.x.0.weight",
            "stage1..0.weight",
            "stage1.0.0",
            "stage1.0.0.",
            "module.stage1.0.0.weight",
            "body.stage2.0.3.weight",
            "",
        ] {
            assert_eq!(torch_key_to_path(key), key);
        }
        for path in [
            "stage1.0.depthwise.weight",
            "stage1.1.conv.weight",
            "stage2.0.bn.weight",
            "stage3.1.4.bias",
            "fc.weight",
        ] {
            assert_eq!(path_to_torch_key(path), path);
        }
    }
}
