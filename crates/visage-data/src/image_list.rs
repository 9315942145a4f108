//! Typed readers for WIDER FACE's plain image lists: the test split's
//! `wider_face_split/wider_face_test_filelist.txt` and RetinaFace's `val/wider_val.txt`.
//!
//! Both are one image path per line, relative to the split's `images/` folder, as
//! `<event>/<image>.<ext>` (e.g. `0--Parade/0_Parade_marchingband_1_737.jpg`); RetinaFace writes
//! a leading `/`, which is accepted and dropped. Blank lines and surrounding whitespace (CRLF
//! included) are ignored. Unlike the lenient [`crate::wider_txt::read_path_list`], these readers
//! check each line and fail with `file:line` on: more than one token, a path that is not exactly
//! `event/file`, an empty event or file name, a file name without an extension, `.` / `..`
//! components, or a path listed twice.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{write_text, DataError};
use crate::wider_txt::read_list_lines;

/// One image of a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageListEntry {
    /// The event folder, e.g. `0--Parade`.
    pub event: String,
    /// The file name with its extension, e.g. `0_Parade_marchingband_1_737.jpg`.
    pub file: String,
}

impl ImageListEntry {
    /// `event/file`, relative to the split's `images/` folder.
    pub fn path(&self) -> String {
        format!("{}/{}", self.event, self.file)
    }

    /// The file name without its extension (the name used by submissions and the `.mat`s).
    pub fn name(&self) -> &str {
        self.file
            .rsplit_once('.')
            .map_or(self.file.as_str(), |(stem, _)| stem)
    }

    /// Parses `event/file` (a leading `/` allowed); the error says what is wrong.
    pub fn parse(text: &str) -> Result<ImageListEntry, String> {
        let t = text.strip_prefix('/').unwrap_or(text);
        let Some((event, file)) = t.split_once('/') else {
            return Err(format!("expected `event/image.jpg`, found `{text}`"));
        };
        if file.contains('/') {
            return Err(format!(
                "expected `event/image.jpg` (two components), found `{text}`"
            ));
        }
        if event.is_empty() || file.is_empty() {
            return Err(format!("empty event or file name in `{text}`"));
        }
        if [event, file].iter().any(|c| *c == "." || *c == "..") {
            return Err(format!("`.` or `..` component in `{text}`"));
        }
        match file.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {}
            _ => return Err(format!("file name without an extension in `{text}`")),
        }
        Ok(ImageListEntry {
            event: event.to_string(),
            file: file.to_string(),
        })
    }
}

fn read_image_list(path: &Path) -> Result<Vec<ImageListEntry>, DataError> {
    let mut out = Vec::new();
    let mut seen: HashMap<ImageListEntry, usize> = HashMap::new();
    for (line, t) in read_list_lines(path)? {
        let entry = ImageListEntry::parse(&t).map_err(|m| DataError::parse(path, line, m))?;
        if let Some(first) = seen.insert(entry.clone(), line) {
            return Err(DataError::parse(
                path,
                line,
                format!("`{}` is already listed on line {first}", entry.path()),
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Reads `val/wider_val.txt` (RetinaFace's val image list), in file order.
pub fn read_val_image_list(path: &Path) -> Result<Vec<ImageListEntry>, DataError> {
    read_image_list(path)
}

/// Reads `wider_face_split/wider_face_test_filelist.txt`, in file order.
pub fn read_test_file_list(path: &Path) -> Result<Vec<ImageListEntry>, DataError> {
    read_image_list(path)
}

/// Writes an image list, one `event/file` per line (with a leading `/` when `leading_slash`,
/// as RetinaFace's `wider_val.txt`), creating parent directories.
pub fn write_image_list(
    path: &Path,
    entries: &[ImageListEntry],
    leading_slash: bool,
) -> Result<(), DataError> {
    let mut text = String::new();
    for e in entries {
        if leading_slash {
            text.push('/');
        }
        text.push_str(&e.path());
        text.push('\n');
    }
    write_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ImageListEntry> {
        [
            "0--Parade/0_Parade_marchingband_1_737.jpg",
            "0--Parade/0_Parade_Parade_0_194.jpg",
            "61--Street_Battle/61_Street_Battle_streetfight_61_1003.jpg",
            "9--Press_Conference/9_Press_Conference_Press_Conference_9_10.png",
        ]
        .iter()
        .map(|p| ImageListEntry::parse(p).unwrap())
        .collect()
    }

    #[test]
    fn round_trips_both_styles() {
        let dir = tempfile::tempdir().unwrap();
        for (slash, file, read) in [
            (
                true,
                "val/wider_val.txt",
                read_val_image_list as fn(&Path) -> _,
            ),
            (
                false,
                "wider_face_split/wider_face_test_filelist.txt",
                read_test_file_list,
            ),
        ] {
            let p = dir.path().join(file);
            write_image_list(&p, &entries(), slash).unwrap();
            let text = std::fs::read_to_string(&p).unwrap();
            assert_eq!(text.starts_with('/'), slash);
            assert_eq!(read(&p).unwrap(), entries());
        }
        let e = &entries()[0];
        assert_eq!(e.event, "0--Parade");
        assert_eq!(e.name(), "0_Parade_marchingband_1_737");
        assert_eq!(e.path(), "0--Parade/0_Parade_marchingband_1_737.jpg");
    }

    #[test]
    fn blank_lines_crlf_and_spaces_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("list.txt");
        std::fs::write(
            &p,
            "\r\n  /0--Parade/0_Parade_Parade_0_194.jpg  \r\n\n1--Handshaking/a.jpg\r\n",
        )
        .unwrap();
        let got = read_test_file_list(&p).unwrap();
        assert_eq!(
            got.iter().map(ImageListEntry::path).collect::<Vec<_>>(),
            [
                "0--Parade/0_Parade_Parade_0_194.jpg",
                "1--Handshaking/a.jpg"
            ]
        );
        std::fs::write(&p, "").unwrap();
        assert!(read_val_image_list(&p).unwrap().is_empty());
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wider_val.txt");
        for (body, line, what) in [
            (
                "0--Parade/a.jpg\n0--Parade/b.jpg 0--Parade/c.jpg\n",
                2,
                "one image path",
            ),
            ("\n\na.jpg\n", 3, "expected `event/image.jpg`"),
            ("0--Parade/x/a.jpg\n", 1, "two components"),
            ("0--Parade/\n", 1, "empty event or file name"),
            ("/ /a.jpg\n", 1, "one image path"),
            ("0--Parade/noext\n", 1, "without an extension"),
            ("0--Parade/.jpg\n", 1, "without an extension"),
            ("../a.jpg\n", 1, "`..` component"),
            (
                "0--Parade/a.jpg\n1--H/b.jpg\n/0--Parade/a.jpg\n",
                3,
                "already listed on line 1",
            ),
        ] {
            std::fs::write(&p, body).unwrap();
            let e = read_val_image_list(&p).unwrap_err().to_string();
            let at = format!("wider_val.txt:{line}: ");
            assert!(e.contains(&at) && e.contains(what), "{body:?}: {e}");
        }
        let e = read_test_file_list(&dir.path().join("none.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.txt"), "{e}");
    }

    #[test]
    fn reads_the_synthetic_val_list() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::synth::SynthConfig {
            train_images: 2,
            val_images: 3,
            min_side: 64,
            max_side: 96,
            max_faces: 2,
            ..crate::synth::SynthConfig::default()
        };
        crate::synth::generate(dir.path(), &cfg).unwrap();
        let list = read_val_image_list(&dir.path().join("val/wider_val.txt")).unwrap();
        assert_eq!(list.len(), 3);
        for e in &list {
            assert!(dir.path().join("WIDER_val/images").join(e.path()).is_file());
        }
    }
}
