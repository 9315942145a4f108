//! A step's gradients as one flat tensor, so one all-reduce sums them all (instead of one
//! per parameter), and back.
//!
//! Layout (the same on every peer: parameters in the module's visit order, fixed by the
//! spec): every float parameter's gradient flattened, zeros where the peer has none, then one
//! flag per parameter, 1 where the peer has a gradient. After the sum, a parameter gets a
//! gradient when any peer had one.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The float parameters of a model in visit order: what [`flatten`](Self::flatten) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradientLayout {
    params: Vec<(ParamId, usize)>,
}

impl GradientLayout {
    /// The layout of `model`'s float parameters (initialised ones: after a forward pass).
    pub fn of<B: Backend, M: Module<B>>(model: &M) -> Self {
        struct Collect(Vec<(ParamId, usize)>);
        impl<B: Backend> ModuleVisitor<B> for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.push((param.id, param.val().shape().num_elements()));
            }
        }
        let mut collect = Collect(Vec::new());
        model.visit(&mut collect);
        Self { params: collect.0 }
    }

    /// Values in the flat tensor: every gradient's elements, then one flag per parameter.
    pub fn len(&self) -> usize {
        self.params.iter().map(|(_, n)| n).sum::<usize>() + self.params.len()
    }

    /// Whether the model has no float parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// `[len()]` on `device`: the gradients of `model`'s parameters in `grads` (inner
    /// backend `I`) in layout order.
    ///
    /// # Panics
    /// If `model` has another layout.
    pub fn flatten<B: Backend, M: Module<B>, I: Backend>(
        &self,
        model: &M,
        grads: &GradientsParams,
        device: &I::Device,
    ) -> Tensor<I, 1> {
        struct Gather<'a, I: Backend> {
            grads: &'a GradientsParams,
            layout: &'a GradientLayout,
            device: &'a I::Device,
            pieces: Vec<Tensor<I, 1>>,
            flags: Vec<f32>,
        }
        impl<B: Backend, I: Backend> ModuleVisitor<B> for Gather<'_, I> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let (id, n) = self.layout.params[self.flags.len()];
                assert_eq!(id, param.id, "a model of another layout");
                match self.grads.get::<I, D>(id) {
                    Some(g) => {
                        self.pieces.push(g.reshape([n]));
                        self.flags.push(1.0);
                    }
                    None => {
                        self.pieces.push(Tensor::zeros([n], self.device));
                        self.flags.push(0.0);
                    }
                }
            }
        }
        let mut gather = Gather {
            grads,
            layout: self,
            device,
            pieces: Vec::with_capacity(self.params.len() + 1),
            flags: Vec::with_capacity(self.params.len()),
        };
        model.visit(&mut gather);
        assert_eq!(
            gather.flags.len(),
            self.params.len(),
            "a model of another layout"
        );
        let flags = Tensor::from_floats(gather.flags.as_slice(), device);
        gather.pieces.push(flags);
        Tensor::cat(gather.pieces, 0)
    }

    /// The gradients of `model`'s parameters from a flat tensor laid out by
    /// [`flatten`](Self::flatten) (summed over peers): those whose flag is above zero.
    ///
    /// # Panics
    /// If `flat` does not have [`len`](Self::len) values or `model` another layout.
    pub fn unflatten<B: Backend, M: Module<B>, I: Backend>(
        &self,
        model: &M,
        flat: Tensor<I, 1>,
    ) -> GradientsParams {
        assert_eq!(
            flat.dims()[0],
            self.len(),
            "a flat gradient of another layout"
        );
        let values: usize = self.params.iter().map(|(_, n)| n).sum();
        let flags: Vec<f32> = flat
            .clone()
            .slice(values..self.len())
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 flags");
        struct Split<'a, I: Backend> {
            flat: Tensor<I, 1>,
            flags: &'a [f32],
            layout: &'a GradientLayout,
            index: usize,
            offset: usize,
            grads: GradientsParams,
        }
        impl<B: Backend, I: Backend> ModuleVisitor<B> for Split<'_, I> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let (id, n) = self.layout.params[self.index];
                assert_eq!(id, param.id, "a model of another layout");
                if self.flags[self.index] > 0.0 {
                    let dims: [usize; D] = param.val().dims();
                    let g = self
                        .flat
                        .clone()
                        .slice(self.offset..self.offset + n)
                        .reshape(dims);
                    self.grads.register::<I, D>(id, g);
                }
                self.index += 1;
                self.offset += n;
            }
        }
        let mut split = Split {
            flat,
            flags: &flags,
            layout: self,
            index: 0,
            offset: 0,
            grads: GradientsParams::new(),
        };
        model.visit(&mut split);
        assert_eq!(split.index, self.params.len(), "a model of another layout");
        split.grads
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    #[test]
    fn gradients_round_trip_and_missing_ones_stay_missing() {
        let device = Default::default();
        let model: Linear<Flex> = LinearConfig::new(3, 2).init(&device);
        let layout = GradientLayout::of(&model);
        assert_eq!(layout.len(), 6 + 2 + 2);
        let mut grads = GradientsParams::new();
        let w = Tensor::<Flex, 2>::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device);
        grads.register::<Flex, 2>(model.weight.id, w.clone());
        let flat = layout.flatten::<Flex, _, Flex>(&model, &grads, &device);
        let values: Vec<f32> = flat.clone().into_data().to_vec().unwrap();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 1.0, 0.0]);
        let back = layout.unflatten(&model, flat);
        assert_eq!(back.len(), 1, "the bias had no gradient anywhere");
        let again = back.get::<Flex, 2>(model.weight.id).unwrap();
        assert_eq!(again.into_data(), w.into_data());
    }
}
