//! The local peers of a data-parallel run, registered with burn-collective: one per device
//! of this machine, each driven by its own thread during a step. Every collective operation
//! waits at most the run's peer timeout, so a peer that died (a killed process, a lost
//! machine) stops the others with an error instead of a hang.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use burn::prelude::*;
use burn::tensor::{TensorData, TensorPrimitive};
use burn_collective::{
    all_reduce, finish_collective, register, reset_collective, CollectiveError, PeerId,
    ReduceOperation,
};

use super::topology::Topology;
use crate::error::TrainError;

/// burn-collective keeps one set of peers per process and backend: one run at a time. Whether
/// a group is registered, and the wait for it to end.
static GROUP_HELD: Mutex<bool> = Mutex::new(false);
static GROUP_ENDED: Condvar = Condvar::new();

/// The right to register this process's peers, held by a [`PeerGroup`] until it is dropped;
/// unlike a mutex guard it may be moved to another thread with its group.
struct OneGroup;

impl OneGroup {
    /// Waits until no other group of this process is registered.
    fn acquire() -> Self {
        let mut held = GROUP_HELD.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = GROUP_ENDED.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        *held = true;
        OneGroup
    }
}

impl Drop for OneGroup {
    fn drop(&mut self) {
        *GROUP_HELD.lock().unwrap_or_else(|p| p.into_inner()) = false;
        GROUP_ENDED.notify_one();
    }
}

/// How long leaving the collective may take at the end of a run.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// This machine's peers: their devices, burn-collective ids and the timeout.
pub struct PeerGroup<B: Backend> {
    devices: Vec<B::Device>,
    ids: Vec<PeerId>,
    timeout: Duration,
    _one_group: OneGroup,
}

impl<B: Backend> std::fmt::Debug for PeerGroup<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerGroup")
            .field("ids", &self.ids)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<B: Backend> PeerGroup<B> {
    /// Registers one peer per device of `devices` (`topology.local_devices` of them); returns
    /// once every peer of every machine has registered.
    ///
    /// # Errors
    /// [`TrainError::Collective`] when burn-collective refuses the configuration, or the other
    /// machines do not register within the peer timeout.
    pub fn register(topology: &Topology, devices: Vec<B::Device>) -> Result<Self, TrainError> {
        assert_eq!(
            devices.len(),
            topology.local_devices,
            "one device per local peer"
        );
        let config = topology.collective_config()?;
        let one_group = OneGroup::acquire();
        reset_collective::<B>();
        let ids: Vec<PeerId> = (0..devices.len()).map(|k| topology.peer_id(k)).collect();
        let waits: Vec<_> = ids
            .iter()
            .zip(&devices)
            .map(|(&id, device)| {
                let (device, config) = (device.clone(), config.clone());
                with_timeout(topology.peer_timeout, move || {
                    register::<B>(id, device, config)
                })
            })
            .collect();
        for wait in waits {
            wait.wait().map_err(|e| {
                collective_error(format!(
                    "joining the run's {} machine(s): {e} (is the coordinator at the \
                     --master-addr reachable, and is every machine started?)",
                    topology.nnodes()
                ))
            })?;
        }
        Ok(Self {
            devices,
            ids,
            timeout: topology.peer_timeout,
            _one_group: one_group,
        })
    }

    /// The devices, local peer order.
    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// Sums `tensor` (`[n]`, on local peer `local`'s device) over every peer of the run;
    /// each local peer calls it from its own thread, every peer with the same `n`.
    ///
    /// # Errors
    /// [`TrainError::Collective`] naming `what` when burn-collective fails or the other peers
    /// do not answer within the timeout.
    pub fn all_reduce_sum(
        &self,
        local: usize,
        tensor: Tensor<B, 1>,
        what: &str,
    ) -> Result<Tensor<B, 1>, TrainError> {
        let id = self.ids[local];
        let primitive = tensor.into_primitive().tensor();
        let summed = with_timeout(self.timeout, move || {
            all_reduce::<B>(id, primitive, ReduceOperation::Sum)
        })
        .wait()
        .map_err(|e| collective_error(format!("summing the {what} over the peers: {e}")))?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(summed)))
    }

    /// Sums `values` over the machines of the run: each machine's first local peer
    /// contributes them, its other peers zeros (every local peer takes part, each from its
    /// own thread).
    ///
    /// # Errors
    /// As [`all_reduce_sum`](Self::all_reduce_sum).
    pub fn sum_over_machines(&self, values: &[f32], what: &str) -> Result<Vec<f32>, TrainError> {
        let n = values.len();
        let sums: Vec<Result<Tensor<B, 1>, TrainError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .devices
                .iter()
                .enumerate()
                .map(|(local, device)| {
                    let mine = if local == 0 {
                        values.to_vec()
                    } else {
                        vec![0.0; n]
                    };
                    scope.spawn(move || {
                        let t = Tensor::from_data(TensorData::new(mine, [n]), device);
                        self.all_reduce_sum(local, t, what)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a collective thread panicked"))
                .collect()
        });
        let first = sums.into_iter().next().expect("a local peer")?;
        Ok(first.into_data().convert::<f32>().to_vec().expect("f32"))
    }
}

impl<B: Backend> Drop for PeerGroup<B> {
    fn drop(&mut self) {
        let waits: Vec<_> = self
            .ids
            .iter()
            .map(|&id| with_timeout(FINISH_TIMEOUT, move || finish_collective::<B>(id)))
            .collect();
        for wait in waits {
            // A peer that cannot finish (the run failed) is left behind; the reset below
            // forgets it.
            let _ = wait.wait();
        }
        // Forget any operation left in flight (a failed step), for the next run in this
        // process.
        reset_collective::<B>();
    }
}

fn collective_error(message: String) -> TrainError {
    TrainError::Collective(message)
}

/// A blocking collective call running on its own thread.
struct Pending<T> {
    rx: mpsc::Receiver<Result<T, CollectiveError>>,
    timeout: Duration,
}

impl<T> Pending<T> {
    /// The call's result, or an error after the timeout (the thread is left waiting).
    fn wait(self) -> Result<T, String> {
        match self.rx.recv_timeout(self.timeout) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "no answer from the other peers within {} s: a peer stopped (killed, crashed, \
                 or failed with its own error) or the network between the machines is down",
                self.timeout.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err("the collective operation panicked (a peer's connection failed)".into())
            }
        }
    }
}

fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> Result<T, CollectiveError> + Send + 'static,
) -> Pending<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    Pending { rx, timeout }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    /// Two local peers on the CPU sum their tensors; a group whose second peer never calls
    /// times out with an error that says why.
    #[test]
    fn local_peers_sum_and_a_missing_peer_times_out() {
        let topology = Topology {
            local_devices: 2,
            peer_timeout: Duration::from_secs(2),
            ..Topology::default()
        };
        let device = Default::default();
        let group = PeerGroup::<Flex>::register(&topology, vec![device, device]).unwrap();
        let sums: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|k| {
                    let group = &group;
                    scope.spawn(move || {
                        let t = Tensor::<Flex, 1>::from_floats([k as f32 + 1.0, 10.0], &device);
                        group
                            .all_reduce_sum(k, t, "test values")
                            .unwrap()
                            .into_data()
                            .to_vec::<f32>()
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(sums, vec![vec![3.0, 20.0], vec![3.0, 20.0]]);
        let alone = Tensor::<Flex, 1>::from_floats([1.0], &device);
        let err = group
            .all_reduce_sum(0, alone, "lonely values")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lonely values") && err.contains("within 2 s"),
            "{err}"
        );
    }
}
