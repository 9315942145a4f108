//! The WIDER FACE box files `wider_face_{train,val}_bbx_gt.txt` and the plain image lists
//! (`wider_face_test_filelist.txt`, RetinaFace's `val/wider_val.txt`).
//!
//! Box file format, per image: a line with the path relative to `images/`, a line with the
//! face count N, then N lines `x1 y1 w h blur expression illumination invalid occlusion pose `
//! (pixels, top-left corner and size; each line ends with a space). An image without faces
//! has count `0` followed by one all-zero line, which is read and discarded.

use std::path::Path;

use visage_eval::FaceAttributes;

use crate::error::{read_text, write_text, DataError};
use crate::label_txt::Landmarks;

/// One annotated face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceAnnotation {
    /// `[x, y, w, h]` in pixels: top-left corner, width, height (WIDER's xywh).
    pub bbox: [f32; 4],
    /// WIDER's six attribute columns.
    pub attributes: FaceAttributes,
    /// Five landmarks when the source has them (RetinaFace `label.txt`), else `None`.
    pub landmarks: Option<Landmarks>,
}

/// One annotated image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnnotation {
    /// Path relative to the split's `images/` folder, e.g. `0--Parade/0_Parade_marchingband_1_17.jpg`.
    pub path: String,
    /// The faces, in file order.
    pub faces: Vec<FaceAnnotation>,
}

/// Attributes with every column zero (what `label.txt` faces get).
pub(crate) fn zero_attributes() -> FaceAttributes {
    FaceAttributes {
        blur: 0,
        expression: 0,
        illumination: 0,
        invalid: 0,
        occlusion: 0,
        pose: 0,
    }
}

/// Formats a coordinate the way the real files do: integers without a decimal point.
pub(crate) fn fmt_num(v: f32) -> String {
    if v.fract() == 0.0 && v.abs() < 1.0e7 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

const COLUMNS: [&str; 10] = [
    "x",
    "y",
    "w",
    "h",
    "blur",
    "expression",
    "illumination",
    "invalid",
    "occlusion",
    "pose",
];

/// Parses one face line (10 columns) at `path:line`.
fn parse_face_line(text: &str, path: &Path, line: usize) -> Result<FaceAnnotation, DataError> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() != COLUMNS.len() {
        return Err(DataError::parse(
            path,
            line,
            format!(
                "expected 10 values (x y w h blur expression illumination invalid occlusion pose), found {}: `{}`",
                tokens.len(),
                text.trim()
            ),
        ));
    }
    let mut bbox = [0.0f32; 4];
    for (k, b) in bbox.iter_mut().enumerate() {
        *b = tokens[k]
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                DataError::parse(
                    path,
                    line,
                    format!(
                        "column `{}`: cannot parse `{}` as a number",
                        COLUMNS[k], tokens[k]
                    ),
                )
            })?;
    }
    let mut attr = [0u8; 6];
    for (k, a) in attr.iter_mut().enumerate() {
        *a = tokens[4 + k].parse::<u8>().map_err(|_| {
            DataError::parse(
                path,
                line,
                format!(
                    "column `{}`: cannot parse `{}` as a small integer",
                    COLUMNS[4 + k],
                    tokens[4 + k]
                ),
            )
        })?;
    }
    Ok(FaceAnnotation {
        bbox,
        attributes: FaceAttributes {
            blur: attr[0],
            expression: attr[1],
            illumination: attr[2],
            invalid: attr[3],
            occlusion: attr[4],
            pose: attr[5],
        },
        landmarks: None,
    })
}

/// True for a line of ten numbers that are all zero (the placeholder after a `0` count).
fn is_zero_line(text: &str) -> bool {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens.len() == COLUMNS.len()
        && tokens
            .iter()
            .all(|t| t.parse::<f64>().is_ok_and(|v| v == 0.0))
}

/// Parses the text of a box file; `path` is only used in error messages.
pub fn parse_wider_txt(text: &str, path: &Path) -> Result<Vec<ImageAnnotation>, DataError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut images = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let name = lines[i].trim();
        if name.is_empty() {
            i += 1;
            continue;
        }
        if name.split_whitespace().count() != 1 || name.parse::<f64>().is_ok() {
            return Err(DataError::parse(
                path,
                i + 1,
                format!("expected an image path, found `{name}` (face count too small on the previous image?)"),
            ));
        }
        let count_line = i + 2;
        let count_text = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let count: usize = count_text.parse().map_err(|_| {
            DataError::parse(
                path,
                count_line,
                format!("expected the face count of `{name}`, found `{count_text}`"),
            )
        })?;
        i += 2;
        // The count is untrusted: never reserve more faces than there are lines left (a huge
        // count would otherwise overflow the capacity or abort on allocation).
        let mut faces = Vec::with_capacity(count.min(lines.len().saturating_sub(i)));
        if count == 0 {
            if lines.get(i).is_some_and(|l| is_zero_line(l)) {
                i += 1;
            }
        } else {
            for _ in 0..count {
                let Some(l) = lines.get(i) else {
                    return Err(DataError::parse(
                        path,
                        i + 1,
                        format!(
                            "end of file: `{name}` announced {count} faces, found {}",
                            faces.len()
                        ),
                    ));
                };
                faces.push(parse_face_line(l, path, i + 1)?);
                i += 1;
            }
        }
        images.push(ImageAnnotation {
            path: name.to_string(),
            faces,
        });
    }
    Ok(images)
}

/// Reads `wider_face_{train,val}_bbx_gt.txt`. Errors name `file:line`.
pub fn read_wider_txt(path: &Path) -> Result<Vec<ImageAnnotation>, DataError> {
    parse_wider_txt(&read_text(path)?, path)
}

/// Formats images as a box file (trailing space on face lines, zero line for empty images).
/// Landmarks are not part of this format and are not written.
pub fn format_wider_txt(images: &[ImageAnnotation]) -> String {
    let mut out = String::new();
    for img in images {
        out.push_str(&img.path);
        out.push('\n');
        out.push_str(&format!("{}\n", img.faces.len()));
        if img.faces.is_empty() {
            out.push_str("0 0 0 0 0 0 0 0 0 0 \n");
        }
        for f in &img.faces {
            let a = &f.attributes;
            out.push_str(&format!(
                "{} {} {} {} {} {} {} {} {} {} \n",
                fmt_num(f.bbox[0]),
                fmt_num(f.bbox[1]),
                fmt_num(f.bbox[2]),
                fmt_num(f.bbox[3]),
                a.blur,
                a.expression,
                a.illumination,
                a.invalid,
                a.occlusion,
                a.pose
            ));
        }
    }
    out
}

/// Writes a box file, creating parent directories.
pub fn write_wider_txt(path: &Path, images: &[ImageAnnotation]) -> Result<(), DataError> {
    write_text(path, &format_wider_txt(images))
}

/// Reads a list of image paths, one per line (test file list, `wider_val.txt`). Blank lines are
/// skipped, surrounding whitespace and a leading `/` are removed.
pub fn read_path_list(path: &Path) -> Result<Vec<String>, DataError> {
    Ok(read_list_lines(path)?
        .into_iter()
        .map(|(_, t)| t.trim_start_matches('/').to_string())
        .collect())
}

/// The non-blank lines of a one-path-per-line list, trimmed, with their 1-based line numbers;
/// a line holding more than one token is an error with `file:line`.
pub(crate) fn read_list_lines(path: &Path) -> Result<Vec<(usize, String)>, DataError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (k, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if t.split_whitespace().count() != 1 {
            return Err(DataError::parse(
                path,
                k + 1,
                format!("expected one image path, found `{t}`"),
            ));
        }
        out.push((k + 1, t.to_string()));
    }
    Ok(out)
}

/// Writes a list of image paths, one per line.
pub fn write_path_list(path: &Path, paths: &[String]) -> Result<(), DataError> {
    let mut text = String::new();
    for p in paths {
        text.push_str(p);
        text.push('\n');
    }
    write_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], blur: u8, invalid: u8, pose: u8) -> FaceAnnotation {
        FaceAnnotation {
            bbox,
            attributes: FaceAttributes {
                blur,
                expression: 1,
                illumination: 0,
                invalid,
                occlusion: 2,
                pose,
            },
            landmarks: None,
        }
    }

    fn sample() -> Vec<ImageAnnotation> {
        vec![
            ImageAnnotation {
                path: "0--Parade/0_Parade_marchingband_1_849.jpg".into(),
                faces: vec![face([449.0, 330.0, 122.0, 149.0], 0, 0, 0)],
            },
            ImageAnnotation {
                path: "0--Parade/0_Parade_Parade_0_452.jpg".into(),
                faces: vec![],
            },
            ImageAnnotation {
                path: "1--Handshaking/1_Handshaking_Handshaking_1_1.jpg".into(),
                faces: vec![
                    face([1.0, 2.0, 0.0, 4.0], 2, 1, 1),
                    face([10.0, 20.0, 30.0, 40.5], 1, 0, 0),
                ],
            },
        ]
    }

    #[test]
    fn round_trip_with_zero_face_quirk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("split/wider_face_val_bbx_gt.txt");
        write_wider_txt(&p, &sample()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("0_Parade_Parade_0_452.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"),
            "{text}"
        );
        assert!(text.contains("449 330 122 149 0 1 0 0 2 0 \n"), "{text}");
        assert_eq!(read_wider_txt(&p).unwrap(), sample());
    }

    #[test]
    fn reads_official_layout_and_missing_zero_line() {
        let text =
            "a/x.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \na/empty.jpg\n0\na/y.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n";
        let imgs = parse_wider_txt(text, Path::new("t.txt")).unwrap();
        assert_eq!(imgs.len(), 3);
        assert_eq!(imgs[0].faces[0].bbox, [1.0, 2.0, 3.0, 4.0]);
        assert!(imgs[1].faces.is_empty() && imgs[2].faces.is_empty());
        assert_eq!(imgs[2].path, "a/y.jpg");
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let bad_col = "a/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n1 2 x 4 0 0 0 0 0 0 \n";
        let e = parse_wider_txt(bad_col, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:4: column `w`"), "{e}");

        let short = "a/x.jpg\n1\n1 2 3 4 0 0 0 0 0\n";
        let e = parse_wider_txt(short, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:3: expected 10 values"), "{e}");

        let bad_count = "a/x.jpg\nthree\n";
        let e = parse_wider_txt(bad_count, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:2: expected the face count"), "{e}");

        let truncated = "a/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n";
        let e = parse_wider_txt(truncated, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:4: end of file"), "{e}");

        let too_few = "a/x.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \n5 6 7 8 0 0 0 0 0 0 \n";
        let e = parse_wider_txt(too_few, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:4: expected an image path"), "{e}");

        let bad_attr = "a/x.jpg\n1\n1 2 3 4 0 0 300 0 0 0 \n";
        let e = parse_wider_txt(bad_attr, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:3: column `illumination`"), "{e}");
    }

    #[test]
    fn huge_face_count_is_an_error_not_a_panic() {
        // Found by `tests/fuzz_readers.rs` (shrunk): `Vec::with_capacity(count)` panicked with
        // "capacity overflow" (a count of 2^40 would abort on allocation instead).
        let text = "0--a/_.jpg\n18446744073709551615\n0 0 0 0 0 0 0 0 0 0 \n0--A/_.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n";
        let e = parse_wider_txt(text, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:4: expected 10 values"), "{e}");
        let text = format!("a/x.jpg\n{}\n1 2 3 4 0 0 0 0 0 0 \n", 1usize << 40);
        let e = parse_wider_txt(&text, Path::new("gt.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gt.txt:4: end of file"), "{e}");
    }

    #[test]
    fn path_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wider_val.txt");
        let paths = vec![
            "0--Parade/a.jpg".to_string(),
            "1--Handshaking/b.jpg".to_string(),
        ];
        write_path_list(&p, &paths).unwrap();
        assert_eq!(read_path_list(&p).unwrap(), paths);
        std::fs::write(&p, "/0--Parade/a.jpg\n\n  1--Handshaking/b.jpg \n").unwrap();
        assert_eq!(read_path_list(&p).unwrap(), paths);
        std::fs::write(&p, "a.jpg\nb.jpg c.jpg\n").unwrap();
        let e = read_path_list(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("wider_val.txt:2: expected one image path, found `b.jpg c.jpg`"),
            "{e}"
        );
    }
}
