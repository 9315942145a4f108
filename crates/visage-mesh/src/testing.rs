//! Helpers of the crate's unit tests.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;

/// An f32 tensor on the CPU from row-major values.
pub(crate) fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<Flex, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// A tensor's values, row-major.
pub(crate) fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}
