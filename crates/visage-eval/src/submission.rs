//! WIDER FACE submission files and the in-memory [`Predictions`] the protocol scores.
//!
//! A submission is a folder `<dir>/<event>/<image>.txt`, one file per image: line 1 the image
//! name, line 2 the count N, then N lines `x y w h score` (top-left corner, width, height in
//! pixels, any finite float score; trailing spaces and `\r\n` allowed, blank lines at the end
//! ignored).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::{EvalError, GroundTruth};

/// One detection: box `x y w h` in pixels (top-left corner, width, height) and a score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Detection {
    /// Left edge, pixels.
    pub x: f32,
    /// Top edge, pixels.
    pub y: f32,
    /// Width, pixels.
    pub w: f32,
    /// Height, pixels.
    pub h: f32,
    /// Confidence (any finite value; the protocol normalises over the split).
    pub score: f32,
}

/// Detections per (event, image name without `.jpg`), each `[x, y, w, h, score]` in f64 pixels.
///
/// Values read from files are parsed straight into f64 (as the official tools do). Values from
/// [`Detection`] go through their shortest decimal form, so scoring in memory gives exactly the
/// numbers that writing a submission and reading it back gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    map: HashMap<String, HashMap<String, Vec<[f64; 5]>>>,
}

/// The f64 a reader gets from the shortest decimal text of `v` (what [`write_submission`] writes).
fn via_decimal(v: f32, buf: &mut String) -> f64 {
    buf.clear();
    let _ = write!(buf, "{v}");
    buf.parse().unwrap_or(v as f64)
}

/// Checks one `[x, y, w, h, score]`: all finite, w and h non-negative.
fn check_box(b: &[f64; 5]) -> Result<(), String> {
    if let Some(v) = b.iter().find(|v| !v.is_finite()) {
        return Err(format!("non-finite value {v}"));
    }
    if b[2] < 0.0 || b[3] < 0.0 {
        return Err(format!("negative width or height ({} × {})", b[2], b[3]));
    }
    Ok(())
}

impl Predictions {
    /// No detections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the detections of one image (replacing earlier ones). Errors on a non-finite value
    /// or a negative width/height.
    pub fn insert(
        &mut self,
        event: &str,
        image: &str,
        dets: &[Detection],
    ) -> Result<(), EvalError> {
        let mut buf = String::new();
        let boxes = dets
            .iter()
            .map(|d| [d.x, d.y, d.w, d.h, d.score].map(|v| via_decimal(v, &mut buf)))
            .collect();
        self.insert_raw(event, image, boxes)
    }

    /// Sets the detections of one image from `[x, y, w, h, score]` rows (f64 pixels).
    pub fn insert_raw(
        &mut self,
        event: &str,
        image: &str,
        boxes: Vec<[f64; 5]>,
    ) -> Result<(), EvalError> {
        for (index, b) in boxes.iter().enumerate() {
            check_box(b).map_err(|detail| EvalError::Detection {
                event: event.into(),
                image: image.into(),
                index,
                detail,
            })?;
        }
        self.map
            .entry(event.to_string())
            .or_default()
            .insert(image.to_string(), boxes);
        Ok(())
    }

    /// Builds predictions from `(event, image, detections)` triples.
    pub fn from_detections(items: &[(String, String, Vec<Detection>)]) -> Result<Self, EvalError> {
        let mut p = Self::new();
        for (event, image, dets) in items {
            p.insert(event, image, dets)?;
        }
        Ok(p)
    }

    /// The detections of one image, `[x, y, w, h, score]` rows in insertion (file) order.
    pub fn get(&self, event: &str, image: &str) -> Option<&[[f64; 5]]> {
        self.map.get(event)?.get(image).map(Vec::as_slice)
    }

    /// Number of images with an entry (possibly empty).
    pub fn num_images(&self) -> usize {
        self.map.values().map(HashMap::len).sum()
    }

    /// Total number of detections.
    pub fn num_detections(&self) -> usize {
        self.map
            .values()
            .flat_map(HashMap::values)
            .map(Vec::len)
            .sum()
    }
}

/// What [`read_submission`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Submission {
    /// Detections of every ground-truth image that had a file.
    pub predictions: Predictions,
    /// `(event, image)` of ground-truth images without a file (scored as no detections).
    pub missing: Vec<(String, String)>,
    /// Sub-folders of the submission that are not events of the ground truth (ignored).
    pub unknown_events: Vec<String>,
    /// `(event, file name)` of entries in ground-truth event folders that are not the
    /// `<image>.txt` of one of that event's images (ignored; e.g. `x.jpg.txt` or a typo).
    pub unknown_files: Vec<(String, String)>,
}

/// Parses the text of one submission file (`path` is used in errors only).
pub fn parse_submission(path: &Path, text: &str) -> Result<Vec<[f64; 5]>, EvalError> {
    let err = |line: usize, detail: String| EvalError::Submission {
        path: path.to_path_buf(),
        line,
        detail,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    lines
        .next()
        .ok_or_else(|| err(1, "empty file: expected the image name".into()))?;
    let (ln, count) = lines
        .next()
        .ok_or_else(|| err(2, "missing the detection count line".into()))?;
    let n: usize = count
        .trim()
        .parse()
        .map_err(|_| err(ln, format!("bad detection count {:?}", count.trim())))?;
    let mut boxes = Vec::with_capacity(n.min(100_000));
    let mut last = ln;
    for (ln, line) in lines {
        last = ln;
        if boxes.len() == n {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err(
                ln,
                format!("count says {n} detections but more lines follow"),
            ));
        }
        let mut b = [0.0f64; 5];
        let mut fields = line.split_whitespace();
        for (k, slot) in b.iter_mut().enumerate() {
            let f = fields
                .next()
                .ok_or_else(|| err(ln, format!("expected `x y w h score`, found {} fields", k)))?;
            *slot = f
                .parse()
                .map_err(|_| err(ln, format!("bad number {f:?}")))?;
        }
        if fields.next().is_some() {
            return Err(err(
                ln,
                "expected `x y w h score`, found more than 5 fields".into(),
            ));
        }
        check_box(&b).map_err(|d| err(ln, d))?;
        boxes.push(b);
    }
    if boxes.len() != n {
        return Err(err(
            last,
            format!("count says {n} detections but the file has {}", boxes.len()),
        ));
    }
    Ok(boxes)
}

/// Reads the submission in `dir` for every image of `gt`, in parallel.
///
/// A missing file (or a missing event folder) counts as no detections and is listed in
/// [`Submission::missing`]; folders and files the ground truth does not know are listed in
/// [`Submission::unknown_events`] and [`Submission::unknown_files`] and ignored. A malformed
/// file — a bad count or number, a line without exactly five fields, a count that disagrees
/// with the lines, a non-finite value (`NaN`, `inf`) or a negative width or height — is an error
/// naming `file:line`. (The official MATLAB `read_pred` instead prints `Invalid format` and
/// scores that image as having no detections, reads only the first `count` lines, and lets NaN
/// and negative sizes through; the Python port crashes on most of these. We refuse the file so
/// that a broken writer is not silently scored.)
///
/// A submission of which no file matches a ground-truth image (an empty folder, a folder one
/// level too high or too low) is [`EvalError::NoMatchingPredictions`], saying how many `.txt`
/// files it holds and which folder the layout expected: scored, it would give AP 0 as if it
/// were a result.
pub fn read_submission(dir: &Path, gt: &GroundTruth) -> Result<Submission, EvalError> {
    let events: HashSet<&str> = gt.events.iter().map(|e| e.name.as_str()).collect();
    let mut unknown_events = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))? {
        let entry = entry.map_err(|e| EvalError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !events.contains(name.as_str()) {
            unknown_events.push(name);
        }
    }
    unknown_events.sort();
    let unknown_files = unknown_files(dir, gt)?;
    let jobs: Vec<(&str, &str)> = gt
        .events
        .iter()
        .flat_map(|e| {
            e.images
                .iter()
                .map(move |i| (e.name.as_str(), i.name.as_str()))
        })
        .collect();
    let results: Vec<Result<Option<Vec<[f64; 5]>>, EvalError>> = jobs
        .par_iter()
        .map(|(event, image)| {
            let path = dir.join(event).join(format!("{image}.txt"));
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(EvalError::io(path, e)),
            };
            let text = String::from_utf8(bytes).map_err(|e| {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                EvalError::Submission {
                    path: path.clone(),
                    line,
                    detail: "not valid UTF-8".into(),
                }
            })?;
            parse_submission(&path, &text).map(Some)
        })
        .collect();
    let mut out = Submission {
        unknown_events,
        unknown_files,
        ..Default::default()
    };
    for ((event, image), r) in jobs.into_iter().zip(results) {
        match r? {
            Some(boxes) => {
                out.predictions
                    .map
                    .entry(event.to_string())
                    .or_default()
                    .insert(image.to_string(), boxes);
            }
            None => out.missing.push((event.to_string(), image.to_string())),
        }
    }
    if out.predictions.num_images() == 0 && gt.num_images() > 0 {
        return Err(crate::submission_layout::no_match_error(dir, gt));
    }
    Ok(out)
}

/// Entries of the ground-truth event folders under `dir` that are no image's `<image>.txt`,
/// sorted. A missing event folder has none.
fn unknown_files(dir: &Path, gt: &GroundTruth) -> Result<Vec<(String, String)>, EvalError> {
    let mut out = Vec::new();
    for event in &gt.events {
        let folder = dir.join(&event.name);
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EvalError::io(folder, e)),
        };
        let known: HashSet<String> = event
            .images
            .iter()
            .map(|i| format!("{}.txt", i.name))
            .collect();
        let start = out.len();
        for entry in entries {
            let name = entry.map_err(|e| EvalError::io(&folder, e))?.file_name();
            let name = name.to_string_lossy();
            if !known.contains(name.as_ref()) {
                out.push((event.name.clone(), name.into_owned()));
            }
        }
        out[start..].sort();
    }
    Ok(out)
}

fn check_name(kind: &str, name: &str, path: &Path) -> Result<(), EvalError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        let detail = format!("{kind} name {name:?} is not a plain file name");
        return Err(EvalError::Submission {
            path: path.to_path_buf(),
            line: 0,
            detail,
        });
    }
    Ok(())
}

/// Writes `<dir>/<event>/<image>.txt` (creating folders) and returns its path. Numbers are
/// written in their shortest round-trip decimal form.
pub fn write_submission(
    dir: &Path,
    event: &str,
    image: &str,
    dets: &[Detection],
) -> Result<PathBuf, EvalError> {
    check_name("event", event, dir)?;
    check_name("image", image, dir)?;
    let folder = dir.join(event);
    std::fs::create_dir_all(&folder).map_err(|e| EvalError::io(&folder, e))?;
    let path = folder.join(format!("{image}.txt"));
    let mut text = String::with_capacity(32 + 48 * dets.len());
    let _ = writeln!(text, "{image}\n{}", dets.len());
    for d in dets {
        let _ = writeln!(text, "{} {} {} {} {}", d.x, d.y, d.w, d.h, d.score);
    }
    std::fs::write(&path, text).map_err(|e| EvalError::io(&path, e))?;
    Ok(path)
}

/// Writes many images' files in parallel; returns how many were written.
pub fn write_submission_all(
    dir: &Path,
    items: &[(String, String, Vec<Detection>)],
) -> Result<usize, EvalError> {
    items
        .par_iter()
        .map(|(event, image, dets)| write_submission(dir, event, image, dets).map(|_| 1))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventGt, ImageGt};

    fn gt() -> GroundTruth {
        let img = |n: &str| ImageGt {
            name: n.into(),
            boxes: vec![[0, 0, 10, 10]],
            attributes: vec![Default::default()],
            ..Default::default()
        };
        GroundTruth {
            events: vec![
                EventGt {
                    name: "0--Parade".into(),
                    images: vec![img("a"), img("b")],
                },
                EventGt {
                    name: "1--Handshaking".into(),
                    images: vec![img("c")],
                },
            ],
        }
    }

    fn err_of(text: &str) -> String {
        parse_submission(Path::new("sub/0--Parade/a.txt"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_trailing_spaces_crlf_and_blank_tail() {
        let b = parse_submission(
            Path::new("x.txt"),
            "a\r\n2\r\n1 2 3 4 0.5 \r\n-1.5 0 1e1 0 -3\n\n \n",
        )
        .unwrap();
        assert_eq!(
            b,
            vec![[1.0, 2.0, 3.0, 4.0, 0.5], [-1.5, 0.0, 10.0, 0.0, -3.0]]
        );
        assert_eq!(
            parse_submission(Path::new("x.txt"), "0--Parade/a.jpg\n0\n")
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let p = "sub/0--Parade/a.txt";
        for (text, line, want) in [
            ("", 1, "empty file"),
            ("a\n", 2, "missing the detection count"),
            ("a\nthree\n", 2, "bad detection count"),
            ("a\n2\n1 2 3 4 0.5\n", 3, "count says 2"),
            ("a\n1\n1 2 3 4 0.5\n5 6 7 8 0.1\n", 4, "more lines follow"),
            ("a\n1\n1 2 3 4\n", 3, "found 4 fields"),
            ("a\n1\n1 2 3 4 5 6\n", 3, "more than 5 fields"),
            ("a\n2\n1 2 3 4 0.5\n1 2 3 4 NaN\n", 4, "non-finite"),
            ("a\n1\n1 2 inf 4 0.5\n", 3, "non-finite"),
            ("a\n1\n1 2 -3 4 0.5\n", 3, "negative width"),
            ("a\n1\n1 2 x 4 0.5\n", 3, "bad number"),
        ] {
            let e = err_of(text);
            assert!(
                e.starts_with(&format!("{p}:{line}: ")) && e.contains(want),
                "{text:?} -> {e}"
            );
        }
    }

    #[test]
    fn write_then_read_reports_missing_and_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let dets = vec![
            Detection {
                x: 1.5,
                y: 2.0,
                w: 30.25,
                h: 40.0,
                score: 0.95,
            },
            Detection {
                x: 0.1,
                y: 0.2,
                w: 0.3,
                h: 0.7,
                score: 0.123_456_79,
            },
        ];
        let items = vec![
            ("0--Parade".to_string(), "a".to_string(), dets.clone()),
            ("1--Handshaking".to_string(), "c".to_string(), vec![]),
            ("9--Extra".to_string(), "z".to_string(), dets.clone()),
        ];
        assert_eq!(write_submission_all(dir.path(), &items).unwrap(), 3);
        let sub = read_submission(dir.path(), &gt()).unwrap();
        assert_eq!(
            sub.missing,
            vec![("0--Parade".to_string(), "b".to_string())]
        );
        assert_eq!(sub.unknown_events, vec!["9--Extra".to_string()]);
        assert_eq!(sub.predictions.num_images(), 2);
        assert_eq!(sub.predictions.num_detections(), 2);
        assert_eq!(sub.predictions.get("1--Handshaking", "c"), Some(&[][..]));
        // In memory the f32 values go through their decimal text: identical to the file.
        let mem = Predictions::from_detections(&items[..2]).unwrap();
        assert_eq!(mem, sub.predictions);
        assert_eq!(
            mem.get("0--Parade", "a").unwrap()[0],
            [1.5, 2.0, 30.25, 40.0, 0.95]
        );
        assert!(write_submission(dir.path(), "../x", "a", &dets).is_err());
    }

    #[test]
    fn missing_event_folder_and_stray_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("0--Parade/sub")).unwrap();
        std::fs::write(p.join("0--Parade/a.txt"), "a\n1\n1 2 3 4 0.5\n").unwrap();
        std::fs::write(p.join("0--Parade/b.jpg.txt"), "b\n0\n").unwrap();
        std::fs::write(p.join("0--Parade/c.txt"), "c\n0\n").unwrap(); // c is in 1--Handshaking
        std::fs::write(p.join("README"), "not an event").unwrap();
        let sub = read_submission(p, &gt()).unwrap();
        let pair = |e: &str, i: &str| (e.to_string(), i.to_string());
        assert_eq!(
            sub.missing,
            vec![pair("0--Parade", "b"), pair("1--Handshaking", "c")]
        );
        assert_eq!(
            sub.unknown_files,
            vec![
                pair("0--Parade", "b.jpg.txt"),
                pair("0--Parade", "c.txt"),
                pair("0--Parade", "sub")
            ]
        );
        assert!(sub.unknown_events.is_empty());
        assert_eq!(sub.predictions.num_detections(), 1);
    }

    #[test]
    fn nan_scores_and_negative_sizes_in_files_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("0--Parade")).unwrap();
        for (text, line, want) in [
            (
                "a\n2\n1 2 3 4 0.9\n1 2 3 4 nan\n",
                4,
                "non-finite value NaN",
            ),
            ("a\n1\n1 2 3 -4 0.9\n", 3, "negative width or height"),
            ("a\n1\n1 2 3 4 0,9\n", 3, "bad number \"0,9\""),
        ] {
            std::fs::write(dir.path().join("0--Parade/a.txt"), text).unwrap();
            let e = read_submission(dir.path(), &gt()).unwrap_err().to_string();
            let at = format!("a.txt:{line}: ");
            assert!(e.contains(&at) && e.contains(want), "{text:?} -> {e}");
        }
    }

    #[test]
    fn bad_file_in_folder_is_an_error_and_bad_detections_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("0--Parade")).unwrap();
        std::fs::write(dir.path().join("0--Parade/b.txt"), "b\n1\n1 2 3\n").unwrap();
        let e = read_submission(dir.path(), &gt()).unwrap_err().to_string();
        assert!(
            e.ends_with("b.txt:3: expected `x y w h score`, found 3 fields"),
            "{e}"
        );
        let mut p = Predictions::new();
        let bad = [Detection {
            score: f32::NAN,
            ..Default::default()
        }];
        let e = p.insert("0--Parade", "a", &bad).unwrap_err().to_string();
        assert!(
            e.contains("0--Parade/a, #0") && e.contains("non-finite"),
            "{e}"
        );
        let e = read_submission(&dir.path().join("missing"), &gt())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
