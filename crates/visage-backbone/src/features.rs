//! Typed multi-scale feature maps: a list of levels, each with its stride.
//!
//! Backbones return them (C2..C5), necks consume and return them (P3..P7), heads consume them.
//! Levels are always ordered finest first (increasing stride).

use burn::tensor::{backend::Backend, Tensor};
use visage_kernels::KernelBackend;

use crate::BackboneError;

/// One level of a feature pyramid.
#[derive(Debug, Clone)]
pub struct FeatureLevel<B: Backend> {
    /// Stride of this level with respect to the input image, in pixels (4 for C2, 8 for P3, ...).
    pub stride: usize,
    /// The feature map, `[batch, channels, height, width]`.
    pub features: Tensor<B, 4>,
}

impl<B: KernelBackend> FeatureLevel<B> {
    /// A level of the given stride.
    pub fn new(stride: usize, features: Tensor<B, 4>) -> Self {
        Self { stride, features }
    }

    /// Number of channels (dimension 1 of `features`).
    pub fn channels(&self) -> usize {
        self.features.dims()[1]
    }

    /// Spatial size `[height, width]` of the level.
    pub fn size(&self) -> [usize; 2] {
        let [_, _, h, w] = self.features.dims();
        [h, w]
    }
}

/// The levels of a feature pyramid, finest first (strictly increasing strides).
#[derive(Debug, Clone)]
pub struct FeatureLevels<B: Backend> {
    /// The levels, finest (smallest stride) first.
    pub levels: Vec<FeatureLevel<B>>,
}

impl<B: KernelBackend> FeatureLevels<B> {
    /// Wraps levels given finest first.
    ///
    /// # Panics
    /// If the strides are not strictly increasing (a programming error, not user input).
    pub fn new(levels: Vec<FeatureLevel<B>>) -> Self {
        assert!(
            levels.windows(2).all(|w| w[0].stride < w[1].stride),
            "feature levels must be ordered finest first, got strides {:?}",
            levels.iter().map(|l| l.stride).collect::<Vec<_>>()
        );
        Self { levels }
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether there is no level.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The strides of the levels, finest first.
    pub fn strides(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.stride).collect()
    }

    /// The channel counts of the levels, finest first.
    pub fn channels(&self) -> Vec<usize> {
        self.levels.iter().map(FeatureLevel::channels).collect()
    }

    /// The spatial sizes `[height, width]` of the levels, finest first.
    pub fn sizes(&self) -> Vec<[usize; 2]> {
        self.levels.iter().map(FeatureLevel::size).collect()
    }

    /// The level of the given stride, if any.
    pub fn get(&self, stride: usize) -> Option<&FeatureLevel<B>> {
        self.levels.iter().find(|l| l.stride == stride)
    }

    /// Keeps only the levels with the given strides, in the order given (which must be
    /// increasing), e.g. `select(&[8, 16, 32])` takes C3..C5 out of a ResNet's C2..C5.
    pub fn select(self, strides: &[usize]) -> Result<Self, BackboneError> {
        let available = self.strides();
        let mut slots: Vec<Option<FeatureLevel<B>>> = self.levels.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(strides.len());
        for &stride in strides {
            let level = available
                .iter()
                .position(|&s| s == stride)
                .and_then(|i| slots[i].take())
                .ok_or_else(|| BackboneError::MissingStride {
                    stride,
                    available: available.clone(),
                })?;
            out.push(level);
        }
        Ok(Self::new(out))
    }

    /// The feature tensors alone, finest first.
    pub fn into_tensors(self) -> Vec<Tensor<B, 4>> {
        self.levels.into_iter().map(|l| l.features).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn levels() -> FeatureLevels<B> {
        let device = Default::default();
        FeatureLevels::new(vec![
            FeatureLevel::new(4, Tensor::zeros([1, 2, 16, 12], &device)),
            FeatureLevel::new(8, Tensor::zeros([1, 3, 8, 6], &device)),
            FeatureLevel::new(16, Tensor::zeros([1, 5, 4, 3], &device)),
        ])
    }

    #[test]
    fn accessors_report_strides_channels_sizes() {
        let l = levels();
        assert_eq!(l.len(), 3);
        assert_eq!(l.strides(), vec![4, 8, 16]);
        assert_eq!(l.channels(), vec![2, 3, 5]);
        assert_eq!(l.sizes(), vec![[16, 12], [8, 6], [4, 3]]);
        assert_eq!(l.get(8).map(|x| x.channels()), Some(3));
        assert!(l.get(32).is_none());
    }

    #[test]
    fn select_keeps_requested_strides() {
        let l = levels().select(&[8, 16]).unwrap();
        assert_eq!(l.strides(), vec![8, 16]);
        assert_eq!(l.channels(), vec![3, 5]);
    }

    #[test]
    fn select_reports_missing_stride() {
        let err = levels().select(&[8, 32]).unwrap_err();
        assert_eq!(
            err,
            BackboneError::MissingStride {
                stride: 32,
                available: vec![4, 8, 16]
            }
        );
    }

    #[test]
    #[should_panic(expected = "finest first")]
    fn unordered_levels_panic() {
        let device = Default::default();
        let _ = FeatureLevels::<B>::new(vec![
            FeatureLevel::new(8, Tensor::zeros([1, 1, 2, 2], &device)),
            FeatureLevel::new(4, Tensor::zeros([1, 1, 4, 4], &device)),
        ]);
    }
}
