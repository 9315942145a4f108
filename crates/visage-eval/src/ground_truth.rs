//! The typed WIDER FACE val ground truth, read from and written to the four official `.mat`
//! files (`wider_face_val.mat`, `wider_{easy,medium,hard}_val.mat`).
//!
//! # The zero-face image
//! The real files store an image without faces as one all-zero box row (`[0 0 0 0]`, all
//! labels 0, in no `gt_list`). In memory such an image has **empty** `boxes`/`attributes`;
//! [`GroundTruth::read_dir`] maps that exact row (one row, coordinates and labels all zero, not
//! referenced by any `gt_list`) to an empty image, and [`GroundTruth::write_dir`] writes an
//! empty image back as that row. The protocol ([`crate::evaluate`]) evaluates an empty image
//! against that virtual row, exactly as the official code and its Python port do.

use std::path::Path;

use crate::mat_value::{MatValue, NumericClass};
use crate::mat_write::write_mat;
use crate::EvalError;

/// The six per-face labels of WIDER FACE (values as in the official readme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FaceAttributes {
    /// 0 clear, 1 normal blur, 2 heavy blur.
    pub blur: u8,
    /// 0 typical, 1 exaggerated.
    pub expression: u8,
    /// 0 normal, 1 extreme.
    pub illumination: u8,
    /// 0 valid, 1 invalid.
    pub invalid: u8,
    /// 0 none, 1 partial, 2 heavy.
    pub occlusion: u8,
    /// 0 typical, 1 atypical.
    pub pose: u8,
}

/// The evaluation settings of WIDER FACE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `wider_easy_val.mat`.
    Easy,
    /// `wider_medium_val.mat`.
    Medium,
    /// `wider_hard_val.mat`.
    Hard,
}

impl Setting {
    /// The three settings in report order.
    pub const ALL: [Setting; 3] = [Setting::Easy, Setting::Medium, Setting::Hard];

    /// Lower-case name: `easy`, `medium`, `hard`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Easy => "easy",
            Setting::Medium => "medium",
            Setting::Hard => "hard",
        }
    }
}

/// One image's ground truth.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageGt {
    /// Image name without `.jpg`, e.g. `0_Parade_marchingband_1_849`.
    pub name: String,
    /// Boxes `[x, y, w, h]` in pixels (top-left corner); empty for a zero-face image.
    pub boxes: Vec<[i32; 4]>,
    /// One entry per box.
    pub attributes: Vec<FaceAttributes>,
    /// 1-based indices into `boxes` of the faces counted in the Easy setting (as `gt_list`).
    pub easy: Vec<u32>,
    /// 1-based indices for Medium.
    pub medium: Vec<u32>,
    /// 1-based indices for Hard.
    pub hard: Vec<u32>,
}

impl ImageGt {
    /// The 1-based `gt_list` indices of `setting`.
    pub fn kept(&self, setting: Setting) -> &[u32] {
        match setting {
            Setting::Easy => &self.easy,
            Setting::Medium => &self.medium,
            Setting::Hard => &self.hard,
        }
    }
}

/// One event (`N--Name`) and its images, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventGt {
    /// Event folder name, e.g. `0--Parade`.
    pub name: String,
    /// The images.
    pub images: Vec<ImageGt>,
}

/// The val ground truth: events in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroundTruth {
    /// The events.
    pub events: Vec<EventGt>,
}

pub(crate) const LABELS: [&str; 6] = [
    "blur",
    "expression",
    "illumination",
    "invalid",
    "occlusion",
    "pose",
];

fn attr_get(a: &FaceAttributes, k: usize) -> u8 {
    [
        a.blur,
        a.expression,
        a.illumination,
        a.invalid,
        a.occlusion,
        a.pose,
    ][k]
}

pub(crate) fn attr_set(a: &mut FaceAttributes, k: usize, v: u8) {
    *[
        &mut a.blur,
        &mut a.expression,
        &mut a.illumination,
        &mut a.invalid,
        &mut a.occlusion,
        &mut a.pose,
    ][k] = v;
}

pub(crate) fn setting_file(s: Setting) -> String {
    format!("wider_{}_val.mat", s.name())
}

fn col(data: Vec<f64>, class: NumericClass, cols: usize) -> MatValue {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    MatValue::Numeric {
        class,
        dims: vec![rows, cols],
        data,
    }
}

impl GroundTruth {
    /// Number of images.
    pub fn num_images(&self) -> usize {
        self.events.iter().map(|e| e.images.len()).sum()
    }

    /// Number of box rows as stored in the files: a zero-face image counts its one all-zero
    /// row, as the official totals do (39708 for the real val set, of which 39704 are faces).
    pub fn num_boxes(&self) -> usize {
        self.events
            .iter()
            .flat_map(|e| &e.images)
            .map(|i| i.boxes.len().max(1))
            .sum()
    }

    /// Number of real face boxes (the zero-face row is not a face): 39704 for the real val set.
    pub fn num_faces(&self) -> usize {
        self.events
            .iter()
            .flat_map(|e| &e.images)
            .map(|i| i.boxes.len())
            .sum()
    }

    /// Number of faces counted in `setting` (the total of its `gt_list`).
    pub fn num_in(&self, setting: Setting) -> usize {
        self.events
            .iter()
            .flat_map(|e| &e.images)
            .map(|i| i.kept(setting).len())
            .sum()
    }

    /// Finds an image by event and name.
    pub fn image(&self, event: &str, image: &str) -> Option<&ImageGt> {
        self.events
            .iter()
            .find(|e| e.name == event)?
            .images
            .iter()
            .find(|i| i.name == image)
    }

    /// Writes the four files into `dir` (created if missing) in the real files' structure:
    /// 61×1-style cell columns `event_list`, `file_list`, `face_bbx_list` (k×4 int32),
    /// `*_label_list` (k×1 uint8) and, in the setting files, `gt_list` (m×1 class double, stored
    /// as uint8/uint16; 0×1 when empty). A zero-face image is written as one all-zero row.
    pub fn write_dir(&self, dir: &Path) -> Result<(), EvalError> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        let per_event = |f: &dyn Fn(&ImageGt) -> MatValue| {
            MatValue::cell_column(
                self.events
                    .iter()
                    .map(|e| MatValue::cell_column(e.images.iter().map(f).collect()))
                    .collect(),
            )
        };
        let mut vars: Vec<(String, MatValue)> = vec![
            (
                "event_list".into(),
                MatValue::cell_column(
                    self.events
                        .iter()
                        .map(|e| MatValue::string(&e.name))
                        .collect(),
                ),
            ),
            (
                "file_list".into(),
                per_event(&|i| MatValue::string(&i.name)),
            ),
            (
                "face_bbx_list".into(),
                per_event(&|i| {
                    let k = i.boxes.len().max(1);
                    let mut data = vec![0.0; 4 * k];
                    for (r, b) in i.boxes.iter().enumerate() {
                        for c in 0..4 {
                            data[c * k + r] = b[c] as f64;
                        }
                    }
                    col(data, NumericClass::Int32, 4)
                }),
            ),
        ];
        for (k, label) in LABELS.iter().enumerate() {
            let v = per_event(&|i| {
                let mut data: Vec<f64> =
                    i.attributes.iter().map(|a| attr_get(a, k) as f64).collect();
                if i.boxes.is_empty() {
                    data = vec![0.0];
                }
                col(data, NumericClass::UInt8, 1)
            });
            vars.push((format!("{label}_label_list"), v));
        }
        for img in self.events.iter().flat_map(|e| &e.images) {
            if img.attributes.len() != img.boxes.len() {
                return Err(EvalError::MatWrite {
                    path: dir.join("wider_face_val.mat"),
                    variable: format!("blur_label_list ({})", img.name),
                    detail: format!(
                        "{} attributes for {} boxes",
                        img.attributes.len(),
                        img.boxes.len()
                    ),
                });
            }
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0)); // the real files list variables alphabetically
        let borrowed: Vec<(&str, MatValue)> =
            vars.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        write_mat(&dir.join("wider_face_val.mat"), &borrowed)?;
        for s in Setting::ALL {
            let gl = per_event(&|i| {
                let data: Vec<f64> = i.kept(s).iter().map(|&x| x as f64).collect();
                // The real files use 0×0 for zero-face images and 0×1 for other empty lists.
                let cols = usize::from(!(data.is_empty() && i.boxes.is_empty()));
                MatValue::Numeric {
                    class: NumericClass::Double,
                    dims: vec![data.len(), cols],
                    data,
                }
            });
            let mut all = borrowed.clone();
            all.push(("gt_list", gl));
            all.sort_by(|a, b| a.0.cmp(b.0)); // the real files list variables alphabetically
            write_mat(&dir.join(setting_file(s)), &all)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::read_mat;
    use std::collections::HashMap;

    /// The shared data folder, or `None` (after printing why) when the variable is unset.
    pub(crate) fn shared_dir() -> Option<std::path::PathBuf> {
        match std::env::var_os("VISAGE_SHARED_DIR") {
            Some(d) => Some(std::path::PathBuf::from(d)),
            None => {
                println!("skipping: VISAGE_SHARED_DIR is not set");
                None
            }
        }
    }

    pub(crate) fn sample() -> GroundTruth {
        let a = |blur, occlusion| FaceAttributes {
            blur,
            occlusion,
            pose: 1,
            ..Default::default()
        };
        GroundTruth {
            events: vec![
                EventGt {
                    name: "0--Parade".into(),
                    images: vec![
                        ImageGt {
                            name: "0_Parade_marchingband_1_5".into(),
                            boxes: vec![
                                [100, 100, 80, 100],
                                [300, 100, 40, 40],
                                [500, 100, 12, 12],
                                [600, 100, 0, 6],
                            ],
                            attributes: vec![a(0, 0), a(1, 1), a(2, 0), a(2, 2)],
                            easy: vec![1],
                            medium: vec![1, 2],
                            hard: vec![3, 1, 2],
                        },
                        ImageGt {
                            name: "0_Parade_empty".into(),
                            ..Default::default()
                        },
                    ],
                },
                EventGt {
                    name: "1--Handshaking".into(),
                    images: vec![ImageGt {
                        name: "1_Handshaking_1".into(),
                        boxes: vec![[-3, 70000, 5, 400]],
                        attributes: vec![FaceAttributes {
                            invalid: 1,
                            expression: 1,
                            illumination: 1,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                },
            ],
        }
    }

    #[test]
    fn write_read_round_trip_with_zero_face_image() {
        let dir = tempfile::tempdir().unwrap();
        let gt = sample();
        gt.write_dir(dir.path()).unwrap();
        let back = GroundTruth::read_dir(dir.path()).unwrap();
        assert_eq!(back, gt);
        assert_eq!((gt.num_images(), gt.num_boxes(), gt.num_faces()), (3, 6, 5));
        assert_eq!(
            [Setting::Easy, Setting::Medium, Setting::Hard].map(|s| gt.num_in(s)),
            [1, 2, 3]
        );
        // On disk the zero-face image is one all-zero int32 row and its gt_list is 0×0.
        let raw: HashMap<String, MatValue> = read_mat(&dir.path().join("wider_hard_val.mat"))
            .unwrap()
            .into_iter()
            .collect();
        let MatValue::Cell { items, .. } = &raw["face_bbx_list"] else {
            panic!()
        };
        let MatValue::Cell { items, .. } = &items[0] else {
            panic!()
        };
        let zero = MatValue::Numeric {
            class: NumericClass::Int32,
            dims: vec![1, 4],
            data: vec![0.0; 4],
        };
        assert_eq!(items[1], zero);
        let MatValue::Cell { items, .. } = &raw["gt_list"] else {
            panic!()
        };
        let MatValue::Cell { items, .. } = &items[0] else {
            panic!()
        };
        assert_eq!(items[1].dims(), &[0, 0]);
        assert_eq!(
            items[0],
            MatValue::Numeric {
                class: NumericClass::Double,
                dims: vec![3, 1],
                data: vec![3.0, 1.0, 2.0]
            }
        );
    }

    #[test]
    fn real_ground_truth_survives_write_and_read() {
        let Some(shared) = shared_dir() else { return };
        let gt = GroundTruth::read_dir(&shared.join("wider/ground_truth")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        gt.write_dir(dir.path()).unwrap();
        assert_eq!(GroundTruth::read_dir(dir.path()).unwrap(), gt);
        let first = &gt.events[0];
        assert_eq!(first.name, "0--Parade");
        assert!(gt.image("0--Parade", &first.images[0].name).is_some());
    }
}
