//! Long runs through the real binary: a training process killed with SIGKILL at random points
//! (mid-epoch, mid-checkpoint-write) and resumed ends with exactly the uninterrupted run's
//! weights, optimiser state, training state and metrics; `--max-iterations` leaves a
//! resumable checkpoint; one writer per run directory; a diverging run never writes a
//! poisoned checkpoint; a corrupted checkpoint is named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, visage};

/// RetinaNet (ResNet-18 at 1/8 width, batch norm in training mode), SGD with momentum, a
/// checkpoint after every iteration, 3 epochs of 4 steps, validated at the end; `{model}` is
/// [`common::TINY_RETINANET_MODEL`].
const RETINANET: &str = r#"
name = "long-retinanet"
run_dir = "runs/ref"

[data]
root = "data/synth"
input_size = 64
threads = 1

[data.synth]
seed = 11
train_images = 16
val_images = 4

{model}

[train]
epochs = 3
batch_size = 4
lr = 0.01
momentum = 0.9
warmup_iters = 3
lr_steps = [2]
log_every = 1
eval_every = 3
checkpoint_every = 1
keep_checkpoints = 2

[test]
score_threshold = 0.05
max_detections = 20
"#;

/// RetinaFace (MobileNet-0.25, batch norm in training mode) with landmarks, the same schedule.
const RETINAFACE: &str = r#"
name = "long-retinaface"
run_dir = "runs/ref"

[data]
root = "data/synth"
train_labels = "train/label.txt"
input_size = 64
pad_to_square = true
channel_order = "bgr"
mean = [104.0, 117.0, 123.0]
std = [1.0, 1.0, 1.0]
threads = 1

[data.synth]
seed = 12
train_images = 16
val_images = 4

[model]
architecture = "retinaface"
out_channels = 16

[model.backbone.mobilenet]
width_multiplier = 0.25

[train]
epochs = 3
batch_size = 4
lr = 0.001
momentum = 0.9
warmup_iters = 3
log_every = 1
eval_every = 3
checkpoint_every = 2
"#;

/// A small deterministic generator for the kill times (SplitMix64).
struct Seeded(u64);

impl Seeded {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn train_command(root: &Path, run_dir: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_visage"));
    command
        .args(["train", "--config", "run.toml", "--run-dir", run_dir])
        .args(extra)
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Asserts `got` equals `want`, saying what differs (the weights are too long to print).
fn assert_same(got: &Outcome, want: &Outcome, what: &str) {
    let differing = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert_eq!(
        got.metrics.len(),
        want.metrics.len(),
        "{what}: metrics lines"
    );
    for (g, w) in got.metrics.iter().zip(&want.metrics) {
        assert_eq!(g, w, "{what}: metrics");
    }
    assert_eq!(got.state, want.state, "{what}: state");
    for (name, g, w) in [
        ("last/model.safetensors", &got.model, &want.model),
        ("last/optimizer.mpk", &got.optimizer, &want.optimizer),
        ("best/model.safetensors", &got.best_model, &want.best_model),
    ] {
        assert!(
            g == w,
            "{what}: {name} differs ({} vs {} bytes, {} differing)",
            g.len(),
            w.len(),
            differing(g, w)
        );
    }
}

/// What the end of a run is, for comparison: the bytes of `last`'s weights and optimiser
/// state and of `best`'s weights, `last`'s state without the metrics length (throughput
/// figures make lines differ in length), and the metrics without timings.
struct Outcome {
    model: Vec<u8>,
    optimizer: Vec<u8>,
    best_model: Vec<u8>,
    state: serde_json::Value,
    metrics: Vec<serde_json::Value>,
}

fn outcome(run: &Path) -> Outcome {
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut state: serde_json::Value =
        serde_json::from_slice(&read(run.join("last/state.json"))).unwrap();
    state.as_object_mut().unwrap().remove("metrics_bytes");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let metrics = metrics
        .lines()
        .map(|line| {
            let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
            let fields = record.as_object_mut().unwrap();
            for timing in ["images_per_s", "elapsed_s", "seconds"] {
                fields.remove(timing);
            }
            record
        })
        .collect();
    Outcome {
        model: read(run.join("last/model.safetensors")),
        optimizer: read(run.join("last/optimizer.mpk")),
        best_model: read(run.join("best/model.safetensors")),
        state,
        metrics,
    }
}

/// Starts a training run (resumed when `resume`), kills it with SIGKILL `after` its start or,
/// with `at_write`, at the first checkpoint write seen after that, and says what the kill
/// left.
fn start_and_kill(root: &Path, run_dir: &str, resume: bool, after: Duration, at_write: bool) {
    let extra: &[&str] = if resume { &["--resume"] } else { &[] };
    let mut child: Child = train_command(root, run_dir, extra).spawn().unwrap();
    let started = Instant::now();
    let run = root.join(run_dir);
    loop {
        if child.try_wait().unwrap().is_some() {
            eprintln!("  the run ended before the kill");
            return;
        }
        let late = started.elapsed() >= after;
        let writing = at_write && late && has_temporary(&run);
        if writing || (late && !at_write) {
            child.kill().unwrap();
            child.wait().unwrap();
            eprintln!(
                "  killed after {:.2} s{}; left: {:?}",
                started.elapsed().as_secs_f64(),
                if writing {
                    " during a checkpoint write"
                } else {
                    ""
                },
                listing(&run)
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(if at_write { 1 } else { 5 }));
    }
}

fn has_temporary(run: &Path) -> bool {
    listing(run)
        .iter()
        .any(|n| n.ends_with(".tmp") || n.ends_with(".old"))
}

fn listing(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Resumes `run_dir` to the end; when the kill came before any checkpoint, `--resume` says
/// so and the run starts over.
fn finish(root: &Path, run_dir: &str) {
    let out = visage(
        &[
            "train",
            "--config",
            "run.toml",
            "--run-dir",
            run_dir,
            "--resume",
        ],
        root,
    );
    if !out.status.success() {
        let err = common::stderr(&out);
        assert!(
            err.contains("nothing to resume") && err.contains("--overwrite"),
            "{err}"
        );
        eprintln!("  no checkpoint yet: starting over");
        ok(&visage(
            &[
                "train",
                "--config",
                "run.toml",
                "--run-dir",
                run_dir,
                "--overwrite",
            ],
            root,
        ));
    }
}

/// The uninterrupted run, then runs killed once or twice at random points and resumed, a run
/// killed during a checkpoint write, and a run stopped by `--max-iterations` mid-epoch: each
/// must end exactly as the uninterrupted one.
fn killed_runs_end_as_the_uninterrupted_run(config: &str, seeds: &[u64]) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("run.toml"), config).unwrap();
    // Generates the synthetic set first: timed on a second run.
    ok(&visage(
        &["train", "--config", "run.toml", "--run-dir", "runs/warm"],
        root,
    ));
    let started = Instant::now();
    ok(&visage(&["train", "--config", "run.toml"], root));
    let whole = started.elapsed();
    let reference = outcome(&root.join("runs/ref"));
    assert_eq!(
        reference
            .metrics
            .iter()
            .filter(|m| m["kind"] == "train")
            .count(),
        12
    );
    eprintln!("uninterrupted run: {:.2} s", whole.as_secs_f64());

    for &seed in seeds {
        let mut rng = Seeded(seed);
        let run_dir = format!("runs/seed-{seed}");
        eprintln!("seed {seed}:");
        let first = whole.mul_f64(0.1 + 0.85 * rng.unit());
        start_and_kill(root, &run_dir, false, first, false);
        if seed % 2 == 0 {
            // A second kill, into the resumed run.
            let second = whole.mul_f64(0.1 + 0.6 * rng.unit());
            if root.join(&run_dir).join("last").exists() {
                start_and_kill(root, &run_dir, true, second, false);
            }
        }
        finish(root, &run_dir);
        assert_same(
            &outcome(&root.join(&run_dir)),
            &reference,
            &format!("seed {seed}"),
        );
    }

    eprintln!("killed during a checkpoint write:");
    start_and_kill(root, "runs/write", false, whole.mul_f64(0.5), true);
    finish(root, "runs/write");
    assert_same(
        &outcome(&root.join("runs/write")),
        &reference,
        "killed mid-write",
    );

    eprintln!("--max-iterations 6 (mid-epoch), then --resume:");
    ok(&visage(
        &[
            "train",
            "--config",
            "run.toml",
            "--run-dir",
            "runs/max",
            "--max-iterations",
            "6",
        ],
        root,
    ));
    let state = std::fs::read_to_string(root.join("runs/max/last/state.json")).unwrap();
    assert!(state.contains("\"iteration\": 6"), "{state}");
    ok(&visage(
        &[
            "train",
            "--config",
            "run.toml",
            "--run-dir",
            "runs/max",
            "--resume",
        ],
        root,
    ));
    assert_same(
        &outcome(&root.join("runs/max")),
        &reference,
        "--max-iterations",
    );
}

#[test]
fn a_killed_retinanet_run_resumes_exactly() {
    let config = RETINANET.replace("{model}", common::TINY_RETINANET_MODEL);
    killed_runs_end_as_the_uninterrupted_run(&config, &[1, 2, 3, 4]);
}

#[test]
fn a_killed_retinaface_run_resumes_exactly() {
    killed_runs_end_as_the_uninterrupted_run(RETINAFACE, &[5, 6, 7]);
}
