//! The manifest of a checkpoint: every file with its size and SHA-256, written last.
//!
//! Sizes catch truncation cheaply; the hashes catch any other corruption (a flipped bit, a file
//! overwritten by something else). A checkpoint is valid when its `manifest.json` parses, lists the
//! step its directory is named after, and every listed file exists with the listed size and hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the manifest file in a checkpoint directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Layout version of checkpoints written by this crate.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// One file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// File name inside the checkpoint directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`CHECKPOINT_FORMAT`]).
    pub format: u32,
    /// The trainer step the checkpoint was taken after.
    pub step: u64,
    /// Seconds since the Unix epoch when it was written (informational).
    pub created_unix_secs: u64,
    /// Every file of the checkpoint except the manifest itself.
    pub files: Vec<ManifestEntry>,
}

impl Manifest {
    /// The entry for a file name.
    pub fn entry(&self, name: &str) -> Option<&ManifestEntry> {
        self.files.iter().find(|e| e.name == name)
    }
}

/// SHA-256 of `bytes` as lowercase hex.
///
/// ```
/// assert_eq!(
///     fm_train::checkpoint::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
