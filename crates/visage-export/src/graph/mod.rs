//! [`Graph`]: an ONNX graph under construction — named values, nodes, constant initialisers,
//! the graph's inputs and outputs — and the set of model parameters the export has read, so
//! that a parameter no exporter consumed is an error instead of a silently smaller graph.
//!
//! Values are named `prefix_N` with a counter; initialisers carry the parameter path they
//! came from where there is one. Typed operator helpers are in [`ops`].

pub mod ops;

use std::collections::BTreeMap;

use burn::module::{Param, ParamId, RunningState};
use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// A value (tensor) in the graph, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Value(String);

impl Value {
    /// The value's name in the graph.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The empty name ONNX uses for an omitted optional input.
    pub fn omitted() -> Value {
        Value(String::new())
    }
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, e.g. `"N"`, `"H"`, `"W"`.
    Named(String),
}

/// An element type of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// float32.
    F32,
    /// uint8.
    U8,
    /// int64.
    I64,
}

impl ElemType {
    fn data_type(self) -> DataType {
        match self {
            ElemType::F32 => DataType::Float,
            ElemType::U8 => DataType::Uint8,
            ElemType::I64 => DataType::Int64,
        }
    }
}

/// An ONNX graph being written.
#[derive(Debug)]
pub struct Graph {
    opset: i64,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counters: BTreeMap<String, usize>,
    read_params: BTreeMap<ParamId, ParamUse>,
    /// Convolution initialisers already written, by the parameters they come from.
    conv_cache: BTreeMap<String, ops::ConvInitialisers>,
}

/// How the export used a model parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamUse {
    /// Written into the graph (possibly folded with others).
    Exported,
    /// Deliberately left out, with the reason (a training-only branch).
    LeftOut(&'static str),
}

impl Graph {
    /// An empty graph for the default ONNX domain at `opset`.
    pub fn new(opset: i64) -> Self {
        Self {
            opset,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            counters: BTreeMap::new(),
            read_params: BTreeMap::new(),
            conv_cache: BTreeMap::new(),
        }
    }

    /// The opset the graph is written for (operators pick their form from it).
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// A fresh value name `prefix_N`.
    pub fn fresh(&mut self, prefix: &str) -> String {
        let n = self.counters.entry(prefix.to_string()).or_insert(0);
        let name = format!("{prefix}_{n}");
        *n += 1;
        name
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> Value {
        self.inputs.push(value_info(name, elem, dims));
        Value(name.to_string())
    }

    /// Declares `value` as the graph output `name` (through an `Identity` when the names
    /// differ).
    pub fn output(&mut self, value: &Value, name: &str, elem: ElemType, dims: &[Dim]) {
        if value.name() != name {
            self.nodes.push(NodeProto {
                op_type: "Identity".into(),
                name: format!("output_{name}"),
                input: vec![value.name().to_string()],
                output: vec![name.to_string()],
                ..Default::default()
            });
        }
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Adds a node with one output and returns it.
    pub fn node(&mut self, op: &str, inputs: &[&Value], attributes: Vec<AttributeProto>) -> Value {
        self.node_multi(op, inputs, 1, attributes)
            .pop()
            .expect("one output")
    }

    /// Adds a node with `outputs` outputs and returns them.
    pub fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&Value],
        outputs: usize,
        attributes: Vec<AttributeProto>,
    ) -> Vec<Value> {
        let prefix = op.to_lowercase();
        let node_name = self.fresh(&format!("{prefix}_node"));
        let outs: Vec<Value> = (0..outputs).map(|_| Value(self.fresh(&prefix))).collect();
        self.nodes.push(NodeProto {
            op_type: op.to_string(),
            name: node_name,
            input: inputs.iter().map(|v| v.name().to_string()).collect(),
            output: outs.iter().map(|v| v.name().to_string()).collect(),
            attribute: attributes,
            ..Default::default()
        });
        outs
    }

    /// A float32 constant (initialiser) of shape `dims`, named after `hint`.
    ///
    /// # Panics
    /// If `data` does not hold `∏ dims` values (a bug in the caller).
    pub fn const_f32(&mut self, hint: &str, dims: &[usize], data: Vec<f32>) -> Value {
        assert_eq!(
            data.len(),
            dims.iter().product::<usize>(),
            "{hint}: data vs dims"
        );
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: data,
            ..Default::default()
        });
        Value(name)
    }

    /// An int64 constant (initialiser) of shape `dims`.
    ///
    /// # Panics
    /// If `data` does not hold `∏ dims` values (a bug in the caller).
    pub fn const_i64(&mut self, hint: &str, dims: &[usize], data: Vec<i64>) -> Value {
        assert_eq!(
            data.len(),
            dims.iter().product::<usize>(),
            "{hint}: data vs dims"
        );
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Int64 as i32,
            int64_data: data,
            ..Default::default()
        });
        Value(name)
    }

    /// A 1-D int64 constant (shapes, axes, indices).
    pub fn ints(&mut self, values: &[i64]) -> Value {
        self.const_i64("ints", &[values.len()], values.to_vec())
    }

    /// A float32 scalar constant (rank 0).
    pub fn scalar(&mut self, value: f32) -> Value {
        self.const_f32("scalar", &[], vec![value])
    }

    /// An int64 scalar constant (rank 0).
    pub fn scalar_i64(&mut self, value: i64) -> Value {
        self.const_i64("scalar_i64", &[], vec![value])
    }

    /// Reads a parameter's values (row-major) and dims, recording that the export used it.
    pub fn read<const D: usize, B: KernelBackend>(
        &mut self,
        param: &Param<Tensor<B, D>>,
    ) -> (Vec<f32>, [usize; D]) {
        self.read_params.insert(param.id, ParamUse::Exported);
        let tensor = param.val();
        let dims = tensor.dims();
        (host_f32(tensor), dims)
    }

    /// Reads a running statistic (a batch norm's mean or variance, a [`RunningState`]) and
    /// records that the export used it.
    pub fn read_running<const D: usize, B: KernelBackend>(
        &mut self,
        state: &RunningState<Tensor<B, D>>,
    ) -> Vec<f32> {
        for id in crate::coverage::param_ids(state) {
            self.read_params.insert(id, ParamUse::Exported);
        }
        host_f32(state.value())
    }

    /// Records that `param` is deliberately not part of the exported graph (`why`: the
    /// training-only branch it belongs to).
    pub fn leave_out<const D: usize, B: KernelBackend>(
        &mut self,
        param: &Param<Tensor<B, D>>,
        why: &'static str,
    ) {
        self.read_params.insert(param.id, ParamUse::LeftOut(why));
    }

    /// Records every parameter of `module` as deliberately left out (`why`).
    pub fn leave_out_module<B: KernelBackend, M: Module<B>>(
        &mut self,
        module: &M,
        why: &'static str,
    ) {
        for id in crate::coverage::param_ids(module) {
            self.read_params.insert(id, ParamUse::LeftOut(why));
        }
    }

    /// The initialisers of the convolution `key` (its parameters' ids), written by `make` the
    /// first time only: a module applied to several pyramid levels stores its weights once.
    pub fn cached_conv(
        &mut self,
        key: String,
        make: impl FnOnce(&mut Graph) -> ops::ConvInitialisers,
    ) -> ops::ConvInitialisers {
        if let Some(init) = self.conv_cache.get(&key) {
            return init.clone();
        }
        let init = make(self);
        self.conv_cache.insert(key, init.clone());
        init
    }

    /// How the export used each parameter it touched.
    pub fn param_uses(&self) -> &BTreeMap<ParamId, ParamUse> {
        &self.read_params
    }

    /// The finished graph named `name`.
    pub fn finish(self, name: &str) -> GraphProto {
        GraphProto {
            name: name.to_string(),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

/// A tensor's values on the host as f32, row-major.
pub fn host_f32<B: KernelBackend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor data")
}

fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem.data_type() as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}
