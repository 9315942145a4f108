//! RetinaFace's network (Deng et al.) in Pytorch_Retinaface's exact module layout: backbone
//! (`body`: MobileNet-0.25 or ResNet-50), three-level FPN, an SSH context module per level,
//! and per-level 1×1 class (2-way), box (4) and landmark (10) heads with two anchors per
//! location. Its checkpoints load through [`RETINAFACE_MNET`] / [`RETINAFACE_R50`].

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use visage_backbone::conv::{path_to_sequential_key, sequential_key_to_path};
use visage_backbone::weights::{is_batch_norm_counter, TorchLayout};
use visage_backbone::{mobilenet, resnet, Backbone, BackboneConfig};
use visage_heads::flatten_levels;
use visage_kernels::{conv2d_layer, KernelBackend};
use visage_neck::{validate_ssh_channels, NeckError, RetinaFaceFpn, Ssh, SSH_TORCH_BLOCKS};

/// Configuration of a [`RetinaFaceNet`].
#[derive(Debug, Clone)]
pub struct RetinaFaceNetConfig {
    /// MobileNet-0.25 (levels of strides 8, 16, 32 used as they are) or a ResNet (C3..C5).
    pub backbone: BackboneConfig,
    /// Channels of the FPN and SSH outputs (Pytorch_Retinaface: 64 for MobileNet, 256 for
    /// ResNet-50).
    pub out_channels: usize,
    /// Anchors per location (Pytorch_Retinaface: 2, the two `min_sizes` of each level).
    pub anchors_per_location: usize,
    /// Frozen batch norm in the FPN and SSH modules.
    pub frozen_bn: bool,
}

/// RetinaFace's raw outputs over all priors, in Pytorch_Retinaface's order (level, y, x,
/// anchor).
#[derive(Debug, Clone)]
pub struct RetinaFaceOutputs<B: Backend> {
    /// `[B, N, 4]` encoded boxes (SSD coding with variances, see `visage_boxes::BoxCoder`).
    pub boxes: Tensor<B, 3>,
    /// `[B, N, 2]` class logits (background, face); softmax gives the scores.
    pub class_logits: Tensor<B, 3>,
    /// `[B, N, 10]` encoded landmarks (five points, x then y).
    pub landmarks: Tensor<B, 3>,
    /// `(height, width)` of each level, finest first.
    pub feature_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of the input batch.
    pub input_size: (usize, usize),
    /// `[B, N, code + 16]` raw outputs of the dense 3D branch (`[model.mesh]`), else `None`.
    pub dense: Option<Tensor<B, 3>>,
    /// `[B, 3, H, W]` the input batch, kept for the mesh branch's pixel loss (`None` without
    /// the branch).
    pub images: Option<Tensor<B, 4>>,
}

/// The RetinaFace network.
#[derive(Module, Debug)]
pub struct RetinaFaceNet<B: Backend> {
    /// The backbone (torch: `body`).
    pub body: Backbone<B>,
    /// The FPN (torch: `fpn`).
    pub fpn: RetinaFaceFpn<B>,
    /// SSH of the finest level.
    pub ssh1: Ssh<B>,
    /// SSH of the middle level.
    pub ssh2: Ssh<B>,
    /// SSH of the coarsest level.
    pub ssh3: Ssh<B>,
    /// Per-level 1×1 class heads, `2·A` channels (torch: `ClassHead.i.conv1x1`).
    pub class_head: Vec<Conv2d<B>>,
    /// Per-level 1×1 box heads, `4·A` channels (torch: `BboxHead.i.conv1x1`).
    pub bbox_head: Vec<Conv2d<B>>,
    /// Per-level 1×1 landmark heads, `10·A` channels (torch: `LandmarkHead.i.conv1x1`).
    pub landmark_head: Vec<Conv2d<B>>,
}

/// Strides of the three levels (the backbone levels the FPN consumes, and the prior steps).
pub const RETINAFACE_STRIDES: [usize; 3] = [8, 16, 32];

impl RetinaFaceNetConfig {
    /// Checks the configuration: `out_channels` a positive multiple of 4 (SSH's rule).
    pub fn validate(&self) -> Result<(), NeckError> {
        validate_ssh_channels(self.out_channels)
    }

    /// Builds the network (freshly initialised).
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> RetinaFaceNet<B> {
        let strides = self.backbone.strides();
        let channels = self.backbone.out_channels();
        let in_channels = RETINAFACE_STRIDES.map(|s| {
            let i = strides
                .iter()
                .position(|&t| t == s)
                .expect("the backbone has strides 8, 16 and 32");
            channels[i]
        });
        let c = self.out_channels;
        let head = |per_anchor: usize| {
            (0..3)
                .map(|_| {
                    Conv2dConfig::new([c, per_anchor * self.anchors_per_location], [1, 1])
                        .init(device)
                })
                .collect::<Vec<_>>()
        };
        RetinaFaceNet {
            body: self.backbone.init(device),
            fpn: RetinaFaceFpn::new(in_channels, c, self.frozen_bn, device),
            ssh1: Ssh::new(c, c, self.frozen_bn, device),
            ssh2: Ssh::new(c, c, self.frozen_bn, device),
            ssh3: Ssh::new(c, c, self.frozen_bn, device),
            class_head: head(2),
            bbox_head: head(4),
            landmark_head: head(10),
        }
    }
}

impl<B: KernelBackend> RetinaFaceNet<B> {
    /// Runs the network.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` (Pytorch_Retinaface: BGR minus (104, 117, 123))
    /// - outputs over `N = Σ_l h_l · w_l · A` priors (see [`RetinaFaceOutputs`]; no dense
    ///   outputs: the mesh branch lives beside the network, see `RetinaFace`)
    pub fn forward(&self, images: Tensor<B, 4>) -> RetinaFaceOutputs<B> {
        self.forward_with_features(images).0
    }

    /// [`forward`](Self::forward), also returning the SSH features the heads read
    /// (`[B, C, h_l, w_l]` per level, finest first).
    pub fn forward_with_features(
        &self,
        images: Tensor<B, 4>,
    ) -> (RetinaFaceOutputs<B>, Vec<Tensor<B, 4>>) {
        let [_, _, height, width] = images.dims();
        let levels = self
            .body
            .forward(images)
            .select(&RETINAFACE_STRIDES)
            .expect("the backbone has strides 8, 16 and 32");
        let pyramid = self.fpn.forward(levels).into_tensors();
        let features: Vec<Tensor<B, 4>> = [&self.ssh1, &self.ssh2, &self.ssh3]
            .into_iter()
            .zip(pyramid)
            .map(|(ssh, x)| ssh.forward(x))
            .collect();
        let feature_sizes = features
            .iter()
            .map(|f| {
                let [_, _, h, w] = f.dims();
                (h, w)
            })
            .collect();
        let apply = |heads: &[Conv2d<B>], per_anchor| {
            let maps = heads
                .iter()
                .zip(&features)
                .map(|(head, f)| conv2d_layer(head, f.clone()))
                .collect();
            flatten_levels(maps, per_anchor)
        };
        let outputs = RetinaFaceOutputs {
            boxes: apply(&self.bbox_head, 4),
            class_logits: apply(&self.class_head, 2),
            landmarks: apply(&self.landmark_head, 10),
            feature_sizes,
            input_size: (height, width),
            dense: None,
            images: None,
        };
        (outputs, features)
    }
}

const FPN_BLOCKS: [&str; 5] = ["output1", "output2", "output3", "merge1", "merge2"];
const HEADS: [(&str, &str); 3] = [
    ("ClassHead", "class_head"),
    ("BboxHead", "bbox_head"),
    ("LandmarkHead", "landmark_head"),
];

/// Maps a Pytorch_Retinaface key of the neck and heads to a path (the `body.` part is done by
/// the caller); other keys are returned unchanged.
fn neck_key_to_path(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("fpn.") {
        return format!("fpn.{}", sequential_key_to_path(rest, &FPN_BLOCKS));
    }
    for ssh in ["ssh1", "ssh2", "ssh3"] {
        if let Some(rest) = key.strip_prefix(&format!("{ssh}.")) {
            for (torch, ours) in SSH_TORCH_BLOCKS {
                if let Some(tail) = rest.strip_prefix(&format!("{torch}.")) {
                    let mapped = sequential_key_to_path(&format!("{ours}.{tail}"), &[ours]);
                    return format!("{ssh}.{mapped}");
                }
            }
        }
    }
    for (torch, ours) in HEADS {
        if let Some(rest) = key.strip_prefix(&format!("{torch}.")) {
            if let Some((level, tail)) = rest.split_once(".conv1x1.") {
                return format!("{ours}.{level}.{tail}");
            }
        }
    }
    key.to_string()
}

/// The inverse of [`neck_key_to_path`].
fn neck_path_to_key(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("fpn.") {
        return format!("fpn.{}", path_to_sequential_key(rest, &FPN_BLOCKS));
    }
    for ssh in ["ssh1", "ssh2", "ssh3"] {
        if let Some(rest) = path.strip_prefix(&format!("{ssh}.")) {
            for (torch, ours) in SSH_TORCH_BLOCKS {
                if rest.starts_with(&format!("{ours}.")) {
                    let mapped = path_to_sequential_key(rest, &[ours]);
                    let tail = &mapped[ours.len()..];
                    return format!("{ssh}.{torch}{tail}");
                }
            }
        }
    }
    for (torch, ours) in HEADS {
        if let Some(rest) = path.strip_prefix(&format!("{ours}.")) {
            if let Some((level, tail)) = rest.split_once('.') {
                return format!("{torch}.{level}.conv1x1.{tail}");
            }
        }
    }
    path.to_string()
}

fn with_body(key: &str, body: fn(&str) -> String, neck: fn(&str) -> String) -> String {
    match key.strip_prefix("body.") {
        Some(rest) => format!("body.{}", body(rest)),
        None => neck(key),
    }
}

fn mnet_key_to_path(key: &str) -> String {
    with_body(key, mobilenet::torch_key_to_path, neck_key_to_path)
}
fn mnet_path_to_key(path: &str) -> String {
    with_body(path, mobilenet::path_to_torch_key, neck_path_to_key)
}
fn r50_key_to_path(key: &str) -> String {
    with_body(key, resnet::torch_key_to_path, neck_key_to_path)
}
fn r50_path_to_key(path: &str) -> String {
    with_body(path, resnet::path_to_torch_key, neck_path_to_key)
}

/// Pytorch_Retinaface's checkpoints hold no classifier; only BatchNorm counters are skipped.
fn is_ignored(key: &str) -> bool {
    is_batch_norm_counter(key)
}

/// Key layout of Pytorch_Retinaface's `mobilenet0.25_Final.pth` (after its `module.` prefix).
pub const RETINAFACE_MNET: TorchLayout = TorchLayout {
    name: "Pytorch_Retinaface RetinaFace (MobileNet-0.25)",
    key_to_path: mnet_key_to_path,
    path_to_key: mnet_path_to_key,
    is_ignored,
};

/// Key layout of Pytorch_Retinaface's `Resnet50_Final.pth` (after its `module.` prefix).
pub const RETINAFACE_R50: TorchLayout = TorchLayout {
    name: "Pytorch_Retinaface RetinaFace (ResNet-50)",
    key_to_path: r50_key_to_path,
    path_to_key: r50_path_to_key,
    is_ignored,
};

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use visage_backbone::weights::parameter_shapes;
    use visage_backbone::MobileNetV1Config;

    fn mnet() -> RetinaFaceNetConfig {
        RetinaFaceNetConfig {
            backbone: BackboneConfig::MobileNet(MobileNetV1Config::new()),
            out_channels: 64,
            anchors_per_location: 2,
            frozen_bn: false,
        }
    }

    #[test]
    fn outputs_cover_every_prior_in_order() {
        let device = Default::default();
        let net = mnet().init::<Flex>(&device);
        let out = net.forward(Tensor::zeros([2, 3, 64, 80], &device));
        assert_eq!(out.feature_sizes, vec![(8, 10), (4, 5), (2, 3)]);
        let n = (80 + 20 + 6) * 2;
        assert_eq!(out.boxes.dims(), [2, n, 4]);
        assert_eq!(out.class_logits.dims(), [2, n, 2]);
        assert_eq!(out.landmarks.dims(), [2, n, 10]);
    }

    #[test]
    fn torch_keys_round_trip_and_match_the_reference_names() {
        let device = Default::default();
        let net = mnet().init::<Flex>(&device);
        let keys: Vec<String> = parameter_shapes::<Flex, _>(&net)
            .into_iter()
            .map(|(path, _)| {
                let key = (RETINAFACE_MNET.path_to_key)(&path);
                assert_eq!((RETINAFACE_MNET.key_to_path)(&key), path);
                key
            })
            .collect();
        for expected in [
            "body.stage1.0.0.weight",
            "body.stage3.1.4.running_var",
            "fpn.output1.0.weight",
            "fpn.merge2.1.bias",
            "ssh1.conv3X3.0.weight",
            "ssh2.conv5X5_1.1.running_mean",
            "ssh3.conv7x7_3.1.weight",
            "ssh3.conv7X7_2.0.weight",
            "ClassHead.0.conv1x1.weight",
            "BboxHead.2.conv1x1.bias",
            "LandmarkHead.1.conv1x1.weight",
        ] {
            assert!(keys.iter().any(|k| k == expected), "{expected} missing");
        }
    }
}
