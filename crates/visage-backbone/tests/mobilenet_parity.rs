//! MobileNetV1 ×0.25 parity with a module of Pytorch_Retinaface's exact layout
//! (`tools/parity/backbone_fixtures.py`, float64 reference, formula weights).
//! Tolerance: `max |Δ| / max |ref| ≤ 1e-4` per level, in f32.

mod common;

use burn::backend::Flex;
use common::{assert_levels_match, fixture, TOLERANCE};
use visage_backbone::weights::{formula_state_dict, load_state_dict};
use visage_backbone::{MobileNetV1, MobileNetV1Config, RETINAFACE_MOBILENET};

type B = Flex;

#[test]
fn mobilenet025_matches_pytorch_retinaface() {
    let device = Default::default();
    for frozen_bn in [false, true] {
        let net: MobileNetV1<B> = MobileNetV1Config::new()
            .with_frozen_bn(frozen_bn)
            .init(&device);
        let dict = formula_state_dict::<B, _>(&net, &RETINAFACE_MOBILENET);
        // 27 convolutions + 27 batch norms × 4 tensors (num_batches_tracked is not a parameter).
        assert_eq!(dict.len(), 27 + 27 * 4);
        assert!(dict.shape("stage1.0.0.weight").is_some());
        assert!(dict.shape("stage3.1.4.running_var").is_some());
        let net = load_state_dict::<B, _>(net, &dict, &RETINAFACE_MOBILENET).unwrap();
        let fx = fixture("mobilenet025.safetensors");
        let out = net.forward(fx.tensor::<B>("input", &device));
        assert_eq!(out.strides(), vec![8, 16, 32]);
        assert_levels_match(
            &fx,
            &["stage1", "stage2", "stage3"],
            out.into_tensors(),
            TOLERANCE,
        );
    }
}
