//! RetinaFace with its dense 3D branch through the CLI: train a tiny model on a tiny
//! synthetic set (decoder pre-training included; `loss_pixel` logged), then `detect --meshes`
//! writes one valid OBJ (the template's 468 vertices and 898 triangles, vertex colours) and
//! one fit PNG per face, the JSON carries each face's camera and light, and `--draw` draws.

mod common;

use common::{failed, ok, visage, RETINAFACE_TINY_DATA, RETINAFACE_TINY_MODEL};
use visage_mesh::template::parse_obj;

/// The tiny RetinaFace of `retinaface_run.rs` with a small mesh branch (16-value code,
/// narrow decoder, 16-pixel crops, 5 pre-training steps).
fn config() -> String {
    format!(
        r#"
name = "mesh-tiny"
run_dir = "runs/mesh"
{RETINAFACE_TINY_DATA}{RETINAFACE_TINY_MODEL}{MESH}
[train]
epochs = 1
batch_size = 4
lr = 0.001
log_every = 1

[test]
score_threshold = 0.02
pre_nms_top_k = 200
max_detections = 5
"#
    )
}

const MESH: &str = r#"
[model.mesh]
crop_size = 16
max_faces = 4

[model.mesh.decoder]
code_size = 16
channels = [8, 8, 8, 8]
cheb_k = 3

[model.mesh.pretrain]
steps = 5
batch_size = 2
held_out = 2
"#;

#[test]
fn a_mesh_model_trains_and_detect_writes_a_mesh_per_face() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("mesh.toml"), config()).unwrap();
    ok(&visage(&["train", "--config", "mesh.toml"], root));
    let metrics = std::fs::read_to_string(root.join("runs/mesh/metrics.jsonl")).unwrap();
    assert!(metrics.contains("loss_pixel"), "{metrics}");

    let val = root.join("data/tiny/WIDER_val/images");
    let val = val.to_str().unwrap();
    let out = ok(&visage(
        &[
            "detect",
            val,
            "--weights",
            "runs/mesh",
            "--meshes",
            "meshes",
            "--mesh-threshold",
            "0",
            "--json",
            "d.json",
            "--draw",
            "drawn",
            "--draw-threshold",
            "0",
        ],
        root,
    ));
    assert!(out.contains("face meshes"), "{out}");
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("d.json")).unwrap()).unwrap();
    let mut faces = 0;
    for record in records.as_array().unwrap() {
        for d in record["detections"].as_array().unwrap() {
            faces += 1;
            assert_eq!(d["camera"]["eye"].as_array().unwrap().len(), 3, "{d}");
            assert!(d["camera"]["focal"].as_f64().unwrap() > 0.0, "{d}");
            assert_eq!(d["light"]["ambient"].as_array().unwrap().len(), 3, "{d}");
            assert_eq!(d["camera"]["crop"].as_array().unwrap().len(), 4, "{d}");
        }
    }
    assert!(faces > 0, "no detections");
    let mut objs = 0;
    for entry in std::fs::read_dir(root.join("meshes")).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("obj") => {
                let text = std::fs::read_to_string(&path).unwrap();
                let mesh = parse_obj(&text, &path.display().to_string()).unwrap();
                assert_eq!(mesh.vertices.len(), 468);
                assert_eq!(mesh.triangles.len(), 898);
                let coloured = text
                    .lines()
                    .filter(|l| l.starts_with("v "))
                    .all(|l| l.split_whitespace().count() == 7);
                assert!(coloured, "{}", path.display());
                assert!(mesh.vertices.iter().flatten().all(|v| v.is_finite()));
                objs += 1;
            }
            Some("png") => {
                let image = image::open(&path).unwrap();
                assert_eq!(image.width(), 2 * image.height());
            }
            _ => panic!("unexpected {}", path.display()),
        }
    }
    assert_eq!(objs, faces);
    assert_eq!(std::fs::read_dir(root.join("drawn")).unwrap().count(), 4);
}

#[test]
fn meshes_need_a_model_with_a_mesh_branch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let plain = config().replace(MESH, "");
    assert!(!plain.contains("[model.mesh]"));
    std::fs::write(root.join("plain.toml"), &plain).unwrap();
    // No weights needed: the error comes before any weight is read.
    std::fs::write(root.join("w.safetensors"), b"").unwrap();
    image::RgbImage::new(32, 32)
        .save(root.join("a.png"))
        .unwrap();
    let out = visage(
        &[
            "detect",
            "a.png",
            "--config",
            "plain.toml",
            "--weights",
            "w.safetensors",
            "--meshes",
            "m",
        ],
        root,
    );
    let stderr = failed(&out);
    assert!(stderr.contains("[model.mesh]"), "{stderr}");
}
