//! The files of a checkpoint on disk: a [`StagedDir`] written under a temporary name (removed
//! again if anything fails), each file synced and checksummed as it is written, and the
//! `checksums.sha256` list (`sha256sum -c` format) that [`verify_files`] checks on load.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::checkpoint_error;
use crate::error::{io, write_error, TrainError};

/// The checksum list of a checkpoint directory.
pub const CHECKSUMS: &str = "checksums.sha256";

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        write!(hex, "{byte:02x}").expect("writing to a String");
    }
    hex
}

/// A checkpoint directory being written under a temporary name: files go in with
/// [`write`](Self::write), [`finish`](Self::finish) writes the checksum list last. Dropped
/// unfinished (an error on the way), the directory is removed, so a failed write (a full
/// disk) leaves nothing behind.
#[derive(Debug)]
pub struct StagedDir {
    path: PathBuf,
    sums: Vec<(String, String)>,
    finished: bool,
}

impl StagedDir {
    /// Creates `path` empty (a stale one from an interrupted write is removed first).
    pub fn create(path: PathBuf) -> Result<Self, TrainError> {
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
        std::fs::create_dir_all(&path).map_err(write_error(&path))?;
        Ok(Self {
            path,
            sums: Vec::new(),
            finished: false,
        })
    }

    /// Writes `name` with `bytes`, synced to the disk, and records its checksum.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let path = self.path.join(name);
        write_synced(&path, bytes)?;
        self.sums.push((sha256_hex(bytes), name.to_string()));
        Ok(())
    }

    /// Writes the checksum list and syncs the directory; returns its path.
    pub fn finish(mut self) -> Result<PathBuf, TrainError> {
        let mut list = String::new();
        for (sum, name) in &self.sums {
            writeln!(list, "{sum}  {name}").expect("writing to a String");
        }
        write_synced(&self.path.join(CHECKSUMS), list.as_bytes())?;
        sync_dir(&self.path)?;
        self.finished = true;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes `bytes` to `path` and syncs it; a full disk is said in words.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut file = std::fs::File::create(path).map_err(write_error(path))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(write_error(path))
}

/// Syncs a directory's entries (its renames and new files) to the disk.
pub fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error(dir))
}

/// Checks `names` in the checkpoint `dir` against its checksum list. A directory without a
/// list (written before checksums existed) passes; a listed file that is missing or differs,
/// or a name the list does not hold, is an error naming the file.
pub fn verify_files(dir: &Path, names: &[&str]) -> Result<(), TrainError> {
    let list_path = dir.join(CHECKSUMS);
    let text = match std::fs::read_to_string(&list_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&list_path)(e)),
    };
    let mut sums = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parsed = line
            .split_once("  ")
            .filter(|(sum, name)| sum.len() == 64 && !name.is_empty());
        let Some((sum, name)) = parsed else {
            return Err(checkpoint_error(
                &list_path,
                format!("line {}: expected `<sha256>  <file name>`", n + 1),
            ));
        };
        sums.push((sum, name));
    }
    for name in names {
        let path = dir.join(name);
        let Some((want, _)) = sums.iter().find(|(_, n)| n == name) else {
            return Err(checkpoint_error(
                &list_path,
                format!("lists no checksum of {name}"),
            ));
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(checkpoint_error(
                    &path,
                    "missing (listed in checksums.sha256)",
                ))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        if sha256_hex(&bytes) != *want {
            return Err(checkpoint_error(
                &path,
                "does not match its checksum in checksums.sha256: the file is corrupt or was \
                 changed after it was written",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_dir_verifies_and_a_changed_byte_is_named() {
        let root = tempfile::tempdir().unwrap();
        let mut staged = StagedDir::create(root.path().join("c.tmp")).unwrap();
        staged.write("a.bin", &[1u8; 1000]).unwrap();
        staged.write("b.txt", b"hello").unwrap();
        let dir = staged.finish().unwrap();
        verify_files(&dir, &["a.bin", "b.txt"]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(CHECKSUMS)).unwrap(),
            format!(
                "{}  a.bin\n{}  b.txt\n",
                sha256_hex(&[1u8; 1000]),
                sha256_hex(b"hello")
            )
        );
        // 400 bytes overwritten with 0xFF in the middle of a file.
        let mut bytes = std::fs::read(dir.join("a.bin")).unwrap();
        bytes[300..700].fill(0xFF);
        std::fs::write(dir.join("a.bin"), bytes).unwrap();
        verify_files(&dir, &["b.txt"]).unwrap();
        let err = verify_files(&dir, &["a.bin"]).unwrap_err().to_string();
        assert!(err.contains("a.bin") && err.contains("corrupt"), "{err}");
        let err = verify_files(&dir, &["c.bin"]).unwrap_err().to_string();
        assert!(err.contains("no checksum of c.bin"), "{err}");
        std::fs::remove_file(dir.join("b.txt")).unwrap();
        let err = verify_files(&dir, &["b.txt"]).unwrap_err().to_string();
        assert!(err.contains("b.txt: missing"), "{err}");
        std::fs::write(dir.join(CHECKSUMS), "garbage\n").unwrap();
        let err = verify_files(&dir, &["a.bin"]).unwrap_err().to_string();
        assert!(err.contains("checksums.sha256: line 1"), "{err}");
        // Without a list (an older checkpoint) nothing is checked.
        std::fs::remove_file(dir.join(CHECKSUMS)).unwrap();
        verify_files(&dir, &["a.bin"]).unwrap();
    }

    #[test]
    fn an_unfinished_dir_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("c.tmp");
        {
            let mut staged = StagedDir::create(path.clone()).unwrap();
            staged.write("a.bin", b"x").unwrap();
        }
        assert!(!path.exists());
    }
}
