//! Which peers a run has: the devices of this machine and, for a multi-machine run, the
//! machines (`--nnodes N --node-rank R --master-addr HOST:PORT`, as `torchrun`).

use std::ops::Range;
use std::time::Duration;

use burn_collective::{CollectiveConfig, PeerId};

use crate::data_parallel::shard_ranges;
use crate::error::TrainError;

/// How long a peer waits for the others in a collective operation before the run stops
/// with an error (a peer that died, a network that went down) — unless set otherwise.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(600);

/// One machine of a multi-machine run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Machines in the run (≥ 1).
    pub nnodes: u32,
    /// This machine's rank, `0..nnodes`; rank 0 starts the coordinator (unless
    /// `external_coordinator`) and writes the checkpoints and logs.
    pub node_rank: u32,
    /// `HOST:PORT` of the coordinator (burn-collective's global orchestrator).
    pub master_addr: String,
    /// The host name or address the other machines reach this one at.
    pub node_host: String,
    /// The port this machine serves gradient exchanges on (the other machines connect to it).
    pub data_port: u16,
    /// The coordinator runs elsewhere (`visage coordinator --port P`): rank 0 does not start
    /// one.
    pub external_coordinator: bool,
}

impl NodeSpec {
    /// The coordinator's port (the part of `master_addr` after the last `:`).
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] (`--master-addr`) when there is no port.
    pub fn master_port(&self) -> Result<u16, TrainError> {
        self.master_addr
            .rsplit_once(':')
            .and_then(|(host, port)| (!host.is_empty()).then_some(port))
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| {
                invalid(
                    "--master-addr",
                    format!("`{}` is not HOST:PORT", self.master_addr),
                )
            })
    }

    /// Checks the ranks and addresses.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] naming the flag.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.nnodes == 0 {
            return Err(invalid("--nnodes", "must be at least 1"));
        }
        if self.node_rank >= self.nnodes {
            return Err(invalid(
                "--node-rank",
                format!("{} is not below --nnodes {}", self.node_rank, self.nnodes),
            ));
        }
        let port = self.master_port()?;
        if self.data_port == 0 || self.data_port == port && self.node_rank == 0 {
            return Err(invalid(
                "--node-port",
                format!(
                    "{} must be a free port other than the coordinator's",
                    self.data_port
                ),
            ));
        }
        if self.node_host.is_empty() || self.node_host.contains(['/', ' ']) {
            return Err(invalid(
                "--node-addr",
                format!("`{}` is not a host", self.node_host),
            ));
        }
        Ok(())
    }
}

fn invalid(key: &str, message: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig {
        key: key.into(),
        message: message.into(),
    }
}

/// The peers of a run as this machine sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Devices (local peers) of this machine, ≥ 1.
    pub local_devices: usize,
    /// The machines, for a multi-machine run.
    pub nodes: Option<NodeSpec>,
    /// How long to wait for the other peers in a collective operation.
    pub peer_timeout: Duration,
}

impl Default for Topology {
    /// One device, one machine.
    fn default() -> Self {
        Self {
            local_devices: 1,
            nodes: None,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
        }
    }
}

impl Topology {
    /// Whether the run has more than one peer (and so exchanges gradients).
    pub fn is_parallel(&self) -> bool {
        self.local_devices > 1 || self.nodes.as_ref().is_some_and(|n| n.nnodes > 1)
    }

    /// Machines in the run.
    pub fn nnodes(&self) -> usize {
        self.nodes.as_ref().map_or(1, |n| n.nnodes as usize)
    }

    /// This machine's rank (0 without `nodes`).
    pub fn node_rank(&self) -> usize {
        self.nodes.as_ref().map_or(0, |n| n.node_rank as usize)
    }

    /// Whether this machine writes the run's checkpoints, metrics and validation.
    pub fn is_primary(&self) -> bool {
        self.node_rank() == 0
    }

    /// The burn-collective id of local peer `local` (unique over every machine).
    pub fn peer_id(&self, local: usize) -> PeerId {
        PeerId::from((self.node_rank() * self.local_devices + local) as u32)
    }

    /// This machine's slots of each batch of `batch_size` images (all of them on one
    /// machine): the machines' ranges cover the batch in rank order.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] (`train.batch_size`) when the batch has fewer images than
    /// the run has devices.
    pub fn node_slots(&self, batch_size: usize) -> Result<Range<usize>, TrainError> {
        let peers = self.nnodes() * self.local_devices;
        if batch_size < peers {
            return Err(invalid(
                "train.batch_size",
                format!("{batch_size} images cannot be split over {peers} devices"),
            ));
        }
        // Split by devices, so every device of every machine gets its share.
        let per_device = shard_ranges(batch_size, peers);
        let first = self.node_rank() * self.local_devices;
        let last = first + self.local_devices - 1;
        Ok(per_device[first].start..per_device[last].end)
    }

    /// burn-collective's configuration for this machine.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] from [`NodeSpec::validate`].
    pub fn collective_config(&self) -> Result<CollectiveConfig, TrainError> {
        let config = CollectiveConfig::default().with_num_devices(self.local_devices);
        let Some(node) = self.nodes.as_ref().filter(|n| n.nnodes > 1) else {
            return Ok(config);
        };
        node.validate()?;
        let address = |text: String| {
            text.parse()
                .map_err(|e: String| invalid("--master-addr", e))
        };
        Ok(config
            .with_num_nodes(node.nnodes)
            .with_global_address(address(format!("ws://{}", node.master_addr))?)
            .with_node_address(address(format!(
                "ws://{}:{}",
                node.node_host, node.data_port
            ))?)
            .with_data_service_port(node.data_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(nnodes: u32, node_rank: u32) -> NodeSpec {
        NodeSpec {
            nnodes,
            node_rank,
            master_addr: "10.0.0.1:29500".into(),
            node_host: "10.0.0.2".into(),
            data_port: 29501,
            external_coordinator: false,
        }
    }

    #[test]
    fn machines_take_their_devices_slots_in_rank_order() {
        let mut t = Topology {
            local_devices: 2,
            nodes: Some(node(2, 0)),
            ..Topology::default()
        };
        assert_eq!(t.node_slots(10).unwrap(), 0..6);
        assert_eq!((t.peer_id(0), t.peer_id(1)), (PeerId(0), PeerId(1)));
        t.nodes = Some(node(2, 1));
        assert_eq!(t.node_slots(10).unwrap(), 6..10);
        assert_eq!(t.peer_id(1), PeerId(3));
        assert!(!t.is_primary() && t.is_parallel());
        let err = t.node_slots(3).unwrap_err().to_string();
        assert!(
            err.contains("train.batch_size") && err.contains("4 devices"),
            "{err}"
        );
        assert_eq!(Topology::default().node_slots(5).unwrap(), 0..5);
        assert!(!Topology::default().is_parallel());
    }

    #[test]
    fn node_flags_are_checked_by_name() {
        node(2, 1).validate().unwrap();
        assert_eq!(node(2, 1).master_port().unwrap(), 29500);
        let err = node(2, 2).validate().unwrap_err().to_string();
        assert!(err.contains("--node-rank"), "{err}");
        let err = NodeSpec {
            master_addr: "host".into(),
            ..node(2, 0)
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--master-addr") && err.contains("HOST:PORT"),
            "{err}"
        );
        let err = NodeSpec {
            data_port: 29500,
            ..node(2, 0)
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("--node-port"), "{err}");
        let t = Topology {
            local_devices: 1,
            nodes: Some(node(2, 1)),
            ..Topology::default()
        };
        t.collective_config().unwrap();
    }
}
