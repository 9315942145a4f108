//! The detector module: backbone (ResNet or MobileNet) + neck (RetinaNet's FPN or DF²S²'s
//! feature fusion pyramid) + class/box head (RetinaNet's separate subnets or DF²S²'s shared
//! conv stack, with its optional segmentation predictor), and optionally FAN's attention
//! subnet (`[model.attention]`), carrying its weight-free policy (anchors, assignment, box
//! coding, attention / segmentation targets, loss and test settings) so that `forward`,
//! `loss` and `postprocess` need nothing else.
//!
//! The configurations: RetinaNet (`[model.neck.fpn]`), FAN (+ `[model.attention]`), DF²S²
//! (`[model.neck.ffp]`, `head.shared_convs = true`, `[model.segmentation]`).

use burn::prelude::*;
use visage_anchors::{AnchorGenerator, Anchors, LevelSpec, MaxIouAssigner};
use visage_backbone::{Backbone, BackboneConfig};
use visage_boxes::BoxCoder;
use visage_heads::{
    flatten_levels, AttentionHead, AttentionHeadConfig, DetectionHead, HeadNorm, RetinaHeadConfig,
    SharedHeadConfig,
};

use crate::attention_targets::AttentionAssigner;
use crate::error::ModelError;
use crate::neck::Neck;
use crate::spec::{
    backbone_config, AnchorSpec, BackboneSpec, DetectorSpec, HeadNormSpec, LossSpec, TestSpec,
};

/// Everything about a detector that has no weights: derived once from the spec.
#[derive(Debug, Clone)]
pub(crate) struct DetectorPolicy {
    pub(crate) spec: DetectorSpec,
    pub(crate) test: TestSpec,
    pub(crate) anchors: AnchorGenerator,
    pub(crate) assigner: MaxIouAssigner,
    pub(crate) coder: BoxCoder,
    /// Strides of the backbone levels the neck consumes, finest first.
    pub(crate) neck_input_strides: Vec<usize>,
    /// FAN's attention targets, when `[model.attention]` is set.
    pub(crate) attention: Option<AttentionAssigner>,
    /// DF²S²'s segmentation targets, when `[model.segmentation]` is set.
    pub(crate) segmentation: Option<AttentionAssigner>,
}

/// A single-class (face) RetinaNet-style detector.
#[derive(Module, Debug)]
pub struct Detector<B: Backend> {
    /// ResNet (C2..C5) or MobileNet (strides 8..32).
    pub backbone: Backbone<B>,
    /// FPN or FFP producing P_min..P_max (parameters `neck.*` whatever the variant).
    pub neck: Neck<B>,
    /// Class and box head shared across levels: separate subnets (`head.cls_subnet.*`,
    /// `head.box_subnet.*`) or one shared stack (`head.convs.*`, `head.cls_predictor`,
    /// `head.box_predictor`, and with segmentation `head.seg_predictor`).
    pub head: DetectionHead<B>,
    /// FAN's attention subnet, shared across levels (`[model.attention]`); `None` for a
    /// plain RetinaNet. Its parameters are `attention.subnet.*`.
    pub attention: Option<AttentionHead<B>>,
    #[module(skip)]
    pub(crate) policy: DetectorPolicy,
}

/// Raw head outputs of a batch, flattened in anchor order (level, then y, then x, then anchor).
#[derive(Debug, Clone)]
pub struct RawOutputs<B: Backend> {
    /// `[B, N, 1]` face logits.
    pub cls_logits: Tensor<B, 3>,
    /// `[B, N, 4]` encoded box deltas (see [`BoxCoder`]).
    pub box_deltas: Tensor<B, 3>,
    /// `(height, width)` of each pyramid level's feature map, finest first.
    pub feature_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of the input batch.
    pub input_size: (usize, usize),
    /// FAN's attention logits per level, `[B, 1, H_l, W_l]`, finest first (the attention
    /// map is their sigmoid); `None` without `[model.attention]`.
    pub attention_logits: Option<Vec<Tensor<B, 4>>>,
    /// DF²S²'s segmentation logits per level, `[B, 1, H_l, W_l]`, finest first; `None`
    /// without `[model.segmentation]`. Read by the loss only, never by `postprocess`.
    pub segmentation_logits: Option<Vec<Tensor<B, 4>>>,
}

/// The anchors of `[model.anchors]` on levels of the given strides (finest first): sizes
/// `base_factor · stride · scale` at each ratio.
pub(crate) fn anchor_generator(
    strides: &[u32],
    spec: &AnchorSpec,
) -> Result<AnchorGenerator, ModelError> {
    let levels = strides
        .iter()
        .map(|&stride| LevelSpec {
            stride,
            sizes: spec
                .scales
                .iter()
                .map(|s| spec.base_factor * stride as f32 * s)
                .collect(),
            aspect_ratios: spec.ratios.clone(),
        })
        .collect();
    AnchorGenerator::new(levels).map_err(|e| ModelError::InvalidConfig {
        key: "model.anchors".into(),
        message: e.to_string(),
    })
}

/// The channels of the backbone levels of the given strides (finest first); an error naming
/// `min_level_key` when the backbone lacks one.
pub(crate) fn neck_in_channels(
    backbone: &BackboneConfig,
    strides: &[usize],
    min_level_key: &str,
) -> Result<Vec<usize>, ModelError> {
    strides
        .iter()
        .map(|stride| {
            let level = backbone.strides().iter().position(|s| s == stride);
            level.map(|i| backbone.out_channels()[i])
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| ModelError::InvalidConfig {
            key: min_level_key.into(),
            message: "the backbone lacks a level the neck needs".into(),
        })
}

/// `backbone` with the initial weights `spec` names, if any (a new run's initialisation), and
/// the file that was loaded.
pub(crate) fn load_initial_backbone<B: Backend>(
    backbone: Backbone<B>,
    spec: &BackboneSpec,
) -> Result<(Backbone<B>, Option<std::path::PathBuf>), ModelError> {
    match spec.weights() {
        None => Ok((backbone, None)),
        Some(path) => Ok((backbone.load_file(path)?, Some(path.to_path_buf()))),
    }
}

impl DetectorPolicy {
    fn from_spec(spec: &DetectorSpec, test: &TestSpec) -> Result<Self, ModelError> {
        spec.validate()?;
        test.validate()?;
        let anchors = anchor_generator(&spec.level_strides(), &spec.anchors)?;
        let assigner = spec.assign.assigner();
        let neck_input_strides = (spec.neck.min_level()..=5).map(|l| 1usize << l).collect();
        Ok(Self {
            spec: spec.clone(),
            test: test.clone(),
            anchors,
            assigner,
            coder: BoxCoder {
                variances: spec.coder.variances,
            },
            neck_input_strides,
            attention: AttentionAssigner::from_spec(spec),
            segmentation: AttentionAssigner::for_segmentation(spec),
        })
    }
}

fn head_norm(spec: HeadNormSpec) -> HeadNorm {
    match spec {
        HeadNormSpec::None => HeadNorm::None,
        HeadNormSpec::Group(groups) => HeadNorm::GroupNorm { groups },
    }
}

impl<B: Backend> Detector<B> {
    /// Builds a freshly initialised detector from a validated spec.
    pub fn new(
        spec: &DetectorSpec,
        test: &TestSpec,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let policy = DetectorPolicy::from_spec(spec, test)?;
        let backbone_config = backbone_config(&spec.backbone)?;
        let backbone = backbone_config.init(device);
        let in_channels = neck_in_channels(
            &backbone_config,
            &policy.neck_input_strides,
            &format!("{}.min_level", spec.neck.key()),
        )?;

        let neck = Neck::new(&spec.neck, in_channels, device);
        let neck_channels = spec.neck.channels();
        let norm = head_norm(spec.head.norm);
        let head = if spec.head.shared_convs {
            SharedHeadConfig::new(
                neck_channels,
                spec.head.channels,
                spec.head.convs,
                spec.anchors_per_location(),
                1,
            )
            .with_prior_prob(spec.head.prior_prob as f64)
            .with_norm(norm)
            .with_segmentation(spec.segmentation.is_some())
            .init(device)
            .into()
        } else {
            RetinaHeadConfig::new(
                neck_channels,
                spec.head.channels,
                spec.head.convs,
                spec.anchors_per_location(),
                1,
            )
            .with_prior_prob(spec.head.prior_prob as f64)
            .with_norm(norm)
            .init(device)
            .into()
        };
        let attention = spec.attention.as_ref().map(|a| {
            AttentionHeadConfig::new(neck_channels, a.channels, a.convs)
                .with_norm(head_norm(a.norm))
                .init(device)
        });
        Ok(Self {
            backbone,
            neck,
            head,
            attention,
            policy,
        })
    }

    /// Loads the backbone's initial weights from `model.backbone.<kind>.weights`, if the spec
    /// names a file (a new run's initialisation; checkpoints hold every weight and do not
    /// need it). Returns the file that was loaded.
    ///
    /// # Errors
    /// [`ModelError::Weights`] naming the file and every missing / unexpected / mis-shaped key.
    pub fn load_initial_backbone_weights(
        mut self,
    ) -> Result<(Self, Option<std::path::PathBuf>), ModelError> {
        let (backbone, file) = load_initial_backbone(self.backbone, &self.policy.spec.backbone)?;
        self.backbone = backbone;
        Ok((self, file))
    }

    /// Runs the network.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    /// - returns flattened outputs over `N = Σ_levels H_l · W_l · A` anchors, and with
    ///   attention one `[B, 1, H_l, W_l]` logit map per level.
    ///
    /// With `[model.attention]` (FAN, §3.2), every level's features are multiplied by
    /// `exp(σ(attention logit))` before the class and box subnets.
    ///
    /// With `[model.segmentation]` (DF²S², §3.2) the segmentation logits are computed here
    /// too: `forward` cannot tell training from inference (no mode flags), and the branch
    /// costs one 3×3 conv to one channel per level on the shared convs' output (at 256
    /// channels about 1/1000 of the shared head's multiply-adds); `postprocess` ignores them.
    pub fn forward(&self, images: Tensor<B, 4>) -> RawOutputs<B> {
        let [_, _, height, width] = images.dims();
        let c = self.backbone.forward(images);
        let inputs = c
            .select(&self.policy.neck_input_strides)
            .expect("the backbone returns every stride the neck needs");
        let pyramid = self.neck.forward(inputs);
        let feature_sizes = pyramid.sizes().into_iter().map(|[h, w]| (h, w)).collect();
        let (pyramid, attention_logits) = match &self.attention {
            Some(attention) => {
                let logits = attention.forward(&pyramid);
                (AttentionHead::attend(pyramid, &logits), Some(logits))
            }
            None => (pyramid, None),
        };
        let out = self.head.forward(&pyramid);
        RawOutputs {
            cls_logits: flatten_levels(out.cls, 1),
            box_deltas: flatten_levels(out.boxes, 4),
            feature_sizes,
            input_size: (height, width),
            attention_logits,
            segmentation_logits: out.segmentation,
        }
    }

    /// The anchors matching `outputs`, in the same order (xyxy pixels of the input).
    pub fn anchors(&self, outputs: &RawOutputs<B>) -> Anchors {
        self.policy.anchors.generate(&outputs.feature_sizes)
    }

    /// The spec this detector was built from.
    pub fn spec(&self) -> &DetectorSpec {
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

    /// The loss settings.
    pub fn loss_spec(&self) -> &LossSpec {
        &self.policy.spec.loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use visage_heads::DetectionHead;

    pub(crate) fn tiny_spec() -> DetectorSpec {
        toml::from_str(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.fpn]
            channels = 16
            min_level = 3
            max_level = 6
            [head]
            channels = 16
            convs = 1
            norm = { group = 4 }
            [anchors]
            base_factor = 2.0
            scales = [1.0, 1.5]
            ratios = [1.0]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.4
            "#,
        )
        .unwrap()
    }

    #[test]
    fn output_shapes_match_the_anchors_per_level() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&tiny_spec(), &TestSpec::default(), &device).unwrap();
        // 70 × 45: odd sizes exercise the ceil semantics of every stride.
        let images = Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device);
        let out = det.forward(images);
        assert_eq!(out.feature_sizes, vec![(9, 6), (5, 3), (3, 2), (2, 1)]);
        let n = (9 * 6 + 5 * 3 + 3 * 2 + 2) * 2;
        assert_eq!(out.cls_logits.dims(), [2, n, 1]);
        assert_eq!(out.box_deltas.dims(), [2, n, 4]);
        assert_eq!(det.anchors(&out).boxes.len(), n);
        assert!(out.attention_logits.is_none());
        assert!(det.attention.is_none());
    }

    #[test]
    fn attention_logits_match_every_level_size() {
        let device = Default::default();
        let mut spec = tiny_spec();
        spec.attention =
            Some(toml::from_str("channels = 8\nconvs = 2\nnorm = { group = 4 }").unwrap());
        let det = Detector::<Flex>::new(&spec, &TestSpec::default(), &device).unwrap();
        let attention = det.attention.as_ref().unwrap();
        assert_eq!(attention.subnet.convs.len(), 2);
        assert_eq!(attention.subnet.predictor.weight.dims(), [1, 8, 3, 3]);
        let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device));
        assert_eq!(out.feature_sizes, vec![(9, 6), (5, 3), (3, 2), (2, 1)]);
        let logits = out.attention_logits.as_ref().unwrap();
        assert_eq!(logits.len(), 4);
        for (logit, &(h, w)) in logits.iter().zip(&out.feature_sizes) {
            assert_eq!(logit.dims(), [2, 1, h, w]);
        }
        let n = (9 * 6 + 5 * 3 + 3 * 2 + 2) * 2;
        assert_eq!(out.cls_logits.dims(), [2, n, 1]);
        assert_eq!(out.box_deltas.dims(), [2, n, 4]);
        // The attention parameters live under `attention.subnet.*`.
        let paths: Vec<String> = visage_backbone::weights::parameter_shapes::<Flex, _>(&det)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("attention.subnet.predictor")),
            "{paths:?}"
        );
    }

    /// DF²S² at test size: FFP from C_min to P6, one shared conv, segmentation on.
    pub(crate) fn df2s2_spec(min_level: u32) -> DetectorSpec {
        toml::from_str(&format!(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.ffp]
            channels = 16
            min_level = {min_level}
            max_level = 6
            upsample_kernel = 3
            [head]
            channels = 16
            convs = 1
            shared_convs = true
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 4.0
            scales = [1.0]
            ratios = [1.0, 1.5]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.5
            [segmentation]
            loss_weight = 1.0
            "#
        ))
        .unwrap()
    }

    fn paths(det: &Detector<Flex>) -> Vec<String> {
        visage_backbone::weights::parameter_shapes::<Flex, _>(det)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    #[test]
    fn ffp_output_shapes_and_segmentation_logits_per_level() {
        let device = Default::default();
        for (min_level, sizes) in [
            // 70 × 45 from C2: 18×12, then ceil halvings down to P6.
            (2, vec![(18, 12), (9, 6), (5, 3), (3, 2), (2, 1)]),
            (3, vec![(9, 6), (5, 3), (3, 2), (2, 1)]),
        ] {
            let det = Detector::<Flex>::new(&df2s2_spec(min_level), &TestSpec::default(), &device)
                .unwrap();
            assert!(matches!(det.neck, Neck::Ffp(_)));
            let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device));
            assert_eq!(out.feature_sizes, sizes);
            let n: usize = sizes.iter().map(|(h, w)| h * w * 2).sum();
            assert_eq!(out.cls_logits.dims(), [2, n, 1]);
            assert_eq!(out.box_deltas.dims(), [2, n, 4]);
            assert_eq!(det.anchors(&out).boxes.len(), n);
            assert!(out.attention_logits.is_none());
            let seg = out
                .segmentation_logits
                .as_ref()
                .expect("segmentation logits");
            assert_eq!(seg.len(), sizes.len());
            for (logit, &(h, w)) in seg.iter().zip(&sizes) {
                assert_eq!(logit.dims(), [2, 1, h, w]);
            }
        }
    }

    #[test]
    fn the_shared_head_holds_one_conv_stack_and_the_segmentation_predictor() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&df2s2_spec(3), &TestSpec::default(), &device).unwrap();
        let DetectionHead::Shared(head) = &det.head else {
            panic!("a shared head")
        };
        assert_eq!(head.convs.len(), 1);
        assert_eq!(head.cls_predictor.weight.dims(), [2, 16, 3, 3]);
        assert_eq!(head.box_predictor.weight.dims(), [8, 16, 3, 3]);
        assert_eq!(
            head.seg_predictor.as_ref().unwrap().weight.dims(),
            [1, 16, 3, 3]
        );
        let keys = paths(&det);
        for prefix in [
            "neck.upsample.0",
            "neck.projection.3",
            "head.convs.0.conv",
            "head.cls_predictor",
            "head.box_predictor",
            "head.seg_predictor",
        ] {
            assert!(
                keys.iter().any(|p| p.starts_with(prefix)),
                "{prefix}: {keys:?}"
            );
        }
        assert!(!keys.iter().any(|p| p.contains("subnet")), "{keys:?}");
        // Without [model.segmentation] the shared head has no segmentation predictor.
        let mut spec = df2s2_spec(3);
        spec.segmentation = None;
        let det = Detector::<Flex>::new(&spec, &TestSpec::default(), &device).unwrap();
        assert!(!paths(&det).iter().any(|p| p.contains("seg_predictor")));
        let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
        assert!(out.segmentation_logits.is_none());
    }

    #[test]
    fn retinanet_parameter_paths_do_not_name_the_neck_or_head_variant() {
        // The FPN and the separate subnets keep the keys they had as plain struct fields:
        // the detector's `neck.*` / `head.*` keys are the modules' own, prefixed.
        let device = Default::default();
        let det = Detector::<Flex>::new(&tiny_spec(), &TestSpec::default(), &device).unwrap();
        let Neck::Fpn(fpn) = &det.neck else {
            panic!("an FPN")
        };
        let DetectionHead::Separate(head) = &det.head else {
            panic!("separate subnets")
        };
        let own = |prefix: &str, inner: Vec<(String, Vec<usize>)>| -> Vec<String> {
            inner
                .into_iter()
                .map(|(p, _)| format!("{prefix}.{p}"))
                .collect()
        };
        let mut expected = own(
            "neck",
            visage_backbone::weights::parameter_shapes::<Flex, _>(fpn),
        );
        expected.extend(own(
            "head",
            visage_backbone::weights::parameter_shapes::<Flex, _>(head),
        ));
        let mut got: Vec<String> = paths(&det)
            .into_iter()
            .filter(|p| p.starts_with("neck.") || p.starts_with("head."))
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        assert!(got.iter().any(|p| p.starts_with("head.cls_subnet.")));
        assert!(got.iter().any(|p| p.starts_with("neck.lateral.")));
    }

    fn mobilenet_spec(min_level: u32) -> DetectorSpec {
        let mut spec = tiny_spec();
        spec.backbone = BackboneSpec::Mobilenet(crate::spec::MobileNetSpec {
            width_multiplier: 0.25,
            frozen_bn: false,
            weights: None,
        });
        let crate::spec::NeckSpec::Fpn(fpn) = &mut spec.neck else {
            unreachable!("tiny_spec has an FPN")
        };
        fpn.min_level = min_level;
        spec
    }

    #[test]
    fn mobilenet_backbone_feeds_the_fpn_from_stride_8() {
        let device = Default::default();
        let spec = mobilenet_spec(3);
        let det = Detector::<Flex>::new(&spec, &TestSpec::default(), &device).unwrap();
        let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 64, 96], &device));
        assert_eq!(out.feature_sizes, vec![(8, 12), (4, 6), (2, 3), (1, 2)]);
        // MobileNet has no stride-4 level: an FPN from P2 is refused, naming the key.
        let err = mobilenet_spec(2).validate().unwrap_err().to_string();
        assert!(
            err.contains("model.neck.fpn.min_level") && err.contains("stride-4"),
            "{err}"
        );
    }

    #[test]
    fn initial_weights_file_errors_name_the_file() {
        let device = Default::default();
        let mut spec = tiny_spec();
        if let BackboneSpec::Resnet(r) = &mut spec.backbone {
            r.weights = Some("no/such/resnet18.pth".into());
        }
        let det = Detector::<Flex>::new(&spec, &TestSpec::default(), &device).unwrap();
        let err = det.load_initial_backbone_weights().unwrap_err().to_string();
        assert!(err.contains("no/such/resnet18.pth"), "{err}");
        // Without a file nothing is read.
        let det = Detector::<Flex>::new(&tiny_spec(), &TestSpec::default(), &device).unwrap();
        assert!(det.load_initial_backbone_weights().unwrap().1.is_none());
    }
}
