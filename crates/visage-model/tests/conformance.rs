//! The family contract, checked the same way for every family a `[model]` table can name
//! (RetinaNet, FAN, DF²S², SRN, AInnoFace, RetinaFace), through
//! [`ModelSpec::with_trainable_family`]: a new family adds its tiny spec to
//! `visage_model::tiny::every_family` and passes these checks.
//!
//! - output shapes: one score, four deltas (ten landmark deltas where predicted) and one
//!   anchor per anchor of each image;
//! - a few SGD steps on one batch lower the loss, whose parts are finite and named;
//! - post-processing keeps at most `max_detections` per image, best first, inside the input
//!   for the families that clip;
//! - a weight file round trip gives the same outputs.

use burn::backend::{Autodiff, Flex};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_model::{
    BatchAnchors, DecodeRules, DetectorFamily, FaceTargets, ModelSpec, PixelNormalisation,
    TestSpec, TrainableFamily, WithTrainableFamily,
};

type Ad = Autodiff<Flex>;

/// The faces of the two 64 × 64 images of the batch, with landmarks on two of them.
fn faces() -> Vec<FaceTargets> {
    visage_model::tiny::two_image_faces()
}

/// The conformance checks of one family.
struct Conformance {
    name: &'static str,
    dir: std::path::PathBuf,
}

impl WithTrainableFamily<Ad> for Conformance {
    type Output = ();

    fn run<M: TrainableFamily<Ad>>(self, spec: &M::Spec) {
        let name = self.name;
        let device = Default::default();
        Ad::seed(&device, 7);
        let mut model = M::new(spec, &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .with_input_normalisation(PixelNormalisation {
                mean: [0.0; 3],
                std: [1.0; 3],
                bgr: false,
            });
        assert!(model.spec() == spec, "{name}: spec kept");
        let images =
            Tensor::<Ad, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);

        // Output shapes, through what the post-processing reads.
        let outputs = model.forward(images.clone());
        let p = model.predictions(&outputs);
        let n = p.anchors_per_image;
        assert!(n > 0, "{name}");
        assert_eq!(p.batch, 2, "{name}");
        assert_eq!(p.scores.len(), 2 * n, "{name}");
        assert_eq!(p.box_deltas.len(), 2 * n * 4, "{name}");
        if let Some(marks) = &p.landmark_deltas {
            assert_eq!(marks.len(), 2 * n * 10, "{name}");
        }
        for b in 0..2 {
            assert_eq!(p.anchors.image(b).len(), n, "{name}");
        }
        if let BatchAnchors::PerImage(per_image) = &p.anchors {
            assert_eq!(per_image.len(), 2, "{name}");
        }
        assert_eq!(p.input_size, (64, 64), "{name}");

        // A few SGD steps lower the loss.
        let faces = faces();
        let first = model.loss(&outputs, &faces).unwrap().values().unwrap();
        assert!(first.num_positive > 0, "{name}: {first:?}");
        assert!(!first.parts.is_empty() && first.is_finite(), "{name}");
        let mut optim = SgdConfig::new().init::<Ad, M>();
        let mut last = first.total;
        for _ in 0..5 {
            let loss = model.loss(&model.forward(images.clone()), &faces).unwrap();
            last = loss.values().unwrap().total;
            let grads = GradientsParams::from_grads(loss.total.backward(), &model);
            model = optim.step(0.01, model, grads);
        }
        assert!(last < first.total, "{name}: {} -> {last}", first.total);

        // At most max_detections per image, best first.
        let valid = model.valid_model();
        let images = images.inner();
        let outputs = valid.forward(images.clone());
        let test = TestSpec {
            score_threshold: 0.0,
            pre_nms_top_k: 200,
            nms_threshold: 0.5,
            max_detections: 7,
            ..TestSpec::default()
        };
        let detections = valid.postprocess(&outputs, &test);
        assert_eq!(detections.len(), 2, "{name}");
        let clips = valid.predictions(&outputs).rules.clip_to_input;
        for image in &detections {
            assert!(
                !image.is_empty() && image.len() <= 7,
                "{name}: {}",
                image.len()
            );
            assert!(image.windows(2).all(|w| w[0].score >= w[1].score), "{name}");
            for d in image {
                let [x1, y1, x2, y2] = d.bbox;
                assert!(x1 < x2 && y1 < y2, "{name}: {:?}", d.bbox);
                if clips {
                    assert!(x1 >= 0.0 && y1 >= 0.0 && x2 <= 64.0 && y2 <= 64.0, "{name}");
                }
            }
        }
        if valid.predictions(&outputs).rules == DecodeRules::PYTORCH_RETINAFACE {
            assert!(detections[0][0].landmarks.is_some(), "{name}: landmarks");
        }

        // A weight file round trip: a fresh model of the same spec, loaded, gives the same
        // outputs.
        let file = self.dir.join(format!("{name}.safetensors"));
        if matches!(name, "retinaface" | "srn" | "df2s2") {
            // The in-memory serialisation a checkpoint writes.
            std::fs::write(&file, valid.weights_bytes().unwrap()).unwrap();
        } else {
            valid.save_weights(&file).unwrap();
        }
        let fresh = M::Valid::new(spec, &device).unwrap();
        let before = fresh.predictions(&fresh.forward(images.clone())).scores;
        let loaded = fresh.load_weights(&file).unwrap();
        let again = loaded.predictions(&loaded.forward(images.clone()));
        let want = valid.predictions(&outputs);
        assert_ne!(before, want.scores, "{name}: a fresh model differs");
        for (a, b) in again.scores.iter().zip(&want.scores) {
            assert!((a - b).abs() <= 1e-6, "{name}: {a} vs {b}");
        }
        for (a, b) in again.box_deltas.iter().zip(&want.box_deltas) {
            assert!((a - b).abs() <= 1e-5, "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn every_family_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let specs = visage_model::tiny::every_family();
    let architectures: std::collections::BTreeSet<&str> =
        specs.iter().map(|(_, s)| s.architecture().name()).collect();
    // Every architecture is covered.
    assert_eq!(
        architectures.into_iter().collect::<Vec<_>>(),
        ["retinaface", "retinanet", "srn"]
    );
    for (name, spec) in specs {
        spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        spec.with_trainable_family::<Ad, _>(Conformance {
            name,
            dir: dir.path().to_path_buf(),
        });
    }
}

#[test]
fn a_weight_file_of_another_spec_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let specs = visage_model::tiny::every_family();
    let (ModelSpec::RetinaNet(a), ModelSpec::Srn(b)) = (&specs[0].1, &specs[3].1) else {
        panic!("spec order")
    };
    let device = Default::default();
    let file = dir.path().join("retinanet.safetensors");
    visage_model::RetinaNet::<Flex>::new(a, &device)
        .unwrap()
        .save_weights(&file)
        .unwrap();
    let err = visage_model::Srn::<Flex>::new(b, &device)
        .unwrap()
        .load_weights(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("retinanet.safetensors"), "{err}");
    let missing = dir.path().join("missing.safetensors");
    let err = visage_model::Srn::<Flex>::new(b, &device)
        .unwrap()
        .load_weights(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
}
