//! Does a backend train as the CPU does? One training step of every tiny family
//! ([`visage_model::tiny::every_family`]: RetinaNet, FAN, DF²S², SRN, AInnoFace, RetinaFace
//! and its dense 3D branch) on a reference backend (Flex) and on the backend under test (wgpu,
//! CUDA), from the same weights and the same batch: forward, loss, backward and one SGD step
//! (momentum 0.9, weight decay 1e-4, learning rate 0.01), batch norm in training mode. The
//! loss parts, every parameter's gradient and every updated weight are compared.
//!
//! `visage check-device --device D` prints the comparison; the wgpu tests assert it.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::module::{ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use visage_kernels::KernelAutodiffBackend;
use visage_model::{
    DetectorFamily, FaceTargets, ModelError, ModelSpec, PixelNormalisation, TrainableFamily,
    WithTrainableFamily,
};

use crate::param_paths::ParamPaths;

/// Side of the two square test images.
pub const IMAGE_SIZE: usize = 64;

/// How far the backend under test may be from the reference. f32 kernels that sum in other
/// orders differ in the last bits; a gradient is a long sum of products through every layer,
/// so its error is measured against the tensor's own largest magnitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Each loss part: |a − b| ≤ `loss_rel` · max(|a|, |b|) + 1e-6.
    pub loss_rel: f32,
    /// Each gradient tensor: max |a − b| ≤ `grad_rel` · max |a| + 1e-6.
    pub grad_rel: f32,
    /// Each updated weight: |a − b| ≤ `weight_abs`.
    pub weight_abs: f32,
}

impl Default for Tolerances {
    /// f32 on both sides: 1e-4 for the loss, 2e-3 for gradients, 1e-5 for weights.
    fn default() -> Self {
        Self {
            loss_rel: 1e-4,
            grad_rel: 2e-3,
            weight_abs: 1e-5,
        }
    }
}

/// How one family's step on the backend under test compares with the reference.
#[derive(Debug, Clone)]
pub struct FamilyComparison {
    /// The tiny spec's name (`fan`, `srn`, `retinaface-mesh`, ...).
    pub name: &'static str,
    /// The loss parts on the backend under test (`total` first).
    pub loss: Vec<(String, f32)>,
    /// Worst relative loss error over the parts.
    pub loss_rel: f32,
    /// Parameter tensors that got a gradient.
    pub gradients: usize,
    /// Worst max |Δ| / max |g| over the gradient tensors.
    pub grad_rel: f32,
    /// Worst |Δ| over the updated weights.
    pub weight_abs: f32,
    /// Seconds of the step (weights loaded, forward, backward, SGD) on each backend.
    pub seconds: (f64, f64),
    /// What exceeded the tolerances (empty when the backends agree).
    pub failures: Vec<String>,
}

impl FamilyComparison {
    /// Whether every value is within the tolerances.
    pub fn agrees(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the step of every tiny family on both backends and compares them with `tolerances`.
///
/// # Errors
/// A [`ModelError`] from building, loading or running a model.
pub fn compare_every_family<R: KernelAutodiffBackend, T: KernelAutodiffBackend>(
    reference: &R::Device,
    target: &T::Device,
    tolerances: Tolerances,
) -> Result<Vec<FamilyComparison>, ModelError> {
    visage_model::tiny::every_family()
        .into_iter()
        .map(|(name, spec)| compare_family::<R, T>(name, &spec, reference, target, tolerances))
        .collect()
}

/// Runs one family's step on both backends and compares them.
///
/// # Errors
/// A [`ModelError`] from building, loading or running the model.
pub fn compare_family<R: KernelAutodiffBackend, T: KernelAutodiffBackend>(
    name: &'static str,
    spec: &ModelSpec,
    reference: &R::Device,
    target: &T::Device,
    tolerances: Tolerances,
) -> Result<FamilyComparison, ModelError> {
    R::seed(reference, 11);
    let weights = spec.with_trainable_family::<R, _>(InitialWeights::<R> {
        device: reference.clone(),
    })?;
    R::seed(reference, 5);
    let images = Tensor::<R, 4>::random(
        [2, 3, IMAGE_SIZE, IMAGE_SIZE],
        Distribution::Normal(0.0, 1.0),
        reference,
    )
    .into_data();
    let step = |weights: Vec<u8>, images: TensorData| StepOn {
        weights,
        images,
        faces: visage_model::tiny::two_image_faces(),
    };
    let r = spec.with_trainable_family::<R, _>(OneStep::<R> {
        device: reference.clone(),
        input: step(weights.clone(), images.clone()),
    })?;
    let t = spec.with_trainable_family::<T, _>(OneStep::<T> {
        device: target.clone(),
        input: step(weights, images),
    })?;
    Ok(compare(name, &r, &t, tolerances))
}

/// The input normalisation the step declares (the images are already standard normal).
const IDENTITY_PIXELS: PixelNormalisation = PixelNormalisation {
    mean: [0.0; 3],
    std: [1.0; 3],
    bgr: false,
};

/// What one backend's step gave, keyed by parameter path.
#[derive(Debug)]
struct StepReadout {
    loss: Vec<(String, f32)>,
    grads: BTreeMap<String, Vec<f32>>,
    updated: BTreeMap<String, Vec<f32>>,
    seconds: f64,
}

/// A fresh model's weights (every lazily created parameter initialised), as bytes.
struct InitialWeights<B: KernelAutodiffBackend> {
    device: B::Device,
}

impl<B: KernelAutodiffBackend> WithTrainableFamily<B> for InitialWeights<B> {
    type Output = Result<Vec<u8>, ModelError>;

    fn run<M: TrainableFamily<B>>(self, spec: &M::Spec) -> Self::Output {
        let model = M::new(spec, &self.device)?;
        let _ = model.forward(Tensor::zeros([1, 3, IMAGE_SIZE, IMAGE_SIZE], &self.device));
        model.valid_model().weights_bytes()
    }
}

/// The step's input: initial weights, images `[2, 3, 64, 64]`, faces.
struct StepOn {
    weights: Vec<u8>,
    images: TensorData,
    faces: Vec<FaceTargets>,
}

/// One training step on backend `B`.
struct OneStep<B: KernelAutodiffBackend> {
    device: B::Device,
    input: StepOn,
}

impl<B: KernelAutodiffBackend> WithTrainableFamily<B> for OneStep<B> {
    type Output = Result<StepReadout, ModelError>;

    fn run<M: TrainableFamily<B>>(self, spec: &M::Spec) -> Self::Output {
        let start = Instant::now();
        let device = &self.device;
        let StepOn {
            weights,
            images,
            faces,
        } = self.input;
        let model = M::new(spec, device)?
            .load_weights_bytes(weights)?
            .with_input_normalisation(IDENTITY_PIXELS);
        let paths = ParamPaths::of(&model);
        let loss = model.loss(&model.forward(Tensor::from_data(images, device)), &faces)?;
        let values = loss.values()?;
        let mut readout = StepReadout {
            loss: std::iter::once(("total".to_string(), values.total))
                .chain(values.parts.iter().map(|(n, v)| (n.to_string(), *v)))
                .collect(),
            grads: BTreeMap::new(),
            updated: BTreeMap::new(),
            seconds: 0.0,
        };
        let grads = GradientsParams::from_grads(loss.total.backward(), &model);
        model.visit(&mut ReadParams {
            paths: &paths,
            grads: Some(&grads),
            out: &mut readout.grads,
        });
        let mut optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
            .init::<B, M>();
        let model = optim.step(0.01, model, grads);
        model.visit(&mut ReadParams {
            paths: &paths,
            grads: None,
            out: &mut readout.updated,
        });
        readout.seconds = start.elapsed().as_secs_f64();
        Ok(readout)
    }
}

/// Reads every float parameter (with `grads`: its gradient, where it has one) by path.
struct ReadParams<'a> {
    paths: &'a ParamPaths,
    grads: Option<&'a GradientsParams>,
    out: &'a mut BTreeMap<String, Vec<f32>>,
}

impl<B: KernelAutodiffBackend> ModuleVisitor<B> for ReadParams<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(path) = self.paths.path(&param.id.serialize()) else {
            return;
        };
        let values = match self.grads {
            Some(grads) => match grads.get::<B::InnerBackend, D>(param.id) {
                Some(g) => g.into_data(),
                None => return,
            },
            None => param.val().into_data(),
        };
        let values = values
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 after conversion");
        self.out.insert(path.to_string(), values);
    }
}

/// The largest |a − b| (infinite where either is NaN) and the largest |a| of two equally
/// long slices.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    a.iter().zip(b).fold((0.0f32, 0.0f32), |(d, m), (x, y)| {
        let diff = (x - y).abs();
        let diff = if diff.is_nan() { f32::INFINITY } else { diff };
        (d.max(diff), m.max(x.abs()))
    })
}

fn compare(
    name: &'static str,
    r: &StepReadout,
    t: &StepReadout,
    tol: Tolerances,
) -> FamilyComparison {
    let mut failures = Vec::new();
    let mut loss_rel = 0.0f32;
    if r.loss
        .iter()
        .map(|(n, _)| n)
        .ne(t.loss.iter().map(|(n, _)| n))
    {
        failures.push(format!("loss parts {:?} vs {:?}", r.loss, t.loss));
    }
    for ((part, a), (_, b)) in r.loss.iter().zip(&t.loss) {
        let scale = a.abs().max(b.abs());
        let diff = (a - b).abs();
        if scale > 0.0 {
            loss_rel = loss_rel.max(diff / scale);
        }
        if diff.is_nan() || diff > tol.loss_rel * scale + 1e-6 {
            failures.push(format!("loss {part}: {a} vs {b}"));
        }
    }
    let mut grad_rel = 0.0f32;
    if r.grads.keys().ne(t.grads.keys()) || r.grads.is_empty() {
        failures.push(format!(
            "{} vs {} parameters with a gradient",
            r.grads.len(),
            t.grads.len()
        ));
    }
    for (path, a) in &r.grads {
        let Some(b) = t.grads.get(path).filter(|b| b.len() == a.len()) else {
            continue;
        };
        let (diff, scale) = max_diff(a, b);
        if scale > 0.0 {
            grad_rel = grad_rel.max(diff / scale);
        }
        if diff.is_nan() || diff > tol.grad_rel * scale + 1e-6 {
            failures.push(format!(
                "gradient of {path}: max |Δ| {diff:.3e}, max |g| {scale:.3e}"
            ));
        }
    }
    let mut weight_abs = 0.0f32;
    if r.updated.keys().ne(t.updated.keys()) {
        failures.push("not the same parameters".to_string());
    }
    for (path, a) in &r.updated {
        let Some(b) = t.updated.get(path).filter(|b| b.len() == a.len()) else {
            continue;
        };
        let (diff, _) = max_diff(a, b);
        weight_abs = weight_abs.max(diff);
        if diff.is_nan() || diff > tol.weight_abs {
            failures.push(format!("updated {path}: max |Δ| {diff:.3e}"));
        }
    }
    FamilyComparison {
        name,
        loss: t.loss.clone(),
        loss_rel,
        gradients: t.grads.len(),
        grad_rel,
        weight_abs,
        seconds: (r.seconds, t.seconds),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};

    use super::*;

    type Ad = Autodiff<Flex>;

    /// Flex against itself: the step is deterministic and every value agrees exactly.
    #[test]
    fn flex_agrees_with_itself() {
        let device = Default::default();
        let spec = visage_model::tiny::every_family()
            .into_iter()
            .find(|(name, _)| *name == "fan")
            .unwrap()
            .1;
        let c = compare_family::<Ad, Ad>("fan", &spec, &device, &device, Tolerances::default())
            .unwrap();
        assert!(c.agrees(), "{:?}", c.failures);
        assert!(c.gradients > 10, "{}", c.gradients);
        assert_eq!((c.loss_rel, c.grad_rel, c.weight_abs), (0.0, 0.0, 0.0));
        assert!(c.loss[0].0 == "total" && c.loss[0].1 > 0.0, "{:?}", c.loss);
    }

    /// A difference beyond a tolerance is reported, naming the part.
    #[test]
    fn a_difference_is_reported() {
        let readout = |total: f32, grad: f32| StepReadout {
            loss: vec![("total".into(), total)],
            grads: BTreeMap::from([("w".into(), vec![1.0, grad])]),
            updated: BTreeMap::from([("w".into(), vec![0.5])]),
            seconds: 0.0,
        };
        let tol = Tolerances::default();
        let same = compare("x", &readout(2.0, 0.5), &readout(2.0, 0.5), tol);
        assert!(same.agrees());
        let loss = compare("x", &readout(2.0, 0.5), &readout(2.01, 0.5), tol);
        assert!(
            loss.failures[0].contains("loss total"),
            "{:?}",
            loss.failures
        );
        let grad = compare("x", &readout(2.0, 0.5), &readout(2.0, 0.51), tol);
        assert!(
            grad.failures[0].contains("gradient of w"),
            "{:?}",
            grad.failures
        );
        assert!((grad.grad_rel - 0.01).abs() < 1e-6, "{}", grad.grad_rel);
        let nan = compare("x", &readout(2.0, 0.5), &readout(f32::NAN, 0.5), tol);
        assert!(!nan.agrees());
        let nan = compare("x", &readout(2.0, 0.5), &readout(2.0, f32::NAN), tol);
        assert!(
            nan.failures[0].contains("gradient of w"),
            "{:?}",
            nan.failures
        );
    }
}
