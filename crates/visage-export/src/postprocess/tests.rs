//! The post-processing graph run in tract against `visage_model::postprocess` on random but
//! structured predictions: clusters of overlapping boxes (neighbouring anchors), distinct
//! scores straddling the threshold (one exactly on it), SRN's dropped anchors, anchors
//! crossing the border or outside the input, zero-width anchors, wild size deltas.

use visage_boxes::{BoxCoder, BoxXyxy};
use visage_model::{
    postprocess, AnchorPredictions, BatchAnchors, DecodeRules, Detection, TestSpec,
};

use super::detection_graph;
use crate::families::{DecodeInputs, GraphAnchors};
use crate::graph::{Dim, ElemType, Graph};
use crate::proto::{ModelProto, OperatorSetIdProto};
use crate::testing::{run_tract_inputs, RunOutput};
use crate::ExportError;

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// One test case's shape and settings.
#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    /// `(height, width)` of the input.
    input: (usize, usize),
    shared_anchors: bool,
    landmarks: bool,
    rules: DecodeRules,
    test: TestSpec,
    seed: u64,
}

/// The graph's inputs (and the host's predictions): scores with `-1` for dropped anchors
/// (the host gets `-∞`, as families fill it).
struct Predictions {
    anchors: Vec<Vec<BoxXyxy>>,
    scores: Vec<f32>,
    box_deltas: Vec<f32>,
    landmark_deltas: Vec<f32>,
    anchors_per_image: usize,
}

/// Anchors on a stride-8 grid over the input and a margin past it, two sizes each, plus
/// anchors outside the input and a zero-width one.
fn grid_anchors((height, width): (usize, usize)) -> Vec<BoxXyxy> {
    let (h, w) = (height as f32, width as f32);
    let mut anchors = Vec::new();
    let mut cy = -4.0;
    while cy < h + 8.0 {
        let mut cx = -4.0;
        while cx < w + 8.0 {
            for size in [10.0f32, 22.0] {
                let half = size / 2.0;
                anchors.push([cx - half, cy - half, cx + half, cy + half]);
            }
            cx += 8.0;
        }
        cy += 8.0;
    }
    anchors.extend([
        [-40.0, -40.0, -20.0, -20.0],
        [w + 5.0, 10.0, w + 25.0, 30.0],
        [10.0, h + 2.0, 30.0, h + 20.0],
        [20.0, 20.0, 20.0, 30.0],
    ]);
    anchors
}

fn predictions(case: &Case) -> Predictions {
    let mut rng = Rng(case.seed);
    let base = grid_anchors(case.input);
    let count = base.len();
    let jittered = |rng: &mut Rng| -> Vec<BoxXyxy> {
        base.iter()
            .map(|b| {
                let (dx, dy, s) = (
                    rng.uniform(-3.0, 3.0),
                    rng.uniform(-3.0, 3.0),
                    rng.uniform(0.8, 1.2),
                );
                let (cx, cy) = (0.5 * (b[0] + b[2]) + dx, 0.5 * (b[1] + b[3]) + dy);
                let (hw, hh) = (0.5 * (b[2] - b[0]) * s, 0.5 * (b[3] - b[1]) * s);
                [cx - hw, cy - hh, cx + hw, cy + hh]
            })
            .collect()
    };
    let anchors: Vec<Vec<BoxXyxy>> = if case.shared_anchors {
        vec![base.clone()]
    } else {
        (0..case.batch).map(|_| jittered(&mut rng)).collect()
    };
    let mut scores = Vec::with_capacity(case.batch * count);
    let mut box_deltas = Vec::with_capacity(case.batch * count * 4);
    for _ in 0..case.batch {
        // Distinct scores: a random permutation of (r + 0.5) / count, some dropped (-1).
        let mut ranks: Vec<usize> = (0..count).collect();
        for i in (1..count).rev() {
            ranks.swap(i, rng.below(i + 1));
        }
        for &r in &ranks {
            let dropped = rng.below(20) == 0;
            scores.push(if dropped {
                -1.0
            } else {
                (r as f32 + 0.5) / count as f32
            });
            let wild = match rng.below(25) {
                0 => 25.0,
                1 => -25.0,
                _ => 0.0,
            };
            box_deltas.extend([
                rng.uniform(-1.5, 1.5),
                rng.uniform(-1.5, 1.5),
                rng.uniform(-1.5, 1.5) + wild,
                rng.uniform(-1.5, 1.5),
            ]);
        }
    }
    let landmark_deltas = (0..case.batch * count * 10)
        .map(|_| rng.uniform(-3.0, 3.0))
        .collect();
    Predictions {
        anchors,
        scores,
        box_deltas,
        landmark_deltas,
        anchors_per_image: count,
    }
}

fn coder() -> BoxCoder {
    BoxCoder {
        variances: [0.1, 0.2],
    }
}

/// The post-processing graph alone, reading `images`, `scores`, `box_deltas`, (`landmark_
/// deltas`) and `anchors` as inputs.
fn model(case: &Case) -> Result<ModelProto, ExportError> {
    let named = |s: &str| Dim::Named(s.to_string());
    let (n, a) = (named("N"), named("A"));
    let mut g = Graph::new(17);
    let images = g.input(
        "images",
        ElemType::F32,
        &[n.clone(), Dim::Fixed(3), named("H"), named("W")],
    );
    let scores = g.input("anchor_scores", ElemType::F32, &[n.clone(), a.clone()]);
    let box_deltas = g.input(
        "box_deltas",
        ElemType::F32,
        &[n.clone(), a.clone(), Dim::Fixed(4)],
    );
    let landmark_deltas = case.landmarks.then(|| {
        g.input(
            "landmark_deltas",
            ElemType::F32,
            &[n.clone(), a.clone(), Dim::Fixed(10)],
        )
    });
    let anchors = if case.shared_anchors {
        GraphAnchors::Shared(g.input("anchors", ElemType::F32, &[a.clone(), Dim::Fixed(4)]))
    } else {
        GraphAnchors::PerImage(g.input("anchors", ElemType::F32, &[n, a, Dim::Fixed(4)]))
    };
    let decode = DecodeInputs {
        scores,
        box_deltas,
        landmark_deltas,
        anchors,
        coder: coder(),
        rules: case.rules,
    };
    let detections = detection_graph(&mut g, &images, &decode, &case.test)?;
    detections.declare_outputs(&mut g);
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "visage-test".into(),
        graph: Some(g.finish("postprocess")),
        ..Default::default()
    })
}

fn host(case: &Case, p: &Predictions, test: &TestSpec) -> Vec<Vec<Detection>> {
    let anchors = if case.shared_anchors {
        BatchAnchors::Shared(p.anchors[0].clone())
    } else {
        BatchAnchors::PerImage(p.anchors.clone())
    };
    let predictions = AnchorPredictions {
        batch: case.batch,
        dense: None,
        anchors_per_image: p.anchors_per_image,
        scores: p
            .scores
            .iter()
            .map(|&s| if s < 0.0 { f32::NEG_INFINITY } else { s })
            .collect(),
        box_deltas: p.box_deltas.clone(),
        landmark_deltas: case.landmarks.then(|| p.landmark_deltas.clone()),
        anchors,
        coder: coder(),
        rules: case.rules,
        input_size: case.input,
    };
    postprocess(&predictions, test)
}

fn run_graph(case: &Case, p: &Predictions) -> Vec<RunOutput> {
    let (h, w) = case.input;
    let (n, a) = (case.batch, p.anchors_per_image);
    let images = vec![0.0f32; n * 3 * h * w];
    let anchors: Vec<f32> = p.anchors.iter().flatten().flatten().copied().collect();
    let anchor_dims = if case.shared_anchors {
        vec![a, 4]
    } else {
        vec![n, a, 4]
    };
    let (image_dims, score_dims, delta_dims, mark_dims) =
        ([n, 3, h, w], [n, a], [n, a, 4], [n, a, 10]);
    let mut inputs: Vec<(&[f32], &[usize])> = vec![
        (&images, &image_dims),
        (&p.scores, &score_dims),
        (&p.box_deltas, &delta_dims),
    ];
    if case.landmarks {
        inputs.push((&p.landmark_deltas, &mark_dims));
    }
    inputs.push((&anchors, &anchor_dims));
    run_tract_inputs(&model(case).expect("graph"), &inputs)
}

/// Runs `case` in the graph and on the host and checks they agree; returns the detections
/// per image.
fn check(case: &Case) -> Vec<usize> {
    check_predictions(case, &predictions(case))
}

/// [`check`] with predictions `p`.
fn check_predictions(case: &Case, p: &Predictions) -> Vec<usize> {
    let want = host(case, p, &case.test);
    let outputs = run_graph(case, p);
    assert_eq!(outputs.len(), if case.landmarks { 4 } else { 3 });
    let (boxes, scores, batch) = (&outputs[0], &outputs[1], outputs.last().unwrap());
    let total: usize = want.iter().map(Vec::len).sum();
    assert_eq!(boxes.dims, vec![total, 4], "{case:?}");
    assert_eq!(scores.dims, vec![total]);
    assert_eq!(batch.dims, vec![total]);
    let mut row = 0;
    for (b, dets) in want.iter().enumerate() {
        for (i, det) in dets.iter().enumerate() {
            let at = format!("image {b}, detection {i}, seed {}", case.seed);
            assert_eq!(batch.values[row], b as f32, "{at}");
            assert!(
                (scores.values[row] - det.score).abs() <= 1e-6,
                "{at}: score {} vs {}",
                scores.values[row],
                det.score
            );
            for k in 0..4 {
                let (got, exp) = (boxes.values[row * 4 + k], det.bbox[k]);
                assert!(
                    (got - exp).abs() <= (1e-4 * exp.abs()).max(1e-3),
                    "{at}: box {got} vs {exp}"
                );
            }
            if case.landmarks {
                let points = det.landmarks.expect("host landmarks");
                let got = &outputs[2].values[row * 10..row * 10 + 10];
                for (g, e) in got.iter().zip(points.iter().flatten()) {
                    assert!((g - e).abs() <= 1e-3, "{at}: landmark {g} vs {e}");
                }
            }
            row += 1;
        }
    }
    if case.landmarks {
        assert_eq!(outputs[2].dims, vec![total, 5, 2]);
    }
    want.iter().map(Vec::len).collect()
}

fn case(rules: DecodeRules, batch: usize, shared_anchors: bool, landmarks: bool) -> Case {
    Case {
        batch,
        input: (48, 64),
        shared_anchors,
        landmarks,
        rules,
        test: TestSpec {
            score_threshold: 0.4,
            pre_nms_top_k: 5000,
            nms_threshold: 0.4,
            max_detections: 750,
            ..TestSpec::default()
        },
        seed: 1,
    }
}

/// Every rule set (and the clamp without clipping), batch size, anchor kind and landmark setting with a large top-k and
/// cap, then top-k below the candidates and the cap below NMS's survivors.
#[test]
fn graph_matches_host_postprocess() {
    let _stream = crate::testing::seeded(30);
    let mut seed = 0;
    // Clipping hides the size clamp (both wild sizes cover the input): also clamp unclipped.
    let clamped_unclipped = DecodeRules {
        clip_to_input: false,
        ..DecodeRules::VISAGE
    };
    for rules in [
        DecodeRules::VISAGE,
        DecodeRules::PYTORCH_RETINAFACE,
        clamped_unclipped,
    ] {
        for (batch, shared, landmarks) in [
            (1, true, false),
            (3, true, true),
            (3, false, false),
            (1, false, true),
        ] {
            for (top_k, cap) in [(5000, 750), (40, 750), (5000, 6), (30, 5)] {
                seed += 1;
                let mut c = case(rules, batch, shared, landmarks);
                c.seed = seed;
                c.test.pre_nms_top_k = top_k;
                c.test.max_detections = cap;
                let counts = check(&c);
                assert!(counts.iter().all(|&k| k > 0), "{counts:?}");
                let p = predictions(&c);
                let uncapped = TestSpec {
                    pre_nms_top_k: 5000,
                    max_detections: 750,
                    ..c.test.clone()
                };
                let full = host(&c, &p, &uncapped);
                if top_k < 5000 {
                    let a = p.anchors_per_image;
                    for image in p.scores.chunks(a) {
                        let passing = image.iter().filter(|&&s| s >= 0.4).count();
                        assert!(passing > top_k, "{passing} candidates, top-k {top_k}");
                    }
                }
                if cap < 750 {
                    assert!(counts.iter().all(|&k| k == cap), "{counts:?}");
                    assert!(full.iter().all(|d| d.len() > cap));
                }
            }
        }
    }
}

/// A score exactly on the threshold passes visage's `>=` and fails detect.py's `>`.
#[test]
fn threshold_rule_decides_a_score_on_the_threshold() {
    let _stream = crate::testing::seeded(31);
    for rules in [DecodeRules::VISAGE, DecodeRules::PYTORCH_RETINAFACE] {
        let mut c = case(rules, 1, true, true);
        c.seed = 99;
        let p = predictions(&c);
        let count = p.anchors_per_image as f32;
        // One score equals ((r + 0.5) / count) for r = 101: put the threshold on it.
        c.test.score_threshold = (101.0 + 0.5) / count;
        c.test.nms_threshold = 0.95;
        assert!(p.scores.contains(&c.test.score_threshold));
        check(&c);
        let on_threshold = host(&c, &p, &c.test)[0]
            .iter()
            .any(|d| d.score == c.test.score_threshold);
        assert_eq!(on_threshold, rules == DecodeRules::VISAGE);
    }
}

/// An image without candidates gives no rows; so does a whole batch without any.
#[test]
fn images_without_candidates_give_no_rows() {
    let _stream = crate::testing::seeded(32);
    for rules in [DecodeRules::VISAGE, DecodeRules::PYTORCH_RETINAFACE] {
        let mut c = case(rules, 3, false, true);
        c.seed = 7;
        let mut p = predictions(&c);
        let a = p.anchors_per_image;
        for s in &mut p.scores[a..2 * a] {
            *s = s.min(0.39);
        }
        let counts = check_predictions(&c, &p);
        assert!(
            counts[1] == 0 && counts[0] > 0 && counts[2] > 0,
            "{counts:?}"
        );

        for s in &mut p.scores {
            *s = s.min(0.39);
        }
        let outputs = run_graph(&c, &p);
        let dims: Vec<Vec<usize>> = outputs.iter().map(|o| o.dims.clone()).collect();
        assert_eq!(dims, vec![vec![0, 4], vec![0], vec![0, 5, 2], vec![0]]);
    }
}

/// Settings `TestSpec::validate` rejects are errors naming the key.
#[test]
fn invalid_settings_are_named() {
    let _stream = crate::testing::seeded(33);
    let mut c = case(DecodeRules::VISAGE, 1, true, false);
    c.test.max_detections = 0;
    match model(&c) {
        Err(ExportError::InvalidOption { option, .. }) => assert_eq!(option, "test.max_detections"),
        other => panic!("{other:?}"),
    }
}
