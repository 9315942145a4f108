//! Expanding `visage detect`'s arguments (files and directories) into a list of images.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Extensions treated as images when walking directories (case-insensitive).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Files are taken as given (whatever their extension); directories are walked recursively
/// for `.jpg`, `.jpeg` and `.png` files, in sorted order. A path that does not exist is an
/// error naming it.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut images)?;
        } else if input.is_file() {
            images.push(input.clone());
        } else {
            bail!("{}: no such file or directory", input.display());
        }
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_directories_sorted_and_keeps_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b");
        std::fs::create_dir_all(&sub).unwrap();
        for name in ["z.JPG", "a.png", "notes.txt", "b/c.jpeg"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let single = dir.path().join("notes.txt");
        let found = collect_images(&[dir.path().to_path_buf(), single.clone()]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["a.png", "b/c.jpeg", "z.JPG", "notes.txt"]);
        let err = collect_images(&[dir.path().join("missing.jpg")]).unwrap_err();
        assert!(err.to_string().contains("missing.jpg"));
    }
}
