//! Checkpoints that survive crashes and say what is wrong when they are damaged.
//!
//! A [`CheckpointDir`] holds one subdirectory per saved step, `step-000120/`, containing
//!
//! | file | contents |
//! |---|---|
//! | `model.safetensors` | every parameter, bit for bit (safetensors, opens in Python) |
//! | `optimizer.safetensors` | fm-optim's state: moments, counters, schedule, hyper-parameters |
//! | `trainer.json` | [`TrainerState`]: step, seed, loader position, counters |
//! | `manifest.json` | every other file with its size and SHA-256, written last |
//!
//! **Writes are atomic.** A checkpoint is assembled in a hidden staging directory, each file written
//! to a temporary name, `fsync`ed and renamed; once all files and the manifest are in, the directory
//! is `fsync`ed and renamed to `step-NNNNNN`, and the parent directory is `fsync`ed. A crash at any
//! moment leaves either no `step-NNNNNN` or a complete one. After each save only the newest
//! `keep_last` checkpoints are kept (and any with a higher step than the one just saved, which belong
//! to an abandoned continuation of the run, are removed).
//!
//! **Reads verify.** [`CheckpointDir::load`] checks the manifest, then each file's size (truncation)
//! and SHA-256 (any other corruption) before parsing anything, and parsing itself never panics.
//! [`CheckpointDir::latest_valid`] walks back from the newest checkpoint to the first one that loads,
//! and reports what was wrong with each one it passed over.
//!
//! ```
//! use fm_optim::{NamedParam, Optimizer, Sgd, SgdConfig};
//! use fm_train::checkpoint::{CheckpointDir, TrainerState};
//! use fm_train::LoaderPosition;
//! use ndarray::array;
//!
//! let root = std::env::temp_dir().join(format!("fm-train-doc-ckpt-{}", std::process::id()));
//! let dir = CheckpointDir::new(&root, 2)?;
//! let w = array![1.0f32, 2.0].into_dyn();
//! let mut state = TrainerState::new(42, LoaderPosition::default());
//! for step in [10, 20, 30] {
//!     state.step = step;
//!     dir.save([("w", w.view())], None, &state)?;
//! }
//! assert_eq!(dir.steps()?, [20, 30]); // keep_last = 2
//!
//! // Damage the newest: the previous one is loaded, and the damage is reported.
//! let model = dir.step_path(30).join("model.safetensors");
//! let bytes = std::fs::read(&model).unwrap();
//! std::fs::write(&model, &bytes[..bytes.len() - 3]).unwrap();
//! let found = dir.latest_valid::<f32>()?.expect("step 20 is intact");
//! assert_eq!(found.checkpoint.state.step, 20);
//! assert!(found.rejected[0].reason.contains("truncated"));
//! # std::fs::remove_dir_all(&root).unwrap();
//! # Ok::<(), fm_train::TrainError>(())
//! ```

mod atomic;
mod manifest;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use fm_optim::OptimizerState;
use fm_tensor::{Element, ParamStore, SafeTensorsFile};
use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Result, TrainError};

pub use atomic::{sync_dir, write_file_atomic};
pub use manifest::{sha256_hex, Manifest, ManifestEntry, CHECKPOINT_FORMAT, MANIFEST_FILE};
pub use state::TrainerState;

/// File name of the model parameters in a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of the optimizer state in a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// File name of the trainer state in a checkpoint.
pub const TRAINER_FILE: &str = "trainer.json";

const STEP_PREFIX: &str = "step-";
const STAGING_MARK: &str = ".partial-";

/// Distinguishes staging directories of one process.
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory of checkpoints, one `step-NNNNNN/` subdirectory each.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
    keep_last: usize,
}

/// A loaded, verified checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint<T> {
    /// The checkpoint's directory.
    pub path: PathBuf,
    /// Model parameters by name, in the order they were saved.
    pub params: Vec<(String, ArrayD<T>)>,
    /// The optimizer's state, when one was saved.
    pub optimizer: Option<OptimizerState<T>>,
    /// The trainer's state.
    pub state: TrainerState,
}

/// A checkpoint that was passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointProblem {
    /// Its step.
    pub step: u64,
    /// Its directory.
    pub path: PathBuf,
    /// What was wrong (the file and the problem).
    pub reason: String,
}

impl fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {} ({}): {}",
            self.step,
            self.path.display(),
            self.reason
        )
    }
}

/// The newest checkpoint that loaded, and the newer ones that did not.
#[derive(Debug, Clone)]
pub struct ValidCheckpoint<T> {
    /// The checkpoint.
    pub checkpoint: Checkpoint<T>,
    /// Newer checkpoints that failed verification or parsing, newest first.
    pub rejected: Vec<CheckpointProblem>,
}

/// `(name, value)` views of every parameter in `store` (trainable or not), in store order: what
/// [`CheckpointDir::save`] takes.
pub fn store_params<T: Element>(store: &ParamStore<T>) -> Vec<(&str, ArrayViewD<'_, T>)> {
    store
        .iter()
        .map(|(_, p)| (p.name(), p.value().view()))
        .collect()
}

impl CheckpointDir {
    /// Opens (creating it if needed) a checkpoint directory keeping the newest `keep_last >= 1`
    /// checkpoints. Staging directories left by a crashed save are removed.
    pub fn new(root: impl Into<PathBuf>, keep_last: usize) -> Result<Self> {
        if keep_last == 0 {
            return Err(TrainError::config(
                "CheckpointDir",
                "keep_last",
                keep_last,
                "must be at least 1",
            ));
        }
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| TrainError::io(&root, e))?;
        let dir = CheckpointDir { root, keep_last };
        for entry in dir.entries()? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(STAGING_MARK) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
            }
        }
        Ok(dir)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many checkpoints are kept.
    pub fn keep_last(&self) -> usize {
        self.keep_last
    }

    /// The directory of step `step`'s checkpoint.
    pub fn step_path(&self, step: u64) -> PathBuf {
        self.root.join(format!("{STEP_PREFIX}{step:06}"))
    }

    fn entries(&self) -> Result<Vec<fs::DirEntry>> {
        let read = fs::read_dir(&self.root).map_err(|e| TrainError::io(&self.root, e))?;
        read.collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| TrainError::io(&self.root, e))
    }

    /// Steps that have a checkpoint directory, ascending (not verified: see
    /// [`latest_valid`](Self::latest_valid)).
    pub fn steps(&self) -> Result<Vec<u64>> {
        let mut steps: Vec<u64> = self
            .entries()?
            .iter()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name();
                let digits = name.to_str()?.strip_prefix(STEP_PREFIX)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()
            })
            .collect();
        steps.sort_unstable();
        steps.dedup();
        Ok(steps)
    }

    /// Saves a checkpoint for `state.step` and prunes old ones; returns its directory.
    ///
    /// `params` are the model's `(name, value)` pairs ([`store_params`] makes them from a
    /// `ParamStore`); `optimizer` is `optimizer.state()` when there is one. An existing checkpoint of
    /// the same step is replaced.
    pub fn save<'a, T, S, I>(
        &self,
        params: I,
        optimizer: Option<&OptimizerState<T>>,
        state: &TrainerState,
    ) -> Result<PathBuf>
    where
        T: Element + fm_optim::Scalar,
        S: AsRef<str>,
        I: IntoIterator<Item = (S, ArrayViewD<'a, T>)>,
    {
        let step = state.step;
        let final_path = self.step_path(step);
        let staging = self.root.join(format!(
            ".{STEP_PREFIX}{step:06}{STAGING_MARK}{}-{}",
            std::process::id(),
            STAGING_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&staging).map_err(|e| TrainError::io(&staging, e))?;
        let written = self.fill(&staging, params, optimizer, state);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        // Move any previous checkpoint of this step aside first: a directory cannot be renamed
        // over a non-empty one.
        let replaced = final_path.exists().then(|| {
            self.root.join(format!(
                ".{STEP_PREFIX}{step:06}.replaced{STAGING_MARK}{}",
                std::process::id()
            ))
        });
        if let Some(old) = &replaced {
            fs::rename(&final_path, old).map_err(|e| TrainError::io(&final_path, e))?;
        }
        fs::rename(&staging, &final_path).map_err(|e| TrainError::io(&final_path, e))?;
        sync_dir(&self.root)?;
        if let Some(old) = replaced {
            fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        self.prune(step)?;
        Ok(final_path)
    }

    /// Writes every file and then the manifest into the staging directory.
    fn fill<'a, T, S, I>(
        &self,
        staging: &Path,
        params: I,
        optimizer: Option<&OptimizerState<T>>,
        state: &TrainerState,
    ) -> Result<()>
    where
        T: Element + fm_optim::Scalar,
        S: AsRef<str>,
        I: IntoIterator<Item = (S, ArrayViewD<'a, T>)>,
    {
        let mut files: Vec<(&str, Vec<u8>)> = Vec::with_capacity(3);
        let model = fm_tensor::safetensors::save_safetensors_to_bytes(params, None)?;
        files.push((MODEL_FILE, model));
        if let Some(opt) = optimizer {
            files.push((OPTIMIZER_FILE, opt.to_bytes()?));
        }
        files.push((TRAINER_FILE, serde_json::to_vec_pretty(state)?));

        let mut entries = Vec::with_capacity(files.len());
        for (name, bytes) in &files {
            write_file_atomic(&staging.join(name), bytes)?;
            entries.push(ManifestEntry {
                name: name.to_string(),
                bytes: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            });
        }
        let manifest = Manifest {
            format: CHECKPOINT_FORMAT,
            step: state.step,
            created_unix_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            files: entries,
        };
        write_file_atomic(
            &staging.join(MANIFEST_FILE),
            &serde_json::to_vec_pretty(&manifest)?,
        )?;
        sync_dir(staging)
    }

    /// Keeps the newest `keep_last` checkpoints up to `saved` and removes any after it.
    fn prune(&self, saved: u64) -> Result<()> {
        let steps = self.steps()?;
        let up_to: Vec<u64> = steps.iter().copied().filter(|&s| s <= saved).collect();
        let old = up_to.len().saturating_sub(self.keep_last);
        let doomed = up_to[..old]
            .iter()
            .chain(steps.iter().filter(|&&s| s > saved));
        let mut removed = false;
        for &step in doomed {
            let path = self.step_path(step);
            fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Checks step `step`'s manifest and every file's size and SHA-256; returns the manifest and the
    /// verified contents by file name.
    pub fn verify(&self, step: u64) -> Result<(Manifest, HashMap<String, Vec<u8>>)> {
        let dir = self.step_path(step);
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest_bytes = fs::read(&manifest_path).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "missing (the checkpoint is incomplete)".to_string()
            } else {
                e.to_string()
            };
            TrainError::checkpoint(&manifest_path, why)
        })?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            TrainError::checkpoint(&manifest_path, format!("not a valid manifest: {e}"))
        })?;
        if manifest.format != CHECKPOINT_FORMAT {
            return Err(TrainError::checkpoint(
                &manifest_path,
                format!(
                    "layout version {} is not the supported {CHECKPOINT_FORMAT}",
                    manifest.format
                ),
            ));
        }
        if manifest.step != step {
            return Err(TrainError::checkpoint(
                &manifest_path,
                format!(
                    "lists step {}, but the directory is step {step}",
                    manifest.step
                ),
            ));
        }
        for required in [MODEL_FILE, TRAINER_FILE] {
            if manifest.entry(required).is_none() {
                return Err(TrainError::checkpoint(
                    &manifest_path,
                    format!("does not list {required}"),
                ));
            }
        }
        let mut contents = HashMap::with_capacity(manifest.files.len());
        for entry in &manifest.files {
            if entry.name.contains(['/', '\\']) || entry.name.starts_with('.') {
                return Err(TrainError::checkpoint(
                    &manifest_path,
                    format!("lists a file outside the checkpoint: {:?}", entry.name),
                ));
            }
            let path = dir.join(&entry.name);
            let bytes =
                fs::read(&path).map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
            if bytes.len() as u64 != entry.bytes {
                let how = if (bytes.len() as u64) < entry.bytes {
                    "truncated"
                } else {
                    "too long"
                };
                return Err(TrainError::checkpoint(
                    &path,
                    format!(
                        "{how}: {} bytes, the manifest says {}",
                        bytes.len(),
                        entry.bytes
                    ),
                ));
            }
            let sha = sha256_hex(&bytes);
            if sha != entry.sha256 {
                return Err(TrainError::checkpoint(
                    &path,
                    format!(
                        "corrupted: SHA-256 is {sha}, the manifest says {}",
                        entry.sha256
                    ),
                ));
            }
            contents.insert(entry.name.clone(), bytes);
        }
        Ok((manifest, contents))
    }

    /// Loads step `step`'s checkpoint after verifying it (see [`verify`](Self::verify)).
    pub fn load<T: Element + fm_optim::Scalar>(&self, step: u64) -> Result<Checkpoint<T>> {
        let dir = self.step_path(step);
        let (_, mut contents) = self.verify(step)?;
        let take = |contents: &mut HashMap<String, Vec<u8>>, name: &str| contents.remove(name);

        let model_path = dir.join(MODEL_FILE);
        let model_bytes = take(&mut contents, MODEL_FILE).expect("verify requires the model file");
        let params = read_params::<T>(&model_path, model_bytes)?;

        let optimizer = match take(&mut contents, OPTIMIZER_FILE) {
            Some(bytes) => Some(
                OptimizerState::<T>::from_bytes(bytes)
                    .map_err(|e| TrainError::checkpoint(dir.join(OPTIMIZER_FILE), e.to_string()))?,
            ),
            None => None,
        };

        let trainer_path = dir.join(TRAINER_FILE);
        let trainer_bytes =
            take(&mut contents, TRAINER_FILE).expect("verify requires the trainer file");
        let state: TrainerState = serde_json::from_slice(&trainer_bytes).map_err(|e| {
            TrainError::checkpoint(&trainer_path, format!("not a trainer state: {e}"))
        })?;
        if state.step != step {
            return Err(TrainError::checkpoint(
                &trainer_path,
                format!(
                    "holds step {}, but the directory is step {step}",
                    state.step
                ),
            ));
        }
        Ok(Checkpoint {
            path: dir,
            params,
            optimizer,
            state,
        })
    }

    /// The newest checkpoint that verifies and loads, with what was wrong with any newer ones;
    /// `None` when there is no checkpoint at all. Errors with [`TrainError::NoValidCheckpoint`]
    /// (listing every problem) when checkpoints exist but none loads.
    pub fn latest_valid<T: Element + fm_optim::Scalar>(
        &self,
    ) -> Result<Option<ValidCheckpoint<T>>> {
        let steps = self.steps()?;
        if steps.is_empty() {
            return Ok(None);
        }
        let mut rejected = Vec::new();
        for &step in steps.iter().rev() {
            match self.load::<T>(step) {
                Ok(checkpoint) => {
                    return Ok(Some(ValidCheckpoint {
                        checkpoint,
                        rejected,
                    }))
                }
                Err(e) => rejected.push(CheckpointProblem {
                    step,
                    path: self.step_path(step),
                    reason: e.to_string(),
                }),
            }
        }
        Err(TrainError::NoValidCheckpoint {
            dir: self.root.clone(),
            problems: rejected,
        })
    }
}

/// Parses verified model bytes, refusing dtype conversions (a resumed run must see the saved bits).
fn read_params<T: Element>(path: &Path, bytes: Vec<u8>) -> Result<Vec<(String, ArrayD<T>)>> {
    let bad = |e: fm_tensor::TensorError| TrainError::checkpoint(path, e.to_string());
    let file = SafeTensorsFile::from_bytes(bytes).map_err(bad)?;
    let expected = T::DTYPE.safetensors_name();
    let mut params = Vec::with_capacity(file.len());
    for name in file.names() {
        let dtype = file.dtype(name).map_err(bad)?;
        if dtype != expected {
            return Err(TrainError::checkpoint(
                path,
                format!("tensor {name:?} is {dtype}, the model is {expected}"),
            ));
        }
        params.push((name.to_string(), file.tensor::<T>(name).map_err(bad)?));
    }
    Ok(params)
}

impl<T: Element> Checkpoint<T> {
    /// Copies the saved parameters into `store`. Every parameter of the store must be in the
    /// checkpoint with its shape, and the checkpoint must hold no other; nothing is changed when
    /// they do not match.
    pub fn restore_params(&self, store: &mut ParamStore<T>) -> Result<()> {
        let mut plan = Vec::with_capacity(self.params.len());
        for (name, value) in &self.params {
            let id = store.id(name).ok_or_else(|| TrainError::ParamMismatch {
                name: name.clone(),
                reason: format!(
                    "in the checkpoint {} but not in the model",
                    self.path.display()
                ),
            })?;
            let have = store.value(id).shape();
            if have != value.shape() {
                return Err(TrainError::ParamMismatch {
                    name: name.clone(),
                    reason: format!(
                        "shape {:?} in the checkpoint, {:?} in the model",
                        value.shape(),
                        have
                    ),
                });
            }
            plan.push((id, value));
        }
        if plan.len() != store.len() {
            let saved: std::collections::HashSet<&str> =
                self.params.iter().map(|(n, _)| n.as_str()).collect();
            let missing = store
                .iter()
                .map(|(_, p)| p.name())
                .find(|n| !saved.contains(n))
                .unwrap_or("?");
            return Err(TrainError::ParamMismatch {
                name: missing.to_string(),
                reason: format!(
                    "in the model but not in the checkpoint {}",
                    self.path.display()
                ),
            });
        }
        for (id, value) in plan {
            store.set_value(id, value.clone())?;
        }
        Ok(())
    }
}
