//! Running the `visage` binary from the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `visage args...` in `cwd`.
pub fn visage(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the visage binary runs")
}

/// Asserts success (printing both streams otherwise) and returns stdout.
pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "visage failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Asserts failure and returns stderr.
pub fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "visage should have failed");
    stderr(output)
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
