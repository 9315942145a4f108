//! SRN's receptive field enrichment (RFE, Chi et al. 2019, §3.3): four branches at a quarter
//! of the channels, `1×1 → (1×5 | 5×1 | 1×3 | 3×1) → 1×1`, each conv followed by a ReLU;
//! their outputs concatenated back to the full channels, a `1×1` conv + ReLU, and the input
//! added (a residual), so the head sees rectangular receptive fields matching faces'
//! aspect ratios. The branches use no normalisation (SRN's public code uses batch norm,
//! which a head shared across pyramid levels and two feature sets cannot hold per level).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::HeadError;

/// The spatial kernels of the four branches, `[height, width]`.
pub const RFE_KERNELS: [[usize; 2]; 4] = [[1, 5], [5, 1], [1, 3], [3, 1]];

/// Configuration of an [`Rfe`].
#[derive(Config, Debug)]
pub struct RfeConfig {
    /// Channels in and out (a multiple of 4: each branch has a quarter).
    pub channels: usize,
    /// Standard deviation of the normal initialisation of every weight (biases 0).
    #[config(default = 0.01)]
    pub init_std: f64,
}

impl RfeConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.channels == 0 {
            return Err(HeadError::Zero("channels"));
        }
        if !self.channels.is_multiple_of(RFE_KERNELS.len()) {
            return Err(HeadError::RfeChannels(self.channels));
        }
        Ok(())
    }

    /// Builds the module: weights `N(0, init_std)`, biases 0.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> Rfe<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RfeConfig: {e}");
        }
        let c = self.channels;
        let quarter = c / RFE_KERNELS.len();
        let branches = RFE_KERNELS
            .iter()
            .map(|&kernel| RfeBranch {
                reduce: conv(c, quarter, [1, 1], self.init_std, device),
                spatial: conv(quarter, quarter, kernel, self.init_std, device),
                expand: conv(quarter, quarter, [1, 1], self.init_std, device),
            })
            .collect();
        Rfe {
            branches,
            fuse: conv(c, c, [1, 1], self.init_std, device),
        }
    }
}

/// A stride-1 convolution padded to keep the size (`kernel / 2` on each side), weights
/// `N(0, std)`, bias 0.
fn conv<B: KernelBackend>(
    c_in: usize,
    c_out: usize,
    kernel: [usize; 2],
    std: f64,
    device: &B::Device,
) -> Conv2d<B> {
    let [pad_h, pad_w] = [kernel[0] / 2, kernel[1] / 2];
    let mut conv = Conv2dConfig::new([c_in, c_out], kernel)
        .with_padding(PaddingConfig2d::Explicit(pad_h, pad_w, pad_h, pad_w))
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    conv.bias = Some(Initializer::Zeros.init([c_out], device));
    conv
}

/// One branch: `1×1` (C → C/4), a rectangular conv, `1×1`, each with a ReLU.
#[derive(Module, Debug)]
pub struct RfeBranch<B: Backend> {
    /// `1×1`, C → C/4.
    pub reduce: Conv2d<B>,
    /// `1×5`, `5×1`, `1×3` or `3×1`, C/4 → C/4.
    pub spatial: Conv2d<B>,
    /// `1×1`, C/4 → C/4.
    pub expand: Conv2d<B>,
}

impl<B: KernelBackend> RfeBranch<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(conv2d_layer(&self.reduce, x));
        let x = relu(conv2d_layer(&self.spatial, x));
        relu(conv2d_layer(&self.expand, x))
    }
}

/// Receptive field enrichment: four rectangular branches, fused, plus the input.
#[derive(Module, Debug)]
pub struct Rfe<B: Backend> {
    /// The four branches, in the order of [`RFE_KERNELS`].
    pub branches: Vec<RfeBranch<B>>,
    /// `1×1`, C → C, on the concatenated branches (followed by a ReLU).
    pub fuse: Conv2d<B>,
}

impl<B: KernelBackend> Rfe<B> {
    /// # Shapes
    /// - `input`: `[batch, C, h, w]`
    /// - output: `[batch, C, h, w]` = `input + ReLU(fuse(cat(branches(input))))`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let branches: Vec<Tensor<B, 4>> = self
            .branches
            .iter()
            .map(|b| b.forward(input.clone()))
            .collect();
        input + relu(conv2d_layer(&self.fuse, Tensor::cat(branches, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::module::Param;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    type B = Flex;

    #[test]
    fn shapes_kernels_and_channels() {
        let device = Default::default();
        let rfe = RfeConfig::new(8).init::<B>(&device);
        assert_eq!(rfe.branches.len(), 4);
        for (branch, kernel) in rfe.branches.iter().zip(RFE_KERNELS) {
            assert_eq!(branch.reduce.weight.dims(), [2, 8, 1, 1]);
            assert_eq!(branch.spatial.weight.dims(), [2, 2, kernel[0], kernel[1]]);
            assert_eq!(branch.expand.weight.dims(), [2, 2, 1, 1]);
        }
        assert_eq!(rfe.fuse.weight.dims(), [8, 8, 1, 1]);
        // Odd sizes keep their size through every rectangular kernel.
        let x = Tensor::<B, 4>::random([2, 8, 7, 5], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(rfe.forward(x).dims(), [2, 8, 7, 5]);
        assert!(RfeConfig::new(6).validate().is_err());
        assert!(RfeConfig::new(0).validate().is_err());
    }

    #[test]
    fn zero_fuse_weights_make_it_the_identity_and_branches_see_rectangles() {
        let device = Default::default();
        let mut rfe = RfeConfig::new(4).init::<B>(&device);
        let x = Tensor::<B, 4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let fuse_dims = rfe.fuse.weight.dims();
        let mut zeroed = rfe.clone();
        zeroed.fuse.weight = Param::from_tensor(Tensor::zeros(fuse_dims, &device));
        zeroed
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&x.clone().into_data(), Tolerance::default());

        // All-ones weights: a unit impulse spreads along a row (1×5 branch) and a column
        // (5×1 branch) but not diagonally.
        let ones = |conv: &mut Conv2d<B>| {
            let dims = conv.weight.dims();
            conv.weight = Param::from_tensor(Tensor::ones(dims, &device));
        };
        for branch in &mut rfe.branches {
            ones(&mut branch.reduce);
            ones(&mut branch.spatial);
            ones(&mut branch.expand);
        }
        ones(&mut rfe.fuse);
        let mut impulse = vec![0.0f32; 4 * 7 * 7];
        impulse[3 * 7 + 3] = 1.0; // channel 0, centre
        let x = Tensor::<B, 4>::from_data(TensorData::new(impulse, [1, 4, 7, 7]), &device);
        let y: Vec<f32> = rfe.forward(x).into_data().to_vec().unwrap();
        let at = |r: usize, c: usize| y[r * 7 + c];
        assert!(at(3, 1) > 0.0 && at(3, 5) > 0.0, "1×5 reaches ±2 columns");
        assert!(at(1, 3) > 0.0 && at(5, 3) > 0.0, "5×1 reaches ±2 rows");
        assert_eq!(at(3, 0), 0.0, "nothing reaches 3 columns away");
        assert_eq!(at(2, 2), 0.0, "no branch is square");
    }
}
