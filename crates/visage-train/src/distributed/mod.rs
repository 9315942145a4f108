//! Data-parallel training on Burn's collective operations (burn-collective): one model
//! replica per device, on one machine or several.
//!
//! ```text
//! topology.rs     which peers a run has: this machine's devices, the machines (`NodeSpec`),
//!                 this machine's slots of every batch
//! peers.rs        the local peers registered with burn-collective; all-reduce with a timeout
//! gradients.rs    a step's gradients as one flat tensor (one all-reduce) and back
//! coordinator.rs  burn-collective's global orchestrator (rank 0, or `visage coordinator`)
//! ```
//!
//! Every step, each machine loads its slots of the batch and splits them over its devices;
//! each device runs forward and loss on a fork of the model. A first all-reduce sums every
//! shard's loss sums and normaliser counts, so every peer knows the loss of the whole batch
//! and weighs its own parts by the batch's counts (`FaceLoss::shard_total`): the summed
//! gradients are those of the whole batch, whatever the split. A second all-reduce sums
//! the gradients (one flat tensor), and every machine applies the same optimiser step to
//! its copy of the model — so the copies stay equal without sending weights. Rank 0 writes
//! the checkpoints, metrics and validation.
//!
//! Batch norm in training mode normalises with each device's own statistics (as PyTorch's
//! DistributedDataParallel without SyncBatchNorm); with frozen batch norm (the detection
//! recipes' backbones) or group norm, N machines train exactly as one.

mod coordinator;
mod gradients;
mod peers;
mod topology;

pub use coordinator::{run_coordinator, start_coordinator};
pub use gradients::GradientLayout;
pub use peers::PeerGroup;
pub use topology::{NodeSpec, Topology, DEFAULT_PEER_TIMEOUT};
