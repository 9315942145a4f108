//! Our evaluator against the widely used Python port of the official evaluation
//! (`wondervictor/WiderFace-Evaluation`) on full-size synthetic val submissions: each submission
//! of `tests/fixtures/python_port.json` is regenerated from its profile and seed (the same code
//! as `examples/make_submission.rs`), written to a temporary folder, read back, scored over the
//! real val ground truth and compared with the Easy / Medium / Hard AP the port printed for it,
//! to 1e-9. The recorded detection count and fingerprint pin the generator: if it changes, the
//! port must be rerun (see `tools/eval/README.md`).
//!
//! Needs `$VISAGE_SHARED_DIR/wider/ground_truth/`; prints `skipping: ...` and passes without it.

#[path = "support/synth_submission.rs"]
mod synth;

use std::path::PathBuf;

use serde::Deserialize;
use visage_eval::{evaluate, read_submission, GroundTruth, Setting};

/// One recorded run of the port (the fixture's `submissions` entries).
#[derive(Deserialize)]
struct Case {
    profile: String,
    seed: u64,
    images: usize,
    detections: usize,
    fingerprint: String,
    port: PortAp,
}

/// The AP the port printed (full repr precision).
#[derive(Deserialize)]
struct PortAp {
    easy: f64,
    medium: f64,
    hard: f64,
}

#[derive(Deserialize)]
struct Fixture {
    submissions: Vec<Case>,
}

fn ground_truth_dir() -> Option<PathBuf> {
    let Some(shared) = std::env::var_os("VISAGE_SHARED_DIR") else {
        println!("skipping: VISAGE_SHARED_DIR is not set");
        return None;
    };
    let dir = PathBuf::from(shared).join("wider/ground_truth");
    if !dir.join("wider_face_val.mat").is_file() {
        println!("skipping: no {}", dir.join("wider_face_val.mat").display());
        return None;
    }
    Some(dir)
}

#[test]
fn matches_the_python_port_on_full_val_submissions() {
    let fixture: Fixture = serde_json::from_str(include_str!("fixtures/python_port.json")).unwrap();
    assert!(fixture.submissions.len() >= 2);
    let Some(gt_dir) = ground_truth_dir() else {
        return;
    };
    let gt = GroundTruth::read_dir(&gt_dir).unwrap();
    for case in &fixture.submissions {
        let name = format!("{} seed {}", case.profile, case.seed);
        let profile = synth::Profile::parse(&case.profile).unwrap();
        let files = synth::generate(&gt, case.seed, profile);
        let (detections, fingerprint) = synth::fingerprint(&files);
        assert_eq!(
            (files.len(), detections, fingerprint.as_str()),
            (case.images, case.detections, case.fingerprint.as_str()),
            "{name}: the generator no longer writes the submission the port scored; rerun the \
             port (tools/eval/README.md) and update tests/fixtures/python_port.json"
        );
        let dir = tempfile::tempdir().unwrap();
        synth::write_dir(dir.path(), &files).unwrap();
        let sub = read_submission(dir.path(), &gt).unwrap();
        assert!(sub.missing.is_empty() && sub.unknown_events.is_empty());
        assert_eq!(sub.predictions.num_detections(), case.detections);
        let report = evaluate(&gt, &sub.predictions);
        println!("{name}: {}", report.to_json());
        for (setting, port) in [
            (Setting::Easy, case.port.easy),
            (Setting::Medium, case.port.medium),
            (Setting::Hard, case.port.hard),
        ] {
            let ours = report.get(setting).ap;
            println!(
                "  {setting:?}: ours {ours:?} port {port:?} diff {:e}",
                ours - port
            );
            assert!(
                (ours - port).abs() <= 1e-9,
                "{name} {setting:?}: ours {ours:?}, port {port:?}"
            );
        }
    }
}
