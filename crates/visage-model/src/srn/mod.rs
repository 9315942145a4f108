//! SRN (Chi et al. 2019, "Selective Refinement Network for High Performance Face
//! Detection") and AInnoFace: a ResNet, SRN's two feature sets (first step: 1×1 projections
//! of C2..C7; second step: FPN P2..P7), one class / box head with RFE applied to both with
//! shared weights, and the selective two-step policy:
//! - **STC** on the `stc.levels` finest levels: the first step classifies their anchors; in
//!   the second step, anchors whose first-step face probability is below `stc.drop_score`
//!   are dropped (never detections at inference, no part in training);
//! - **STR** on the `str.levels` coarsest levels: the first step regresses their anchors;
//!   the second step is matched to, and decoded from, those refined anchors.
//!
//! Box format: `[x1, y1, x2, y2]` pixels of the network input. Anchor order: level, then y,
//! then x, then anchor, as everywhere in visage.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_anchors::{AnchorGenerator, Anchors, MaxIouAssigner};
use visage_backbone::Backbone;
use visage_boxes::{BoxCoder, BoxXyxy};
use visage_heads::{flatten_levels, HeadNorm, SrnHead, SrnHeadConfig};
use visage_neck::{SrnNeck, SrnNeckConfig};

use crate::detector::{anchor_generator, load_initial_backbone, neck_in_channels};
use crate::error::ModelError;
use crate::postprocess::{select_detections, Detection};
use crate::spec::{backbone_config, HeadNormSpec, TestSpec};
use crate::srn_spec::{SrnSpec, SRN_MAX_LEVEL};

/// Everything about an SRN detector that has no weights.
#[derive(Debug, Clone)]
pub(crate) struct SrnPolicy {
    pub(crate) spec: SrnSpec,
    pub(crate) test: TestSpec,
    pub(crate) anchors: AnchorGenerator,
    /// The second step's (and STR's first step's) matching.
    pub(crate) assigner: MaxIouAssigner,
    /// STC's first-step matching.
    pub(crate) stc_assigner: MaxIouAssigner,
    pub(crate) coder: BoxCoder,
    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub(crate) neck_input_strides: Vec<usize>,
}

/// An SRN-family face detector.
#[derive(Module, Debug)]
pub struct Srn<B: Backend> {
    /// ResNet (or MobileNet from stride 8) returning C_min..C5.
    pub backbone: Backbone<B>,
    /// C6, C7, the first-step projections and the second-step FPN.
    pub neck: SrnNeck<B>,
    /// The class / box branches, shared by every level of both steps.
    pub head: SrnHead<B>,
    #[module(skip)]
    pub(crate) policy: SrnPolicy,
}

/// Raw outputs of a batch. `N` anchors per image over all levels, flattened in anchor order;
/// `N_stc` of them on the STC levels (a prefix), `N_str` on the STR levels (a suffix).
#[derive(Debug, Clone)]
pub struct SrnOutputs<B: Backend> {
    /// `[B, N_stc, 1]` first-step face logits of the STC levels; `None` with `stc.levels = 0`.
    pub first_cls_logits: Option<Tensor<B, 3>>,
    /// `[B, N_str, 4]` first-step box deltas of the STR levels (relative to the anchors);
    /// `None` with `str.levels = 0`.
    pub first_box_deltas: Option<Tensor<B, 3>>,
    /// `[B, N, 1]` second-step face logits.
    pub cls_logits: Tensor<B, 3>,
    /// `[B, N, 4]` second-step box deltas, relative to the anchors on the other levels and to
    /// the refined anchors on the STR levels.
    pub box_deltas: Tensor<B, 3>,
    /// `(height, width)` of each level, finest first.
    pub feature_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of the input batch.
    pub input_size: (usize, usize),
}

impl SrnPolicy {
    fn from_spec(spec: &SrnSpec, test: &TestSpec) -> Result<Self, ModelError> {
        spec.validate()?;
        test.validate()?;
        let anchors = anchor_generator(&spec.level_strides(), &spec.anchors)?;
        Ok(Self {
            spec: spec.clone(),
            test: test.clone(),
            anchors,
            assigner: spec.assign.assigner(),
            stc_assigner: spec.stc.assign.assigner(),
            coder: BoxCoder {
                variances: spec.coder.variances,
            },
            neck_input_strides: (spec.neck.min_level..=5).map(|l| 1usize << l).collect(),
        })
    }

    /// `(N_stc, N_str)`: anchors per image on the STC levels (the first ones) and on the STR
    /// levels (the last ones).
    pub(crate) fn split(&self, anchors: &Anchors) -> (usize, usize) {
        let levels = &anchors.levels;
        let stc = levels[..self.spec.stc.levels].iter().map(|l| l.len()).sum();
        let str_levels = self.spec.two_step_regression.levels;
        let str = levels[levels.len() - str_levels..]
            .iter()
            .map(|l| l.len())
            .sum();
        (stc, str)
    }

    /// The second step's anchors of one image: the anchors, except on the STR levels where
    /// each is refined by its first-step deltas (`first_deltas`: `[N_str · 4]` of that
    /// image). Refinement is not differentiated through (SRN and RefineDet treat the refined
    /// anchors as given).
    pub(crate) fn second_step_anchors(
        &self,
        anchors: &[BoxXyxy],
        first_deltas: Option<&[f32]>,
    ) -> Vec<BoxXyxy> {
        let mut out = anchors.to_vec();
        if let Some(deltas) = first_deltas {
            let start = anchors.len() - deltas.len() / 4;
            for (anchor, d) in out[start..].iter_mut().zip(deltas.chunks_exact(4)) {
                *anchor = self.coder.decode(anchor, &[d[0], d[1], d[2], d[3]]);
            }
        }
        out
    }

    /// Which anchors of one image the second step keeps: all but those of the STC levels
    /// whose first-step face probability (`first_scores`, `[N_stc]`) is below `drop_score`.
    pub(crate) fn kept(&self, n: usize, first_scores: Option<&[f32]>) -> Vec<bool> {
        let mut keep = vec![true; n];
        if let Some(scores) = first_scores {
            for (k, &p) in keep.iter_mut().zip(scores) {
                *k = p >= self.spec.stc.drop_score;
            }
        }
        keep
    }
}

/// Host copies of the first-step outputs of a batch: probabilities `[B · N_stc]` and deltas
/// `[B · N_str · 4]`.
pub(crate) struct FirstStep {
    pub(crate) scores: Option<Vec<f32>>,
    pub(crate) deltas: Option<Vec<f32>>,
}

impl FirstStep {
    pub(crate) fn read<B: Backend>(outputs: &SrnOutputs<B>) -> Self {
        let host = |t: Tensor<B, 3>| -> Vec<f32> { t.into_data().to_vec().expect("f32 outputs") };
        FirstStep {
            scores: outputs
                .first_cls_logits
                .as_ref()
                .map(|l| host(sigmoid(l.clone().detach()))),
            deltas: outputs
                .first_box_deltas
                .as_ref()
                .map(|d| host(d.clone().detach())),
        }
    }

    /// Image `b`'s first-step probabilities and deltas, given `(N_stc, N_str)`.
    pub(crate) fn image(
        &self,
        b: usize,
        (stc, str): (usize, usize),
    ) -> (Option<&[f32]>, Option<&[f32]>) {
        (
            self.scores.as_deref().map(|s| &s[b * stc..(b + 1) * stc]),
            self.deltas
                .as_deref()
                .map(|d| &d[b * str * 4..(b + 1) * str * 4]),
        )
    }
}

impl<B: Backend> Srn<B> {
    /// Builds a freshly initialised detector from a spec (validated here).
    pub fn new(spec: &SrnSpec, test: &TestSpec, device: &B::Device) -> Result<Self, ModelError> {
        let policy = SrnPolicy::from_spec(spec, test)?;
        let backbone_config = backbone_config(&spec.backbone)?;
        let in_channels = neck_in_channels(
            &backbone_config,
            &policy.neck_input_strides,
            "model.neck.min_level",
        )?;
        let neck = SrnNeckConfig::new(in_channels, spec.neck.channels)
            .with_c6_channels(spec.neck.c6_channels)
            .with_c7_channels(spec.neck.c7_channels)
            .init(device);
        let head = SrnHeadConfig::new(
            spec.neck.channels,
            spec.head.channels,
            spec.anchors.per_location(),
        )
        .with_prior_prob(spec.head.prior_prob as f64)
        .with_norm(match spec.head.norm {
            HeadNormSpec::None => HeadNorm::None,
            HeadNormSpec::Group(groups) => HeadNorm::GroupNorm { groups },
        })
        .with_rfe(spec.head.rfe)
        .init(device);
        Ok(Self {
            backbone: backbone_config.init(device),
            neck,
            head,
            policy,
        })
    }

    /// Loads the backbone's initial weights from `model.backbone.<kind>.weights`, if the spec
    /// names a file. Returns the file that was loaded.
    pub fn load_initial_backbone_weights(
        mut self,
    ) -> Result<(Self, Option<std::path::PathBuf>), ModelError> {
        let (backbone, file) = load_initial_backbone(self.backbone, &self.policy.spec.backbone)?;
        self.backbone = backbone;
        Ok((self, file))
    }

    /// Runs the network: the class branch on the first-step STC levels, the box branch on the
    /// first-step STR levels (the other first-step outputs are never used, so never
    /// computed), both branches on every second-step level.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    /// - returns [`SrnOutputs`].
    pub fn forward(&self, images: Tensor<B, 4>) -> SrnOutputs<B> {
        let [_, _, height, width] = images.dims();
        let c = self.backbone.forward(images);
        let inputs = c
            .select(&self.policy.neck_input_strides)
            .expect("the backbone returns every stride the neck needs");
        let features = self.neck.forward(inputs);
        let feature_sizes = features
            .second
            .sizes()
            .into_iter()
            .map(|[h, w]| (h, w))
            .collect();
        let first = features.first.into_tensors();
        let second = features.second.into_tensors();
        let (stc, str) = (
            self.policy.spec.stc.levels,
            self.policy.spec.two_step_regression.levels,
        );
        let first_cls_logits =
            (stc > 0).then(|| flatten_levels(self.head.classify(&first[..stc]), 1));
        let first_box_deltas =
            (str > 0).then(|| flatten_levels(self.head.regress(&first[first.len() - str..]), 4));
        SrnOutputs {
            first_cls_logits,
            first_box_deltas,
            cls_logits: flatten_levels(self.head.classify(&second), 1),
            box_deltas: flatten_levels(self.head.regress(&second), 4),
            feature_sizes,
            input_size: (height, width),
        }
    }

    /// The (unrefined) anchors matching `outputs`, in the same order.
    pub fn anchors(&self, outputs: &SrnOutputs<B>) -> Anchors {
        self.policy.anchors.generate(&outputs.feature_sizes)
    }

    /// Detections of every image of the batch, best first: second-step probabilities (anchors
    /// STC drops are never candidates), boxes decoded from the second-step anchors (refined on the STR
    /// levels), then the `[test]` score threshold, top-k, NMS and cap.
    pub fn postprocess(&self, outputs: &SrnOutputs<B>) -> Vec<Vec<Detection>> {
        self.postprocess_with(outputs, &self.policy.test)
    }

    /// [`postprocess`](Self::postprocess) with other `[test]` settings.
    pub fn postprocess_with(
        &self,
        outputs: &SrnOutputs<B>,
        test: &TestSpec,
    ) -> Vec<Vec<Detection>> {
        let [batch, n, _] = outputs.cls_logits.dims();
        let host = |t: Tensor<B, 3>| -> Vec<f32> { t.into_data().to_vec().expect("f32 outputs") };
        let scores = host(sigmoid(outputs.cls_logits.clone()));
        let deltas = host(outputs.box_deltas.clone());
        let first = FirstStep::read(outputs);
        let anchors = self.anchors(outputs);
        let split = self.policy.split(&anchors);
        (0..batch)
            .map(|b| {
                let (first_scores, first_deltas) = first.image(b, split);
                let keep = self.policy.kept(n, first_scores);
                let scores: Vec<f32> = scores[b * n..(b + 1) * n]
                    .iter()
                    .zip(&keep)
                    // Below any score threshold (they are in [0, 1]): never a detection.
                    .map(|(&s, &k)| if k { s } else { f32::NEG_INFINITY })
                    .collect();
                let anchors = self
                    .policy
                    .second_step_anchors(&anchors.boxes, first_deltas);
                select_detections(
                    &scores,
                    &deltas[b * n * 4..(b + 1) * n * 4],
                    &anchors,
                    &self.policy.coder,
                    test,
                    outputs.input_size,
                )
            })
            .collect()
    }

    /// The spec this detector was built from.
    pub fn spec(&self) -> &SrnSpec {
        &self.policy.spec
    }

    /// The test (post-processing) settings.
    pub fn test_spec(&self) -> &TestSpec {
        &self.policy.test
    }

    /// Replaces the test settings (e.g. from `visage detect` flags).
    pub fn set_test_spec(&mut self, test: TestSpec) -> Result<(), ModelError> {
        test.validate()?;
        self.policy.test = test;
        Ok(())
    }

    /// Levels of both pyramids: `min_level ..= 7`.
    pub fn num_levels(&self) -> usize {
        (SRN_MAX_LEVEL - self.policy.spec.neck.min_level + 1) as usize
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::targets::FaceTargets;
    use burn::backend::{Autodiff, Flex};
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    use burn::tensor::{Distribution, TensorData};

    /// SRN at test size: C2..C7 (or C3..C7), 16 channels, STC and STR on `stc` / `str` levels.
    pub(crate) fn tiny_spec(min_level: u32, stc: usize, str: usize, box_loss: &str) -> SrnSpec {
        toml::from_str(&format!(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck]
            channels = 16
            min_level = {min_level}
            c6_channels = 32
            c7_channels = 16
            [head]
            channels = 16
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 2.0
            scales = [1.0, 1.4142]
            ratios = [1.25]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.4
            [stc]
            levels = {stc}
            [str]
            levels = {str}
            [loss]
            box_loss = {box_loss}
            "#
        ))
        .unwrap()
    }

    const SMOOTH_L1: &str = "{ smooth_l1 = { beta = 0.11 } }";

    #[test]
    fn output_shapes_per_level_and_step() {
        let device = Default::default();
        let srn = Srn::<Flex>::new(
            &tiny_spec(2, 3, 3, SMOOTH_L1),
            &TestSpec::default(),
            &device,
        )
        .unwrap();
        assert_eq!(srn.num_levels(), 6);
        // 70 × 45: strides 4..128 give 18×12, 9×6, 5×3, 3×2, 2×1, 1×1.
        let out = srn.forward(Tensor::zeros([2, 3, 70, 45], &device));
        let sizes = vec![(18, 12), (9, 6), (5, 3), (3, 2), (2, 1), (1, 1)];
        assert_eq!(out.feature_sizes, sizes);
        let per_level: Vec<usize> = sizes.iter().map(|(h, w)| h * w * 2).collect();
        let n: usize = per_level.iter().sum();
        let n_stc: usize = per_level[..3].iter().sum();
        let n_str: usize = per_level[3..].iter().sum();
        assert_eq!(out.cls_logits.dims(), [2, n, 1]);
        assert_eq!(out.box_deltas.dims(), [2, n, 4]);
        assert_eq!(out.first_cls_logits.as_ref().unwrap().dims(), [2, n_stc, 1]);
        assert_eq!(out.first_box_deltas.as_ref().unwrap().dims(), [2, n_str, 4]);
        let anchors = srn.anchors(&out);
        assert_eq!(anchors.boxes.len(), n);
        assert_eq!(srn.policy.split(&anchors), (n_stc, n_str));
        // Without STC and STR the first step is not computed.
        let plain = Srn::<Flex>::new(
            &tiny_spec(3, 0, 0, SMOOTH_L1),
            &TestSpec::default(),
            &device,
        )
        .unwrap();
        let out = plain.forward(Tensor::zeros([1, 3, 64, 64], &device));
        assert!(out.first_cls_logits.is_none() && out.first_box_deltas.is_none());
        assert_eq!(out.feature_sizes.len(), 5);
    }

    #[test]
    fn refined_anchors_and_drops_follow_the_first_step() {
        let device = Default::default();
        let srn = Srn::<Flex>::new(
            &tiny_spec(3, 1, 1, SMOOTH_L1),
            &TestSpec::default(),
            &device,
        )
        .unwrap();
        let policy = &srn.policy;
        let anchors = [
            [0.0, 0.0, 16.0, 20.0],
            [8.0, 8.0, 24.0, 28.0],
            [0.0, 0.0, 64.0, 80.0],
        ];
        // The last anchor is on the STR level: deltas (dx = 1, others 0) shift it by
        // 0.1 · 64 = 6.4 px; the others are untouched.
        let refined = policy.second_step_anchors(&anchors, Some(&[1.0, 0.0, 0.0, 0.0]));
        assert_eq!(refined[..2], anchors[..2]);
        let expected = [6.4, 0.0, 70.4, 80.0];
        for (r, e) in refined[2].iter().zip(expected) {
            assert!((r - e).abs() < 1e-4, "{:?}", refined[2]);
        }
        assert_eq!(policy.second_step_anchors(&anchors, None), anchors.to_vec());
        // First-step probabilities of the STC anchors: below 0.01 is dropped.
        assert_eq!(
            policy.kept(3, Some(&[0.009, 0.01])),
            vec![false, true, true]
        );
        assert_eq!(policy.kept(3, None), vec![true; 3]);
    }

    /// A detector with hand-set outputs with levels P3..P7 of sizes 4×4, 2×2, 1×1, 1×1, 1×1
    /// (a 32 × 32 input), STC on P3 and STR on P5..P7; boxes are clipped to 200 × 200 so that
    /// the large anchors keep their extent.
    fn hand_outputs(
        srn: &Srn<Flex>,
        first_logit: f32,
        first_dx: f32,
    ) -> (SrnOutputs<Flex>, Anchors) {
        let device = Default::default();
        let sizes = vec![(4, 4), (2, 2), (1, 1), (1, 1), (1, 1)];
        let anchors = srn.policy.anchors.generate(&sizes);
        let n = anchors.boxes.len();
        let (stc, str) = srn.policy.split(&anchors);
        // Second step: every anchor at probability ≈ 0.018, except anchor 0 (STC level) and
        // the first STR anchor, both at ≈ 0.95; deltas 0.
        let mut logits = vec![-4.0f32; n];
        logits[0] = 3.0;
        logits[n - str] = 3.0;
        let mut first_deltas = vec![0.0f32; str * 4];
        first_deltas[0] = first_dx;
        let tensor3 = |v: Vec<f32>, shape: [usize; 3]| {
            Tensor::<Flex, 3>::from_data(TensorData::new(v, shape), &device)
        };
        let outputs = SrnOutputs {
            first_cls_logits: Some(tensor3(vec![first_logit; stc], [1, stc, 1])),
            first_box_deltas: Some(tensor3(first_deltas, [1, str, 4])),
            cls_logits: tensor3(logits, [1, n, 1]),
            box_deltas: tensor3(vec![0.0; n * 4], [1, n, 4]),
            feature_sizes: sizes,
            input_size: (200, 200),
        };
        (outputs, anchors)
    }

    fn str_spec() -> SrnSpec {
        tiny_spec(3, 1, 3, SMOOTH_L1)
    }

    #[test]
    fn postprocess_drops_stc_anchors_and_decodes_str_from_refined_anchors() {
        let device = Default::default();
        let test = TestSpec {
            score_threshold: 0.5,
            ..TestSpec::default()
        };
        let srn = Srn::<Flex>::new(&str_spec(), &test, &device).unwrap();
        // First-step face probability 0.5 everywhere: nothing dropped. The STR anchor moves by
        // dx = 2 (0.1 · 2 · its width), and the second step's zero deltas keep it there.
        let (outputs, anchors) = hand_outputs(&srn, 0.0, 2.0);
        let (_, str) = srn.policy.split(&anchors);
        let n = anchors.boxes.len();
        let dets = &srn.postprocess(&outputs)[0];
        assert_eq!(dets.len(), 2, "{dets:?}");
        let clip = |b: BoxXyxy| b.map(|v| v.clamp(0.0, 200.0));
        let close = |got: BoxXyxy, expected: BoxXyxy| {
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-3, "{got:?} vs {expected:?}");
            }
        };
        let on_stc = clip(anchors.boxes[0]);
        close(dets[0].bbox, on_stc);
        let a = anchors.boxes[n - str];
        let shift = 0.2 * (a[2] - a[0]);
        close(dets[1].bbox, clip([a[0] + shift, a[1], a[2] + shift, a[3]]));
        // First-step probability sigmoid(-6) ≈ 0.0025 < 0.01: the STC anchor is dropped.
        let (outputs, _) = hand_outputs(&srn, -6.0, 2.0);
        let dets = &srn.postprocess(&outputs)[0];
        assert_eq!(dets.len(), 1, "{dets:?}");
        assert!(dets[0].bbox != on_stc);
    }

    #[test]
    fn the_second_step_matches_refined_anchors_and_skips_dropped_ones() {
        let device = Default::default();
        let srn = Srn::<Flex>::new(&str_spec(), &TestSpec::default(), &device).unwrap();
        let (outputs, anchors) = hand_outputs(&srn, -6.0, 2.0);
        let (stc, str) = srn.policy.split(&anchors);
        let n = anchors.boxes.len();
        // A face exactly on the refined STR anchor, and one exactly on STC anchor 0.
        let a = anchors.boxes[n - str];
        let shift = 0.2 * (a[2] - a[0]);
        let on_refined = [a[0] + shift, a[1], a[2] + shift, a[3]];
        let faces = [FaceTargets {
            boxes: vec![on_refined, anchors.boxes[0]],
            ..Default::default()
        }];
        let t = srn.targets(&outputs, &faces).unwrap();
        // Second step: the refined anchor is positive with zero deltas (IoU 1) ..
        let k = t.second.positive_index.iter().position(|&i| i == n - str);
        let k = k.expect("the refined STR anchor is positive");
        assert!(t.second.box_deltas[k].iter().all(|d| d.abs() < 1e-4));
        let anchor = t.second.positive_anchors[k];
        assert!(
            anchor
                .iter()
                .zip(on_refined)
                .all(|(a, b)| (a - b).abs() < 1e-4),
            "{anchor:?} vs {on_refined:?}"
        );
        // .. and the dropped STC anchors take no part: weight 0, never positive.
        assert!(t.second.weights[..stc].iter().all(|&w| w == 0.0));
        assert!(t.second.positive_index.iter().all(|&i| i >= stc));
        // First step: STC anchor 0 matches the face on it (IoU 1 ≥ 0.7); STR's first step
        // matches the unrefined anchor (IoU 45.8 / 68.6 ≈ 0.67) and learns the shift dx = 2.
        assert_eq!(t.first_cls.positive_index.first(), Some(&0));
        assert_eq!(t.first_cls.anchors_per_image, stc);
        assert_eq!(t.first_box.anchors_per_image, str);
        let k = t.first_box.positive_anchors.iter().position(|p| *p == a);
        let delta = t.first_box.box_deltas[k.expect("the unrefined STR anchor is positive")];
        assert!((delta[0] - 2.0).abs() < 1e-3 && delta[1..].iter().all(|d| d.abs() < 1e-3));
    }

    fn batch(
        device: &burn::backend::flex::FlexDevice,
    ) -> (Tensor<Autodiff<Flex>, 4>, Vec<FaceTargets>) {
        let images = Tensor::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), device);
        let faces = vec![
            FaceTargets {
                boxes: vec![[10.0, 12.0, 30.0, 36.0], [40.0, 8.0, 52.0, 23.0]],
                ..Default::default()
            },
            FaceTargets {
                boxes: vec![[4.0, 4.0, 60.0, 60.0]],
                ..Default::default()
            },
        ];
        (images, faces)
    }

    fn a_few_steps_lower_the_loss(mut spec: SrnSpec) {
        type Ad = Autodiff<Flex>;
        // At initialisation every first-step probability is about the prior, 0.01, so the
        // default drop score would drop a random half of the STC anchors and make the positive
        // count depend on the draw; the drops are tested by hand above.
        spec.stc.drop_score = 0.001;
        let device = Default::default();
        let mut srn = Srn::<Ad>::new(&spec, &TestSpec::default(), &device).unwrap();
        let (images, faces) = batch(&device);
        let mut optim = SgdConfig::new().init();
        let first = srn.loss(&srn.forward(images.clone()), &faces).unwrap();
        let first_total: f32 = first.total.clone().into_scalar();
        assert!(first.num_positive >= 3, "{}", first.num_positive);
        let names: Vec<&str> = first.named_parts().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls_first", "box_first", "cls", "box"]);
        let mut last_total = first_total;
        for _ in 0..5 {
            let parts = srn.loss(&srn.forward(images.clone()), &faces).unwrap();
            last_total = parts.total.clone().into_scalar();
            assert!(last_total.is_finite());
            let grads = GradientsParams::from_grads(parts.total.backward(), &srn);
            srn = optim.step(0.01, srn, grads);
        }
        assert!(
            last_total < first_total,
            "loss did not decrease: {first_total} -> {last_total}"
        );
    }

    #[test]
    fn a_few_sgd_steps_lower_the_srn_loss() {
        a_few_steps_lower_the_loss(tiny_spec(3, 2, 3, SMOOTH_L1));
    }

    #[test]
    fn a_few_sgd_steps_lower_the_ainnoface_loss() {
        a_few_steps_lower_the_loss(tiny_spec(3, 2, 3, "\"neg_log_iou\""));
    }

    #[test]
    fn without_stc_and_str_the_first_step_parts_are_zero() {
        let device = Default::default();
        let srn = Srn::<Flex>::new(
            &tiny_spec(3, 0, 0, SMOOTH_L1),
            &TestSpec::default(),
            &device,
        )
        .unwrap();
        let images = Tensor::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let (_, faces) = batch(&Default::default());
        let parts = srn.loss(&srn.forward(images), &faces).unwrap();
        let value = |t: &Tensor<Flex, 1>| -> f32 { t.clone().into_scalar() };
        assert_eq!(value(&parts.first_classification), 0.0);
        assert_eq!(value(&parts.first_box_regression), 0.0);
        assert!(value(&parts.classification) > 0.0);
        let err = srn
            .loss(&srn.forward(Tensor::zeros([1, 3, 64, 64], &device)), &faces)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 target lists for a batch of 1"), "{err}");
    }
}
