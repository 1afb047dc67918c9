//! Durable, all-or-nothing file and directory writes.
//!
//! A file is written to a temporary name in its directory, flushed to disk (`fsync`), renamed over
//! its final name, and the directory is flushed so the rename itself survives a power cut. A reader
//! therefore sees either the old file or the complete new one, never a torn write. Checkpoint
//! directories get the same treatment one level up: they are filled under a staging name and renamed
//! into place once complete (see [`super::CheckpointDir`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, TrainError};

/// Distinguishes temporary names of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically and durably (temporary file, fsync, rename, fsync directory).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        TrainError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "path does not name a file"),
        )
    })?;
    let dir = parent_dir(path);
    let (temp, mut file) = loop {
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let candidate = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => break (candidate, file),
            // Left by a crashed process whose pid was recycled: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TrainError::io(candidate, e)),
        }
    };
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(TrainError::io(path, e));
    }
    sync_dir(dir)
}

/// Flushes a directory's entries (new names, renames, removals) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // Opening a directory for fsync works on Unix; elsewhere the rename is as durable as it gets.
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| TrainError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory a path lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temporary_files() {
        let dir = std::env::temp_dir().join(format!("fm-train-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_file_atomic(&path, b"first").unwrap();
        write_file_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.txt"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let path = Path::new("/nonexistent-fm-train-dir/x.bin");
        let err = write_file_atomic(path, b"x").unwrap_err();
        assert!(
            err.to_string().contains("nonexistent-fm-train-dir"),
            "{err}"
        );
    }
}
