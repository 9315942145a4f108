//! The whole export ([`export_model`]) run in tract against visage on `Flex`: raw pixels
//! normalised inside the graph, and every family's detections with the post-processing in
//! the graph equal to visage's `postprocess` (same count per image, boxes within 1e-3 px or
//! 1e-5 relative,
//! scores within 1e-5, landmarks within 1e-3 px, same order), at two input sizes.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use prost::Message;
use visage_model::{DetectorFamily, RetinaFace, RetinaNet, Srn, TestSpec};

use super::*;
use crate::layers::backbone::tests::{random_images, randomise_norms};
use crate::testing::{max_relative_error, run_tract, run_tract_u8, RunOutput};

const MEAN: [f32; 3] = [104.0, 117.0, 123.0];
const STD: [f32; 3] = [58.0, 57.0, 59.0];

fn options(input: InputConvention, postprocess: Option<TestSpec>) -> ExportOptions {
    ExportOptions {
        opset: DEFAULT_OPSET,
        input,
        postprocess,
        metadata: vec![("visage.family".into(), "test".into())],
    }
}

fn bgr() -> InputNormalisation {
    InputNormalisation {
        mean: MEAN,
        std: STD,
        order: PlaneOrder::Bgr,
    }
}

#[test]
fn raw_rgb_pixels_are_reordered_and_normalised_inside_the_graph() {
    let _stream = crate::testing::seeded(3);
    let device = Default::default();
    let model =
        randomise_norms(RetinaNet::<Flex>::new(&visage_model::tiny::retinanet(), &device).unwrap());
    let (n, h, w) = (2, 40, 56);
    let pixels: Vec<u8> = (0..n * h * w * 3).map(|i| (i * 37 % 251) as u8).collect();
    // The host's normalisation: planes B, G, R of (pixel − mean) / std.
    let mut planes = vec![0.0f32; n * 3 * h * w];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for (c, rgb) in [2, 1, 0].into_iter().enumerate() {
                    let v = pixels[((b * h + y) * w + x) * 3 + rgb] as f32;
                    planes[((b * 3 + c) * h + y) * w + x] = (v - MEAN[c]) / STD[c];
                }
            }
        }
    }
    let x = Tensor::<Flex, 4>::from_data(TensorData::new(planes, [n, 3, h, w]), &device);
    let expected = model.forward(x);
    let onnx = export_model(&model, &options(InputConvention::RawRgb(bgr()), None)).unwrap();
    let out = run_tract_u8(&onnx, &pixels, &[n, h, w, 3]);
    let cls = crate::graph::host_f32(expected.cls_logits);
    let boxes = crate::graph::host_f32(expected.box_deltas);
    assert!(max_relative_error(&out[0].values, &cls) <= 1e-4);
    assert!(max_relative_error(&out[1].values, &boxes) <= 1e-4);
}

#[test]
fn the_model_carries_its_metadata_and_refuses_unknown_opsets() {
    let _stream = crate::testing::seeded(4);
    let device = Default::default();
    let model = RetinaFace::<Flex>::new(&visage_model::tiny::retinaface(), &device).unwrap();
    let onnx = export_model(&model, &options(InputConvention::Normalised(bgr()), None)).unwrap();
    let keys: Vec<&str> = onnx.metadata_props.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "visage.version",
        "visage.input",
        "visage.outputs",
        "visage.anchors",
        "visage.box_coder.variances",
        "visage.decode_rules",
        "visage.family",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(onnx.opset_import[0].version, DEFAULT_OPSET);
    // Serialised and parsed back unchanged.
    let bytes = onnx.encode_to_vec();
    assert_eq!(
        crate::proto::ModelProto::decode(bytes.as_slice()).unwrap(),
        onnx
    );
    for opset in [12, 22] {
        let mut o = options(InputConvention::Normalised(bgr()), None);
        o.opset = opset;
        let err = export_model(&model, &o).unwrap_err().to_string();
        assert!(err.contains("--opset") && err.contains("13 to 21"), "{err}");
    }
}

/// Detections of the exported graph, per image: `(box, score, landmarks)`.
type ImageDetections = Vec<([f32; 4], f32, Option<Vec<f32>>)>;

fn graph_detections(out: &[RunOutput], batch: usize) -> Vec<ImageDetections> {
    let (boxes, scores) = (&out[0].values, &out[1].values);
    let landmarks = (out.len() == 4).then(|| &out[2].values);
    let batch_index = &out[out.len() - 1].values;
    let mut per_image = vec![Vec::new(); batch];
    for (k, &b) in batch_index.iter().enumerate() {
        let bbox = [
            boxes[4 * k],
            boxes[4 * k + 1],
            boxes[4 * k + 2],
            boxes[4 * k + 3],
        ];
        let marks = landmarks.map(|l| l[10 * k..10 * k + 10].to_vec());
        per_image[b as usize].push((bbox, scores[k], marks));
    }
    per_image
}

/// Exports `model` with post-processing and checks its detections on random images of two
/// sizes (batch 2, then 1) against `model.postprocess`.
fn check_detections<M: DetectorFamily<Flex> + crate::ExportFamily>(model: &M, test: &TestSpec) {
    let onnx = export_model(
        model,
        &options(InputConvention::Normalised(bgr()), Some(test.clone())),
    )
    .unwrap();
    let mut total = 0;
    for dims in [[2, 3, 64, 96], [1, 3, 72, 100]] {
        let (x, values) = random_images(dims);
        let expected = model.postprocess(&model.forward(x), test);
        let ours = graph_detections(&run_tract(&onnx, &values, &dims), dims[0]);
        for (image, (want, got)) in expected.iter().zip(&ours).enumerate() {
            assert_eq!(
                got.len(),
                want.len(),
                "image {image} of {dims:?}: detection count"
            );
            // Detections whose scores agree to 1e-5 may come out in either order (the
            // graph's convolutions sum in another order than visage's): each expected one is
            // matched to an unused graph detection with its score and box, in order.
            let mut used = vec![false; got.len()];
            for d in want {
                let box_close = |bbox: &[f32; 4]| {
                    d.bbox.iter().zip(bbox).all(|(a, b)| {
                        let tolerance = 1e-3f32.max(1e-5 * a.abs());
                        (a - b).abs() <= tolerance
                    })
                };
                let found = got.iter().enumerate().position(|(k, (bbox, score, _))| {
                    !used[k] && (d.score - score).abs() <= 1e-5 && box_close(bbox)
                });
                let Some(k) = found else {
                    panic!(
                        "image {image} of {dims:?}: no graph detection for {:?} at {} in {got:?}",
                        d.bbox, d.score
                    );
                };
                used[k] = true;
                let marks = &got[k].2;
                if let (Some(points), Some(marks)) = (d.landmarks, marks) {
                    for (a, b) in points.iter().flatten().zip(marks) {
                        assert!((a - b).abs() <= 1e-3, "landmark {a} vs {b}");
                    }
                }
            }
            total += want.len();
        }
    }
    assert!(total > 0, "the test should produce detections");
}

fn test_spec() -> TestSpec {
    TestSpec {
        score_threshold: 0.3,
        pre_nms_top_k: 200,
        nms_threshold: 0.4,
        max_detections: 50,
        ..TestSpec::default()
    }
}

#[test]
fn retinanet_detections_in_the_graph_equal_visages() {
    let _stream = crate::testing::seeded(5);
    let device = Default::default();
    let model =
        randomise_norms(RetinaNet::<Flex>::new(&visage_model::tiny::retinanet(), &device).unwrap());
    check_detections(&model, &test_spec());
}

#[test]
fn srn_detections_in_the_graph_equal_visages() {
    let _stream = crate::testing::seeded(6);
    let device = Default::default();
    let model = randomise_norms(Srn::<Flex>::new(&visage_model::tiny::srn(), &device).unwrap());
    check_detections(&model, &test_spec());
}

#[test]
fn retinaface_detections_in_the_graph_equal_visages() {
    let _stream = crate::testing::seeded(7);
    let device = Default::default();
    let model = randomise_norms(
        RetinaFace::<Flex>::new(&visage_model::tiny::retinaface(), &device).unwrap(),
    );
    check_detections(&model, &test_spec());
}

/// A head shared across pyramid levels is applied per level but its weights are stored
/// once: the graph holds no more numbers than the model has parameters (batch norms fold
/// four numbers per channel into one bias), plus a few small constants.
#[test]
fn shared_heads_store_their_weights_once() {
    let _stream = crate::testing::seeded(8);
    let device = Default::default();
    for spec in [
        visage_model::tiny::retinanet().into(),
        visage_model::tiny::srn().into(),
        visage_model::tiny::retinaface().into(),
    ] {
        let spec: visage_model::ModelSpec = spec;
        let (params, stored) = match &spec {
            visage_model::ModelSpec::RetinaNet(s) => {
                stored_numbers(&RetinaNet::<Flex>::new(s, &device).unwrap())
            }
            visage_model::ModelSpec::Srn(s) => {
                stored_numbers(&Srn::<Flex>::new(s, &device).unwrap())
            }
            visage_model::ModelSpec::RetinaFace(s) => {
                stored_numbers(&RetinaFace::<Flex>::new(s, &device).unwrap())
            }
        };
        assert!(
            stored <= params + 2000,
            "{stored} numbers stored for {params} parameters"
        );
    }
}

/// `(parameters of the model, f32 numbers in the exported graph's initialisers)`.
fn stored_numbers<M: DetectorFamily<Flex> + crate::ExportFamily>(model: &M) -> (usize, usize) {
    let onnx = export_model(model, &options(InputConvention::Normalised(bgr()), None)).unwrap();
    let graph = onnx.graph.unwrap();
    let stored = graph.initializer.iter().map(|t| t.float_data.len()).sum();
    (model.num_params(), stored)
}
