//! RetinaFace's three-level FPN in Pytorch_Retinaface's layout (`fpn.output1..3`,
//! `fpn.merge1..2`): 1×1 laterals with BN and leaky ReLU, a top-down path with nearest
//! upsampling to the exact size, and a 3×3 merge after each addition.

use burn::prelude::*;
use visage_backbone::{ConvNormAct, FeatureLevel, FeatureLevels};
use visage_kernels::KernelBackend;

use crate::upsample_nearest_to;

/// The FPN of Pytorch_Retinaface: three inputs (strides 8, 16, 32), three outputs of
/// `out_channels`.
#[derive(Module, Debug)]
pub struct RetinaFaceFpn<B: Backend> {
    /// 1×1 lateral of the finest level.
    pub output1: ConvNormAct<B>,
    /// 1×1 lateral of the middle level.
    pub output2: ConvNormAct<B>,
    /// 1×1 lateral of the coarsest level.
    pub output3: ConvNormAct<B>,
    /// 3×3 after adding the upsampled middle level to the finest.
    pub merge1: ConvNormAct<B>,
    /// 3×3 after adding the upsampled coarsest level to the middle.
    pub merge2: ConvNormAct<B>,
}

impl<B: KernelBackend> RetinaFaceFpn<B> {
    /// Every norm folded into its convolution (detection only, see `visage_backbone::fold`).
    pub fn fold_norms(self) -> Self {
        Self {
            output1: self.output1.fold_norms(),
            output2: self.output2.fold_norms(),
            output3: self.output3.fold_norms(),
            merge1: self.merge1.fold_norms(),
            merge2: self.merge2.fold_norms(),
        }
    }

    /// An FPN from `in_channels` (finest first) to `out_channels`; leaky ReLU slope 0.1 when
    /// `out_channels ≤ 64`, else 0, as Pytorch_Retinaface.
    pub fn new(
        in_channels: [usize; 3],
        out_channels: usize,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        let act = Some(if out_channels <= 64 { 0.1 } else { 0.0 });
        let lateral = |c| ConvNormAct::new(c, out_channels, 1, 1, act, frozen_bn, device);
        let merge = || ConvNormAct::new(out_channels, out_channels, 3, 1, act, frozen_bn, device);
        RetinaFaceFpn {
            output1: lateral(in_channels[0]),
            output2: lateral(in_channels[1]),
            output3: lateral(in_channels[2]),
            merge1: merge(),
            merge2: merge(),
        }
    }

    /// # Shapes
    /// - `features`: three levels, finest first, `[batch, in_channels[k], h_k, w_k]`
    /// - output: the same strides and sizes with `out_channels` channels
    ///
    /// # Panics
    /// If `features` does not hold exactly three levels.
    pub fn forward(&self, features: FeatureLevels<B>) -> FeatureLevels<B> {
        let strides = features.strides();
        let [c1, c2, c3]: [Tensor<B, 4>; 3] = features
            .into_tensors()
            .try_into()
            .unwrap_or_else(|_| panic!("RetinaFaceFpn needs three levels"));
        let o1 = self.output1.forward(c1);
        let o2 = self.output2.forward(c2);
        let o3 = self.output3.forward(c3);
        let [_, _, h2, w2] = o2.dims();
        let o2 = self
            .merge2
            .forward(o2 + upsample_nearest_to(o3.clone(), [h2, w2]));
        let [_, _, h1, w1] = o1.dims();
        let o1 = self
            .merge1
            .forward(o1 + upsample_nearest_to(o2.clone(), [h1, w1]));
        FeatureLevels::new(
            [o1, o2, o3]
                .into_iter()
                .zip(strides)
                .map(|(t, s)| FeatureLevel::new(s, t))
                .collect(),
        )
    }
}
