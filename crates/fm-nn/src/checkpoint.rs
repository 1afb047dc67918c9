//! Saving and loading models: a directory with `config.json` (serde JSON) and `model.safetensors`.
//!
//! Every file is written atomically — to a temporary file in the same directory, flushed to disk
//! (`fsync`), then renamed over the target — so an interrupted save leaves the previous files whole.
//! Loading checks the file against the model before reading any value and reports every mismatch at
//! once ([`WeightProblem`]): missing tensors, unexpected tensors, wrong shapes (both shapes) and
//! dtypes that are not floating point. `F16` and `BF16` files load into an `f32` model (widened
//! exactly), `F64` files are rounded to nearest.
//!
//! ```
//! use fm_nn::{Gpt, GptConfig};
//!
//! let dir = std::env::temp_dir().join(format!("fm-nn-doc-{}", std::process::id()));
//! let model = Gpt::<f32>::new(GptConfig::new(16, 8, 8, 1, 2), 3)?;
//! model.save(&dir)?;
//! let loaded = Gpt::<f32>::load(&dir)?;
//! assert_eq!(loaded.config(), model.config());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), fm_nn::NnError>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use fm_tensor::autograd::ParamStore;
use fm_tensor::safetensors::{save_safetensors, SafeTensorsFile};
use fm_tensor::{DType, Element};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{NnError, Result, WeightProblem};
use crate::module::ParamRef;

/// Name of the configuration file in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Name of the weights file in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Writes `params` (values from `store`) to a safetensors file, atomically, in the given order.
pub fn save_params<T: Element>(
    path: impl AsRef<Path>,
    params: &[ParamRef],
    store: &ParamStore<T>,
) -> Result<()> {
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    save_safetensors(
        path.as_ref(),
        params
            .iter()
            .map(|p| (p.name.as_str(), store.value(p.id).view())),
        Some(&metadata),
    )?;
    Ok(())
}

/// Every way the tensors of `file` disagree with `params` (empty when they match).
pub fn check_weights(file: &SafeTensorsFile, params: &[ParamRef]) -> Result<Vec<WeightProblem>> {
    let readable = [DType::F32, DType::F64, DType::F16, DType::BF16].map(DType::safetensors_name);
    let mut problems = Vec::new();
    for p in params {
        if !file.contains(&p.name) {
            problems.push(WeightProblem::Missing {
                name: p.name.clone(),
                expected_shape: p.shape.clone(),
            });
            continue;
        }
        let dtype = file.dtype(&p.name)?;
        if !readable.contains(&dtype) {
            problems.push(WeightProblem::WrongDtype {
                name: p.name.clone(),
                found: dtype.to_string(),
            });
        }
        let shape = file.shape(&p.name)?;
        if shape != p.shape.as_slice() {
            problems.push(WeightProblem::WrongShape {
                name: p.name.clone(),
                expected: p.shape.clone(),
                found: shape.to_vec(),
            });
        }
    }
    let expected: HashSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
    for name in file.names() {
        if !expected.contains(name) {
            problems.push(WeightProblem::Unexpected {
                name: name.to_string(),
                shape: file.shape(name)?.to_vec(),
            });
        }
    }
    Ok(problems)
}

/// Loads `params` from a safetensors file into `store`, after checking that the file holds exactly
/// these tensors with these shapes and floating-point dtypes ([`NnError::WeightMismatch`] lists
/// every problem otherwise; nothing is changed then).
pub fn load_params<T: Element>(
    path: impl AsRef<Path>,
    params: &[ParamRef],
    store: &mut ParamStore<T>,
) -> Result<()> {
    let path = path.as_ref();
    let file = SafeTensorsFile::open(path)?;
    let problems = check_weights(&file, params)?;
    if !problems.is_empty() {
        return Err(NnError::WeightMismatch {
            path: path.to_path_buf(),
            problems,
        });
    }
    for p in params {
        let value = file.tensor::<T>(&p.name)?;
        store.set_value(p.id, value)?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path`, atomically (temporary file, fsync, rename).
pub fn write_json_atomically(path: impl AsRef<Path>, value: &impl Serialize) -> Result<()> {
    let path = path.as_ref();
    let json = serde_json::to_vec_pretty(value).map_err(|source| NnError::ConfigJson {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomically(path, &json)
}

/// Reads a JSON config from `path`; a parse error names the line and column.
pub fn read_json<C: DeserializeOwned>(path: impl AsRef<Path>) -> Result<C> {
    let path = path.as_ref();
    let text = fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| NnError::ConfigJson {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| {
        NnError::InvalidArgument(format!("{} is not a file path", path.display()))
    })?;
    let temp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // The rename itself reaches the disk when the directory is synced (best effort: not every
        // platform can open a directory).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io_error)
}

/// Creates `dir` (and parents) if needed.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| NnError::Io {
        path: dir.to_path_buf(),
        source,
    })
}
