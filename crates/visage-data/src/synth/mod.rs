//! A synthetic WIDER FACE: drawn faces on cluttered backgrounds, written in the real layout.
//!
//! ```text
//! <root>/WIDER_{train,val}/images/<event>/<name>.jpg
//! <root>/wider_face_split/wider_face_{train,val}_bbx_gt.txt      all ten columns
//! <root>/train/label.txt                                          RetinaFace format, 5 landmarks
//!                                                                 (valid faces only: the format has no flag)
//! <root>/val/wider_val.txt                                        val image list
//! <root>/eval_tools/ground_truth/wider_{face,easy,medium,hard}_val.mat
//! ```
//! Easy / Medium / Hard are the valid faces (`invalid == 0`) of box height ≥ 50 / 30 / 10 px
//! (nested sets). Every image has its own RNG derived from (seed, split, index), so the output
//! is identical whatever the number of threads.

mod background;
mod draw;
mod face;
mod scene;

use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use visage_eval::{EventGt, GroundTruth, ImageGt};

use crate::error::DataError;
use crate::label_txt::{write_label_txt, LabelFace, LabelImage};
use crate::wider_txt::{write_path_list, write_wider_txt, FaceAnnotation, ImageAnnotation};

/// What to generate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Master seed; the same seed gives byte-identical files.
    pub seed: u64,
    /// Number of training images (default 800).
    pub train_images: usize,
    /// Number of validation images (default 200).
    pub val_images: usize,
    /// Smallest image side in pixels (default 320).
    pub min_side: u32,
    /// Largest image side in pixels (default 512).
    pub max_side: u32,
    /// Most faces per image (default 10).
    pub max_faces: usize,
    /// JPEG quality 1..=100 (default 92).
    pub jpeg_quality: u8,
    /// Every image exactly `[width, height]` pixels instead of sides drawn from
    /// `min_side..=max_side` (default: unset), e.g. `[640, 480]` for detection benchmarks.
    /// The faces of image `i` are those of the unset default, laid out in the new size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[u32; 2]>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            train_images: 800,
            val_images: 200,
            min_side: 320,
            max_side: 512,
            max_faces: 10,
            jpeg_quality: 92,
            image_size: None,
        }
    }
}

impl SynthConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.min_side < 32 {
            return Err(DataError::config(
                "min_side",
                format!("{} is below 32 px", self.min_side),
            ));
        }
        if self.max_side < self.min_side || self.max_side > 8192 {
            return Err(DataError::config(
                "max_side",
                format!("{} must be in min_side..=8192", self.max_side),
            ));
        }
        if let Some(size) = self.image_size {
            if size.iter().any(|side| !(32..=8192).contains(side)) {
                return Err(DataError::config(
                    "image_size",
                    format!("{size:?}: each side must be in 32..=8192"),
                ));
            }
        }
        if self.max_faces == 0 {
            return Err(DataError::config("max_faces", "must be at least 1"));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(DataError::config(
                "jpeg_quality",
                format!("{} is not in 1..=100", self.jpeg_quality),
            ));
        }
        Ok(())
    }
}

/// The two generated splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthSplit {
    /// `WIDER_train`.
    Train,
    /// `WIDER_val`.
    Val,
}

/// Counts of what [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// Training images written.
    pub train_images: usize,
    /// Validation images written.
    pub val_images: usize,
    /// Faces in `wider_face_train_bbx_gt.txt` (invalid ones included).
    pub train_faces: usize,
    /// Faces in `wider_face_val_bbx_gt.txt` (invalid ones included).
    pub val_faces: usize,
    /// Faces marked `invalid` (both splits).
    pub invalid_faces: usize,
    /// Val faces in the Easy setting (valid, height ≥ 50 px).
    pub val_easy: usize,
    /// Val faces in the Medium setting (valid, height ≥ 30 px).
    pub val_medium: usize,
    /// Val faces in the Hard setting (valid, height ≥ 10 px).
    pub val_hard: usize,
}

/// One rendered image with its relative path (`<event>/<name>.jpg`) and faces (integer xywh).
#[derive(Debug, Clone)]
pub struct SynthImage {
    /// `<event>/<name>.jpg`, relative to `WIDER_<split>/images/`.
    pub path: String,
    /// The rendered image (before JPEG compression).
    pub image: RgbImage,
    /// Its faces: integer `[x, y, w, h]`, attributes, landmarks.
    pub faces: Vec<FaceAnnotation>,
}

/// Event folders and image-name prefixes, as in the real set.
const EVENTS: [(&str, &str); 6] = [
    ("0--Parade", "0_Parade_marchingband_1"),
    ("1--Handshaking", "1_Handshaking_Handshaking_1"),
    ("2--Demonstration", "2_Demonstration_Protesters_2"),
    ("4--Dancing", "4_Dancing_Dancing_4"),
    ("7--Cheering", "7_Cheering_Cheering_7"),
    ("12--Group", "12_Group_Group_12_Group_Group_12"),
];

/// SplitMix64 finaliser: decorrelates nearby seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The event index and relative path of image `index`.
fn image_path(index: usize) -> (usize, String) {
    let e = index % EVENTS.len();
    (e, format!("{}/{}_{}.jpg", EVENTS[e].0, EVENTS[e].1, index))
}

/// Renders image `index` of `split` (pure function of the config, split and index).
pub fn render(cfg: &SynthConfig, split: SynthSplit, index: usize) -> SynthImage {
    let tag = match split {
        SynthSplit::Train => 0x7472_6169_6e00_0000u64,
        SynthSplit::Val => 0x7661_6c00_0000_0000u64,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix(splitmix(cfg.seed ^ tag) ^ index as u64));
    let lo = cfg.min_side.min(cfg.max_side);
    let w = rng.random_range(lo..=cfg.max_side.max(lo));
    let h = rng.random_range(lo..=cfg.max_side.max(lo));
    // Drawn either way, so a fixed size leaves the rest of the random stream as it was.
    let [w, h] = cfg.image_size.unwrap_or([w, h]);
    let scene = scene::render_scene(&mut rng, w, h, cfg.max_faces.max(1));
    SynthImage {
        path: image_path(index).1,
        image: scene.image,
        faces: scene.faces,
    }
}

fn write_jpeg(path: &Path, image: &RgbImage, quality: u8) -> Result<(), DataError> {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(image)
        .map_err(|e| DataError::image(path, e))?;
    std::fs::write(path, buf).map_err(|e| DataError::io(path, e))
}

/// Renders and writes one split's images in parallel; returns annotations grouped by event.
fn generate_split(
    root: &Path,
    cfg: &SynthConfig,
    split: SynthSplit,
    n: usize,
) -> Result<Vec<ImageAnnotation>, DataError> {
    let images_dir = root.join(match split {
        SynthSplit::Train => "WIDER_train/images",
        SynthSplit::Val => "WIDER_val/images",
    });
    for (event, _) in EVENTS {
        let d = images_dir.join(event);
        std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, e))?;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (image_path(i).0, i));
    order
        .par_iter()
        .map(|&i| {
            let img = render(cfg, split, i);
            write_jpeg(&images_dir.join(&img.path), &img.image, cfg.jpeg_quality)?;
            Ok(ImageAnnotation {
                path: img.path,
                faces: img.faces,
            })
        })
        .collect()
}

/// The val ground truth: Easy / Medium / Hard by face height among valid faces.
fn ground_truth(images: &[ImageAnnotation]) -> GroundTruth {
    let mut events: Vec<EventGt> = Vec::new();
    for img in images {
        let (event, file) = img.path.split_once('/').unwrap_or(("", img.path.as_str()));
        if events.last().is_none_or(|e| e.name != event) {
            events.push(EventGt {
                name: event.to_string(),
                images: Vec::new(),
            });
        }
        let mut gt = ImageGt {
            name: file.trim_end_matches(".jpg").to_string(),
            ..ImageGt::default()
        };
        for (k, f) in img.faces.iter().enumerate() {
            let b = f.bbox.map(|v| v.round() as i32);
            gt.boxes.push(b);
            gt.attributes.push(f.attributes);
            if f.attributes.invalid != 0 {
                continue;
            }
            let idx = k as u32 + 1;
            for (min_h, list) in [(50, &mut gt.easy), (30, &mut gt.medium), (10, &mut gt.hard)] {
                if b[3] >= min_h {
                    list.push(idx);
                }
            }
        }
        if let Some(e) = events.last_mut() {
            e.images.push(gt);
        }
    }
    GroundTruth { events }
}

/// A RetinaFace-style quality score: lower for blurred, occluded or tiny faces.
fn quality(f: &FaceAnnotation) -> f32 {
    let a = &f.attributes;
    let s = 0.95
        - 0.25 * a.blur as f32
        - 0.15 * a.occlusion as f32
        - if f.bbox[3] < 16.0 { 0.3 } else { 0.0 };
    (s.max(0.05) * 100.0).round() / 100.0
}

/// Generates the whole synthetic set under `root` (see the module docs for the layout).
pub fn generate(root: &Path, cfg: &SynthConfig) -> Result<SynthSummary, DataError> {
    cfg.validate()?;
    let train = generate_split(root, cfg, SynthSplit::Train, cfg.train_images)?;
    let val = generate_split(root, cfg, SynthSplit::Val, cfg.val_images)?;
    let split_dir = root.join("wider_face_split");
    write_wider_txt(&split_dir.join("wider_face_train_bbx_gt.txt"), &train)?;
    write_wider_txt(&split_dir.join("wider_face_val_bbx_gt.txt"), &val)?;
    let labels: Vec<LabelImage> = train
        .iter()
        .map(|img| LabelImage {
            path: img.path.clone(),
            faces: img
                .faces
                .iter()
                .filter(|f| f.attributes.invalid == 0)
                .map(|f| LabelFace {
                    bbox: f.bbox,
                    landmarks: f.landmarks,
                    score: quality(f),
                })
                .collect(),
        })
        .collect();
    write_label_txt(&root.join("train/label.txt"), &labels)?;
    let val_paths: Vec<String> = val.iter().map(|i| i.path.clone()).collect();
    write_path_list(&root.join("val/wider_val.txt"), &val_paths)?;
    let gt = ground_truth(&val);
    let gt_dir = root.join("eval_tools/ground_truth");
    std::fs::create_dir_all(&gt_dir).map_err(|e| DataError::io(&gt_dir, e))?;
    gt.write_dir(&gt_dir)
        .map_err(|source| DataError::GroundTruth {
            path: gt_dir.clone(),
            source,
        })?;
    let count = |v: &[ImageAnnotation]| v.iter().map(|i| i.faces.len()).sum::<usize>();
    let kept = |s: visage_eval::Setting| gt.num_in(s);
    Ok(SynthSummary {
        train_images: train.len(),
        val_images: val.len(),
        train_faces: count(&train),
        val_faces: count(&val),
        invalid_faces: train
            .iter()
            .chain(&val)
            .flat_map(|i| &i.faces)
            .filter(|f| f.attributes.invalid != 0)
            .count(),
        val_easy: kept(visage_eval::Setting::Easy),
        val_medium: kept(visage_eval::Setting::Medium),
        val_hard: kept(visage_eval::Setting::Hard),
    })
}

#[cfg(test)]
mod tests;
