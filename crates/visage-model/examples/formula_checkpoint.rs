//! Writes a Pytorch_Retinaface MobileNet-0.25 checkpoint (`mobilenet0.25_Final.pth`'s keys,
//! safetensors) filled with the parity weight formula, for checks that need a RetinaFace
//! checkpoint where the real one cannot be downloaded (`tools/export/compare_ort.py`).
//!
//! ```text
//! cargo run -p visage-model --example formula_checkpoint -- /tmp/mobilenet0.25_formula.safetensors
//! ```

use std::collections::HashMap;

use burn::backend::Flex;
use visage_backbone::weights::{formula_state_dict, load_state_dict, save_safetensors};
use visage_backbone::{BackboneConfig, MobileNetV1Config};
use visage_model::{RetinaFaceNet, RetinaFaceNetConfig, RETINAFACE_MNET};

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: formula_checkpoint OUT.safetensors");
    let device = Default::default();
    let net: RetinaFaceNet<Flex> = RetinaFaceNetConfig {
        backbone: BackboneConfig::MobileNet(MobileNetV1Config::new()),
        out_channels: 64,
        anchors_per_location: 2,
        frozen_bn: false,
    }
    .init(&device);
    let dict = formula_state_dict::<Flex, _>(&net, &RETINAFACE_MNET);
    let net = load_state_dict::<Flex, _>(net, &dict, &RETINAFACE_MNET).expect("formula weights");
    save_safetensors::<Flex, _>(
        &net,
        &RETINAFACE_MNET,
        std::path::Path::new(&out),
        HashMap::new(),
    )
    .expect("written");
    println!("wrote {out}");
}
