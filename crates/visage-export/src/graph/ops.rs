//! Typed helpers for the ONNX operators the exporters use, each in the form of the graph's
//! opset (e.g. `Unsqueeze` takes its axes as an input from opset 13). Shapes in the docs are
//! ONNX's, `N` the batch.

use super::{attr_float, attr_int, attr_ints, attr_string, Graph, Value};

/// A convolution's weights on the host: `weight` `[C_out, C_in / groups, kH, kW]`
/// row-major, `bias` `[C_out]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    /// `[C_out, C_in / groups, kH, kW]`, row-major.
    pub weight: Vec<f32>,
    /// The weight's dims.
    pub dims: [usize; 4],
    /// `[C_out]`, if any.
    pub bias: Option<Vec<f32>>,
}

/// A convolution's weight (and bias) in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvInitialisers {
    /// `[C_out, C_in / groups, kH, kW]`.
    pub weight: Value,
    /// `[C_out]`, if any.
    pub bias: Option<Value>,
    /// `[kH, kW]`.
    pub kernel: [usize; 2],
}

/// A convolution's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// `[dilation_h, dilation_w]`.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

fn i64s(values: &[usize]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

impl Graph {
    /// `Conv`: `x` `[N, C_in, H, W]` → `[N, C_out, H', W']`; `name` names the initialisers.
    pub fn conv(&mut self, x: &Value, name: &str, w: ConvWeights, geo: ConvGeometry) -> Value {
        let init = self.conv_initialisers(name, w);
        self.conv_with(x, &init, geo)
    }

    /// A convolution's weight and bias as initialisers, to be used by one or more `Conv`s
    /// (a head shared across pyramid levels stores its weights once).
    pub fn conv_initialisers(&mut self, name: &str, w: ConvWeights) -> ConvInitialisers {
        let weight = self.const_f32(&format!("{name}.weight"), &w.dims, w.weight);
        let bias = w
            .bias
            .map(|b| self.const_f32(&format!("{name}.bias"), &[w.dims[0]], b));
        ConvInitialisers {
            weight,
            bias,
            kernel: [w.dims[2], w.dims[3]],
        }
    }

    /// `Conv` with initialisers written before.
    pub fn conv_with(&mut self, x: &Value, init: &ConvInitialisers, geo: ConvGeometry) -> Value {
        let [top, left, bottom, right] = geo.pads;
        let attrs = vec![
            attr_ints("kernel_shape", &i64s(&init.kernel)),
            attr_ints("strides", &i64s(&geo.stride)),
            attr_ints("pads", &i64s(&[top, left, bottom, right])),
            attr_ints("dilations", &i64s(&geo.dilation)),
            attr_int("group", geo.groups as i64),
        ];
        match &init.bias {
            Some(b) => self.node("Conv", &[x, &init.weight, b], attrs),
            None => self.node("Conv", &[x, &init.weight], attrs),
        }
    }

    /// `ConvTranspose`: `weight` `[C_in, C_out / groups, kH, kW]`; `pads` `[top, left,
    /// bottom, right]`, `output_padding` `[h, w]`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose(
        &mut self,
        x: &Value,
        name: &str,
        w: ConvWeights,
        stride: [usize; 2],
        pads: [usize; 4],
        dilation: [usize; 2],
        output_padding: [usize; 2],
        groups: usize,
    ) -> Value {
        let out_channels = w.dims[1] * groups;
        let weight = self.const_f32(&format!("{name}.weight"), &w.dims, w.weight);
        let bias = w
            .bias
            .map(|b| self.const_f32(&format!("{name}.bias"), &[out_channels], b));
        let attrs = vec![
            attr_ints("kernel_shape", &i64s(&w.dims[2..])),
            attr_ints("strides", &i64s(&stride)),
            attr_ints("pads", &i64s(&pads)),
            attr_ints("dilations", &i64s(&dilation)),
            attr_ints("output_padding", &i64s(&output_padding)),
            attr_int("group", groups as i64),
        ];
        match &bias {
            Some(b) => self.node("ConvTranspose", &[x, &weight, b], attrs),
            None => self.node("ConvTranspose", &[x, &weight], attrs),
        }
    }

    /// `MaxPool` with `pads` `[top, left, bottom, right]`.
    pub fn max_pool(
        &mut self,
        x: &Value,
        kernel: [usize; 2],
        stride: [usize; 2],
        pads: [usize; 4],
        ceil_mode: bool,
    ) -> Value {
        self.node(
            "MaxPool",
            &[x],
            vec![
                attr_ints("kernel_shape", &i64s(&kernel)),
                attr_ints("strides", &i64s(&stride)),
                attr_ints("pads", &i64s(&pads)),
                attr_int("ceil_mode", ceil_mode as i64),
            ],
        )
    }

    /// `Relu`.
    pub fn relu(&mut self, x: &Value) -> Value {
        self.node("Relu", &[x], vec![])
    }

    /// `LeakyRelu` with slope `alpha` (`alpha = 0` is written as `Relu`).
    pub fn leaky_relu(&mut self, x: &Value, alpha: f64) -> Value {
        if alpha == 0.0 {
            self.relu(x)
        } else {
            self.node("LeakyRelu", &[x], vec![attr_float("alpha", alpha as f32)])
        }
    }

    /// `Sigmoid`.
    pub fn sigmoid(&mut self, x: &Value) -> Value {
        self.node("Sigmoid", &[x], vec![])
    }

    /// `Exp`.
    pub fn exp(&mut self, x: &Value) -> Value {
        self.node("Exp", &[x], vec![])
    }

    /// `Softmax` over `axis`.
    pub fn softmax(&mut self, x: &Value, axis: i64) -> Value {
        self.node("Softmax", &[x], vec![attr_int("axis", axis)])
    }

    /// Element-wise `a + b` (broadcasting).
    pub fn add(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Add", &[a, b], vec![])
    }

    /// Element-wise `a − b` (broadcasting).
    pub fn sub(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Sub", &[a, b], vec![])
    }

    /// Element-wise `a · b` (broadcasting).
    pub fn mul(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Mul", &[a, b], vec![])
    }

    /// Element-wise `a / b` (broadcasting).
    pub fn div(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Div", &[a, b], vec![])
    }

    /// Element-wise `min(a, b)` (broadcasting).
    pub fn min(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Min", &[a, b], vec![])
    }

    /// Element-wise `max(a, b)` (broadcasting).
    pub fn max(&mut self, a: &Value, b: &Value) -> Value {
        self.node("Max", &[a, b], vec![])
    }

    /// `Concat` along `axis`.
    pub fn concat(&mut self, values: &[Value], axis: i64) -> Value {
        let refs: Vec<&Value> = values.iter().collect();
        self.node("Concat", &refs, vec![attr_int("axis", axis)])
    }

    /// `Reshape` to `shape` (ONNX rules: `0` copies the input's dim, `-1` is inferred).
    pub fn reshape(&mut self, x: &Value, shape: &[i64]) -> Value {
        let shape = self.ints(shape);
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// `Reshape` to a shape computed in the graph (an int64 `[rank]` value).
    pub fn reshape_to(&mut self, x: &Value, shape: &Value) -> Value {
        self.node("Reshape", &[x, shape], vec![])
    }

    /// `Transpose` by `perm`.
    pub fn transpose(&mut self, x: &Value, perm: &[i64]) -> Value {
        self.node("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    /// `Shape` (int64 `[rank]`).
    pub fn shape(&mut self, x: &Value) -> Value {
        self.node("Shape", &[x], vec![])
    }

    /// `Gather` along `axis`.
    pub fn gather(&mut self, x: &Value, indices: &Value, axis: i64) -> Value {
        self.node("Gather", &[x, indices], vec![attr_int("axis", axis)])
    }

    /// `Slice` of `x` from `starts` to `ends` (exclusive) on `axes`.
    pub fn slice(&mut self, x: &Value, starts: &[i64], ends: &[i64], axes: &[i64]) -> Value {
        let (s, e, a) = (self.ints(starts), self.ints(ends), self.ints(axes));
        self.node("Slice", &[x, &s, &e, &a], vec![])
    }

    /// `Unsqueeze` at `axes`.
    pub fn unsqueeze(&mut self, x: &Value, axes: &[i64]) -> Value {
        if self.opset() >= 13 {
            let axes = self.ints(axes);
            self.node("Unsqueeze", &[x, &axes], vec![])
        } else {
            self.node("Unsqueeze", &[x], vec![attr_ints("axes", axes)])
        }
    }

    /// `Squeeze` at `axes`.
    pub fn squeeze(&mut self, x: &Value, axes: &[i64]) -> Value {
        if self.opset() >= 13 {
            let axes = self.ints(axes);
            self.node("Squeeze", &[x, &axes], vec![])
        } else {
            self.node("Squeeze", &[x], vec![attr_ints("axes", axes)])
        }
    }

    /// `Cast` to ONNX data type `to` (`TensorProto.DataType`).
    pub fn cast(&mut self, x: &Value, to: crate::proto::tensor_proto::DataType) -> Value {
        self.node("Cast", &[x], vec![attr_int("to", to as i64)])
    }

    /// Nearest-neighbour `Resize` of `x` `[N, C, h, w]` to the spatial size of `like`
    /// `[N, C', H, W]`, with source index `floor(dst · in / out)` (PyTorch's and Burn's
    /// `nearest`: ONNX's `asymmetric` coordinates with `floor`).
    pub fn resize_nearest_like(&mut self, x: &Value, like: &Value) -> Value {
        let x_shape = self.shape(x);
        let like_shape = self.shape(like);
        let batch_channels = self.slice(&x_shape, &[0], &[2], &[0]);
        let spatial = self.slice(&like_shape, &[2], &[4], &[0]);
        let sizes = self.concat(&[batch_channels, spatial], 0);
        let attrs = vec![
            attr_string("mode", "nearest"),
            attr_string("coordinate_transformation_mode", "asymmetric"),
            attr_string("nearest_mode", "floor"),
        ];
        let none = Value::omitted();
        self.node("Resize", &[x, &none, &none, &sizes], attrs)
    }

    /// `[N, A·C, H, W]` head output → `[N, H·W·A, C]` in visage's anchor order (y, x,
    /// anchor): what `visage_heads::flatten_levels` does per level.
    pub fn flatten_level(&mut self, x: &Value, channels: usize) -> Value {
        let nhwc = self.transpose(x, &[0, 2, 3, 1]);
        self.reshape(&nhwc, &[0, -1, channels as i64])
    }
}
