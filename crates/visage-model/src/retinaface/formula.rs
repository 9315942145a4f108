//! A Pytorch_Retinaface MobileNet-0.25 checkpoint filled with the parity weight formula
//! (`visage_backbone::weights::formula`): what tests and tools use where the real
//! `mobilenet0.25_Final.pth` cannot be downloaded.

use std::collections::HashMap;
use std::path::Path;

use burn::backend::Flex;
use visage_backbone::weights::{
    formula_state_dict, load_state_dict, save_safetensors, TorchLayout, WeightsError,
};
use visage_backbone::{BackboneConfig, MobileNetV1Config};

use super::{RetinaFaceNet, RetinaFaceNetConfig, RETINAFACE_MNET};

/// Writes to `path` (safetensors) the MobileNet-0.25 RetinaFace of
/// `configs/retinaface-mnet.toml` with the formula weights, its keys in `layout`
/// (Pytorch_Retinaface's own, or with nn.DataParallel's `module.` prefix).
///
/// # Errors
/// [`WeightsError`] naming the file if it cannot be written.
pub fn write_formula_mnet_checkpoint(
    path: &Path,
    layout: &TorchLayout,
) -> Result<(), WeightsError> {
    let device = Default::default();
    let net: RetinaFaceNet<Flex> = RetinaFaceNetConfig {
        backbone: BackboneConfig::MobileNet(MobileNetV1Config::new()),
        out_channels: 64,
        anchors_per_location: 2,
        frozen_bn: false,
    }
    .init(&device);
    let dict = formula_state_dict::<Flex, _>(&net, &RETINAFACE_MNET);
    let net = load_state_dict::<Flex, _>(net, &dict, &RETINAFACE_MNET)?;
    save_safetensors::<Flex, _>(&net, layout, path, HashMap::new())
}
