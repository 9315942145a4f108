//! A training / validation image set: the images folder and the selected annotations.
//!
//! Opening applies a visible selection policy and counts what it did: invalid faces dropped
//! (optional), boxes narrower or shorter than `min_size` dropped, boxes reaching outside the
//! image clipped to it (image sizes are read from the file headers, in parallel), boxes left
//! with no area after clipping dropped.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::DataError;
use crate::label_txt::read_label_txt;
use crate::wider_txt::{read_wider_txt, FaceAnnotation, ImageAnnotation};

/// Which faces a dataset keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionPolicy {
    /// Drop faces with the WIDER `invalid` flag set (default true).
    pub drop_invalid: bool,
    /// Drop boxes whose width or height (pixels) is below this (default 1.0).
    pub min_size: f32,
    /// Clip boxes to the image (reads each image's header at open time; default true). When
    /// false, images are not touched until loading and the loader's crop clips instead.
    pub clip_to_image: bool,
    /// When an image header cannot be read while clipping (missing, empty, corrupt file),
    /// keep the record unclipped and list it in [`SelectionReport::unreadable`] instead of
    /// failing (default true): the loader then applies `on_bad_image` to it.
    pub skip_unreadable: bool,
}

impl Default for SelectionPolicy {
    fn default() -> Self {
        SelectionPolicy {
            drop_invalid: true,
            min_size: 1.0,
            clip_to_image: true,
            skip_unreadable: true,
        }
    }
}

/// What the selection did, in faces (and images for the last field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionReport {
    /// Images in the annotation file.
    pub images: usize,
    /// Faces in the annotation file.
    pub faces_read: usize,
    /// Faces kept.
    pub faces_kept: usize,
    /// Faces dropped for the `invalid` flag.
    pub dropped_invalid: usize,
    /// Faces dropped for width or height below `min_size` (as annotated).
    pub dropped_degenerate: usize,
    /// Kept faces whose box was clipped to the image.
    pub clipped: usize,
    /// Faces dropped because clipping left them below `min_size` (outside the image).
    pub dropped_outside: usize,
    /// Images with no face after selection (kept: they are negatives for training).
    pub images_without_faces: usize,
    /// Images whose header could not be read (with `skip_unreadable`): full path and reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Images and their selected annotations. `records[i].path` is relative to `images_dir`;
/// boxes are `[x, y, w, h]` pixels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The split's `images/` folder.
    pub images_dir: PathBuf,
    /// One record per image, in file order.
    pub records: Vec<ImageAnnotation>,
}

impl Dataset {
    /// Opens a `wider_face_*_bbx_gt.txt` with images under `images_dir`.
    pub fn open_wider(
        txt: &Path,
        images_dir: &Path,
        policy: &SelectionPolicy,
    ) -> Result<(Dataset, SelectionReport), DataError> {
        Self::select(images_dir, read_wider_txt(txt)?, policy)
    }

    /// Opens a RetinaFace `label.txt` (landmarks kept; attributes are all zero there).
    pub fn open_label(
        label_txt: &Path,
        images_dir: &Path,
        policy: &SelectionPolicy,
    ) -> Result<(Dataset, SelectionReport), DataError> {
        let records = read_label_txt(label_txt)?
            .into_iter()
            .map(ImageAnnotation::from)
            .collect();
        Self::select(images_dir, records, policy)
    }

    /// Applies `policy` to `records`. Errors name an image whose header cannot be read.
    pub fn select(
        images_dir: &Path,
        records: Vec<ImageAnnotation>,
        policy: &SelectionPolicy,
    ) -> Result<(Dataset, SelectionReport), DataError> {
        if policy.min_size.is_nan() || policy.min_size < 0.0 {
            return Err(DataError::config(
                "min_size",
                format!("{} is not ≥ 0", policy.min_size),
            ));
        }
        // Per record: the image size (None when not clipping), or the unreadable file and why.
        type Size = Result<Option<(u32, u32)>, (PathBuf, String)>;
        let sizes: Vec<Size> = if policy.clip_to_image {
            records
                .par_iter()
                .map(|r| {
                    let p = images_dir.join(&r.path);
                    match image::image_dimensions(&p) {
                        Ok(size) => Ok(Ok(size)),
                        Err(e) if policy.skip_unreadable => Ok(Err((p, e.to_string()))),
                        Err(e) => Err(DataError::image(&p, e)),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|r| r.map(Some))
                .collect::<Vec<_>>()
        } else {
            vec![Ok(None); records.len()]
        };
        let mut report = SelectionReport {
            images: records.len(),
            ..SelectionReport::default()
        };
        let mut out = Vec::with_capacity(records.len());
        for (rec, size) in records.into_iter().zip(sizes) {
            let size = size.unwrap_or_else(|reason| {
                report.unreadable.push(reason);
                None
            });
            report.faces_read += rec.faces.len();
            let mut faces = Vec::with_capacity(rec.faces.len());
            for face in rec.faces {
                if let Some(f) = select_face(face, size, policy, &mut report) {
                    faces.push(f);
                }
            }
            report.faces_kept += faces.len();
            if faces.is_empty() {
                report.images_without_faces += 1;
            }
            out.push(ImageAnnotation {
                path: rec.path,
                faces,
            });
        }
        Ok((
            Dataset {
                images_dir: images_dir.to_path_buf(),
                records: out,
            },
            report,
        ))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Full path of image `index`.
    pub fn image_path(&self, index: usize) -> PathBuf {
        self.images_dir.join(&self.records[index].path)
    }
}

/// Applies the policy to one face, counting into `report`.
fn select_face(
    mut face: FaceAnnotation,
    size: Option<(u32, u32)>,
    policy: &SelectionPolicy,
    report: &mut SelectionReport,
) -> Option<FaceAnnotation> {
    if policy.drop_invalid && face.attributes.invalid != 0 {
        report.dropped_invalid += 1;
        return None;
    }
    let [x, y, w, h] = face.bbox;
    if w < policy.min_size || h < policy.min_size || w <= 0.0 || h <= 0.0 {
        report.dropped_degenerate += 1;
        return None;
    }
    if let Some((iw, ih)) = size {
        let (iw, ih) = (iw as f32, ih as f32);
        let (x1, y1) = (x.clamp(0.0, iw), y.clamp(0.0, ih));
        let (x2, y2) = ((x + w).clamp(0.0, iw), (y + h).clamp(0.0, ih));
        if (x1, y1, x2, y2) != (x, y, x + w, y + h) {
            if x2 - x1 < policy.min_size || y2 - y1 < policy.min_size || x2 <= x1 || y2 <= y1 {
                report.dropped_outside += 1;
                return None;
            }
            report.clipped += 1;
            face.bbox = [x1, y1, x2 - x1, y2 - y1];
        }
    }
    Some(face)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wider_txt::write_wider_txt;
    use visage_eval::FaceAttributes;

    fn face(bbox: [f32; 4], invalid: u8) -> FaceAnnotation {
        FaceAnnotation {
            bbox,
            attributes: FaceAttributes {
                invalid,
                ..FaceAttributes::default()
            },
            landmarks: None,
        }
    }

    #[test]
    fn policy_drops_clips_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(images.join("0--Parade")).unwrap();
        image::RgbImage::new(100, 80)
            .save(images.join("0--Parade/a.jpg"))
            .unwrap();
        image::RgbImage::new(50, 50)
            .save(images.join("0--Parade/b.jpg"))
            .unwrap();
        let recs = vec![
            ImageAnnotation {
                path: "0--Parade/a.jpg".into(),
                faces: vec![
                    face([10.0, 10.0, 20.0, 20.0], 0), // kept
                    face([10.0, 10.0, 20.0, 20.0], 1), // invalid
                    face([5.0, 5.0, 0.0, 9.0], 0),     // degenerate
                    face([90.0, 70.0, 20.0, 20.0], 0), // clipped to 10×10
                    face([120.0, 5.0, 10.0, 10.0], 0), // outside
                ],
            },
            ImageAnnotation {
                path: "0--Parade/b.jpg".into(),
                faces: vec![face([1.0, 1.0, 0.5, 3.0], 0)],
            },
        ];
        let txt = dir.path().join("gt.txt");
        write_wider_txt(&txt, &recs).unwrap();
        let (ds, rep) = Dataset::open_wider(&txt, &images, &SelectionPolicy::default()).unwrap();
        assert_eq!(
            rep,
            SelectionReport {
                images: 2,
                faces_read: 6,
                faces_kept: 2,
                dropped_invalid: 1,
                dropped_degenerate: 2,
                clipped: 1,
                dropped_outside: 1,
                images_without_faces: 1,
                unreadable: vec![],
            }
        );
        assert_eq!(ds.records[0].faces[1].bbox, [90.0, 70.0, 10.0, 10.0]);
        assert_eq!(ds.image_path(1), images.join("0--Parade/b.jpg"));

        let keep_all = SelectionPolicy {
            drop_invalid: false,
            min_size: 0.0,
            clip_to_image: false,
            skip_unreadable: false,
        };
        let (ds, rep) = Dataset::open_wider(&txt, &images, &keep_all).unwrap();
        assert_eq!(
            (rep.faces_kept, rep.dropped_degenerate, rep.clipped),
            (5, 1, 0)
        );
        assert_eq!(ds.records[0].faces[2].bbox, [90.0, 70.0, 20.0, 20.0]);
    }

    #[test]
    fn missing_image_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let recs = vec![ImageAnnotation {
            path: "0--Parade/missing.jpg".into(),
            faces: vec![],
        }];
        let strict = SelectionPolicy {
            skip_unreadable: false,
            ..SelectionPolicy::default()
        };
        let e = Dataset::select(dir.path(), recs.clone(), &strict)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0--Parade/missing.jpg"), "{e}");
        // By default the record is kept (unclipped) and listed; the loader decides.
        let (ds, rep) = Dataset::select(dir.path(), recs, &SelectionPolicy::default()).unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(rep.unreadable.len(), 1);
        assert!(
            rep.unreadable[0].0.ends_with("0--Parade/missing.jpg"),
            "{rep:?}"
        );
    }
}
