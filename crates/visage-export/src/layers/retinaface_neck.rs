//! RetinaFace's neck: its FPN ([`RetinaFaceFpn`]: three 1×1 laterals, nearest up-sampling to
//! the exact finer size and 3×3 merges) and SSH context modules ([`Ssh`]), every batch norm
//! folded into its convolution.

use visage_kernels::KernelBackend;
use visage_neck::{RetinaFaceFpn, Ssh};

use super::conv::conv_norm_act;
use crate::error::ExportError;
use crate::graph::{Graph, Value};

/// [`RetinaFaceFpn::forward`]: `levels` are the backbone's levels of strides 8, 16 and 32,
/// `[N, C_k, h_k, w_k]`; returns three `[N, out_channels, h_k, w_k]` values, finest first.
/// `name` is the FPN's parameter path (e.g. `net.fpn`).
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a convolution the graph cannot express.
pub fn retinaface_fpn<B: KernelBackend>(
    g: &mut Graph,
    levels: &[Value; 3],
    fpn: &RetinaFaceFpn<B>,
    name: &str,
) -> Result<[Value; 3], ExportError> {
    let path = |block: &str| format!("{name}.{block}");
    let o1 = conv_norm_act(g, &levels[0], &fpn.output1, &path("output1"))?;
    let o2 = conv_norm_act(g, &levels[1], &fpn.output2, &path("output2"))?;
    let o3 = conv_norm_act(g, &levels[2], &fpn.output3, &path("output3"))?;
    // Top-down: the coarser level up-sampled (nearest, floor) to the finer one's exact size.
    let up3 = g.resize_nearest_like(&o3, &o2);
    let sum2 = g.add(&o2, &up3);
    let o2 = conv_norm_act(g, &sum2, &fpn.merge2, &path("merge2"))?;
    let up2 = g.resize_nearest_like(&o2, &o1);
    let sum1 = g.add(&o1, &up2);
    let o1 = conv_norm_act(g, &sum1, &fpn.merge1, &path("merge1"))?;
    Ok([o1, o2, o3])
}

/// [`Ssh::forward`]: `x` `[N, C_in, h, w]` → `relu(concat(3×3, 5×5, 7×7 branches))`
/// `[N, C, h, w]` (`C/2 + C/4 + C/4` channels). `name` is the module's parameter path (e.g.
/// `net.ssh1`).
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a convolution the graph cannot express.
pub fn ssh<B: KernelBackend>(
    g: &mut Graph,
    x: &Value,
    ssh: &Ssh<B>,
    name: &str,
) -> Result<Value, ExportError> {
    let path = |block: &str| format!("{name}.{block}");
    let c3 = conv_norm_act(g, x, &ssh.conv3x3, &path("conv3x3"))?;
    let c5_1 = conv_norm_act(g, x, &ssh.conv5x5_1, &path("conv5x5_1"))?;
    let c5 = conv_norm_act(g, &c5_1, &ssh.conv5x5_2, &path("conv5x5_2"))?;
    let c7_2 = conv_norm_act(g, &c5_1, &ssh.conv7x7_2, &path("conv7x7_2"))?;
    let c7 = conv_norm_act(g, &c7_2, &ssh.conv7x7_3, &path("conv7x7_3"))?;
    let joined = g.concat(&[c3, c5, c7], 1);
    Ok(g.relu(&joined))
}
