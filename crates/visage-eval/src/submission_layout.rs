//! Why a submission folder matched no ground-truth image ([`no_match_error`]): it counts the
//! `.txt` files under the folder and, from where one named after a ground-truth image lies,
//! says which folder the official layout `<dir>/<event>/<image>.txt` expected — one level
//! up or down, or the event folders missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{EvalError, GroundTruth};

/// Folder levels below the submission folder searched for `.txt` files.
pub(crate) const SEARCH_DEPTH: usize = 4;

/// The `.txt` files under `dir`, down to [`SEARCH_DEPTH`] levels, as paths relative to
/// `dir`, sorted. Unreadable sub-folders are passed over.
fn txt_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::new(), 1)];
    while let Some((rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let child = rel.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && depth < SEARCH_DEPTH {
                stack.push((child, depth + 1));
            } else if !is_dir && child.extension().is_some_and(|e| e == "txt") {
                out.push(child);
            }
        }
    }
    out.sort();
    out
}

/// The error of a submission in `dir` of which no file is the `<event>/<image>.txt` of an
/// image of `gt`: how many `.txt` files it holds, the layout expected (with the first
/// ground-truth image as example) and, when a file is named after a ground-truth image, where
/// the folder to pass would have been.
pub(crate) fn no_match_error(dir: &Path, gt: &GroundTruth) -> EvalError {
    let image_event: HashMap<&str, &str> = gt
        .events
        .iter()
        .flat_map(|e| e.images.iter().map(|i| (i.name.as_str(), e.name.as_str())))
        .collect();
    let example = gt
        .events
        .iter()
        .find_map(|e| e.images.first().map(|i| (e.name.as_str(), i.name.as_str())))
        .map_or_else(String::new, |(e, i)| {
            format!(", e.g. {}", dir.join(e).join(format!("{i}.txt")).display())
        });
    let files = txt_files(dir);
    let images = gt.num_images();
    let searched = format!("searched {SEARCH_DEPTH} folder levels down");
    let found = match files.len() {
        0 => format!(
            "the folder holds no .txt file ({searched}) for the ground truth's {images} images"
        ),
        n => format!(
            "{n} .txt file{} found ({searched}), none of them the prediction file of one of the \
             ground truth's {images} images",
            if n == 1 { "" } else { "s" }
        ),
    };
    let hint = files
        .iter()
        .find_map(|rel| {
            let stem = rel.file_stem()?.to_str()?;
            image_event.get(stem).map(|&event| hint(dir, rel, event))
        })
        .unwrap_or_else(|| {
            if files.is_empty() {
                String::new()
            } else {
                "; no file is named after an image of the ground truth (the submission of \
                 another split?)"
                    .into()
            }
        });
    EvalError::NoMatchingPredictions {
        path: dir.to_path_buf(),
        files: files.len(),
        detail: format!(
            "{found}; expected the official layout <event>/<image>.txt directly in this \
             folder{example}{hint}"
        ),
    }
}

/// Where `rel` (relative to `dir`, named after an image of `event`) says the submission is.
fn hint(dir: &Path, rel: &Path, event: &str) -> String {
    let parts: Vec<_> = rel.components().collect();
    let file = rel.file_name().unwrap_or_default().to_string_lossy();
    match parts.len() {
        1 => format!(
            "; {file} is directly in the folder, without its event folder: expected {}",
            dir.join(event).join(rel).display()
        ),
        n if parts[n - 2].as_os_str() == event => {
            let root: PathBuf = parts[..n - 2].iter().collect();
            let levels = n - 2;
            format!(
                "; {} is {levels} folder level{} too deep: pass {} instead",
                rel.display(),
                if levels == 1 { "" } else { "s" },
                dir.join(root).display()
            )
        }
        n => format!(
            "; {} is in folder {}, but the ground truth's image {} is in event {event}",
            rel.display(),
            parts[n - 2].as_os_str().to_string_lossy(),
            rel.file_stem().unwrap_or_default().to_string_lossy()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_submission, EventGt, ImageGt};

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
                    images: vec![img("0_Parade_1"), img("0_Parade_2")],
                },
                EventGt {
                    name: "1--Handshaking".into(),
                    images: vec![img("1_Hand_1")],
                },
            ],
        }
    }

    fn write(dir: &Path, rel: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x\n0\n").unwrap();
    }

    /// The error `read_submission` gives for the submission in `dir`.
    fn error(dir: &Path) -> String {
        match read_submission(dir, &gt()) {
            Err(e @ EvalError::NoMatchingPredictions { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_folder_says_so_and_shows_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let e = error(dir.path());
        assert!(
            e.contains("holds no .txt file")
                && e.contains("ground truth's 3 images")
                && e.contains("<event>/<image>.txt")
                && e.contains("0--Parade/0_Parade_1.txt"),
            "{e}"
        );
    }

    #[test]
    fn a_folder_too_high_names_the_folder_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "run/pred/0--Parade/0_Parade_1.txt");
        write(dir.path(), "run/pred/0--Parade/0_Parade_2.txt");
        let e = error(dir.path());
        let want = format!("pass {} instead", dir.path().join("run/pred").display());
        assert!(
            e.contains("2 .txt files found") && e.contains("2 folder levels too deep"),
            "{e}"
        );
        assert!(e.contains(&want), "{e}");
    }

    #[test]
    fn files_without_event_folders_or_in_the_wrong_event_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "1_Hand_1.txt");
        let e = error(dir.path());
        assert!(
            e.contains("1 .txt file found") && e.contains("without its event folder"),
            "{e}"
        );
        assert!(e.contains("1--Handshaking/1_Hand_1.txt"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0--Parade/1_Hand_1.txt");
        let e = error(dir.path());
        assert!(e.contains("is in event 1--Handshaking"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0--Parade/9_Other_1.txt");
        let e = error(dir.path());
        assert!(e.contains("another split"), "{e}");
    }

    #[test]
    fn one_matching_file_is_enough_and_an_empty_ground_truth_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0--Parade/0_Parade_2.txt");
        let sub = read_submission(dir.path(), &gt()).unwrap();
        assert_eq!((sub.predictions.num_images(), sub.missing.len()), (1, 2));
        let empty = GroundTruth { events: vec![] };
        assert!(read_submission(dir.path(), &empty).is_ok());
    }
}
