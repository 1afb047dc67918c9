//! Named tensors in the [safetensors] format: the weights files of the Hugging Face ecosystem.
//!
//! A safetensors file is an 8-byte little-endian header length `n`, a JSON header of `n` bytes naming
//! each tensor's dtype, shape and byte range (plus an optional `"__metadata__"` map of strings), and
//! the tensors' row-major little-endian bytes, back to back.
//!
//! - Write with [`save_safetensors`] (to a file, atomically) or [`save_safetensors_to_bytes`]; `f32` and
//!   `f64` arrays of any layout are written row-major, in the order given.
//! - Read everything with [`load_safetensors`] / [`load_safetensors_from_bytes`], or open a
//!   [`SafeTensorsFile`] to list names, dtypes and shapes and read tensors one at a time.
//!   `F32`, `F64`, `F16` and `BF16` tensors convert to the requested `f32` or `f64` (half precision is
//!   widened exactly, `F64` read as `f32` is rounded to nearest); other dtypes are reported as
//!   [`TensorError::UnsupportedDtype`].
//!
//! ```
//! use fm_tensor::safetensors::{load_safetensors_from_bytes, save_safetensors_to_bytes};
//! use ndarray::array;
//!
//! let w = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let b = array![0.5f32, -0.5];
//! let bytes = save_safetensors_to_bytes([("w", w.view().into_dyn()), ("b", b.view().into_dyn())], None)?;
//! let loaded = load_safetensors_from_bytes::<f32>(&bytes)?;
//! assert_eq!(loaded[0].0, "w");
//! assert_eq!(loaded[0].1, w.into_dyn());
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```
//!
//! # Untrusted files
//!
//! A file is validated completely when it is opened, before any tensor is read: the header length
//! against the real file length (and a 100 MB cap, as in the reference implementation), UTF-8 and JSON,
//! unique names, known dtypes, shapes whose sizes do not overflow, and byte ranges that match
//! shape × dtype and tile the data section exactly (no gap, no overlap, nothing past the end or left
//! over). Every failure is a [`TensorError::MalformedFile`] naming the file (`<memory>` for bytes) and
//! the problem; nothing panics, and no buffer is sized by a header field before that field has been
//! checked against the file's real length.
//!
//! # Why the framing is written here
//!
//! The format types (`Dtype`, `TensorInfo`) come from Hugging Face's `safetensors` crate, and the
//! tests check our files against its reader and its files against ours. The framing itself is done
//! here because the crate falls short of this module's guarantees: its header parser keeps the last of
//! duplicate names silently, it reads only from one in-memory buffer of the whole file (we read a
//! file's tensors straight from disk, so loading does not hold the file and the tensors in memory at
//! once), its shape-versus-offsets error does not say which tensor is wrong, its file writer does not fsync before
//! renaming, and it writes metadata in hash order (we write sorted keys, so the same tensors give the
//! same bytes).
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ::safetensors::tensor::TensorInfo;
use ::safetensors::Dtype as FileDtype;
use ndarray::{ArrayD, ArrayView, Dimension, IxDyn};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::element::{DType, Element};
use crate::error::{Result, TensorError};

/// Largest header accepted or written, as in the reference implementation (and Python's loader).
const MAX_HEADER_LEN: u64 = 100_000_000;

/// Bytes of the header-length prefix.
const PREFIX_LEN: u64 = 8;

/// The header key that holds the string-to-string metadata rather than a tensor.
const METADATA_KEY: &str = "__metadata__";

/// The name errors use for in-memory buffers.
const MEMORY_LABEL: &str = "<memory>";

/// Size of the staging buffer for reading and writing tensor bytes: large enough that syscalls are
/// rare, small enough to stay in L2, and a multiple of every element size.
const CHUNK_BYTES: usize = 1 << 16;

/// One tensor of a validated header.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    dtype: FileDtype,
    dtype_name: String,
    shape: Vec<usize>,
    /// Byte range within the data section (after the header).
    start: u64,
    end: u64,
}

/// A validated header: entries in file order (by offset) and an index by name.
#[derive(Debug, Clone)]
struct Header {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    metadata: Option<HashMap<String, String>>,
    /// Offset of the data section from the start of the file.
    data_start: u64,
}

enum Source {
    File(Mutex<File>),
    Memory(Vec<u8>),
}

/// An opened safetensors file (or buffer): its validated header, and tensors read on demand.
///
/// Opening reads and checks only the header; [`tensor`](Self::tensor) reads one tensor's bytes from
/// the file, so peak memory while loading a model is the tensors plus a 64 KiB buffer. The handle is
/// `Send + Sync`; reads from several threads take turns on the file.
///
/// ```
/// use fm_tensor::safetensors::{save_safetensors_to_bytes, SafeTensorsFile};
/// use ndarray::ArrayD;
///
/// let w = ArrayD::<f64>::ones(ndarray::IxDyn(&[2, 3]));
/// let bytes = save_safetensors_to_bytes([("layer.weight", w.view())], None)?;
/// let file = SafeTensorsFile::from_bytes(bytes)?;
/// assert_eq!(file.names().collect::<Vec<_>>(), ["layer.weight"]);
/// assert_eq!(file.dtype("layer.weight")?, "F64");
/// assert_eq!(file.shape("layer.weight")?, &[2, 3]);
/// let as_f32 = file.tensor::<f32>("layer.weight")?;
/// assert!(as_f32.iter().all(|&x| x == 1.0));
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub struct SafeTensorsFile {
    path: PathBuf,
    header: Header,
    source: Source,
}

impl fmt::Debug for SafeTensorsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafeTensorsFile")
            .field("path", &self.path)
            .field("tensors", &self.header.entries.len())
            .finish_non_exhaustive()
    }
}

impl SafeTensorsFile {
    /// Opens a file and validates its header (see the module docs for what is checked).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io_error = |source| TensorError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        let header = read_header_from_file(&path, &mut file, file_len)?;
        Ok(SafeTensorsFile {
            path,
            header,
            source: Source::File(Mutex::new(file)),
        })
    }

    /// Validates an in-memory safetensors buffer and keeps it; errors name the file `<memory>`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let path = PathBuf::from(MEMORY_LABEL);
        let header = read_header_from_bytes(&path, &bytes)?;
        Ok(SafeTensorsFile {
            path,
            header,
            source: Source::Memory(bytes),
        })
    }

    /// The file this handle reads (`<memory>` for one made from bytes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, in the order their data appears in the file.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.header.entries.iter().map(|e| e.name.as_str())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.header.entries.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.header.entries.is_empty()
    }

    /// Whether a tensor of this name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.header.index.contains_key(name)
    }

    /// The stored dtype of a tensor, as safetensors names it (`"F32"`, `"BF16"`, `"I64"`, ...).
    ///
    /// Tensors stored as `F32`, `F64`, `F16` or `BF16` (see [`DType::safetensors_name`]) can be read.
    pub fn dtype(&self, name: &str) -> Result<&str> {
        Ok(&self.entry(name)?.dtype_name)
    }

    /// The shape of a tensor (empty for a 0-d tensor).
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.entry(name)?.shape)
    }

    /// The `"__metadata__"` map of the header, if the file has one.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.header.metadata.as_ref()
    }

    /// Reads one tensor, converted to `T`.
    ///
    /// Errors: [`TensorError::MissingTensor`] for an unknown name, [`TensorError::UnsupportedDtype`] for
    /// a dtype other than `F32`, `F64`, `F16`, `BF16`, and [`TensorError::Io`] if the file cannot be read
    /// (for instance because it was truncated after opening).
    pub fn tensor<T: Element>(&self, name: &str) -> Result<ArrayD<T>> {
        let entry = self.entry(name)?;
        match &self.source {
            Source::Memory(bytes) => decode_from_bytes(&self.path, &self.header, entry, bytes),
            Source::File(file) => {
                // A poisoned lock only means another read panicked; every read seeks first, so the
                // file is still usable.
                let mut file = file.lock().unwrap_or_else(|poison| poison.into_inner());
                decode_from_file(&self.path, &self.header, entry, &mut file)
            }
        }
    }

    /// Reads every tensor, converted to `T`, in file order.
    pub fn tensors<T: Element>(&self) -> Result<Vec<(String, ArrayD<T>)>> {
        self.names()
            .map(|name| Ok((name.to_string(), self.tensor(name)?)))
            .collect()
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        match self.header.index.get(name) {
            Some(&i) => Ok(&self.header.entries[i]),
            None => Err(TensorError::MissingTensor {
                name: name.to_string(),
                detail: format!("in {}", self.path.display()),
            }),
        }
    }
}

/// Reads every tensor of a safetensors file as `T`, in file order.
///
/// Shorthand for [`SafeTensorsFile::open`] then [`SafeTensorsFile::tensors`].
pub fn load_safetensors<T: Element>(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<T>)>> {
    SafeTensorsFile::open(path)?.tensors()
}

/// Reads every tensor of an in-memory safetensors buffer as `T`, in file order, without copying the
/// buffer.
pub fn load_safetensors_from_bytes<T: Element>(bytes: &[u8]) -> Result<Vec<(String, ArrayD<T>)>> {
    let path = PathBuf::from(MEMORY_LABEL);
    let header = read_header_from_bytes(&path, bytes)?;
    header
        .entries
        .iter()
        .map(|entry| {
            Ok((
                entry.name.clone(),
                decode_from_bytes(&path, &header, entry, bytes)?,
            ))
        })
        .collect()
}

/// Writes named tensors to a safetensors file, atomically.
///
/// The bytes go to a temporary file in the same directory, which is flushed to disk (`fsync`) and then
/// renamed over `path`: a failed or interrupted save leaves any existing file at `path` as it was.
/// Tensors are stored as `T` (`F32` or `F64`), row-major whatever their memory layout, in the order
/// given; metadata keys are written sorted, so equal inputs give byte-identical files.
///
/// Errors: duplicate names or the reserved name `"__metadata__"` ([`TensorError::InvalidArgument`]),
/// a header over 100 MB, and I/O failures ([`TensorError::Io`] naming `path`).
///
/// ```no_run
/// use fm_tensor::safetensors::save_safetensors;
/// use std::collections::HashMap;
///
/// let w = ndarray::Array2::<f32>::zeros((4, 8));
/// let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
/// save_safetensors("model.safetensors", [("w", w.t())], Some(&meta))?;
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn save_safetensors<'a, T, S, D, I>(
    path: impl AsRef<Path>,
    tensors: I,
    metadata: Option<&HashMap<String, String>>,
) -> Result<()>
where
    T: Element,
    S: AsRef<str>,
    D: Dimension,
    I: IntoIterator<Item = (S, ArrayView<'a, T, D>)>,
{
    let tensors: Vec<_> = tensors.into_iter().collect();
    let header = encode_header("save_safetensors", &tensors, metadata)?;
    write_atomically(path.as_ref(), |out| write_all(out, &header, &tensors))
}

/// Serialises named tensors to safetensors bytes, exactly as [`save_safetensors`] would write them.
pub fn save_safetensors_to_bytes<'a, T, S, D, I>(
    tensors: I,
    metadata: Option<&HashMap<String, String>>,
) -> Result<Vec<u8>>
where
    T: Element,
    S: AsRef<str>,
    D: Dimension,
    I: IntoIterator<Item = (S, ArrayView<'a, T, D>)>,
{
    let tensors: Vec<_> = tensors.into_iter().collect();
    let header = encode_header("save_safetensors_to_bytes", &tensors, metadata)?;
    let data_len: usize = tensors.iter().map(|(_, t)| t.len() * size_of::<T>()).sum();
    let mut out = Vec::with_capacity(PREFIX_LEN as usize + header.len() + data_len);
    write_all(&mut out, &header, &tensors).map_err(|source| TensorError::Io {
        path: MEMORY_LABEL.into(),
        source,
    })?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Reading

fn malformed(path: &Path, reason: impl Into<String>) -> TensorError {
    TensorError::MalformedFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Checks the header-length prefix against the real length of the file; returns the header length.
fn check_header_len(path: &Path, prefix: [u8; 8], file_len: u64) -> Result<u64> {
    let n = u64::from_le_bytes(prefix);
    let available = file_len - PREFIX_LEN;
    if n > available {
        return Err(malformed(
            path,
            format!("header length {n} runs past the end of the file ({file_len} bytes, {available} after the length)"),
        ));
    }
    if n > MAX_HEADER_LEN {
        return Err(malformed(
            path,
            format!("header length {n} exceeds the limit of {MAX_HEADER_LEN} bytes"),
        ));
    }
    Ok(n)
}

fn too_short(path: &Path, file_len: u64) -> TensorError {
    malformed(
        path,
        format!("file is {file_len} bytes long, shorter than the 8-byte header length"),
    )
}

fn read_header_from_bytes(path: &Path, bytes: &[u8]) -> Result<Header> {
    let file_len = bytes.len() as u64;
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Err(too_short(path, file_len));
    };
    let n = check_header_len(path, *prefix, file_len)?;
    // In range: `n <= len - 8` was just checked.
    let header_bytes = &bytes[PREFIX_LEN as usize..(PREFIX_LEN + n) as usize];
    parse_header(path, header_bytes, file_len)
}

fn read_header_from_file(path: &Path, file: &mut File, file_len: u64) -> Result<Header> {
    if file_len < PREFIX_LEN {
        return Err(too_short(path, file_len));
    }
    let io_error = |source| TensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(io_error)?;
    let n = check_header_len(path, prefix, file_len)?;
    // Sized by `n`, which is now known to be at most the file's real length (and 100 MB).
    let mut header_bytes = vec![0u8; n as usize];
    file.read_exact(&mut header_bytes).map_err(io_error)?;
    parse_header(path, &header_bytes, file_len)
}

/// Parses and validates the JSON header of a file of `file_len` bytes.
fn parse_header(path: &Path, header_bytes: &[u8], file_len: u64) -> Result<Header> {
    let text = std::str::from_utf8(header_bytes)
        .map_err(|e| malformed(path, format!("header is not valid UTF-8: {e}")))?;
    let raw: RawHeader =
        serde_json::from_str(text).map_err(|e| malformed(path, format!("invalid header: {e}")))?;
    let data_start = PREFIX_LEN + header_bytes.len() as u64;
    validate(path, raw, data_start, file_len - data_start)
}

/// The header as parsed, before validation: names are unique, values not yet checked.
struct RawHeader {
    metadata: Option<Vec<(String, String)>>,
    tensors: Vec<(String, serde_json::Value)>,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(RawHeaderVisitor)
    }
}

/// Reads the top-level object, rejecting duplicate keys (serde maps would keep the last silently).
struct RawHeaderVisitor;

impl<'de> Visitor<'de> for RawHeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping tensor names to their dtype, shape and data_offsets")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawHeader, A::Error> {
        let mut seen = HashSet::new();
        let mut header = RawHeader {
            metadata: None,
            tensors: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate entry {key:?}")));
            }
            if key == METADATA_KEY {
                header.metadata = Some(map.next_value::<UniqueStringMap>()?.0);
            } else {
                header.tensors.push((key, map.next_value()?));
            }
        }
        Ok(header)
    }
}

/// A JSON object of strings, in file order, rejecting duplicate keys.
struct UniqueStringMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for UniqueStringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct StringMapVisitor;
        impl<'de> Visitor<'de> for StringMapVisitor {
            type Value = UniqueStringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("__metadata__ as a JSON object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<UniqueStringMap, A::Error> {
                let mut seen = HashSet::new();
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!(
                            "duplicate __metadata__ key {key:?}"
                        )));
                    }
                    entries.push((key, value));
                }
                Ok(UniqueStringMap(entries))
            }
        }
        deserializer.deserialize_map(StringMapVisitor)
    }
}

/// Checks every tensor's dtype, shape and byte range, and that the ranges tile the data section.
fn validate(path: &Path, raw: RawHeader, data_start: u64, data_len: u64) -> Result<Header> {
    let mut entries = Vec::with_capacity(raw.tensors.len());
    for (name, value) in raw.tensors {
        let info: TensorInfo = serde_json::from_value(value)
            .map_err(|e| malformed(path, format!("tensor {name:?}: invalid entry: {e}")))?;
        let (start, end) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        let expected = byte_size(&info.shape, info.dtype).map_err(|reason| {
            malformed(
                path,
                format!("tensor {name:?}: {} {:?}: {reason}", info.dtype, info.shape),
            )
        })?;
        if end < start {
            return Err(malformed(
                path,
                format!("tensor {name:?}: data_offsets [{start}, {end}] end before they start"),
            ));
        }
        if end > data_len {
            return Err(malformed(
                path,
                format!(
                    "tensor {name:?}: data_offsets [{start}, {end}] run past the end of the data section ({data_len} bytes)"
                ),
            ));
        }
        if end - start != expected {
            return Err(malformed(
                path,
                format!(
                    "tensor {name:?}: data_offsets [{start}, {end}] span {} bytes but {} {:?} takes {expected}",
                    end - start,
                    info.dtype,
                    info.shape
                ),
            ));
        }
        let dtype_name = info.dtype.to_string();
        entries.push(Entry {
            name,
            dtype: info.dtype,
            dtype_name,
            shape: info.shape,
            start,
            end,
        });
    }

    entries.sort_by_key(|e| (e.start, e.end));
    let mut covered = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let after = if i == 0 {
            "the start of the data".to_string()
        } else {
            format!("tensor {:?}", entries[i - 1].name)
        };
        if e.start < covered {
            return Err(malformed(
                path,
                format!(
                    "tensor {:?} (bytes {}..{}) overlaps {after}, which ends at byte {covered}",
                    e.name, e.start, e.end
                ),
            ));
        }
        if e.start > covered {
            return Err(malformed(
                path,
                format!(
                    "gap of {} bytes between {after} and tensor {:?}",
                    e.start - covered,
                    e.name
                ),
            ));
        }
        covered = e.end;
    }
    if covered != data_len {
        return Err(malformed(
            path,
            format!("{} bytes after the last tensor belong to no tensor (data section is {data_len} bytes)", data_len - covered),
        ));
    }

    let index = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let metadata = raw.metadata.map(|pairs| pairs.into_iter().collect());
    Ok(Header {
        entries,
        index,
        metadata,
        data_start,
    })
}

/// Bytes taken by a tensor, or why the shape cannot be stored.
fn byte_size(shape: &[usize], dtype: FileDtype) -> std::result::Result<u64, &'static str> {
    // ndarray needs the product of the non-zero lengths to fit in isize, even for an empty array.
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let elements = match nonzero {
        Some(n) if n <= isize::MAX as usize => {
            if shape.contains(&0) {
                0
            } else {
                n
            }
        }
        _ => return Err("shape has too many elements (the product overflows)"),
    };
    let bits = (elements as u64)
        .checked_mul(dtype.bitsize() as u64)
        .ok_or("size in bytes overflows")?;
    if bits % 8 != 0 {
        return Err("elements do not fill a whole number of bytes");
    }
    Ok(bits / 8)
}

/// The element type a stored dtype decodes from, if this crate reads it.
fn readable(dtype: FileDtype) -> Option<DType> {
    match dtype {
        FileDtype::F32 => Some(DType::F32),
        FileDtype::F64 => Some(DType::F64),
        FileDtype::F16 => Some(DType::F16),
        FileDtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}

fn check_readable(path: &Path, entry: &Entry) -> Result<DType> {
    readable(entry.dtype).ok_or_else(|| TensorError::UnsupportedDtype {
        path: path.to_path_buf(),
        name: entry.name.clone(),
        dtype: entry.dtype_name.clone(),
    })
}

/// Appends the little-endian values in `bytes` (a whole number of elements) to `out`, as `T`.
fn decode_into<T: Element>(dtype: DType, bytes: &[u8], out: &mut Vec<T>) {
    match dtype {
        DType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| T::from_f64_lossy(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)),
        ),
        DType::F64 => out.extend(bytes.chunks_exact(8).map(|c| {
            T::from_f64_lossy(f64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]))
        })),
        DType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| T::from_f64_lossy(half::f16::from_le_bytes([c[0], c[1]]).to_f64())),
        ),
        DType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| T::from_f64_lossy(half::bf16::from_le_bytes([c[0], c[1]]).to_f64())),
        ),
    }
}

fn into_array<T: Element>(path: &Path, entry: &Entry, values: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(&entry.shape), values).map_err(|e| {
        malformed(
            path,
            format!(
                "tensor {:?}: cannot form shape {:?}: {e}",
                entry.name, entry.shape
            ),
        )
    })
}

fn decode_from_bytes<T: Element>(
    path: &Path,
    header: &Header,
    entry: &Entry,
    bytes: &[u8],
) -> Result<ArrayD<T>> {
    let dtype = check_readable(path, entry)?;
    // In range: validation checked `end <= data_len` against this very buffer.
    let start = (header.data_start + entry.start) as usize;
    let end = (header.data_start + entry.end) as usize;
    let data = &bytes[start..end];
    let mut values = Vec::with_capacity(data.len() / dtype.size_in_bytes());
    decode_into(dtype, data, &mut values);
    into_array(path, entry, values)
}

fn decode_from_file<T: Element>(
    path: &Path,
    header: &Header,
    entry: &Entry,
    file: &mut File,
) -> Result<ArrayD<T>> {
    let dtype = check_readable(path, entry)?;
    let io_error = |source| TensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let total = entry.end - entry.start;
    // Bounded by the file's length as measured at open.
    let mut values = Vec::with_capacity((total / dtype.size_in_bytes() as u64) as usize);
    file.seek(SeekFrom::Start(header.data_start + entry.start))
        .map_err(io_error)?;
    let mut chunk = vec![0u8; CHUNK_BYTES.min(total as usize)];
    let mut remaining = total;
    while remaining > 0 {
        let n = CHUNK_BYTES.min(remaining as usize);
        file.read_exact(&mut chunk[..n]).map_err(io_error)?;
        decode_into(dtype, &chunk[..n], &mut values);
        remaining -= n as u64;
    }
    into_array(path, entry, values)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The header as written: metadata first (sorted keys), then tensors in data order.
struct HeaderOut<'a> {
    metadata: Option<BTreeMap<&'a str, &'a str>>,
    tensors: Vec<(&'a str, TensorInfo)>,
}

impl Serialize for HeaderOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(
            self.tensors.len() + usize::from(self.metadata.is_some()),
        ))?;
        if let Some(metadata) = &self.metadata {
            map.serialize_entry(METADATA_KEY, metadata)?;
        }
        for (name, info) in &self.tensors {
            map.serialize_entry(name, info)?;
        }
        map.end()
    }
}

/// Validates names and builds the header bytes, padded with spaces to a multiple of 8 bytes (as the
/// reference writer does, so the data section starts 8-byte aligned).
fn encode_header<T: Element, S: AsRef<str>, D: Dimension>(
    op: &'static str,
    tensors: &[(S, ArrayView<'_, T, D>)],
    metadata: Option<&HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let dtype = match T::DTYPE {
        DType::F32 => FileDtype::F32,
        DType::F64 => FileDtype::F64,
        other => unreachable!("Element is implemented for f32 and f64 only, not {other}"),
    };
    let mut seen = HashSet::with_capacity(tensors.len());
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for (name, array) in tensors {
        let name = name.as_ref();
        if name == METADATA_KEY {
            return Err(TensorError::invalid_argument(
                op,
                format!("{METADATA_KEY:?} is reserved and cannot name a tensor"),
            ));
        }
        if !seen.insert(name) {
            return Err(TensorError::invalid_argument(
                op,
                format!("duplicate tensor name {name:?}"),
            ));
        }
        // An in-memory array's byte size fits in isize, but the running total of several may not.
        let end = offset
            .checked_add(array.len() * size_of::<T>())
            .ok_or_else(|| {
                TensorError::invalid_argument(op, "total size of the tensors overflows usize")
            })?;
        infos.push((
            name,
            TensorInfo {
                dtype,
                shape: array.shape().to_vec(),
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let header = HeaderOut {
        metadata: metadata.map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
        tensors: infos,
    };
    let mut bytes = serde_json::to_vec(&header)
        .map_err(|e| TensorError::invalid_argument(op, format!("header: {e}")))?;
    bytes.resize(bytes.len().next_multiple_of(PREFIX_LEN as usize), b' ');
    if bytes.len() as u64 > MAX_HEADER_LEN {
        return Err(TensorError::invalid_argument(
            op,
            format!(
                "header of {} bytes exceeds the {MAX_HEADER_LEN}-byte limit readers accept",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Writes prefix, header and the tensors' row-major little-endian bytes.
fn write_all<T: Element, S, D: Dimension, W: Write>(
    out: &mut W,
    header: &[u8],
    tensors: &[(S, ArrayView<'_, T, D>)],
) -> io::Result<()> {
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(header)?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    for (_, array) in tensors {
        // `iter` walks in logical row-major order whatever the strides, so transposed or sliced views
        // are written as their logical contents.
        for &value in array.iter() {
            match T::DTYPE {
                DType::F32 => {
                    chunk.extend_from_slice(&(value.to_f64_lossless() as f32).to_le_bytes())
                }
                _ => chunk.extend_from_slice(&value.to_f64_lossless().to_le_bytes()),
            }
            if chunk.len() >= CHUNK_BYTES {
                out.write_all(&chunk)?;
                chunk.clear();
            }
        }
    }
    out.write_all(&chunk)?;
    out.flush()
}

/// Distinguishes temporary files of concurrent saves within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs `write` into a fresh temporary file beside `path`, fsyncs it and renames it over `path`.
/// On any failure the temporary file is removed and `path` is untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> Result<()> {
    let io_error = |source| TensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(file_name) = path.file_name() else {
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path does not name a file",
        )));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };

    let (temp_path, file) = loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{}.{n}.tmp", std::process::id()));
        let candidate = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => break (candidate, file),
            // Left over from a crashed process with a recycled pid: try the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(e)),
        }
    };

    let written = write_and_sync(&file, write);
    // Closed before the rename or removal, which some platforms refuse on an open file.
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&temp_path, path)) {
        let _ = fs::remove_file(&temp_path);
        return Err(io_error(e));
    }
    sync_dir(dir);
    Ok(())
}

/// Writes through a buffer and flushes the file to disk: the data must be durable before the rename
/// makes it visible under the final name.
fn write_and_sync(
    file: &File,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out)?;
    out.flush()?;
    drop(out);
    file.sync_all()
}

/// Makes the rename itself durable. Best effort: some file systems refuse to fsync a directory, and
/// the file is complete either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array3, ArrayViewD};

    /// A scratch directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "fm-tensor-safetensors-{}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
        fn entries(&self) -> Vec<String> {
            let mut names: Vec<_> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A file from a raw header string and data bytes.
    fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn reason(result: Result<SafeTensorsFile>) -> String {
        match result {
            Err(TensorError::MalformedFile { path, reason }) => {
                assert_eq!(path, Path::new(MEMORY_LABEL));
                reason
            }
            other => panic!("expected MalformedFile, got {other:?}"),
        }
    }

    fn open_raw(header: &str, data: &[u8]) -> Result<SafeTensorsFile> {
        SafeTensorsFile::from_bytes(raw_file(header, data))
    }

    fn sample_tensors() -> (ArrayD<f32>, ArrayD<f32>, ArrayD<f32>) {
        let w = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32 - 50.5)
            .into_dyn();
        let b = array![0.25f32, -1.0e-8, 3.0e38].into_dyn();
        let s = ndarray::arr0(7.0f32).into_dyn();
        (w, b, s)
    }

    #[test]
    fn round_trip_through_our_reader_keeps_order_values_and_metadata() {
        let (w, b, s) = sample_tensors();
        let meta = HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("step".to_string(), "12".to_string()),
        ]);
        let bytes = save_safetensors_to_bytes(
            [("w", w.view()), ("b", b.view()), ("s", s.view())],
            Some(&meta),
        )
        .unwrap();
        let file = SafeTensorsFile::from_bytes(bytes.clone()).unwrap();
        assert_eq!(file.names().collect::<Vec<_>>(), ["w", "b", "s"]);
        assert_eq!(file.metadata(), Some(&meta));
        assert_eq!(file.shape("s").unwrap(), &[] as &[usize]);
        assert_eq!(file.dtype("w").unwrap(), "F32");
        let loaded = load_safetensors_from_bytes::<f32>(&bytes).unwrap();
        assert_eq!(
            loaded,
            vec![
                ("w".to_string(), w.clone()),
                ("b".to_string(), b),
                ("s".to_string(), s)
            ]
        );
        // f32 read as f64 widens exactly.
        let w64 = file.tensor::<f64>("w").unwrap();
        assert!(w64.iter().zip(w.iter()).all(|(x, y)| *x == *y as f64));
    }

    #[test]
    fn header_layout_follows_the_spec() {
        let (w, b, _) = sample_tensors();
        let meta = HashMap::from([
            ("z".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
        ]);
        let bytes =
            save_safetensors_to_bytes([("w", w.view()), ("b", b.view())], Some(&meta)).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "header padded to 8 bytes");
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let json = header.trim_end_matches(' ');
        assert!(n - json.len() < 8, "padding is fewer than 8 spaces");
        assert_eq!(
            json,
            r#"{"__metadata__":{"a":"2","z":"1"},"w":{"dtype":"F32","shape":[2,3,4],"data_offsets":[0,96]},"b":{"dtype":"F32","shape":[3],"data_offsets":[96,108]}}"#
        );
        assert_eq!(bytes.len(), 8 + n + 108);
        assert_eq!(&bytes[8 + n..8 + n + 4], &(-50.5f32).to_le_bytes());
        // Same inputs, same bytes (metadata is not written in hash order).
        let again =
            save_safetensors_to_bytes([("w", w.view()), ("b", b.view())], Some(&meta)).unwrap();
        assert_eq!(bytes, again);
    }

    #[test]
    fn reference_crate_reads_our_bytes_and_we_read_its() {
        let (w, b, s) = sample_tensors();
        let ours =
            save_safetensors_to_bytes([("w", w.view()), ("b", b.view()), ("s", s.view())], None)
                .unwrap();
        let theirs = ::safetensors::SafeTensors::deserialize(&ours).unwrap();
        let tw = theirs.tensor("w").unwrap();
        assert_eq!(tw.dtype(), FileDtype::F32);
        assert_eq!(tw.shape(), &[2, 3, 4]);
        let expected: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(tw.data(), &expected[..]);

        let data: Vec<u8> = [1.5f64, -2.0, 1e300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view =
            ::safetensors::tensor::TensorView::new(FileDtype::F64, vec![3, 1], &data).unwrap();
        let bytes = ::safetensors::serialize([("x", view)], None).unwrap();
        let loaded = load_safetensors_from_bytes::<f64>(&bytes).unwrap();
        assert_eq!(loaded[0].1, array![[1.5f64], [-2.0], [1e300]].into_dyn());
    }

    #[test]
    fn non_contiguous_views_are_written_row_major() {
        let a = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| (i * 20 + j * 5 + k) as f64);
        let transposed = a.view().permuted_axes([2, 0, 1]).into_dyn();
        let strided = a.slice(s![..;2, 1..3, ..;-2]).into_dyn();
        let bytes =
            save_safetensors_to_bytes([("t", transposed.clone()), ("s", strided.clone())], None)
                .unwrap();
        let loaded = load_safetensors_from_bytes::<f64>(&bytes).unwrap();
        assert_eq!(loaded[0].1, transposed.to_owned());
        assert_eq!(loaded[1].1, strided.to_owned());
    }

    #[test]
    fn empty_tensors_and_empty_files() {
        let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 4]));
        let bytes =
            save_safetensors_to_bytes([("e", empty.view()), ("f", empty.view())], None).unwrap();
        let loaded = load_safetensors_from_bytes::<f32>(&bytes).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].1.shape(), &[0, 4]);

        let none: [(&str, ArrayViewD<'_, f32>); 0] = [];
        let bytes = save_safetensors_to_bytes(none, None).unwrap();
        assert_eq!(&bytes[8..], b"{}      ");
        assert!(SafeTensorsFile::from_bytes(bytes).unwrap().is_empty());
    }

    #[test]
    fn half_precision_is_widened_and_f64_rounded_to_f32() {
        let values = [1.0f32, -0.5, 65504.0, 6.1035156e-5];
        let f16: Vec<u8> = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let bf16: Vec<u8> = values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        let f64s: Vec<u8> = [0.1f64, 1e-50]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut data = f16.clone();
        data.extend(&bf16);
        data.extend(&f64s);
        let header = r#"{"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]},"d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]}}"#;
        let file = open_raw(header, &data).unwrap();
        let h = file.tensor::<f32>("h").unwrap();
        assert_eq!(h.iter().copied().collect::<Vec<_>>(), values);
        let b = file.tensor::<f64>("b").unwrap();
        let expected: Vec<f64> = values
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f64())
            .collect();
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), expected);
        let d = file.tensor::<f32>("d").unwrap();
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), [0.1f32, 0.0]);
    }

    #[test]
    fn unsupported_dtype_and_missing_name() {
        let header = r#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}"#;
        let mut data = 5i64.to_le_bytes().to_vec();
        data.extend(2.5f32.to_le_bytes());
        let file = open_raw(header, &data).unwrap();
        assert_eq!(file.dtype("ids").unwrap(), "I64");
        match file.tensor::<f32>("ids") {
            Err(TensorError::UnsupportedDtype { path, name, dtype }) => {
                assert_eq!(
                    (path.to_str().unwrap(), name.as_str(), dtype.as_str()),
                    (MEMORY_LABEL, "ids", "I64")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            file.tensor::<f32>("x").unwrap(),
            ndarray::arr0(2.5f32).into_dyn()
        );
        let err = file.tensor::<f32>("nope").unwrap_err();
        assert!(matches!(&err, TensorError::MissingTensor { name, .. } if name == "nope"));
        assert!(err.to_string().contains("<memory>"));
        assert!(file.shape("nope").is_err() && file.dtype("nope").is_err());
        let u8_header = r#"{"m":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}"#;
        let err = load_safetensors_from_bytes::<f64>(&raw_file(u8_header, &[1, 2, 3])).unwrap_err();
        assert!(matches!(err, TensorError::UnsupportedDtype { ref name, .. } if name == "m"));
    }

    #[test]
    fn short_files_and_bad_header_lengths() {
        for len in 0..8 {
            let r = reason(SafeTensorsFile::from_bytes(vec![0; len]));
            assert!(r.contains("shorter than the 8-byte"), "{r}");
        }
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend(b"{}");
        assert!(reason(SafeTensorsFile::from_bytes(bytes)).contains("runs past the end"));
        // u64::MAX must be rejected from the file length alone, not allocated.
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend(b"{}      ");
        assert!(reason(SafeTensorsFile::from_bytes(bytes))
            .contains("header length 18446744073709551615"));
        // A header length of zero: no JSON at all.
        assert!(
            reason(SafeTensorsFile::from_bytes(0u64.to_le_bytes().to_vec()))
                .contains("invalid header")
        );
    }

    #[test]
    fn header_not_utf8_or_not_json_or_not_an_object() {
        let mut bytes = 4u64.to_le_bytes().to_vec();
        bytes.extend([b'{', 0xff, 0xfe, b'}']);
        assert!(reason(SafeTensorsFile::from_bytes(bytes)).contains("not valid UTF-8"));
        assert!(reason(open_raw("{not json", &[])).contains("invalid header"));
        assert!(reason(open_raw("[1, 2]", &[])).contains("invalid header"));
        assert!(reason(open_raw(r#"{"x": 3}"#, &[])).contains("tensor \"x\": invalid entry"));
        assert!(reason(open_raw(
            r#"{"x":{"dtype":"F33","shape":[],"data_offsets":[0,4]}}"#,
            &[0; 4]
        ))
        .contains("F33"));
        assert!(reason(open_raw(
            r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            &[0; 4]
        ))
        .contains("\"x\""));
        assert!(reason(open_raw(r#"{"__metadata__":{"k":1}}"#, &[])).contains("invalid header"));
    }

    #[test]
    fn duplicate_names_are_rejected() {
        // Identical duplicates would pass a parser that keeps the last entry.
        let h = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(reason(open_raw(h, &[0; 4])).contains("duplicate entry \"a\""));
        let h = r#"{"__metadata__":{"k":"1","k":"2"}}"#;
        assert!(reason(open_raw(h, &[])).contains("duplicate __metadata__ key \"k\""));
        let x = array![1.0f32].into_dyn();
        let err = save_safetensors_to_bytes([("a", x.view()), ("a", x.view())], None).unwrap_err();
        assert!(err.to_string().contains("duplicate tensor name \"a\""));
        let err = save_safetensors_to_bytes([(METADATA_KEY, x.view())], None).unwrap_err();
        assert!(err.to_string().contains("reserved"));
    }

    #[test]
    fn offsets_are_checked_against_shape_size_and_each_other() {
        let t = |name: &str, shape: &str, s: u64, e: u64| {
            format!(r#""{name}":{{"dtype":"F32","shape":{shape},"data_offsets":[{s},{e}]}}"#)
        };
        let cases = [
            // (header, data length, expected words in the reason)
            (
                format!("{{{}}}", t("a", "[2]", 0, 16)),
                8,
                "run past the end",
            ),
            (
                format!("{{{}}}", t("a", "[2]", 0, 4)),
                4,
                "span 4 bytes but F32 [2] takes 8",
            ),
            (
                format!("{{{}}}", t("a", "[2]", 8, 0)),
                8,
                "end before they start",
            ),
            (
                format!("{{{},{}}}", t("a", "[2]", 0, 8), t("b", "[2]", 4, 12)),
                12,
                "overlaps tensor \"a\"",
            ),
            (
                format!("{{{},{}}}", t("a", "[1]", 0, 4), t("b", "[1]", 8, 12)),
                12,
                "gap of 4 bytes between tensor \"a\"",
            ),
            (
                format!("{{{}}}", t("a", "[1]", 4, 8)),
                8,
                "gap of 4 bytes between the start",
            ),
            (
                format!("{{{}}}", t("a", "[1]", 0, 4)),
                12,
                "8 bytes after the last tensor",
            ),
            (
                format!("{{{}}}", t("a", "[4294967296,4294967296]", 0, 4)),
                4,
                "overflows",
            ),
            (
                format!("{{{}}}", t("a", "[0,9223372036854775807,4]", 0, 0)),
                0,
                "overflows",
            ),
            (
                format!("{{{}}}", t("a", "[4611686018427387904]", 0, 4)),
                4,
                "size in bytes overflows",
            ),
            (
                format!("{{{}}}", t("a", "[1]", 0, 18446744073709551615u64)),
                4,
                "run past the end",
            ),
        ];
        for (header, data_len, words) in cases {
            let r = reason(open_raw(&header, &vec![0; data_len]));
            assert!(r.contains(words), "{header}: {r}");
        }
        // Zero-sized tensors may share an offset with their neighbours.
        let ok = format!(
            "{{{},{},{}}}",
            t("a", "[0]", 0, 0),
            t("b", "[1]", 0, 4),
            t("c", "[0,3]", 4, 4)
        );
        assert_eq!(open_raw(&ok, &[0; 4]).unwrap().len(), 3);
    }

    #[test]
    fn file_round_trip_and_errors_name_the_file() {
        let dir = Scratch::new("file-round-trip");
        let path = dir.path("m.safetensors");
        let (w, b, s) = sample_tensors();
        save_safetensors(
            &path,
            [("w", w.view()), ("b", b.view()), ("s", s.view())],
            None,
        )
        .unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            save_safetensors_to_bytes([("w", w.view()), ("b", b.view()), ("s", s.view())], None)
                .unwrap()
        );
        let loaded = load_safetensors::<f32>(&path).unwrap();
        assert_eq!(loaded[0].1, w);
        let file = SafeTensorsFile::open(&path).unwrap();
        assert_eq!(file.path(), path);
        assert_eq!(file.tensor::<f32>("b").unwrap(), b);
        assert_eq!(
            dir.entries(),
            ["m.safetensors"],
            "no temporary file is left behind"
        );

        let bad = dir.path("bad.safetensors");
        fs::write(&bad, [1, 2, 3]).unwrap();
        let err = SafeTensorsFile::open(&bad).unwrap_err();
        assert!(matches!(&err, TensorError::MalformedFile { path, .. } if path == &bad));
        assert!(err.to_string().contains("bad.safetensors"));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend(b"{}");
        fs::write(&bad, huge).unwrap();
        assert!(SafeTensorsFile::open(&bad)
            .unwrap_err()
            .to_string()
            .contains("runs past the end"));

        let missing = dir.path("missing.safetensors");
        let err = load_safetensors::<f32>(&missing).unwrap_err();
        assert!(matches!(&err, TensorError::Io { path, .. } if path == &missing));
        let err = SafeTensorsFile::open(&path)
            .unwrap()
            .tensor::<f32>("zz")
            .unwrap_err();
        assert!(err.to_string().contains("m.safetensors"));
    }

    #[test]
    fn large_tensor_is_read_across_chunks() {
        let dir = Scratch::new("chunks");
        let path = dir.path("big.safetensors");
        let n = CHUNK_BYTES / 4 * 3 + 7;
        let x = ArrayD::from_shape_fn(IxDyn(&[n]), |i| i[0] as f32 * 0.5);
        save_safetensors(&path, [("x", x.view())], None).unwrap();
        assert_eq!(
            SafeTensorsFile::open(&path)
                .unwrap()
                .tensor::<f32>("x")
                .unwrap(),
            x
        );
    }

    #[test]
    fn truncated_after_open_is_an_io_error_not_a_panic() {
        let dir = Scratch::new("truncated");
        let path = dir.path("t.safetensors");
        let x = ArrayD::from_elem(IxDyn(&[64]), 1.0f64);
        save_safetensors(&path, [("x", x.view())], None).unwrap();
        let file = SafeTensorsFile::open(&path).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 16)
            .unwrap();
        assert!(matches!(
            file.tensor::<f64>("x"),
            Err(TensorError::Io { .. })
        ));
    }

    #[test]
    fn failed_writes_leave_the_existing_file_intact() {
        let dir = Scratch::new("atomic");
        let path = dir.path("keep.safetensors");
        let x = array![1.0f32, 2.0].into_dyn();
        save_safetensors(&path, [("x", x.view())], None).unwrap();
        let before = fs::read(&path).unwrap();

        // Rejected input: nothing is written.
        assert!(save_safetensors(&path, [("x", x.view()), ("x", x.view())], None).is_err());
        // A write that fails half-way (what a full disk would do).
        let err = write_atomically(&path, |out| {
            out.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(matches!(&err, TensorError::Io { path: p, .. } if p == &path));
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(dir.entries(), ["keep.safetensors"]);

        // The rename fails (the target is a non-empty directory): temp file removed, directory intact.
        let blocked = dir.path("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(save_safetensors(&blocked, [("x", x.view())], None).is_err());
        assert_eq!(dir.entries(), ["blocked", "keep.safetensors"]);

        // A successful overwrite replaces the whole file.
        let y = array![[3.0f32]].into_dyn();
        save_safetensors(&path, [("y", y.view())], None).unwrap();
        assert_eq!(
            load_safetensors::<f32>(&path).unwrap(),
            vec![("y".to_string(), y)]
        );
    }

    /// Exercises every reader path on a mutated file; any result is fine except a panic.
    fn read_everything(bytes: Vec<u8>) {
        let borrowed = load_safetensors_from_bytes::<f64>(&bytes);
        if let Ok(file) = SafeTensorsFile::from_bytes(bytes) {
            assert!(borrowed.is_ok() || file.names().any(|n| file.tensor::<f64>(n).is_err()));
            for name in file.names() {
                let _ = (file.dtype(name), file.shape(name));
                let _ = file.tensor::<f32>(name);
            }
        }
    }

    #[test]
    fn mutated_files_never_panic() {
        let base: &[u8] = include_bytes!("../tests/fixtures/python_written.safetensors");
        let header_len = u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
        // xorshift: a dependency-free, reproducible stream of mutations.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for round in 0..3000 {
            let mut bytes = base.to_vec();
            match round % 5 {
                // Any byte, prefix included.
                0 => {
                    let i = next(bytes.len());
                    bytes[i] ^= 1 << next(8);
                }
                // Truncation.
                1 => bytes.truncate(next(bytes.len())),
                // A digit of the header (offsets, shapes) replaced by another digit.
                2 => {
                    let digits: Vec<usize> = (8..8 + header_len)
                        .filter(|&i| bytes[i].is_ascii_digit())
                        .collect();
                    let i = digits[next(digits.len())];
                    bytes[i] = b'0' + next(10) as u8;
                }
                // A header byte replaced by JSON punctuation.
                3 => {
                    let i = 8 + next(header_len);
                    bytes[i] = b"{}[],:\" -0"[next(10)];
                }
                // Header grown by a few digits with the prefix kept consistent.
                _ => {
                    let digits: Vec<usize> = (8..8 + header_len)
                        .filter(|&i| bytes[i].is_ascii_digit())
                        .collect();
                    let i = digits[next(digits.len())];
                    let extra = b"999999999999";
                    let k = 1 + next(extra.len());
                    bytes.splice(i..i, extra[..k].iter().copied());
                    bytes[..8].copy_from_slice(&((header_len + k) as u64).to_le_bytes());
                }
            }
            read_everything(bytes);
        }
    }

    #[test]
    fn handle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SafeTensorsFile>();
    }
}
