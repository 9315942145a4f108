//! SRN's selective two-step policy on the host: which anchors are on the STC / STR levels,
//! the second step's anchors (refined by the first step on the STR levels) and which anchors
//! the second step keeps (STC's drops), read from the first step's outputs.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_anchors::{AnchorGenerator, Anchors, MaxIouAssigner};
use visage_boxes::{BoxCoder, BoxXyxy};
use visage_kernels::KernelBackend;

use super::{SrnOutputs, SrnSpec};

/// Everything about an SRN detector that has no weights.
#[derive(Debug, Clone)]
pub(crate) struct SrnPolicy {
    pub(crate) spec: SrnSpec,
    pub(crate) anchors: AnchorGenerator,
    /// The second step's (and STR's first step's) matching.
    pub(crate) assigner: MaxIouAssigner,
    /// STC's first-step matching.
    pub(crate) stc_assigner: MaxIouAssigner,
    pub(crate) coder: BoxCoder,
    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub(crate) neck_input_strides: Vec<usize>,
}

impl SrnPolicy {
    /// `(N_stc, N_str)`: anchors per image on the STC levels (the first ones) and on the STR
    /// levels (the last ones).
    pub(crate) fn split(&self, anchors: &Anchors) -> (usize, usize) {
        let levels = &anchors.levels;
        let stc = levels[..self.spec.stc.levels].iter().map(|l| l.len()).sum();
        let str_levels = self.spec.two_step_regression.levels;
        let str = levels[levels.len() - str_levels..]
            .iter()
            .map(|l| l.len())
            .sum();
        (stc, str)
    }

    /// The second step's anchors of one image: the anchors, except on the STR levels where
    /// each is refined by its first-step deltas (`first_deltas`: `[N_str · 4]` of that
    /// image). Refinement is not differentiated through (SRN and RefineDet treat the refined
    /// anchors as given).
    pub(crate) fn second_step_anchors(
        &self,
        anchors: &[BoxXyxy],
        first_deltas: Option<&[f32]>,
    ) -> Vec<BoxXyxy> {
        let mut out = anchors.to_vec();
        if let Some(deltas) = first_deltas {
            let start = anchors.len() - deltas.len() / 4;
            for (anchor, d) in out[start..].iter_mut().zip(deltas.chunks_exact(4)) {
                *anchor = self.coder.decode(anchor, &[d[0], d[1], d[2], d[3]]);
            }
        }
        out
    }

    /// Which anchors of one image the second step keeps: all but those of the STC levels
    /// whose first-step face probability (`first_scores`, `[N_stc]`) is below `drop_score`.
    pub(crate) fn kept(&self, n: usize, first_scores: Option<&[f32]>) -> Vec<bool> {
        let mut keep = vec![true; n];
        if let Some(scores) = first_scores {
            for (k, &p) in keep.iter_mut().zip(scores) {
                *k = p >= self.spec.stc.drop_score;
            }
        }
        keep
    }
}

/// Host copies of the first-step outputs of a batch: probabilities `[B · N_stc]` and deltas
/// `[B · N_str · 4]`.
pub(crate) struct FirstStep {
    pub(crate) scores: Option<Vec<f32>>,
    pub(crate) deltas: Option<Vec<f32>>,
}

impl FirstStep {
    pub(crate) fn read<B: KernelBackend>(outputs: &SrnOutputs<B>) -> Self {
        let host = |t: Tensor<B, 3>| -> Vec<f32> { t.into_data().to_vec().expect("f32 outputs") };
        FirstStep {
            scores: outputs
                .first_cls_logits
                .as_ref()
                .map(|l| host(sigmoid(l.clone().detach()))),
            deltas: outputs
                .first_box_deltas
                .as_ref()
                .map(|d| host(d.clone().detach())),
        }
    }

    /// Image `b`'s first-step probabilities and deltas, given `(N_stc, N_str)`.
    pub(crate) fn image(
        &self,
        b: usize,
        (stc, str): (usize, usize),
    ) -> (Option<&[f32]>, Option<&[f32]>) {
        (
            self.scores.as_deref().map(|s| &s[b * stc..(b + 1) * stc]),
            self.deltas
                .as_deref()
                .map(|d| &d[b * str * 4..(b + 1) * str * 4]),
        )
    }
}
