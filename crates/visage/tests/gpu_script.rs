//! `benches/gpu/run.sh`, the one command for a GPU machine, checked on this one: without a
//! GPU it stops with exit status 2 and says why; with `--self-test` it runs its whole
//! sequence on the CPU at tiny sizes (check-device, synthetic sets, training of the three
//! models in each precision, detection) and writes its results file.

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/gpu/run.sh")
}

fn has_nvidia_smi() -> bool {
    Command::new("sh")
        .args(["-c", "command -v nvidia-smi"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn without_a_gpu_the_script_says_why_and_exits_2() {
    if has_nvidia_smi() {
        eprintln!("skipping: this machine has nvidia-smi");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .args(["--visage", env!("CARGO_BIN_EXE_visage"), "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nvidia-smi not found"), "{stderr}");
}

#[test]
fn the_self_test_runs_the_whole_sequence_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .args([
            "--visage",
            env!("CARGO_BIN_EXE_visage"),
            "--self-test",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let results = std::fs::read_to_string(dir.path().join("results.md")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\n{results}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default()
    );
    assert!(
        results.contains("every family agrees with the CPU"),
        "{results}"
    );
    for model in ["retinaface-mnet", "retinaface-r50", "fan"] {
        let f32_row = results
            .lines()
            .find(|l| l.starts_with(&format!("| {model} | f32 |")))
            .unwrap_or_else(|| panic!("no f32 row for {model}:\n{results}"));
        let images_per_s: f64 = f32_row.split('|').nth(3).unwrap().trim().parse().unwrap();
        assert!(images_per_s > 0.0, "{f32_row}");
        // The CPU has no half precision: recorded as such, not a failure.
        assert!(
            results.contains(&format!("| {model} | f16 | failed:")),
            "{results}"
        );
    }
    assert!(results.contains("ms, post-processing"), "{results}");
}
