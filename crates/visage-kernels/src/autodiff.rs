//! [`KernelBackend`] for `Autodiff<B>`: the convolution's forward and both of its gradients
//! run the inner backend's visage kernels (`B::visage_conv2d`, `B::visage_conv2d_x_backward`,
//! `B::visage_conv2d_weight_backward`), so training on `Autodiff<Flex>` uses the faster
//! kernels and training on a GPU backend runs exactly Burn's ops (their defaults). The bias
//! gradient is Burn's (`Backend::conv2d_bias_backward`). Recorded like Burn's own conv2d:
//! compute-bound, inputs checkpointed.
//!
//! Training-mode batch norm (with its activation) runs `B::visage_batch_norm_train` forward
//! and `B::visage_batch_norm_train_backward` for all three gradients at once; its mean and
//! variance come out untracked (they only feed the running statistics).
//!
//! Max pooling runs `B::visage_max_pool2d_with_indices` forward and the inner backend's own
//! `max_pool2d_with_indices_backward` (which reads the indices in that backend's layout), as
//! Burn records its own max pooling.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{ConvOptions, FloatTensor, IntTensor};

use crate::{BatchNormTrain, KernelBackend};

/// The backward step of a convolution with a bias (parents: input, weight, bias).
#[derive(Debug)]
struct ConvWithBias;

/// The backward step of a convolution without a bias (parents: input, weight).
#[derive(Debug)]
struct ConvNoBias;

/// The input's and the weight's gradients, registered for the parents that track one.
fn register_input_and_weight<B: KernelBackend>(
    [node_x, node_weight]: [Option<NodeId>; 2],
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
    grads: &mut Gradients,
) {
    if let Some(id) = node_x {
        let dx =
            B::visage_conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
        grads.register::<B>(id, dx);
    }
    if let Some(id) = node_weight {
        grads.register::<B>(
            id,
            B::visage_conv2d_weight_backward(x, weight, grad, options),
        );
    }
}

impl<B: KernelBackend> Backward<B, 3> for ConvWithBias {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, bias, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias);
        if let Some(node) = node_bias {
            let db = B::visage_conv2d_bias_backward(x.clone(), bias, grad.clone());
            grads.register::<B>(node.id, db);
        }
        let parents = [node_x.map(|n| n.id), node_weight.map(|n| n.id)];
        register_input_and_weight::<B>(parents, x, weight, grad, options, grads);
    }
}

impl<B: KernelBackend> Backward<B, 2> for ConvNoBias {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight);
        let parents = ops.parents.map(|parent| parent.map(|n| n.id));
        register_input_and_weight::<B>(parents, x, weight, grad, options, grads);
    }
}

/// The backward step of a max pooling (parent: input).
#[derive(Debug)]
struct MaxPool;

/// What [`MaxPool`]'s backward needs: the input, the maxima's indices, and the kernel size,
/// stride, padding, dilation and ceil mode.
type MaxPoolState<B> = (
    NodeId,
    IntTensor<B>,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    bool,
);

impl<B: KernelBackend> Backward<B, 1> for MaxPool {
    type State = MaxPoolState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, indices, kernel_size, stride, padding, dilation, ceil_mode) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        if let Some(node) = node_x {
            let dx = B::max_pool2d_with_indices_backward(
                x,
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
                grad,
                indices,
            );
            grads.register::<B>(node.id, dx.x_grad);
        }
    }
}

/// The backward step of a training-mode batch norm (parents: input, weight, bias).
#[derive(Debug)]
struct BatchNormTrainStep;

/// What [`BatchNormTrainStep`]'s backward needs: the input, weight and bias, the batch mean
/// and variance, epsilon and the activation's slope.
type BatchNormState<B> = (
    NodeId,
    NodeId,
    NodeId,
    FloatTensor<B>,
    FloatTensor<B>,
    f64,
    Option<f64>,
);

impl<B: KernelBackend> Backward<B, 3> for BatchNormTrainStep {
    type State = BatchNormState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, bias, mean, variance, epsilon, negative_slope) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias);
        let gradients = B::visage_batch_norm_train_backward(
            x,
            weight,
            bias,
            mean,
            variance,
            epsilon,
            negative_slope,
            grad,
        );
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

impl<B: KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {
    const HOST_THREADS: bool = B::HOST_THREADS;

    fn visage_max_pool2d(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> FloatTensor<Self> {
        match MaxPool
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let pooled = B::visage_max_pool2d_with_indices(
                    x.primitive,
                    kernel_size,
                    stride,
                    padding,
                    dilation,
                    ceil_mode,
                );
                let state = (
                    x_state,
                    pooled.indices,
                    kernel_size,
                    stride,
                    padding,
                    dilation,
                    ceil_mode,
                );
                prep.finish(state, pooled.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::visage_max_pool2d(
                x.primitive,
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
            )),
        }
    }

    fn visage_batch_norm_train(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        epsilon: f64,
        negative_slope: Option<f64>,
    ) -> BatchNormTrain<Self> {
        let step = BatchNormTrainStep
            .prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful();
        match step {
            OpsKind::Tracked(mut prep) => {
                let inputs = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                );
                let out = B::visage_batch_norm_train(
                    x.primitive,
                    weight.primitive,
                    bias.primitive,
                    epsilon,
                    negative_slope,
                );
                let state = (
                    inputs.0,
                    inputs.1,
                    inputs.2,
                    out.mean.clone(),
                    out.variance.clone(),
                    epsilon,
                    negative_slope,
                );
                BatchNormTrain {
                    output: prep.finish(state, out.output),
                    mean: Self::from_inner(out.mean),
                    variance: Self::from_inner(out.variance),
                }
            }
            OpsKind::UnTracked(prep) => {
                let out = B::visage_batch_norm_train(
                    x.primitive,
                    weight.primitive,
                    bias.primitive,
                    epsilon,
                    negative_slope,
                );
                BatchNormTrain {
                    output: prep.finish(out.output),
                    mean: Self::from_inner(out.mean),
                    variance: Self::from_inner(out.variance),
                }
            }
        }
    }

    fn visage_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match bias {
            Some(bias) => match ConvWithBias
                .prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        prep.checkpoint(&bias),
                        options.clone(),
                    );
                    let out = B::visage_conv2d(
                        x.primitive,
                        weight.primitive,
                        Some(bias.primitive),
                        options,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::visage_conv2d(
                    x.primitive,
                    weight.primitive,
                    Some(bias.primitive),
                    options,
                )),
            },
            None => match ConvNoBias
                .prepare::<C>([x.node.clone(), weight.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        options.clone(),
                    );
                    prep.finish(
                        state,
                        B::visage_conv2d(x.primitive, weight.primitive, None, options),
                    )
                }
                OpsKind::UnTracked(prep) => prep.finish(B::visage_conv2d(
                    x.primitive,
                    weight.primitive,
                    None,
                    options,
                )),
            },
        }
    }
}
