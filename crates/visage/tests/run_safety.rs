//! What keeps a run directory trustworthy, through the real binary: one `visage train` per
//! run directory (a second, `--overwrite` included, is refused naming the holder; a killed
//! holder does not block), a diverging run that stops or skips without ever writing a
//! non-finite checkpoint, and corrupted checkpoints named by resume and detect.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{failed, ok, stderr, visage};

/// A tiny RetinaNet ([`common::TINY_RETINANET_MODEL`]) on a 16-image synthetic set; `{epochs}`,
/// `{lr}` and `{extra}` (more `[train]` keys) are filled in.
const CONFIG: &str = r#"
name = "safety"
run_dir = "runs/a"

[data]
root = "data/synth"
input_size = 64
threads = 1

[data.synth]
seed = 21
train_images = 16
val_images = 4

{model}

[train]
epochs = {epochs}
batch_size = 4
lr = {lr}
momentum = 0.9
log_every = 1
checkpoint_every = 1
{extra}
"#;

fn write_config(root: &Path, epochs: usize, lr: &str, extra: &str) {
    let text = CONFIG
        .replace("{model}", common::TINY_RETINANET_MODEL)
        .replace("{epochs}", &epochs.to_string())
        .replace("{lr}", lr)
        .replace("{extra}", extra);
    std::fs::write(root.join("run.toml"), text).unwrap();
}

fn train(root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--config", "run.toml"];
    args.extend_from_slice(extra);
    visage(&args, root)
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_writer_per_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_config(root, 200, "0.01", "");
    // Makes the synthetic set, so the long run below starts training at once.
    ok(&train(
        root,
        &["--run-dir", "runs/warm", "--max-iterations", "1"],
    ));
    let mut holder = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["train", "--config", "run.toml"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = root.join("runs/a");
    wait_for("the first checkpoint", Duration::from_secs(120), || {
        run.join("last/state.json").is_file()
    });
    let pid = format!("pid {}", holder.id());
    for extra in [&[][..], &["--overwrite"][..], &["--resume"][..]] {
        let err = failed(&train(root, extra));
        assert!(
            err.contains("is in use by another `visage train`") && err.contains(&pid),
            "{extra:?}: {err}"
        );
    }
    assert!(
        run.join("last/model.safetensors").is_file(),
        "--overwrite deleted nothing of the live run"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let iterations: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        iterations.windows(2).all(|w| w[0] < w[1]),
        "one writer: no line twice ({iterations:?})"
    );
    // A holder that dies (SIGKILL: no clean-up) leaves its lock file, which blocks nobody.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(run.join("train.lock").is_file());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("last/state.json")).unwrap())
            .unwrap();
    let next = (state["iteration"].as_u64().unwrap() + 1).to_string();
    ok(&train(root, &["--resume", "--max-iterations", &next]));
}

#[test]
fn a_diverging_run_stops_without_a_poisoned_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_config(root, 2, "1e6", "");
    let err = failed(&train(root, &[]));
    assert!(err.contains("non-finite"), "{err}");
    assert!(err.contains("the last checkpoint is intact"), "{err}");
    let run = root.join("runs/a");
    let mut checked = 0;
    for entry in std::fs::read_dir(&run).unwrap() {
        let path = entry.unwrap().path().join("model.safetensors");
        if path.is_file() {
            assert_all_finite(&path);
            checked += 1;
        }
    }
    eprintln!("{checked} checkpoint(s) left, all finite");
    if run.join("last").is_dir() {
        // What is left is usable.
        let image = root.join("data/synth/WIDER_val/images");
        ok(&visage(
            &["detect", image.to_str().unwrap(), "--weights", "runs/a"],
            root,
        ));
    }

    // `skip`: non-finite steps are dropped and counted, and too many in a row end the run.
    write_config(
        root,
        2,
        "1e6",
        "on_non_finite = \"skip\"\nmax_consecutive_skips = 3",
    );
    let err = failed(&train(root, &["--overwrite"]));
    assert!(err.contains("3 consecutive steps skipped"), "{err}");
    assert!(err.contains("step skipped"), "each skip is reported: {err}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.contains("\"skipped\""))
            .count(),
        3,
        "{metrics}"
    );
}

fn assert_all_finite(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in tensors.tensors() {
        if view.dtype() == safetensors::Dtype::F32 {
            let finite = view
                .data()
                .chunks_exact(4)
                .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite());
            assert!(finite, "{}: {name} is not finite", path.display());
        }
    }
}

#[test]
fn corrupted_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_config(root, 3, "0.01", "");
    // 6 iterations: epoch 1 complete (epoch-0001, best), then `last` mid-epoch 2.
    ok(&train(root, &["--max-iterations", "6"]));
    let run = root.join("runs/a");
    let image = root.join("data/synth/WIDER_val/images");
    let image = image.to_str().unwrap();

    // 400 bytes of `last`'s weights overwritten with 0xFF.
    let model = run.join("last/model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 400].fill(0xFF);
    std::fs::write(&model, bytes).unwrap();
    let err = failed(&visage(
        &["detect", image, "--weights", "runs/a/last"],
        root,
    ));
    assert!(
        err.contains("last/model.safetensors") && err.contains("checksum"),
        "{err}"
    );
    // Resume passes over it (saying so) and continues from the newest good checkpoint.
    let out = train(root, &["--resume", "--max-iterations", "8"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("not resuming from") && log.contains("model.safetensors"),
        "{log}"
    );
    assert!(
        log.contains("resumed from") && log.contains("epoch-0001"),
        "{log}"
    );

    // An optimiser state that does not parse (a checkpoint without checksums, as older
    // versions wrote): a message about the file, no Burn internals.
    let last = run.join("last");
    std::fs::remove_file(last.join("checksums.sha256")).unwrap();
    std::fs::write(last.join("optimizer.mpk"), b"\x93\x01").unwrap();
    for name in ["epoch-0001", "epoch-0002", "best"] {
        let _ = std::fs::remove_dir_all(run.join(name));
    }
    let err = failed(&train(root, &["--resume"]));
    assert!(
        err.contains("optimizer.mpk") && err.contains("unreadable optimiser state"),
        "{err}"
    );
    assert!(!err.contains("feature"), "no Burn internals: {err}");
}
