//! SSH context module (RetinaFace; Najibi et al.'s SSH) in Pytorch_Retinaface's layout.

use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_backbone::ConvNormAct;
use visage_kernels::KernelBackend;

use crate::NeckError;

/// One SSH context module: a 3×3 branch (C/2 channels) and 5×5 / 7×7 receptive fields built
/// from stacked 3×3 convolutions (C/4 each), concatenated, then ReLU.
///
/// Torch keys (`ssh1.conv3X3.0.weight`, `.conv5X5_1`, `.conv5X5_2`, `.conv7X7_2`, `.conv7x7_3`
/// — note the lower-case `x` of the last) map to the snake-case fields below.
#[derive(Module, Debug)]
pub struct Ssh<B: Backend> {
    /// 3×3 → C/2, no activation.
    pub conv3x3: ConvNormAct<B>,
    /// 3×3 → C/4, leaky ReLU (shared first step of the 5×5 and 7×7 branches).
    pub conv5x5_1: ConvNormAct<B>,
    /// 3×3 → C/4, no activation (5×5 branch output).
    pub conv5x5_2: ConvNormAct<B>,
    /// 3×3 → C/4, leaky ReLU.
    pub conv7x7_2: ConvNormAct<B>,
    /// 3×3 → C/4, no activation (7×7 branch output).
    pub conv7x7_3: ConvNormAct<B>,
}

/// SSH's channel rule: `out_channels` is a positive multiple of 4 (the output concatenates
/// `C/2 + C/4 + C/4` channels).
pub fn validate_ssh_channels(out_channels: usize) -> Result<(), NeckError> {
    if out_channels == 0 || !out_channels.is_multiple_of(4) {
        return Err(NeckError::Invalid {
            field: "out_channels",
            message: format!("must be a positive multiple of 4, got {out_channels}"),
        });
    }
    Ok(())
}

impl<B: KernelBackend> Ssh<B> {
    /// Every norm folded into its convolution (detection only, see `visage_backbone::fold`).
    pub fn fold_norms(self) -> Self {
        Self {
            conv3x3: self.conv3x3.fold_norms(),
            conv5x5_1: self.conv5x5_1.fold_norms(),
            conv5x5_2: self.conv5x5_2.fold_norms(),
            conv7x7_2: self.conv7x7_2.fold_norms(),
            conv7x7_3: self.conv7x7_3.fold_norms(),
        }
    }

    /// An SSH module `in_channels → out_channels` (a multiple of 4). The inner leaky ReLU
    /// slope is Pytorch_Retinaface's: 0.1 when `out_channels ≤ 64`, else 0 (ReLU).
    ///
    /// # Panics
    /// If `out_channels` is not a positive multiple of 4 ([`validate_ssh_channels`]).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        if let Err(e) = validate_ssh_channels(out_channels) {
            panic!("invalid SSH: {e}");
        }
        let slope = if out_channels <= 64 { 0.1 } else { 0.0 };
        let (half, quarter) = (out_channels / 2, out_channels / 4);
        let block = |i, o, act| ConvNormAct::new(i, o, 3, 1, act, frozen_bn, device);
        Ssh {
            conv3x3: block(in_channels, half, None),
            conv5x5_1: block(in_channels, quarter, Some(slope)),
            conv5x5_2: block(quarter, quarter, None),
            conv7x7_2: block(quarter, quarter, Some(slope)),
            conv7x7_3: block(quarter, quarter, None),
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h, w]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let c3 = self.conv3x3.forward(input.clone());
        let c5_1 = self.conv5x5_1.forward(input);
        let c5 = self.conv5x5_2.forward(c5_1.clone());
        let c7 = self.conv7x7_3.forward(self.conv7x7_2.forward(c5_1));
        relu(Tensor::cat(vec![c3, c5, c7], 1))
    }
}

/// Torch names of the SSH blocks, in the order of the fields.
pub const SSH_TORCH_BLOCKS: [(&str, &str); 5] = [
    ("conv3X3", "conv3x3"),
    ("conv5X5_1", "conv5x5_1"),
    ("conv5X5_2", "conv5x5_2"),
    ("conv7X7_2", "conv7x7_2"),
    ("conv7x7_3", "conv7x7_3"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn shapes_and_non_negative_output() {
        let device = Default::default();
        let ssh = Ssh::<Flex>::new(16, 64, false, &device);
        let x = Tensor::<Flex, 4>::random(
            [2, 16, 5, 7],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let y = ssh.forward(x);
        assert_eq!(y.dims(), [2, 64, 5, 7]);
        assert!(y.min().into_scalar() >= 0.0);
        assert_eq!(ssh.conv7x7_2.leaky_slope, 0.1);
        assert_eq!(
            Ssh::<Flex>::new(8, 256, true, &device)
                .conv5x5_1
                .leaky_slope,
            0.0
        );
    }
}
