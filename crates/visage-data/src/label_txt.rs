//! RetinaFace's `label.txt`: training boxes with five landmarks.
//!
//! ```text
//! # 0--Parade/0_Parade_marchingband_1_799.jpg
//! 78 221 7 8 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 0.2
//! 78 238 14 17 84.188 244.607 0.0 89.527 244.491 0.0 86.973 247.857 1.0 85.116 250.643 0.0 88.482 250.643 0.0 0.36
//! ```
//! Each face: `x y w h` (pixels, top-left corner and size), five `lx ly flag` triples (flag 0.0
//! visible, 1.0 occluded; all fifteen values −1 when the face has no landmarks), then a quality
//! score. Lines of 4 values (box only) or 19 values (no score) are accepted when reading.

use std::path::Path;

use crate::error::{read_text, write_text, DataError};
use crate::wider_txt::{fmt_num, zero_attributes, FaceAnnotation, ImageAnnotation};

/// Five facial landmarks in pixels, in the order left eye, right eye, nose tip, left mouth
/// corner, right mouth corner. "Left" is the image's left for an upright face, so a horizontal
/// flip swaps 0↔1 and 3↔4.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landmarks {
    /// `[x, y]` pixel coordinates of each point.
    pub points: [[f32; 2]; 5],
    /// Whether each point is visible (`false`: occluded, flag 1.0 in the file).
    pub visible: [bool; 5],
}

/// One face of a `label.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFace {
    /// `[x, y, w, h]` in pixels.
    pub bbox: [f32; 4],
    /// The five landmarks, or `None` when the file has all −1.
    pub landmarks: Option<Landmarks>,
    /// The trailing quality score (1.0 when the line has none).
    pub score: f32,
}

/// One image of a `label.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelImage {
    /// Path after `# `, relative to the images folder.
    pub path: String,
    /// The faces, in file order.
    pub faces: Vec<LabelFace>,
}

impl From<LabelImage> for ImageAnnotation {
    /// Drops the score; the WIDER attributes are unknown in `label.txt` and set to zero.
    fn from(img: LabelImage) -> Self {
        ImageAnnotation {
            path: img.path,
            faces: img
                .faces
                .into_iter()
                .map(|f| FaceAnnotation {
                    bbox: f.bbox,
                    attributes: zero_attributes(),
                    landmarks: f.landmarks,
                })
                .collect(),
        }
    }
}

fn parse_numbers(text: &str, path: &Path, line: usize) -> Result<Vec<f32>, DataError> {
    text.split_whitespace()
        .enumerate()
        .map(|(k, t)| {
            t.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    DataError::parse(
                        path,
                        line,
                        format!("value {}: cannot parse `{t}` as a number", k + 1),
                    )
                })
        })
        .collect()
}

fn parse_face(values: &[f32], path: &Path, line: usize) -> Result<LabelFace, DataError> {
    if !matches!(values.len(), 4 | 19 | 20) {
        return Err(DataError::parse(
            path,
            line,
            format!(
                "expected 20 values (x y w h, five `lx ly flag`, score), found {}",
                values.len()
            ),
        ));
    }
    let bbox = [values[0], values[1], values[2], values[3]];
    let mut landmarks = None;
    if values.len() >= 19 && !values[4..19].iter().all(|&v| v == -1.0) {
        let mut lm = Landmarks {
            points: [[0.0; 2]; 5],
            visible: [true; 5],
        };
        for k in 0..5 {
            lm.points[k] = [values[4 + 3 * k], values[5 + 3 * k]];
            lm.visible[k] = values[6 + 3 * k] <= 0.5;
        }
        landmarks = Some(lm);
    }
    let score = values.get(19).copied().unwrap_or(1.0);
    Ok(LabelFace {
        bbox,
        landmarks,
        score,
    })
}

/// Parses the text of a `label.txt`; `path` is only used in error messages.
pub fn parse_label_txt(text: &str, path: &Path) -> Result<Vec<LabelImage>, DataError> {
    let mut images: Vec<LabelImage> = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(rest) = t.strip_prefix('#') {
            let p = rest.trim();
            if p.is_empty() {
                return Err(DataError::parse(
                    path,
                    line,
                    "`#` line without an image path",
                ));
            }
            images.push(LabelImage {
                path: p.to_string(),
                faces: Vec::new(),
            });
            continue;
        }
        let values = parse_numbers(t, path, line)?;
        let face = parse_face(&values, path, line)?;
        match images.last_mut() {
            Some(img) => img.faces.push(face),
            None => {
                return Err(DataError::parse(
                    path,
                    line,
                    "face line before the first `# path` line",
                ))
            }
        }
    }
    Ok(images)
}

/// Reads a RetinaFace `label.txt`. Errors name `file:line`.
pub fn read_label_txt(path: &Path) -> Result<Vec<LabelImage>, DataError> {
    parse_label_txt(&read_text(path)?, path)
}

/// Formats images as `label.txt` (landmarks with three decimals, `-1.0` ×15 when absent).
pub fn format_label_txt(images: &[LabelImage]) -> String {
    let mut out = String::new();
    for img in images {
        out.push_str("# ");
        out.push_str(&img.path);
        out.push('\n');
        for f in &img.faces {
            let b = f.bbox;
            out.push_str(&format!(
                "{} {} {} {}",
                fmt_num(b[0]),
                fmt_num(b[1]),
                fmt_num(b[2]),
                fmt_num(b[3])
            ));
            match &f.landmarks {
                Some(lm) => {
                    for k in 0..5 {
                        let flag = if lm.visible[k] { "0.0" } else { "1.0" };
                        out.push_str(&format!(
                            " {:.3} {:.3} {flag}",
                            lm.points[k][0], lm.points[k][1]
                        ));
                    }
                }
                None => out.push_str(&" -1.0".repeat(15)),
            }
            out.push_str(&format!(" {}\n", f.score));
        }
    }
    out
}

/// Writes a `label.txt`, creating parent directories.
pub fn write_label_txt(path: &Path, images: &[LabelImage]) -> Result<(), DataError> {
    write_text(path, &format_label_txt(images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<LabelImage> {
        vec![
            LabelImage {
                path: "0--Parade/0_Parade_marchingband_1_799.jpg".into(),
                faces: vec![
                    LabelFace {
                        bbox: [78.0, 221.0, 7.0, 8.0],
                        landmarks: None,
                        score: 0.2,
                    },
                    LabelFace {
                        bbox: [78.0, 238.0, 14.0, 17.0],
                        landmarks: Some(Landmarks {
                            points: [
                                [84.188, 244.607],
                                [89.527, 244.491],
                                [86.973, 247.857],
                                [85.116, 250.643],
                                [88.482, 250.643],
                            ],
                            visible: [true, true, false, true, true],
                        }),
                        score: 0.36,
                    },
                ],
            },
            LabelImage {
                path: "1--Handshaking/empty.jpg".into(),
                faces: vec![],
            },
        ]
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train/label.txt");
        write_label_txt(&p, &sample()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("# 0--Parade/0_Parade_marchingband_1_799.jpg\n78 221 7 8 -1.0 -1.0"),
            "{text}"
        );
        assert!(text.contains("86.973 247.857 1.0 85.116"), "{text}");
        assert_eq!(read_label_txt(&p).unwrap(), sample());
    }

    #[test]
    fn converts_to_annotations_keeping_missing_landmarks() {
        let anns: Vec<ImageAnnotation> = sample().into_iter().map(Into::into).collect();
        assert!(anns[0].faces[0].landmarks.is_none());
        assert_eq!(
            anns[0].faces[1].landmarks.unwrap().points[2],
            [86.973, 247.857]
        );
        assert!(!anns[0].faces[1].landmarks.unwrap().visible[2]);
        assert_eq!(anns[0].faces[1].attributes.invalid, 0);
        assert!(anns[1].faces.is_empty());
    }

    #[test]
    fn short_lines_accepted() {
        let text = "# a.jpg\n1 2 3 4\n5 6 7 8 1 1 0 2 2 0 3 3 0 4 4 0 5 5 0\n";
        let imgs = parse_label_txt(text, Path::new("l.txt")).unwrap();
        assert_eq!(imgs[0].faces[0].landmarks, None);
        assert_eq!(imgs[0].faces[0].score, 1.0);
        assert_eq!(imgs[0].faces[1].landmarks.unwrap().points[4], [5.0, 5.0]);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let e = parse_label_txt("1 2 3 4\n", Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "l.txt:1: face line before the first `# path` line");
        let e = parse_label_txt("# a.jpg\n\n1 2 3 4 5\n", Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l.txt:3: expected 20 values"), "{e}");
        let e = parse_label_txt("# a.jpg\n1 2 nan? 4\n", Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l.txt:2: value 3"), "{e}");
        let e = parse_label_txt("#\n", Path::new("l.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l.txt:1: `#` line"), "{e}");
    }
}
