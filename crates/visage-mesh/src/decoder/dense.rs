//! A fully connected layer that computes in its input's float type (burn-nn's `Linear` uses
//! its weights' type), for the decoder's code → coarsest-mesh layer and the encoder's last.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::RngCore;

use crate::graph::{glorot_limit, uniform_param};

/// `y = x W + b` with `W` `[in, out]` (Glorot uniform, as Keras' `Dense` of the CMD code) and
/// `b` `[out]` (zeros).
#[derive(Module, Debug)]
pub(crate) struct Dense<B: Backend> {
    /// `[in, out]`.
    weight: Param<Tensor<B, 2>>,
    /// `[out]`.
    bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    /// A new layer; weights from `rng` when given, otherwise from Burn's generator.
    pub(crate) fn new<R: RngCore + ?Sized>(
        inputs: usize,
        outputs: usize,
        rng: Option<&mut R>,
        device: &B::Device,
    ) -> Self {
        Self {
            weight: uniform_param(
                [inputs, outputs],
                glorot_limit(inputs, outputs),
                rng,
                device,
            ),
            bias: Param::from_tensor(Tensor::zeros([outputs], device)),
        }
    }

    /// Input features.
    pub(crate) fn input_size(&self) -> usize {
        self.weight.dims()[0]
    }

    /// # Shapes
    /// - `x`: `[M, in]`
    /// - returns `[M, out]`, in `x`'s float type
    pub(crate) fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let dtype = x.dtype();
        x.matmul(self.weight.val().cast(dtype)) + self.bias.val().cast(dtype).unsqueeze::<2>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{DType, TensorData};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn shape_dtype_and_zero_bias() {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let dense = Dense::<Flex>::new(4, 3, Some(&mut rng), &device);
        let x = Tensor::<Flex, 2>::zeros([2, 4], &device);
        assert_eq!(
            dense.forward(x).into_data().to_vec::<f32>().unwrap(),
            vec![0.0; 6]
        );
        let x64 = Tensor::<Flex, 2>::from_data(
            TensorData::new(vec![1.0f64; 8], [2, 4]),
            (&device, DType::F64),
        );
        let y = dense.forward(x64);
        assert_eq!((y.dims(), y.dtype()), ([2, 3], DType::F64));
    }
}
