//! Test support: runs exported models in tract (a pure-Rust ONNX runtime) and compares
//! tensors.

use prost::Message;
use tract_onnx::prelude::*;

use crate::proto::ModelProto;

/// An output of a tract run: dims and values as f32 (int64 outputs converted).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The output's dims.
    pub dims: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Runs `model` (serialised and parsed back, as a file would be) in tract on one float32
/// input of `dims`; returns every output in graph order.
pub fn run_tract(model: &ModelProto, input: &[f32], dims: &[usize]) -> Vec<RunOutput> {
    let array = tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), input.to_vec()).unwrap();
    run_tract_tensor(model, array.into(), dims, f32::datum_type())
}

/// Runs `model` in tract on one uint8 input of `dims`.
pub fn run_tract_u8(model: &ModelProto, input: &[u8], dims: &[usize]) -> Vec<RunOutput> {
    let array = tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), input.to_vec()).unwrap();
    run_tract_tensor(model, array.into(), dims, u8::datum_type())
}

fn run_tract_tensor(
    model: &ModelProto,
    input: Tensor,
    dims: &[usize],
    datum: DatumType,
) -> Vec<RunOutput> {
    let bytes = model.encode_to_vec();
    let runnable = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .expect("tract reads the model")
        .with_input_fact(0, InferenceFact::dt_shape(datum, dims))
        .expect("input fact")
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .expect("runnable");
    let outputs = runnable
        .run(tvec!(input.into()))
        .expect("tract runs the model");
    outputs
        .iter()
        .map(|t| {
            let t = t.cast_to::<f32>().expect("numeric output");
            RunOutput {
                dims: t.shape().to_vec(),
                values: t
                    .to_plain_array_view::<f32>()
                    .expect("f32")
                    .iter()
                    .copied()
                    .collect(),
            }
        })
        .collect()
}

/// Largest `|a − b| / max(1, |b|)` over two equally long slices.
pub fn max_relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// Runs `model` in tract on several float32 inputs, each `(values, dims)` in the order of the
/// graph's inputs; returns every output in graph order.
pub fn run_tract_inputs(model: &ModelProto, inputs: &[(&[f32], &[usize])]) -> Vec<RunOutput> {
    let bytes = model.encode_to_vec();
    let mut inference = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .expect("tract reads the model");
    let mut values = TVec::new();
    for (i, (data, dims)) in inputs.iter().enumerate() {
        inference = inference
            .with_input_fact(i, InferenceFact::dt_shape(f32::datum_type(), *dims))
            .expect("input fact");
        let array = tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), data.to_vec()).unwrap();
        values.push(Tensor::from(array).into());
    }
    let runnable = inference
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .expect("runnable");
    let outputs = runnable.run(values).expect("tract runs the model");
    outputs
        .iter()
        .map(|t| {
            let t = t.cast_to::<f32>().expect("numeric output");
            RunOutput {
                dims: t.shape().to_vec(),
                values: t
                    .to_plain_array_view::<f32>()
                    .expect("f32")
                    .iter()
                    .copied()
                    .collect(),
            }
        })
        .collect()
}

/// Seeds Flex's random stream with `seed` and holds a process-wide lock until the returned
/// guard drops.
///
/// Burn's initialisers and `Tensor::random` draw from one stream shared by every thread, so
/// tests running side by side would each draw different weights and images on every run. A
/// test that builds a model or draws random tensors takes this guard first: it then sees the
/// same numbers on every run, whatever else runs beside it, and a failure reproduces.
pub fn seeded(seed: u64) -> std::sync::MutexGuard<'static, ()> {
    use burn::tensor::backend::Backend;
    static STREAM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = STREAM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    burn::backend::Flex::seed(&Default::default(), seed);
    guard
}
