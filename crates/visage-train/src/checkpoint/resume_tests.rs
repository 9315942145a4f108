//! Resuming from what a killed run leaves behind, built by hand: each state a kill during a
//! checkpoint write can produce.

use super::super::files::StagedDir;
use super::*;

/// Writes a checkpoint at `iteration` under `dir` as `save_checkpoint` lays it out.
fn checkpoint(dir: &Path, iteration: usize, metrics_bytes: u64, is_best: bool) {
    let state = TrainState {
        iteration,
        epochs_done: iteration / 4,
        is_best,
        metrics_bytes: Some(metrics_bytes),
        ..TrainState::default()
    };
    let mut staged = StagedDir::create(dir.with_extension("staging")).unwrap();
    staged
        .write(MODEL, format!("model {iteration}").as_bytes())
        .unwrap();
    staged.write(OPTIMIZER, b"optimiser").unwrap();
    let json = serde_json::to_string(&state).unwrap();
    staged.write(STATE, json.as_bytes()).unwrap();
    staged.write(CONFIG, b"").unwrap();
    let staged = staged.finish().unwrap();
    std::fs::rename(staged, dir).unwrap();
}

fn iteration(dir: &Path) -> usize {
    read_state(dir).unwrap().iteration
}

#[test]
fn killed_between_the_renames_of_last_resumes_from_last_old() {
    let run = tempfile::tempdir().unwrap();
    let run = run.path();
    checkpoint(&run.join("epoch-0001"), 4, 10, false);
    checkpoint(&run.join("last.old"), 6, 20, false);
    // The new `last` was being written: an incomplete temporary directory.
    std::fs::create_dir_all(run.join("last.tmp")).unwrap();
    std::fs::write(run.join("last.tmp/model.safetensors"), "partial").unwrap();
    std::fs::write(run.join("metrics.jsonl"), "x".repeat(35)).unwrap();
    let from = find_resumable(run).unwrap();
    assert_eq!(
        (from.dir.clone(), from.state.iteration),
        (run.join("last.old"), 6)
    );
    assert!(from.passed_over.is_empty(), "{:?}", from.passed_over);
    prepare_resume(run, &from).unwrap();
    assert_eq!(iteration(&run.join("last")), 6);
    verify_files(&run.join("last"), &[MODEL, OPTIMIZER, STATE, CONFIG]).unwrap();
    assert_eq!(
        std::fs::metadata(run.join("metrics.jsonl")).unwrap().len(),
        20,
        "what the killed run logged after the checkpoint is cut off"
    );
}

#[test]
fn an_epoch_written_but_not_yet_published_is_the_newest() {
    let run = tempfile::tempdir().unwrap();
    let run = run.path();
    checkpoint(&run.join("last"), 6, 10, false);
    checkpoint(&run.join("epoch-0002"), 8, 12, true);
    checkpoint(&run.join("best"), 4, 8, true);
    let from = find_resumable(run).unwrap();
    assert_eq!(from.dir, run.join("epoch-0002"));
    prepare_resume(run, &from).unwrap();
    assert_eq!(iteration(&run.join("last")), 8);
    assert_eq!(iteration(&run.join("best")), 8, "it was to become best");
}

#[test]
fn a_corrupt_last_is_passed_over_and_named() {
    let run = tempfile::tempdir().unwrap();
    let run = run.path();
    checkpoint(&run.join("epoch-0001"), 4, 10, false);
    checkpoint(&run.join("last"), 6, 20, false);
    let model = run.join("last").join(MODEL);
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&model, bytes).unwrap();
    let from = find_resumable(run).unwrap();
    assert_eq!(from.dir, run.join("epoch-0001"));
    assert_eq!(from.passed_over.len(), 1);
    assert!(
        from.passed_over[0].1.contains("model.safetensors")
            && from.passed_over[0].1.contains("checksum"),
        "{:?}",
        from.passed_over
    );
}

#[test]
fn nothing_to_resume_says_how_to_recover() {
    let run = tempfile::tempdir().unwrap();
    let run = run.path();
    let err = find_resumable(run).unwrap_err().to_string();
    assert!(
        err.contains("holds no checkpoint") && err.contains("--overwrite"),
        "{err}"
    );
    std::fs::create_dir_all(run.join("last")).unwrap();
    std::fs::write(run.join("last").join(STATE), "{").unwrap();
    let err = find_resumable(run).unwrap_err().to_string();
    assert!(err.contains("no checkpoint in it is usable"), "{err}");
    assert!(err.contains("missing"), "{err}");
}
