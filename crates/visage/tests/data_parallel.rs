//! Data-parallel training through the CLI, on the CPU: two devices in one process
//! (`--devices cpu,cpu`), each holding half of every batch, end with the weights of one
//! device training on the whole batch (within 1e-5) and log the same losses.
//!
//! Two processes on 127.0.0.1 (`--nnodes 2`) cannot train with Burn 0.21: burn-collective's
//! global sync never resets, so their second all-reduce hangs (reproduced by
//! `cargo run -p visage-train --example collective_global_repro`). A multi-machine run is
//! refused with that reason (tested); the tests of what it will do once Burn is fixed — the
//! same weights as one process, an exact resume on both machines, a killed peer stopping the
//! other within the timeout — are here, ignored, and run with `VISAGE_ALLOW_MULTI_NODE=1`
//! (`cargo test -p visage --test data_parallel -- --ignored` shows the hang as a timeout).
//!
//! The model is the tiny RetinaNet with frozen batch norm and group-normed heads: with batch
//! norm in training mode each device normalises with its own statistics (as PyTorch's DDP
//! without SyncBatchNorm), and the runs would differ by design.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ok, visage};

const CONFIG: &str = r#"
name = "dp"
run_dir = "runs/dp"

[data]
root = "data/synth"
input_size = 64
threads = 1

[model.backbone.resnet]
depth = 18
width_multiplier = 0.125
frozen_bn = true

[model.neck.fpn]
channels = 16
min_level = 3
max_level = 5

[model.head]
channels = 16
convs = 1
norm = { group = 4 }

[model.anchors]
base_factor = 2.0
scales = [1.0, 1.5]
ratios = [1.0]

[model.assign]
positive_iou = 0.5
negative_iou = 0.4

[train]
epochs = 2
batch_size = 4
lr = 0.01
warmup_iters = 0
seed = 3
log_every = 1
"#;

/// A directory with the synthetic set (16 training images) and the config, `epochs` long.
fn setup(epochs: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = CONFIG.replace("epochs = 2", &format!("epochs = {epochs}"));
    std::fs::write(dir.path().join("dp.toml"), config).unwrap();
    ok(&visage(
        &[
            "synth",
            "--out",
            "data/synth",
            "--train-images",
            "16",
            "--val-images",
            "2",
        ],
        dir.path(),
    ));
    dir
}

/// Three free ports: the coordinator's and each machine's.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// `visage train` as machine `rank` of two on 127.0.0.1, started in the background.
fn spawn_rank(cwd: &Path, rank: u32, ports: [u16; 3], extra: &[&str]) -> Child {
    let master = format!("127.0.0.1:{}", ports[0]);
    let node_port = ports[1 + rank as usize].to_string();
    let rank = rank.to_string();
    let mut args = vec![
        "train",
        "--config",
        "dp.toml",
        "--run-dir",
        "runs/two",
        "--nnodes",
        "2",
        "--node-rank",
        &rank,
        "--master-addr",
        &master,
        "--node-addr",
        "127.0.0.1",
        "--node-port",
        &node_port,
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(&args)
        .env("VISAGE_ALLOW_MULTI_NODE", "1")
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("visage starts")
}

/// Both machines of a two-machine run with `extra` flags; both must succeed.
fn two_machines(cwd: &Path, extra: &[&str]) {
    let ports = free_ports();
    let rank0 = spawn_rank(cwd, 0, ports, extra);
    let rank1 = spawn_rank(cwd, 1, ports, extra);
    for child in [rank0, rank1] {
        ok(&child.wait_with_output().unwrap());
    }
}

/// Every tensor of a checkpoint's weights, by key.
fn weights(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

/// The largest |Δ| between two checkpoints' weights (same keys).
fn max_weight_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.len() > 20, "{} tensors", a.len());
    a.iter()
        .flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(u, v)| (u - v).abs()))
        .fold(0.0, f32::max)
}

/// `(iteration, loss)` of every logged step of a run.
fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (v["kind"] == "train").then(|| {
                (
                    v["iteration"].as_u64().unwrap(),
                    v["loss"].as_f64().unwrap(),
                )
            })
        })
        .collect()
}

fn assert_same_losses(a: &[(u64, f64)], b: &[(u64, f64)]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for ((i, x), (j, y)) in a.iter().zip(b) {
        assert_eq!(i, j);
        assert!(
            (x - y).abs() <= 1e-5 * x.abs().max(1.0),
            "iteration {i}: {x} vs {y}"
        );
    }
}

/// Trains 5 steps (over two epochs) from `extra` flags.
fn train_5(root: &Path, extra: &[&str]) {
    let mut args = vec!["train", "--config", "dp.toml", "--max-iterations", "5"];
    args.extend_from_slice(extra);
    ok(&visage(&args, root));
}

/// The reference: one device on the whole batch.
fn reference(root: &Path) -> (std::path::PathBuf, Vec<(u64, f64)>) {
    train_5(root, &["--run-dir", "runs/one"]);
    let losses = losses(&root.join("runs/one"));
    assert_eq!(losses.len(), 5);
    (root.join("runs/one/last/model.safetensors"), losses)
}

#[test]
fn two_devices_train_as_one() {
    let dir = setup(2);
    let root = dir.path();
    let (one, reference) = reference(root);
    // Two CPU devices in one process, two images each.
    train_5(root, &["--run-dir", "runs/devices", "--devices", "cpu,cpu"]);
    let diff = max_weight_diff(&one, &root.join("runs/devices/last/model.safetensors"));
    println!("two devices: max |Δ weight| after 5 steps {diff:.2e}");
    assert!(diff <= 1e-5, "max |Δ weight| {diff}");
    assert_same_losses(&reference, &losses(&root.join("runs/devices")));
    // The resolved config records the devices asked for.
    let resolved = std::fs::read_to_string(root.join("runs/devices/config.toml")).unwrap();
    assert!(resolved.contains("cpu"), "{resolved}");
    // `replicas` says what replaced it.
    let text = std::fs::read_to_string(root.join("dp.toml")).unwrap();
    std::fs::write(
        root.join("old.toml"),
        text.replace("[train]\n", "[train]\nreplicas = 2\n"),
    )
    .unwrap();
    let err = common::failed(&visage(&["train", "--config", "old.toml"], root));
    assert!(err.contains(r#"devices = ["cpu", "cpu"]"#), "{err}");
}

#[test]
fn a_multi_machine_run_is_refused_with_the_reason() {
    let dir = setup(2);
    let err = common::failed(&visage(
        &[
            "train",
            "--config",
            "dp.toml",
            "--nnodes",
            "2",
            "--node-rank",
            "1",
            "--master-addr",
            "127.0.0.1:29999",
            "--node-addr",
            "127.0.0.1",
        ],
        dir.path(),
    ));
    assert!(
        err.contains("burn-collective") && err.contains("--devices"),
        "{err}"
    );
    // Flags are checked first, by name.
    let err = common::failed(&visage(
        &[
            "train",
            "--config",
            "dp.toml",
            "--nnodes",
            "2",
            "--node-rank",
            "2",
        ],
        dir.path(),
    ));
    assert!(err.contains("--node-rank"), "{err}");
}

#[test]
#[ignore = "burn-collective 0.21: the second all-reduce across machines hangs"]
fn two_machines_train_as_one_and_resume_exactly() {
    let dir = setup(2);
    let root = dir.path();
    let (one, reference) = reference(root);
    two_machines(root, &["--max-iterations", "5", "--peer-timeout", "60"]);
    let diff = max_weight_diff(&one, &root.join("runs/two/last/model.safetensors"));
    assert!(diff <= 1e-5, "max |Δ weight| {diff}");
    assert_same_losses(&reference, &losses(&root.join("runs/two")));
    // Stopped after 3 steps and resumed on both machines, the run continues exactly.
    two_machines(
        root,
        &[
            "--max-iterations",
            "3",
            "--overwrite",
            "--peer-timeout",
            "60",
        ],
    );
    two_machines(
        root,
        &["--max-iterations", "5", "--resume", "--peer-timeout", "60"],
    );
    let diff = max_weight_diff(&one, &root.join("runs/two/last/model.safetensors"));
    assert!(diff <= 1e-5, "resumed: max |Δ weight| {diff}");
    assert_same_losses(&reference, &losses(&root.join("runs/two")));
}

#[test]
#[ignore = "burn-collective 0.21: the second all-reduce across machines hangs"]
fn a_peer_that_dies_stops_the_other_with_an_error() {
    let dir = setup(500);
    let root = dir.path();
    let ports = free_ports();
    let extra = ["--peer-timeout", "10", "--max-iterations", "1000"];
    let rank0 = spawn_rank(root, 0, ports, &extra);
    let mut rank1 = spawn_rank(root, 1, ports, &extra);
    // Let them train a little, then kill machine 1.
    let metrics = root.join("runs/two/metrics.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    rank1.kill().unwrap();
    rank1.wait().unwrap();
    let killed = Instant::now();
    let out: Output = rank0.wait_with_output().unwrap();
    let waited = killed.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rank 0 should fail");
    let error = stderr
        .lines()
        .filter(|l| l.contains("error"))
        .collect::<Vec<_>>();
    println!(
        "rank 0 stopped {:.1} s after the kill: {error:?}",
        waited.as_secs_f64()
    );
    assert!(stderr.contains("error: data parallel"), "{stderr}");
    assert!(waited < Duration::from_secs(60), "stopped after {waited:?}");
}
