//! Minimal reproduction of burn-collective 0.21's multi-machine hang, with nothing of
//! visage: two processes (two "nodes", one peer each, Flex) register with a global
//! orchestrator on 127.0.0.1 and all-reduce a tensor three times. The first all-reduce
//! returns; the second never does: `SyncService::sync` (src/global/node/sync.rs) compares a
//! sorted *copy* of its `syncing_peers` list with the node ids and clears the copy, so the
//! list keeps growing and never equals the node ids again.
//!
//! ```sh
//! cargo run -p visage-train --example collective_global_repro -- 1 &
//! cargo run -p visage-train --example collective_global_repro -- 0
//! ```
//! prints `all-reduce 0: [3.0, 3.0]` on both, then `all-reduce 1: no result after 10 s`.

use std::sync::mpsc;
use std::time::Duration;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn_collective::{all_reduce, register, CollectiveConfig, PeerId, ReduceOperation};

const PORT: u16 = 29_710;

fn main() {
    let rank: u32 = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .expect("usage: collective_global_repro RANK (0 or 1)");
    if rank == 0 {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(burn_collective::start_global_orchestrator(PORT))
        });
    }
    let data_port = PORT + 1 + rank as u16;
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(2)
        .with_global_address(format!("ws://127.0.0.1:{PORT}").parse().unwrap())
        .with_node_address(format!("ws://127.0.0.1:{data_port}").parse().unwrap())
        .with_data_service_port(data_port);
    let device = Default::default();
    register::<Flex>(PeerId(rank), device, config).expect("register");
    for k in 0..3 {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let t = Tensor::<Flex, 1>::from_floats([rank as f32 + 1.0; 2], &device);
            let summed = all_reduce::<Flex>(
                PeerId(rank),
                t.into_primitive().tensor(),
                ReduceOperation::Sum,
            );
            let _ = tx.send(summed.map(|p| {
                Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(p))
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap()
            }));
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(result) => println!("all-reduce {k}: {result:?}"),
            Err(_) => {
                println!("all-reduce {k}: no result after 10 s");
                std::process::exit(1);
            }
        }
    }
}
