//! What `visage detect` writes: a JSON array, JSON lines, a WIDER FACE submission, drawn
//! images, or a summary on stdout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use serde::Serialize;
use visage_model::{Detection, FittedMesh};

use crate::draw::draw_detections;
use crate::mesh_output::{camera_and_light, draw_meshes, JsonCamera, JsonLight};

/// One detection in the JSON output.
#[derive(Debug, Serialize)]
pub struct JsonDetection {
    /// `[x1, y1, x2, y2]` in image pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Face score in [0, 1].
    pub score: f32,
    /// Five `[x, y]` points in image pixels (left eye, right eye, nose, left and right mouth
    /// corner), for architectures with a landmark head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// The face's camera, for models with a mesh branch (RetinaFace `[model.mesh]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera: Option<JsonCamera>,
    /// The face's light, for models with a mesh branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub light: Option<JsonLight>,
}

/// One image in the JSON output.
#[derive(Debug, Serialize)]
pub struct JsonImage {
    /// The image path as given / found.
    pub image: String,
    /// Original width in pixels.
    pub width: u32,
    /// Original height in pixels.
    pub height: u32,
    /// Detections, best first.
    pub detections: Vec<JsonDetection>,
}

impl JsonImage {
    /// The record of one image.
    pub fn new(path: &Path, image: &RgbImage, detections: &[Detection]) -> Self {
        JsonImage {
            image: path.display().to_string(),
            width: image.width(),
            height: image.height(),
            detections: detections
                .iter()
                .map(|d| {
                    let (camera, light) = d.mesh.as_ref().map(camera_and_light).unzip();
                    JsonDetection {
                        bbox: d.bbox,
                        score: d.score,
                        landmarks: d.landmarks,
                        camera,
                        light,
                    }
                })
                .collect(),
        }
    }
}

/// Where detections go; each sink is optional.
pub struct Sinks {
    json: Option<(PathBuf, Vec<JsonImage>)>,
    jsonl: Option<(PathBuf, BufWriter<File>)>,
    submission: Option<PathBuf>,
    /// The folder of drawn images and the lowest score drawn.
    draw: Option<(PathBuf, f32)>,
    /// Print each image's boxes on stdout (when no file output was asked for).
    pub print: bool,
    written: usize,
}

impl Sinks {
    /// Opens the requested outputs (creating directories and the JSON-lines file). `draw` is
    /// the folder of drawn images and the lowest score drawn there (the other outputs keep
    /// every detection).
    pub fn open(
        json: Option<PathBuf>,
        jsonl: Option<PathBuf>,
        submission: Option<PathBuf>,
        draw: Option<(PathBuf, f32)>,
    ) -> Result<Self> {
        for dir in submission.iter().chain(draw.iter().map(|(dir, _)| dir)) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let jsonl = match jsonl {
            Some(path) => {
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Some((path, BufWriter::new(file)))
            }
            None => None,
        };
        let print = json.is_none() && jsonl.is_none() && submission.is_none();
        Ok(Sinks {
            json: json.map(|p| (p, Vec::new())),
            jsonl,
            submission,
            draw,
            print,
            written: 0,
        })
    }

    /// Sends one image's detections to every sink; `meshes` (index into `detections`, mesh)
    /// are drawn as wireframes with their detections.
    pub fn write(
        &mut self,
        path: &Path,
        image: &RgbImage,
        detections: &[Detection],
        meshes: &[(usize, FittedMesh)],
    ) -> Result<()> {
        let index = self.written;
        self.written += 1;
        if let Some((dir, threshold)) = &self.draw {
            let out = drawn_path(dir, path, index);
            let mut copy = image.clone();
            let shown: Vec<Detection> = detections
                .iter()
                .filter(|d| d.score >= *threshold)
                .cloned()
                .collect();
            let shown_meshes: Vec<(usize, FittedMesh)> = meshes
                .iter()
                .filter(|(i, _)| detections[*i].score >= *threshold)
                .cloned()
                .collect();
            draw_meshes(&mut copy, &shown_meshes);
            draw_detections(&mut copy, &shown);
            copy.save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        if let Some(dir) = &self.submission {
            write_wider(dir, path, detections)?;
        }
        if self.print {
            print_summary(path, detections);
        }
        if self.json.is_some() || self.jsonl.is_some() {
            let record = JsonImage::new(path, image, detections);
            if let Some((out, writer)) = &mut self.jsonl {
                serde_json::to_writer(&mut *writer, &record)
                    .and_then(|()| writer.write_all(b"\n").map_err(serde_json::Error::io))
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            if let Some((_, records)) = &mut self.json {
                records.push(record);
            }
        }
        Ok(())
    }

    /// Flushes and closes the files; returns one line per file written.
    pub fn finish(self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        if let Some((path, mut writer)) = self.jsonl {
            writer
                .flush()
                .with_context(|| format!("writing {}", path.display()))?;
            lines.push(format!("{} images -> {}", self.written, path.display()));
        }
        if let Some((path, records)) = self.json {
            let text = serde_json::to_string_pretty(&records)?;
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            let faces: usize = records.iter().map(|r| r.detections.len()).sum();
            lines.push(format!(
                "{} images, {faces} detections -> {}",
                records.len(),
                path.display()
            ));
        }
        if let Some(dir) = self.submission {
            lines.push(format!(
                "WIDER submission of {} images -> {}",
                self.written,
                dir.display()
            ));
        }
        Ok(lines)
    }
}

/// Writes `<dir>/<event>/<stem>.txt` in the WIDER FACE format, the event being the image's
/// parent folder (as in `WIDER_val/images/<event>/<stem>.jpg`).
fn write_wider(dir: &Path, path: &Path, detections: &[Detection]) -> Result<()> {
    let event = path
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let dets = visage_infer::to_wider(detections);
    visage_eval::write_submission(dir, &event, &stem, &dets)
        .with_context(|| format!("writing the submission file of {}", path.display()))?;
    Ok(())
}

fn print_summary(path: &Path, detections: &[Detection]) {
    println!("{}: {} faces", path.display(), detections.len());
    for d in detections.iter().take(20) {
        let [x1, y1, x2, y2] = d.bbox;
        println!("  {x1:7.1} {y1:7.1} {x2:7.1} {y2:7.1}  {:.3}", d.score);
    }
    if detections.len() > 20 {
        println!("  ... {} more", detections.len() - 20);
    }
}

/// `<dir>/<index>_<file stem>.png`: the index keeps same-named files from different folders
/// apart.
fn drawn_path(dir: &Path, source: &Path, index: usize) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    dir.join(format!("{index:05}_{stem}.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(x: f32, score: f32) -> Detection {
        Detection {
            bbox: [x, 4.0, x + 10.0, 20.0],
            score,
            landmarks: None,
            mesh: None,
        }
    }

    #[test]
    fn drawing_keeps_detections_at_or_above_the_draw_threshold_and_json_keeps_all() {
        let dir = tempfile::tempdir().unwrap();
        let (json, drawn) = (dir.path().join("d.json"), dir.path().join("drawn"));
        let mut sinks =
            Sinks::open(Some(json.clone()), None, None, Some((drawn.clone(), 0.5))).unwrap();
        let image = RgbImage::new(64, 32);
        let dets = [
            detection(2.0, 0.9),
            detection(22.0, 0.5),
            detection(42.0, 0.3),
        ];
        sinks
            .write(Path::new("ev/a.jpg"), &image, &dets, &[])
            .unwrap();
        sinks.finish().unwrap();
        let out = image::open(drawn.join("00000_a.png")).unwrap().into_rgb8();
        // The left edge (x1, mid-height) of each box: drawn at 0.9 and 0.5, not at 0.3.
        let black = image::Rgb([0, 0, 0]);
        assert_ne!(*out.get_pixel(2, 12), black);
        assert_ne!(*out.get_pixel(22, 12), black);
        assert_eq!(*out.get_pixel(42, 12), black);
        let text = std::fs::read_to_string(&json).unwrap();
        let records: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(records[0]["detections"].as_array().unwrap().len(), 3);
    }
}
