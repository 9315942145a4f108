//! The WIDER FACE layout of a data root: where each split's images, annotations and the
//! official ground truth lie, and the images a split lists.
//!
//! ```text
//! <root>/WIDER_{train,val,test}/images/<event>/<image>.jpg
//! <root>/wider_face_split/wider_face_{train,val}_bbx_gt.txt, wider_face_test_filelist.txt
//! <root>/eval_tools/ground_truth/wider_{face,easy,medium,hard}_val.mat
//! ```

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::wider_txt::{read_path_list, read_wider_txt};

/// A WIDER FACE split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `WIDER_train`.
    Train,
    /// `WIDER_val`.
    Val,
    /// `WIDER_test` (no public ground truth).
    Test,
}

impl Split {
    /// `train`, `val` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// `<root>/WIDER_<split>/images`.
pub fn images_dir(root: &Path, split: Split) -> PathBuf {
    root.join(format!("WIDER_{}", split.name())).join("images")
}

/// The annotation file of a split: `<root>/wider_face_split/wider_face_{train,val}_bbx_gt.txt`
/// for train / val, `<root>/wider_face_split/wider_face_test_filelist.txt` for test.
pub fn annotation_file(root: &Path, split: Split) -> PathBuf {
    let dir = root.join("wider_face_split");
    match split {
        Split::Test => dir.join("wider_face_test_filelist.txt"),
        other => dir.join(format!("wider_face_{}_bbx_gt.txt", other.name())),
    }
}

/// `<root>/eval_tools/ground_truth`.
pub fn ground_truth_dir(root: &Path) -> PathBuf {
    root.join("eval_tools").join("ground_truth")
}

/// One image of a split, as named by its annotation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitImage {
    /// The event folder (`0--Parade`), the part of the path before the first `/`; empty when
    /// the path has none.
    pub event: String,
    /// The image's file name without its `.jpg` suffix.
    pub name: String,
    /// The path relative to [`images_dir`].
    pub relative: String,
}

impl SplitImage {
    /// Splits a path relative to the images folder into event and name.
    fn from_relative(relative: String) -> SplitImage {
        let (event, file) = relative.split_once('/').unwrap_or(("", relative.as_str()));
        let name = file.strip_suffix(".jpg").unwrap_or(file).to_string();
        SplitImage {
            event: event.to_string(),
            name,
            relative,
        }
    }
}

/// Every image of `split`, in the order of its [`annotation_file`] (the file list for test,
/// the box file for train and val).
pub fn split_images(root: &Path, split: Split) -> Result<Vec<SplitImage>, DataError> {
    let file = annotation_file(root, split);
    let paths: Vec<String> = match split {
        Split::Test => read_path_list(&file)?,
        Split::Train | Split::Val => read_wider_txt(&file)?.into_iter().map(|a| a.path).collect(),
    };
    Ok(paths.into_iter().map(SplitImage::from_relative).collect())
}

#[cfg(test)]
mod tests {
    use visage_eval::FaceAttributes;

    use super::*;
    use crate::wider_txt::{write_path_list, write_wider_txt, FaceAnnotation, ImageAnnotation};

    fn image(event: &str, name: &str, relative: &str) -> SplitImage {
        SplitImage {
            event: event.into(),
            name: name.into(),
            relative: relative.into(),
        }
    }

    #[test]
    fn split_names_and_paths() {
        let root = Path::new("/data/wider");
        assert_eq!(
            [Split::Train, Split::Val, Split::Test].map(Split::name),
            ["train", "val", "test"]
        );
        assert_eq!(
            images_dir(root, Split::Train),
            Path::new("/data/wider/WIDER_train/images")
        );
        assert_eq!(
            images_dir(root, Split::Val),
            Path::new("/data/wider/WIDER_val/images")
        );
        assert_eq!(
            images_dir(root, Split::Test),
            Path::new("/data/wider/WIDER_test/images")
        );
        assert_eq!(
            annotation_file(root, Split::Train),
            Path::new("/data/wider/wider_face_split/wider_face_train_bbx_gt.txt")
        );
        assert_eq!(
            annotation_file(root, Split::Val),
            Path::new("/data/wider/wider_face_split/wider_face_val_bbx_gt.txt")
        );
        assert_eq!(
            annotation_file(root, Split::Test),
            Path::new("/data/wider/wider_face_split/wider_face_test_filelist.txt")
        );
        assert_eq!(
            ground_truth_dir(root),
            Path::new("/data/wider/eval_tools/ground_truth")
        );
    }

    #[test]
    fn split_images_of_val_and_test() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let face = FaceAnnotation {
            bbox: [1.0, 2.0, 10.0, 12.0],
            attributes: FaceAttributes::default(),
            landmarks: None,
        };
        let val = vec![
            ImageAnnotation {
                path: "0--Parade/0_Parade_1.jpg".into(),
                faces: vec![face.clone()],
            },
            ImageAnnotation {
                path: "1--Handshaking/b.png".into(),
                faces: vec![],
            },
            ImageAnnotation {
                path: "loose.jpg".into(),
                faces: vec![face],
            },
        ];
        write_wider_txt(&annotation_file(root, Split::Val), &val).unwrap();
        assert_eq!(
            split_images(root, Split::Val).unwrap(),
            vec![
                image("0--Parade", "0_Parade_1", "0--Parade/0_Parade_1.jpg"),
                image("1--Handshaking", "b.png", "1--Handshaking/b.png"),
                image("", "loose", "loose.jpg"),
            ]
        );
        let test = vec!["2--Demo/x/y.jpg".to_string(), "top.jpg".to_string()];
        write_path_list(&annotation_file(root, Split::Test), &test).unwrap();
        assert_eq!(
            split_images(root, Split::Test).unwrap(),
            vec![
                image("2--Demo", "x/y", "2--Demo/x/y.jpg"),
                image("", "top", "top.jpg"),
            ]
        );
        // The train split has no file here: the error names it.
        let e = split_images(root, Split::Train).unwrap_err().to_string();
        assert!(e.contains("wider_face_train_bbx_gt.txt"), "{e}");
    }
}
