//! Chebyshev graph convolution (Defferrard et al. 2016): a `K`-hop spectral filter on a mesh,
//! `y = Σ_{k<K} T_k(L̃) x θ_k (+ b)`, the layer of COMA and of the CMD mesh decoder.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::RngCore;

use super::{glorot_limit, uniform_param};

/// Configuration of a [`ChebConv`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChebConvConfig {
    /// Input channels per vertex.
    pub in_channels: usize,
    /// Output channels per vertex.
    pub out_channels: usize,
    /// Chebyshev order `K` (≥ 1): the filter reaches `K − 1` edges away. Default 6, as the
    /// CMD decoder. `K = 1` is a per-vertex linear layer.
    pub k: usize,
    /// Whether to add a learnt bias per output channel. Default true.
    pub bias: bool,
}

impl ChebConvConfig {
    /// `in_channels → out_channels` with `K = 6` and a bias.
    pub fn new(in_channels: usize, out_channels: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            k: 6,
            bias: true,
        }
    }

    /// The same with Chebyshev order `k`.
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// The same with or without a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// A layer with Glorot-uniform weights (`U(±sqrt(6 / (in + out)))`, as torch_geometric's
    /// `glorot` used by the CMD / COMA PyTorch code) drawn from Burn's generator, zero bias.
    ///
    /// # Panics
    /// If `k`, `in_channels` or `out_channels` is 0.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ChebConv<B> {
        self.build(None::<&mut dyn RngCore>, device)
    }

    /// The same with weights drawn from `rng` (deterministic for a seeded generator).
    ///
    /// # Panics
    /// If `k`, `in_channels` or `out_channels` is 0.
    pub fn init_with_rng<B: Backend>(
        &self,
        rng: &mut (impl RngCore + ?Sized),
        device: &B::Device,
    ) -> ChebConv<B> {
        self.build(Some(rng), device)
    }

    fn build<B: Backend, R: RngCore + ?Sized>(
        &self,
        rng: Option<&mut R>,
        device: &B::Device,
    ) -> ChebConv<B> {
        assert!(self.k >= 1, "ChebConv needs k >= 1");
        assert!(
            self.in_channels >= 1 && self.out_channels >= 1,
            "ChebConv needs at least one input and one output channel"
        );
        let limit = glorot_limit(self.in_channels, self.out_channels);
        let weight = uniform_param(
            [self.k, self.in_channels, self.out_channels],
            limit,
            rng,
            device,
        );
        let bias = self
            .bias
            .then(|| Param::from_tensor(Tensor::zeros([self.out_channels], device)));
        ChebConv { weight, bias }
    }
}

/// Chebyshev graph convolution: `y = Σ_{k<K} T_k(L̃) x θ_k + b` with `T_0 x = x`,
/// `T_1 x = L̃ x`, `T_k x = 2 L̃ T_{k−1} x − T_{k−2} x`.
#[derive(Module, Debug)]
pub struct ChebConv<B: Backend> {
    /// `θ`: `[K, in_channels, out_channels]`.
    pub weight: Param<Tensor<B, 3>>,
    /// `b`: `[out_channels]`, if the layer has one.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> ChebConv<B> {
    /// A layer from given weights (`[K, in, out]`) and optional bias (`[out]`), e.g. to load
    /// reference values.
    ///
    /// # Panics
    /// If the bias length is not the weight's last dimension.
    pub fn from_weights(weight: Tensor<B, 3>, bias: Option<Tensor<B, 1>>) -> Self {
        let [_, _, out] = weight.dims();
        if let Some(b) = &bias {
            assert_eq!(b.dims(), [out], "bias length must be out_channels");
        }
        Self {
            weight: Param::from_tensor(weight),
            bias: bias.map(Param::from_tensor),
        }
    }

    /// Chebyshev order `K`.
    pub fn k(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[2]
    }

    /// Filters `x` over the graph of `laplacian` (the scaled Laplacian of
    /// [`normalised_laplacian`](super::normalised_laplacian)). Computed in `x`'s float type:
    /// the weights and the Laplacian are cast to it (a no-op when they match), so float64
    /// inputs stay float64.
    ///
    /// The Chebyshev terms are computed vertex-major (`[V, M·C]`, one `V × V` product per
    /// order for the whole batch), then all orders meet the weights in one
    /// `[M·V, K·Cin] × [K·Cin, Cout]` product.
    ///
    /// # Shapes
    /// - `x`: `[M, V, in_channels]`
    /// - `laplacian`: `[V, V]`
    /// - returns `[M, V, out_channels]`
    ///
    /// # Panics
    /// If the channels or vertex counts do not match.
    pub fn forward(&self, x: Tensor<B, 3>, laplacian: Tensor<B, 2>) -> Tensor<B, 3> {
        let [m, v, c_in] = x.dims();
        let [k, w_in, c_out] = self.weight.dims();
        assert_eq!(
            c_in, w_in,
            "ChebConv: input has {c_in} channels, weights expect {w_in}"
        );
        let dtype = x.dtype();
        let weight = self.weight.val().cast(dtype).reshape([k * c_in, c_out]);
        let stacked = if k == 1 {
            x.reshape([m * v, c_in])
        } else {
            assert_eq!(
                laplacian.dims(),
                [v, v],
                "ChebConv: the Laplacian must be [V, V] for V = {v}"
            );
            let lap = laplacian.cast(dtype);
            let x0 = x.swap_dims(0, 1).reshape([v, m * c_in]);
            let mut terms = Vec::with_capacity(k);
            terms.push(x0.clone());
            terms.push(lap.clone().matmul(x0));
            for j in 2..k {
                let next =
                    lap.clone().matmul(terms[j - 1].clone()).mul_scalar(2.0) - terms[j - 2].clone();
                terms.push(next);
            }
            Tensor::stack::<3>(terms, 0)
                .reshape([k, v, m, c_in])
                .permute([2, 1, 0, 3])
                .reshape([m * v, k * c_in])
        };
        let out = stacked.matmul(weight).reshape([m, v, c_out]);
        match &self.bias {
            Some(bias) => out + bias.val().cast(dtype).reshape([1, 1, c_out]),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::normalised_laplacian;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{DType, Device, TensorData, Tolerance};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    type B = Flex;

    fn laplacian(device: &Device<B>) -> Tensor<B, 2> {
        let tris = [[0, 1, 2], [0, 2, 3], [2, 4, 3]];
        Tensor::from_data(
            TensorData::new(normalised_laplacian(5, &tris), [5, 5]),
            device,
        )
    }

    fn input(device: &Device<B>, m: usize, c: usize) -> Tensor<B, 3> {
        let values: Vec<f32> = (0..m * 5 * c)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [m, 5, c]), device)
    }

    #[test]
    fn output_shape_and_parameters() {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let conv = ChebConvConfig::new(3, 4).init_with_rng::<B>(&mut rng, &device);
        assert_eq!(
            (conv.k(), conv.in_channels(), conv.out_channels()),
            (6, 3, 4)
        );
        assert_eq!(conv.num_params(), 6 * 3 * 4 + 4);
        let y = conv.forward(input(&device, 2, 3), laplacian(&device));
        assert_eq!(y.dims(), [2, 5, 4]);
        let no_bias = ChebConvConfig::new(3, 4)
            .with_bias(false)
            .init::<B>(&device);
        assert_eq!(no_bias.num_params(), 6 * 3 * 4);
    }

    #[test]
    fn glorot_limit_and_seeded_determinism() {
        let device = Default::default();
        let config = ChebConvConfig::new(10, 6).with_k(3);
        let a = config.init_with_rng::<B>(&mut ChaCha8Rng::seed_from_u64(7), &device);
        let b = config.init_with_rng::<B>(&mut ChaCha8Rng::seed_from_u64(7), &device);
        a.weight
            .val()
            .into_data()
            .assert_eq(&b.weight.val().into_data(), true);
        let limit = (6.0f32 / 16.0).sqrt();
        let w: Vec<f32> = a.weight.val().into_data().to_vec().unwrap();
        assert!(w.iter().all(|v| v.abs() <= limit));
        assert!(w.iter().any(|v| v.abs() > limit * 0.5));
    }

    #[test]
    fn k1_is_a_per_vertex_linear_layer() {
        let device = Default::default();
        let conv = ChebConvConfig::new(3, 2)
            .with_k(1)
            .init_with_rng::<B>(&mut ChaCha8Rng::seed_from_u64(3), &device);
        let conv = ChebConv::from_weights(
            conv.weight.val(),
            Some(Tensor::from_floats([0.25, -1.0], &device)),
        );
        let x = input(&device, 2, 3);
        let y = conv.forward(x.clone(), laplacian(&device));
        let w = conv.weight.val().reshape([3, 2]).unsqueeze::<3>();
        let want =
            x.matmul(w) + Tensor::<B, 1>::from_floats([0.25, -1.0], &device).reshape([1, 1, 2]);
        y.into_data()
            .assert_approx_eq::<f32>(&want.into_data(), Tolerance::default());
    }

    #[test]
    fn matches_the_matrix_polynomial() {
        // y = Σ T_k(L) x θ_k with T_k(L) built as matrices on the host.
        let device = Default::default();
        let k = 4;
        let conv = ChebConvConfig::new(2, 3)
            .with_k(k)
            .with_bias(false)
            .init_with_rng::<B>(&mut ChaCha8Rng::seed_from_u64(5), &device);
        let x = input(&device, 1, 2);
        let y: Vec<f32> = conv
            .forward(x.clone(), laplacian(&device))
            .into_data()
            .to_vec()
            .unwrap();
        let l = normalised_laplacian(5, &[[0, 1, 2], [0, 2, 3], [2, 4, 3]]);
        let matmul = |a: &[f32], b: &[f32]| -> Vec<f32> {
            let mut c = vec![0.0; 25];
            for i in 0..5 {
                for j in 0..5 {
                    c[i * 5 + j] = (0..5).map(|t| a[i * 5 + t] * b[t * 5 + j]).sum();
                }
            }
            c
        };
        let eye: Vec<f32> = (0..25)
            .map(|i| if i % 6 == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut t = vec![eye, l.clone()];
        for j in 2..k {
            let lt = matmul(&l, &t[j - 1]);
            t.push(lt.iter().zip(&t[j - 2]).map(|(a, b)| 2.0 * a - b).collect());
        }
        let xv: Vec<f32> = x.into_data().to_vec().unwrap();
        let w: Vec<f32> = conv.weight.val().into_data().to_vec().unwrap();
        for v in 0..5 {
            for o in 0..3 {
                let mut want = 0.0f32;
                for (j, tj) in t.iter().enumerate() {
                    for u in 0..5 {
                        for c in 0..2 {
                            want += tj[v * 5 + u] * xv[u * 2 + c] * w[(j * 2 + c) * 3 + o];
                        }
                    }
                }
                assert!(
                    (y[v * 3 + o] - want).abs() < 1e-5,
                    "({v}, {o}): {} vs {want}",
                    y[v * 3 + o]
                );
            }
        }
    }

    #[test]
    fn gradients_reach_weight_and_bias() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let conv = ChebConvConfig::new(3, 4)
            .with_k(3)
            .init_with_rng::<A>(&mut ChaCha8Rng::seed_from_u64(9), &device);
        let x = Tensor::<A, 3>::from_data(input(&device, 2, 3).into_data(), &device).require_grad();
        let lap = Tensor::<A, 2>::from_data(laplacian(&device).into_data(), &device);
        let loss = conv.forward(x.clone(), lap).powf_scalar(2.0).sum();
        let grads = loss.backward();
        for (name, g) in [
            (
                "weight",
                conv.weight
                    .grad(&grads)
                    .map(|g| g.abs().sum().into_scalar()),
            ),
            (
                "bias",
                conv.bias
                    .as_ref()
                    .unwrap()
                    .grad(&grads)
                    .map(|g| g.abs().sum().into_scalar()),
            ),
            ("x", x.grad(&grads).map(|g| g.abs().sum().into_scalar())),
        ] {
            let g = g.unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(g > 0.0, "zero gradient for {name}");
        }
    }

    #[test]
    fn float64_in_float64_out() {
        let device = Default::default();
        let conv = ChebConvConfig::new(3, 4).with_k(3).init::<B>(&device);
        let x32 = input(&device, 2, 3);
        let x64 = Tensor::<B, 3>::from_data(x32.to_data(), (&device, DType::F64));
        assert_eq!(x64.dtype(), DType::F64);
        let y64 = conv.forward(x64, laplacian(&device));
        assert_eq!(y64.dtype(), DType::F64);
        let y32 = conv.forward(x32, laplacian(&device));
        let y64_as_32 = y64.cast(DType::F32);
        y64_as_32
            .into_data()
            .assert_approx_eq::<f32>(&y32.into_data(), Tolerance::absolute(1e-5));
    }
}
