//! SRN's head (Chi et al. 2019, §3; its public test code): a class branch and a box branch,
//! each `3×3 conv + ReLU → RFE → 3×3 conv + ReLU → 1×1 predictor`, applied with the same
//! weights to every pyramid level of both of SRN's feature sets (first step: 1×1 projections
//! of C2..C7; second step: the FPN). The two branches can run on different levels, since
//! SRN's first step classifies only on its low levels and regresses only on its high ones.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::Initializer;
use burn::prelude::*;
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::rfe::{Rfe, RfeConfig};
use crate::subnet::{conv_stack, validate_norm, ConvBlock};
use crate::{HeadError, HeadNorm};

/// Configuration of an [`SrnHead`].
#[derive(Config, Debug)]
pub struct SrnHeadConfig {
    /// Channels of the pyramid levels (256 in SRN).
    pub in_channels: usize,
    /// Channels of the branches' convs (256 in SRN; a multiple of 4 with RFE).
    pub channels: usize,
    /// Anchors per location `A` (2 in SRN).
    pub num_anchors: usize,
    /// Prior face probability π: the class predictor's bias is `-ln((1 - π) / π)`.
    #[config(default = 0.01)]
    pub prior_prob: f64,
    /// Normalisation of the two 3×3 convs of each branch.
    #[config(default = "HeadNorm::None")]
    pub norm: HeadNorm,
    /// Whether the branches hold an RFE between their two 3×3 convs (SRN: yes).
    #[config(default = true)]
    pub rfe: bool,
    /// Standard deviation of the normal initialisation of every weight.
    #[config(default = 0.01)]
    pub init_std: f64,
}

impl SrnHeadConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        for (value, name) in [
            (self.in_channels, "in_channels"),
            (self.channels, "channels"),
            (self.num_anchors, "num_anchors"),
        ] {
            if value == 0 {
                return Err(HeadError::Zero(name));
            }
        }
        if !(self.prior_prob > 0.0 && self.prior_prob < 1.0) {
            return Err(HeadError::InvalidPrior(self.prior_prob));
        }
        validate_norm(self.norm, self.channels)?;
        if self.rfe {
            RfeConfig::new(self.channels).validate()?;
        }
        Ok(())
    }

    /// Builds the head: weights `N(0, init_std)`, biases 0, class predictor bias
    /// `-ln((1 - π) / π)`.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> SrnHead<B> {
        if let Err(e) = self.validate() {
            panic!("invalid SrnHeadConfig: {e}");
        }
        let pi = self.prior_prob;
        SrnHead {
            cls_branch: self.branch(self.num_anchors, -((1.0 - pi) / pi).ln(), device),
            box_branch: self.branch(self.num_anchors * 4, 0.0, device),
            num_anchors: self.num_anchors,
        }
    }

    fn branch<B: KernelBackend>(&self, out: usize, bias: f64, device: &B::Device) -> SrnBranch<B> {
        let block = |c_in| {
            conv_stack(c_in, self.channels, 1, self.norm, self.init_std, device)
                .0
                .pop()
                .expect("one block")
        };
        let mut predictor = Conv2dConfig::new([self.channels, out], [1, 1])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: self.init_std,
            })
            .init(device);
        predictor.bias = Some(Initializer::Constant { value: bias }.init([out], device));
        SrnBranch {
            conv_in: block(self.in_channels),
            rfe: self.rfe.then(|| {
                RfeConfig::new(self.channels)
                    .with_init_std(self.init_std)
                    .init(device)
            }),
            conv_out: block(self.channels),
            predictor,
        }
    }
}

/// One branch: `3×3 conv (+ norm) + ReLU → RFE → 3×3 conv (+ norm) + ReLU → 1×1 predictor`.
#[derive(Module, Debug)]
pub struct SrnBranch<B: Backend> {
    /// The first 3×3 block.
    pub conv_in: ConvBlock<B>,
    /// Receptive field enrichment; `None` when the head is built without it.
    pub rfe: Option<Rfe<B>>,
    /// The second 3×3 block.
    pub conv_out: ConvBlock<B>,
    /// The `1×1` predictor (no activation).
    pub predictor: Conv2d<B>,
}

impl<B: KernelBackend> SrnBranch<B> {
    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out, h, w]` (raw)
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.conv_in.forward(input);
        let x = match &self.rfe {
            Some(rfe) => rfe.forward(x),
            None => x,
        };
        conv2d_layer(&self.predictor, self.conv_out.forward(x))
    }
}

/// SRN's class and box branches, shared across levels and both steps.
#[derive(Module, Debug)]
pub struct SrnHead<B: Backend> {
    /// `A` face logits per location.
    pub cls_branch: SrnBranch<B>,
    /// `A · 4` box deltas per location.
    pub box_branch: SrnBranch<B>,
    /// Anchors per location `A`.
    pub num_anchors: usize,
}

impl<B: KernelBackend> SrnHead<B> {
    /// The class branch on each given level.
    ///
    /// # Shapes
    /// - `levels`: `[batch, in_channels, h_l, w_l]` each
    /// - output: `[batch, A, h_l, w_l]` each (channel `a`: the face logit of anchor `a`)
    pub fn classify(&self, levels: &[Tensor<B, 4>]) -> Vec<Tensor<B, 4>> {
        levels
            .iter()
            .map(|x| self.cls_branch.forward(x.clone()))
            .collect()
    }

    /// The box branch on each given level.
    ///
    /// # Shapes
    /// - `levels`: `[batch, in_channels, h_l, w_l]` each
    /// - output: `[batch, A · 4, h_l, w_l]` each (channel `a · 4 + j`)
    pub fn regress(&self, levels: &[Tensor<B, 4>]) -> Vec<Tensor<B, 4>> {
        levels
            .iter()
            .map(|x| self.box_branch.forward(x.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    type B = Flex;

    #[test]
    fn branch_shapes_prior_bias_and_rfe_option() {
        let device = Default::default();
        let config = SrnHeadConfig::new(8, 12, 2).with_norm(HeadNorm::GroupNorm { groups: 4 });
        let head = config.init::<B>(&device);
        assert_eq!(head.cls_branch.predictor.weight.dims(), [2, 12, 1, 1]);
        assert_eq!(head.box_branch.predictor.weight.dims(), [8, 12, 1, 1]);
        assert_eq!(head.cls_branch.conv_in.conv.weight.dims(), [12, 8, 3, 3]);
        assert!(head.cls_branch.rfe.is_some() && head.box_branch.rfe.is_some());
        let bias: Vec<f32> = head
            .cls_branch
            .predictor
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec()
            .unwrap();
        let expected = -(0.99f32 / 0.01).ln();
        assert!(bias.iter().all(|b| (b - expected).abs() < 1e-5), "{bias:?}");

        let levels = [
            Tensor::<B, 4>::random([2, 8, 9, 7], Distribution::Normal(0.0, 1.0), &device),
            Tensor::<B, 4>::random([2, 8, 5, 4], Distribution::Normal(0.0, 1.0), &device),
        ];
        let cls = head.classify(&levels);
        let boxes = head.regress(&levels[1..]);
        assert_eq!(cls[0].dims(), [2, 2, 9, 7]);
        assert_eq!(cls[1].dims(), [2, 2, 5, 4]);
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].dims(), [2, 8, 5, 4]);

        let plain = config.clone().with_rfe(false).init::<B>(&device);
        assert!(plain.cls_branch.rfe.is_none());
        assert_eq!(plain.classify(&levels[..1])[0].dims(), [2, 2, 9, 7]);
        // RFE needs channels divisible by 4.
        assert!(SrnHeadConfig::new(8, 6, 2).validate().is_err());
        assert!(SrnHeadConfig::new(8, 6, 2)
            .with_rfe(false)
            .validate()
            .is_ok());
    }
}
