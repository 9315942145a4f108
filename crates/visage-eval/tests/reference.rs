//! `evaluate` against a literal, per-threshold re-implementation of the official protocol
//! (the Python port's structure, plus the per-image sort), on random ground truths with tied
//! scores, duplicates, ignored faces and zero-face images; and a timing run on the real val
//! ground truth with a synthetic submission (printed, not asserted).

use std::time::Instant;

use visage_eval::{evaluate, EventGt, FaceAttributes, GroundTruth, ImageGt, Predictions, Setting};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// The protocol step by step: full overlap matrix, per-threshold search of the last passing
/// prediction, float sums, 0/0 precision taken as 0.
fn reference(gt: &GroundTruth, preds: &Predictions) -> [(f64, Vec<f64>, Vec<f64>); 3] {
    let mut all = Vec::new();
    for e in &gt.events {
        for i in &e.images {
            all.extend(
                preds
                    .get(&e.name, &i.name)
                    .unwrap_or(&[])
                    .iter()
                    .map(|p| p[4]),
            );
        }
    }
    let lo = all.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Setting::ALL.map(|s| {
        let mut count_face = 0usize;
        let mut pr = vec![[0.0f64; 2]; 1000];
        for e in &gt.events {
            for img in &e.images {
                let keep = img.kept(s);
                count_face += keep.len();
                let gtb: Vec<[f64; 4]> = if img.boxes.is_empty() {
                    vec![[0.0; 4]]
                } else {
                    img.boxes
                        .iter()
                        .map(|b| {
                            [
                                b[0] as f64,
                                b[1] as f64,
                                (b[0] + b[2]) as f64,
                                (b[1] + b[3]) as f64,
                            ]
                        })
                        .collect()
                };
                let Some(p) = preds.get(&e.name, &img.name) else {
                    continue;
                };
                if p.is_empty() {
                    continue;
                }
                let mut p: Vec<[f64; 5]> = p.to_vec();
                p.sort_by(|a, b| b[4].partial_cmp(&a[4]).unwrap());
                let mut ignore = vec![0; gtb.len()];
                for &k in keep {
                    ignore[k as usize - 1] = 1;
                }
                let mut recall_list = vec![0i32; gtb.len()];
                let mut proposal = vec![1i32; p.len()];
                let mut pred_recall = vec![0usize; p.len()];
                for (h, q) in p.iter().enumerate() {
                    let qb = [q[0], q[1], q[0] + q[2], q[1] + q[3]];
                    let ov: Vec<f64> = gtb
                        .iter()
                        .map(|g| {
                            let area = (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0);
                            let iw = qb[2].min(g[2]) - qb[0].max(g[0]) + 1.0;
                            let ih = qb[3].min(g[3]) - qb[1].max(g[1]) + 1.0;
                            if iw > 0.0 && ih > 0.0 {
                                iw * ih
                                    / ((qb[2] - qb[0] + 1.0) * (qb[3] - qb[1] + 1.0) + area
                                        - iw * ih)
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let max = ov.iter().cloned().fold(f64::MIN, f64::max);
                    let idx = ov.iter().position(|&v| v == max).unwrap();
                    if max >= 0.5 {
                        if ignore[idx] == 0 {
                            recall_list[idx] = -1;
                            proposal[h] = -1;
                        } else if recall_list[idx] == 0 {
                            recall_list[idx] = 1;
                        }
                    }
                    pred_recall[h] = recall_list.iter().filter(|&&r| r == 1).count();
                }
                let norm: Vec<f64> = p
                    .iter()
                    .map(|q| {
                        if hi > lo {
                            (q[4] - lo) / (hi - lo)
                        } else {
                            1.0
                        }
                    })
                    .collect();
                for (t, row) in pr.iter_mut().enumerate() {
                    let thresh = 1.0 - (t + 1) as f64 / 1000.0;
                    if let Some(r) = norm.iter().rposition(|&v| v >= thresh) {
                        row[0] += proposal[..=r].iter().filter(|&&v| v == 1).count() as f64;
                        row[1] += pred_recall[r] as f64;
                    }
                }
            }
        }
        let prec: Vec<f64> = pr
            .iter()
            .map(|r| if r[0] > 0.0 { r[1] / r[0] } else { 0.0 })
            .collect();
        let rec: Vec<f64> = pr.iter().map(|r| r[1] / count_face as f64).collect();
        let mut mrec = vec![0.0];
        mrec.extend(&rec);
        mrec.push(1.0);
        let mut mpre = vec![0.0];
        mpre.extend(&prec);
        mpre.push(0.0);
        for i in (1..mpre.len()).rev() {
            mpre[i - 1] = mpre[i - 1].max(mpre[i]);
        }
        let ap = (0..mrec.len() - 1)
            .filter(|&i| mrec[i + 1] != mrec[i])
            .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
            .sum();
        (ap, prec, rec)
    })
}

fn random_case(seed: u64) -> (GroundTruth, Predictions) {
    let mut r = Lcg(seed);
    let mut gt = GroundTruth::default();
    let mut preds = Predictions::new();
    for e in 0..3 {
        let mut ev = EventGt {
            name: format!("{e}--E"),
            images: vec![],
        };
        for i in 0..6 {
            let n = r.below(7) as usize;
            let boxes: Vec<[i32; 4]> = (0..n)
                .map(|_| {
                    [
                        r.below(60) as i32,
                        r.below(60) as i32,
                        2 + r.below(30) as i32,
                        2 + r.below(30) as i32,
                    ]
                })
                .collect();
            let hard: Vec<u32> = (1..=n as u32).filter(|_| r.below(4) != 0).collect();
            let medium: Vec<u32> = hard.iter().copied().filter(|_| r.below(3) != 0).collect();
            let easy: Vec<u32> = medium.iter().copied().filter(|_| r.below(2) != 0).collect();
            let name = format!("img_{i}");
            let mut dets = Vec::new();
            for b in &boxes {
                for _ in 0..r.below(3) {
                    let d: Vec<f64> = (0..4).map(|_| r.below(5) as f64 - 2.0).collect();
                    let (x, y) = (b[0] as f64 + d[0], b[1] as f64 + d[1]);
                    let (w, h) = ((b[2] as f64 + d[2]).max(0.0), (b[3] as f64 + d[3]).max(0.0));
                    dets.push([x, y, w, h, (r.below(20) as f64) / 7.0]);
                }
            }
            for _ in 0..r.below(4) {
                dets.push([
                    r.unit() * 80.0,
                    r.unit() * 80.0,
                    r.unit() * 30.0,
                    r.unit() * 30.0,
                    r.unit() * 3.0 - 0.2,
                ]);
            }
            if r.below(5) == 0 {
                dets.push([0.0, 0.0, 0.0, 0.0, 1.5]); // hits a zero-face image's stored row
            }
            if r.below(6) != 0 {
                preds.insert_raw(&ev.name, &name, dets).unwrap();
            }
            let attributes = vec![FaceAttributes::default(); n];
            ev.images.push(ImageGt {
                name,
                boxes,
                attributes,
                easy,
                medium,
                hard,
            });
        }
        gt.events.push(ev);
    }
    (gt, preds)
}

#[test]
fn matches_the_literal_protocol_on_random_cases() {
    for seed in 0..150 {
        let (gt, preds) = random_case(seed);
        let fast = evaluate(&gt, &preds);
        let slow = reference(&gt, &preds);
        for (k, s) in Setting::ALL.into_iter().enumerate() {
            let f = fast.get(s);
            assert_eq!(f.precision, slow[k].1, "seed {seed} {s:?} precision");
            assert_eq!(f.recall, slow[k].2, "seed {seed} {s:?} recall");
            assert!(
                (f.ap - slow[k].0).abs() <= 1e-12,
                "seed {seed} {s:?}: {} vs {}",
                f.ap,
                slow[k].0
            );
        }
    }
}

#[test]
fn real_ground_truth_timing() {
    let Some(shared) = std::env::var_os("VISAGE_SHARED_DIR") else {
        println!("skipping: VISAGE_SHARED_DIR is not set");
        return;
    };
    let gt =
        GroundTruth::read_dir(&std::path::Path::new(&shared).join("wider/ground_truth")).unwrap();
    for extra in [3usize, 300] {
        let mut r = Lcg(7);
        let mut preds = Predictions::new();
        for e in &gt.events {
            for img in &e.images {
                let mut dets: Vec<[f64; 5]> = img
                    .boxes
                    .iter()
                    .map(|b| {
                        let x = b[0] as f64 + (r.unit() - 0.5) * 0.2 * b[2] as f64;
                        let y = b[1] as f64 + (r.unit() - 0.5) * 0.2 * b[3] as f64;
                        [x, y, b[2].max(0) as f64, b[3].max(0) as f64, r.unit()]
                    })
                    .collect();
                for _ in 0..extra {
                    dets.push([
                        r.unit() * 1000.0,
                        r.unit() * 1000.0,
                        5.0 + r.unit() * 100.0,
                        5.0 + r.unit() * 100.0,
                        r.unit() * 0.7,
                    ]);
                }
                preds.insert_raw(&e.name, &img.name, dets).unwrap();
            }
        }
        let t = Instant::now();
        let rep = evaluate(&gt, &preds);
        let dt = t.elapsed();
        println!(
            "{} detections: evaluate took {:.1} ms\n{rep}",
            preds.num_detections(),
            dt.as_secs_f64() * 1e3
        );
        assert_eq!(rep.hard.num_faces, 31958);
        // Every face has a jittered copy (IoU ≥ 0.68 for boxes of a few pixels and up): at the
        // lowest threshold nearly all faces are recalled.
        for s in Setting::ALL {
            let last = rep.get(s).recall[999];
            println!("{s:?}: recall at the lowest threshold {last}");
            assert!(last > 0.95 && last <= 1.0, "{s:?} {last}");
        }
    }
}
