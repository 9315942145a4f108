//! What `visage detect` writes: a JSON array, JSON lines, a WIDER FACE submission, drawn
//! images, or a summary on stdout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use serde::Serialize;
use visage_model::Detection;

use crate::draw::draw_detections;

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
                .map(|d| JsonDetection {
                    bbox: d.bbox,
                    score: d.score,
                    landmarks: d.landmarks,
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
    draw: Option<PathBuf>,
    /// Print each image's boxes on stdout (when no file output was asked for).
    pub print: bool,
    written: usize,
}

impl Sinks {
    /// Opens the requested outputs (creating directories and the JSON-lines file).
    pub fn open(
        json: Option<PathBuf>,
        jsonl: Option<PathBuf>,
        submission: Option<PathBuf>,
        draw: Option<PathBuf>,
    ) -> Result<Self> {
        for dir in submission.iter().chain(&draw) {
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

    /// Sends one image's detections to every sink.
    pub fn write(&mut self, path: &Path, image: &RgbImage, detections: &[Detection]) -> Result<()> {
        let index = self.written;
        self.written += 1;
        if let Some(dir) = &self.draw {
            let out = drawn_path(dir, path, index);
            let mut copy = image.clone();
            draw_detections(&mut copy, detections);
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
