//! torchvision ResNet state-dict keys ↔ [`ResNet`](super::ResNet) parameter paths.
//!
//! The only renamed segment is the projection shortcut: torchvision's `nn.Sequential`
//! `downsample.0` (conv) / `downsample.1` (batch norm) are the fields `downsample.conv` /
//! `downsample.bn`. The classifier `fc.*` and BatchNorm's `num_batches_tracked` are ignored.

use crate::weights::{is_batch_norm_counter, TorchLayout};

const TORCH_CONV: &str = ".downsample.0.";
const TORCH_BN: &str = ".downsample.1.";
const OUR_CONV: &str = ".downsample.conv.";
const OUR_BN: &str = ".downsample.bn.";

/// torchvision key → parameter path (`layer2.0.downsample.1.weight` →
/// `layer2.0.downsample.bn.weight`); other keys unchanged.
pub fn torch_key_to_path(key: &str) -> String {
    key.replacen(TORCH_CONV, OUR_CONV, 1)
        .replacen(TORCH_BN, OUR_BN, 1)
}

/// Parameter path → torchvision key; the inverse of [`torch_key_to_path`].
pub fn path_to_torch_key(path: &str) -> String {
    path.replacen(OUR_CONV, TORCH_CONV, 1)
        .replacen(OUR_BN, TORCH_BN, 1)
}

/// The ImageNet classifier and BatchNorm step counters, which the backbone does not hold.
pub fn is_ignored(key: &str) -> bool {
    key.starts_with("fc.") || is_batch_norm_counter(key)
}

/// The key layout of torchvision's `resnet18` … `resnet152` state dicts.
pub const TORCHVISION_RESNET: TorchLayout = TorchLayout {
    name: "torchvision ResNet",
    key_to_path: torch_key_to_path,
    path_to_key: path_to_torch_key,
    is_ignored,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shortcut_keys_both_ways() {
        for (key, path) in [
            (
                "layer2.0.downsample.0.weight",
                "layer2.0.downsample.conv.weight",
            ),
            (
                "layer4.0.downsample.1.running_var",
                "layer4.0.downsample.bn.running_var",
            ),
            ("layer3.5.bn2.weight", "layer3.5.bn2.weight"),
            ("conv1.weight", "conv1.weight"),
        ] {
            assert_eq!(torch_key_to_path(key), path);
            assert_eq!(path_to_torch_key(path), key);
        }
        assert!(is_ignored("fc.weight") && is_ignored("layer1.0.bn1.num_batches_tracked"));
        assert!(!is_ignored("layer1.0.bn1.weight"));
    }
}
