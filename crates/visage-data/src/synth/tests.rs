//! Tests of the synthetic set: determinism, file consistency, the Easy/Medium/Hard sets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::label_txt::read_label_txt;
use crate::wider_txt::{read_path_list, read_wider_txt};

fn small() -> SynthConfig {
    SynthConfig {
        seed: 7,
        train_images: 6,
        val_images: 12,
        min_side: 96,
        max_side: 144,
        ..SynthConfig::default()
    }
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let sa = one.install(|| generate(a.path(), &small())).unwrap();
    let sb = three.install(|| generate(b.path(), &small())).unwrap();
    assert_eq!(sa, sb);
    let (fa, fb) = (snapshot(a.path()), snapshot(b.path()));
    assert_eq!(
        fa.len(),
        6 + 12 + 2 + 1 + 1 + 4,
        "{:?}",
        fa.keys().collect::<Vec<_>>()
    );
    assert!(fa == fb, "outputs differ");
    let other = render(&SynthConfig { seed: 8, ..small() }, SynthSplit::Val, 0);
    assert_ne!(other.image, render(&small(), SynthSplit::Val, 0).image);
}

#[test]
fn files_agree_and_settings_nest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = generate(root, &small()).unwrap();
    assert_eq!((summary.train_images, summary.val_images), (6, 12));

    let val = read_wider_txt(&root.join("wider_face_split/wider_face_val_bbx_gt.txt")).unwrap();
    let gt = GroundTruth::read_dir(&root.join("eval_tools/ground_truth")).unwrap();
    assert_eq!(gt.num_images(), 12);
    let list = read_path_list(&root.join("val/wider_val.txt")).unwrap();
    assert_eq!(list, val.iter().map(|i| i.path.clone()).collect::<Vec<_>>());
    let (mut easy, mut medium, mut hard) = (0, 0, 0);
    for img in &val {
        let (event, file) = img.path.split_once('/').unwrap();
        let g = gt
            .image(event, file.trim_end_matches(".jpg"))
            .expect("image in the .mat files");
        let txt_boxes: Vec<[i32; 4]> = img.faces.iter().map(|f| f.bbox.map(|v| v as i32)).collect();
        assert_eq!(g.boxes, txt_boxes, "{}", img.path);
        let attrs: Vec<_> = img.faces.iter().map(|f| f.attributes).collect();
        assert_eq!(g.attributes, attrs);
        assert!(g.easy.iter().all(|i| g.medium.contains(i)));
        assert!(g.medium.iter().all(|i| g.hard.contains(i)));
        for &i in &g.hard {
            let f = &img.faces[i as usize - 1];
            assert!(f.attributes.invalid == 0 && f.bbox[3] >= 10.0);
        }
        for &i in &g.easy {
            assert!(img.faces[i as usize - 1].bbox[3] >= 50.0);
        }
        let jpg = image::open(root.join("WIDER_val/images").join(&img.path)).unwrap();
        assert!((96..=144).contains(&jpg.width()) && (96..=144).contains(&jpg.height()));
        (easy, medium, hard) = (
            easy + g.easy.len(),
            medium + g.medium.len(),
            hard + g.hard.len(),
        );
    }
    assert!(easy > 0 && easy <= medium && medium <= hard);
    assert_eq!(
        (summary.val_easy, summary.val_medium, summary.val_hard),
        (easy, medium, hard)
    );

    let train = read_wider_txt(&root.join("wider_face_split/wider_face_train_bbx_gt.txt")).unwrap();
    let labels = read_label_txt(&root.join("train/label.txt")).unwrap();
    assert_eq!(train.len(), labels.len());
    let mut with_landmarks = 0;
    for (t, l) in train.iter().zip(&labels) {
        assert_eq!(t.path, l.path);
        assert!(root.join("WIDER_train/images").join(&t.path).is_file());
        let tb: Vec<_> = t
            .faces
            .iter()
            .filter(|f| f.attributes.invalid == 0)
            .map(|f| f.bbox)
            .collect();
        let lb: Vec<_> = l.faces.iter().map(|f| f.bbox).collect();
        assert_eq!(tb, lb);
        for f in &l.faces {
            if let Some(lm) = f.landmarks {
                with_landmarks += 1;
                for p in lm.points {
                    assert!(p[0] > f.bbox[0] - 1.0 && p[0] < f.bbox[0] + f.bbox[2] + 1.0);
                    assert!(p[1] > f.bbox[1] - 1.0 && p[1] < f.bbox[1] + f.bbox[3] + 1.0);
                }
            }
        }
    }
    assert!(with_landmarks > 0);
}

#[test]
fn names_look_like_wider() {
    assert_eq!(image_path(0).1, "0--Parade/0_Parade_marchingband_1_0.jpg");
    assert_eq!(
        image_path(7).1,
        "1--Handshaking/1_Handshaking_Handshaking_1_7.jpg"
    );
    let bad = SynthConfig {
        max_side: 10,
        ..SynthConfig::default()
    };
    let e = generate(Path::new("/nonexistent"), &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`min_side`") || e.contains("`max_side`"), "{e}");
}

#[test]
fn a_fixed_image_size_is_kept_and_validated() {
    let cfg = SynthConfig {
        image_size: Some([96, 64]),
        ..small()
    };
    cfg.validate().unwrap();
    for index in 0..3 {
        let image = render(&cfg, SynthSplit::Val, index).image;
        assert_eq!(image.dimensions(), (96, 64));
    }
    let bad = SynthConfig {
        image_size: Some([640, 16]),
        ..small()
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("`image_size`"), "{e}");
}
