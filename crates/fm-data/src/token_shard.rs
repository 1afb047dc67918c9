//! Token shards: a tokenized corpus on disk, read back by memory mapping, so corpora larger than
//! memory train without loading them.
//!
//! A shard is one file: an 8-byte magic `FMTOKENS`, the length of a JSON header as a little-endian
//! `u64`, the header, zero padding up to the data offset (4096, a page, so the mapped data is
//! aligned), then the token ids as little-endian `u16` (vocabularies up to 65536) or `u32`. The
//! header records the format version, the dtype, the number of tokens, the vocabulary size and the
//! data offset, plus free-form metadata:
//!
//! ```json
//! {"format":"fm-token-shard","version":1,"dtype":"u16","tokens":3097898,"vocab_size":4096,
//!  "data_offset":4096,"metadata":{"tokenizer":"rust-docs-4096"}}
//! ```
//!
//! [`TokenShardWriter`] streams ids into a temporary file beside the target and renames it into
//! place when [`finish`](TokenShardWriter::finish)ed, so a shard under its final name is complete
//! and never changes afterwards — which is what makes mapping it safe. [`TokenShard`] maps a shard
//! and reads windows of it as `Vec<u32>` or ndarray arrays; [`write_token_shard`] tokenizes texts
//! straight into a shard, in parallel, with bounded memory.
//!
//! ```
//! use fm_data::token_shard::{TokenShard, TokenShardWriter};
//!
//! let path = std::env::temp_dir().join(format!("doc-{}.tokens", std::process::id()));
//! let mut w = TokenShardWriter::create(&path, 1000)?;
//! w.write(&[5, 6, 7])?;
//! w.write(&[999, 0])?;
//! w.finish()?;
//!
//! let shard = TokenShard::open(&path)?;
//! assert_eq!(shard.len(), 5);
//! assert_eq!(shard.read(1, 3)?, [6, 7, 999]);
//! let batch = shard.windows(&[0, 2], 3)?; // two rows of three tokens
//! assert_eq!(batch.row(1).to_vec(), [7, 999, 0]);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), fm_data::DataError>(())
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::tokenizer::Tokenizer;

const MAGIC: &[u8; 8] = b"FMTOKENS";
const FORMAT: &str = "fm-token-shard";
const VERSION: u32 = 1;
/// Where the ids start: one page, so the mapped ids are aligned and the header has room.
const DATA_OFFSET: u64 = 4096;

/// How each token id is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// Two bytes per token: vocabularies of at most 65536 ids.
    U16,
    /// Four bytes per token.
    U32,
}

impl TokenDtype {
    /// The narrowest dtype that holds ids `0..vocab_size`.
    pub fn for_vocab_size(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            TokenDtype::U16
        } else {
            TokenDtype::U32
        }
    }

    /// Bytes per token.
    pub fn size(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }
}

/// The JSON header of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenShardHeader {
    /// Always `"fm-token-shard"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// How ids are stored.
    pub dtype: TokenDtype,
    /// Number of tokens in the shard.
    pub tokens: u64,
    /// Ids are in `0..vocab_size`.
    pub vocab_size: u64,
    /// Byte offset of the first id.
    pub data_offset: u64,
    /// Free-form metadata (tokenizer name, source, ...).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Distinguishes temporary files of concurrent writers within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a shard, streaming (see the module docs). Dropped without [`finish`](Self::finish), it
/// removes its temporary file and leaves `path` untouched.
pub struct TokenShardWriter {
    path: PathBuf,
    temp_path: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: TokenDtype,
    vocab_size: u64,
    tokens: u64,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl TokenShardWriter {
    /// A writer for ids in `0..vocab_size`, stored in the narrowest dtype.
    pub fn create(path: impl AsRef<Path>, vocab_size: usize) -> Result<Self> {
        Self::with_dtype(path, vocab_size, TokenDtype::for_vocab_size(vocab_size))
    }

    /// A writer with an explicit dtype (`u16` needs `vocab_size <= 65536`).
    pub fn with_dtype(
        path: impl AsRef<Path>,
        vocab_size: usize,
        dtype: TokenDtype,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if vocab_size == 0 || (vocab_size as u64) > (u32::MAX as u64) + 1 {
            return Err(DataError::config(
                "TokenShardWriter",
                format!("vocab_size {vocab_size} is not in 1..=2^32"),
            ));
        }
        if dtype == TokenDtype::U16 && vocab_size > 1 << 16 {
            return Err(DataError::config(
                "TokenShardWriter",
                format!("vocab_size {vocab_size} does not fit u16 ids"),
            ));
        }
        let file_name = path.file_name().ok_or_else(|| {
            DataError::io(
                &path,
                io::Error::new(io::ErrorKind::InvalidInput, "path does not name a file"),
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
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
                Ok(f) => break (candidate, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(DataError::io(&path, e)),
            }
        };
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // The header is written last, when the count is known; reserve its page now.
        let reserved = out
            .write_all(&[0u8; DATA_OFFSET as usize])
            .map_err(|e| DataError::io(&temp_path, e));
        let writer = TokenShardWriter {
            path,
            temp_path,
            out: Some(out),
            dtype,
            vocab_size: vocab_size as u64,
            tokens: 0,
            metadata: serde_json::Map::new(),
        };
        reserved.map(|()| writer)
    }

    /// Sets a metadata entry of the header.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: serde_json::Value) {
        self.metadata.insert(key.into(), value);
    }

    /// Appends ids. An id outside the vocabulary is an error and nothing of `ids` is written.
    pub fn write(&mut self, ids: &[u32]) -> Result<()> {
        if let Some(&bad) = ids.iter().find(|&&id| id as u64 >= self.vocab_size) {
            return Err(DataError::UnknownTokenId {
                id: bad,
                vocab_size: self.vocab_size as usize,
            });
        }
        let out = self.out.as_mut().expect("writer is open until finish");
        let mut buf = Vec::with_capacity(ids.len() * self.dtype.size());
        match self.dtype {
            TokenDtype::U16 => ids
                .iter()
                .for_each(|&id| buf.extend_from_slice(&(id as u16).to_le_bytes())),
            TokenDtype::U32 => ids
                .iter()
                .for_each(|&id| buf.extend_from_slice(&id.to_le_bytes())),
        }
        out.write_all(&buf)
            .map_err(|e| DataError::io(&self.temp_path, e))?;
        self.tokens += ids.len() as u64;
        Ok(())
    }

    /// Tokens written so far.
    pub fn len(&self) -> u64 {
        self.tokens
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// Writes the header, flushes the file to disk and renames it to its final path.
    pub fn finish(mut self) -> Result<TokenShardHeader> {
        let header = TokenShardHeader {
            format: FORMAT.into(),
            version: VERSION,
            dtype: self.dtype,
            tokens: self.tokens,
            vocab_size: self.vocab_size,
            data_offset: DATA_OFFSET,
            metadata: std::mem::take(&mut self.metadata),
        };
        let json = serde_json::to_vec(&header).expect("the header serializes");
        if 16 + json.len() > DATA_OFFSET as usize {
            return Err(DataError::config(
                "TokenShardWriter",
                format!(
                    "header of {} bytes does not fit the {DATA_OFFSET}-byte header page (metadata too large)",
                    json.len()
                ),
            ));
        }
        let out = self.out.take().expect("writer is open until finish");
        let temp = self.temp_path.clone();
        let io_err = |e| DataError::io(&temp, e);
        let mut file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(MAGIC).map_err(io_err)?;
        file.write_all(&(json.len() as u64).to_le_bytes())
            .map_err(io_err)?;
        file.write_all(&json).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        fs::rename(&self.temp_path, &self.path).map_err(|e| DataError::io(&self.path, e))?;
        #[cfg(unix)]
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                // Makes the rename durable; best effort, the file is complete either way.
                let _ = d.sync_all();
            }
        }
        Ok(header)
    }
}

impl Drop for TokenShardWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Encodes `texts` with `tokenizer` into a new shard at `path`, appending `separator` (usually the
/// end-of-text id) after each text if given. Texts are encoded in parallel in chunks of
/// `chunk_size`, so memory holds one chunk's ids at a time; the shard is the same for any number of
/// threads.
pub fn write_token_shard<T, I, S>(
    path: impl AsRef<Path>,
    tokenizer: &T,
    texts: I,
    separator: Option<u32>,
    chunk_size: usize,
) -> Result<TokenShardHeader>
where
    T: Tokenizer + ?Sized,
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut writer = TokenShardWriter::create(path, tokenizer.vocab_size())?;
    let mut chunk: Vec<S> = Vec::with_capacity(chunk_size.max(1));
    let mut texts = texts.into_iter().peekable();
    while texts.peek().is_some() {
        chunk.clear();
        chunk.extend(texts.by_ref().take(chunk_size.max(1)));
        let refs: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
        for ids in tokenizer.encode_batch(&refs)? {
            writer.write(&ids)?;
            if let Some(sep) = separator {
                writer.write(&[sep])?;
            }
        }
    }
    writer.finish()
}

/// A shard mapped into memory (see the module docs). Reads copy the requested ids out as `u32`.
pub struct TokenShard {
    path: PathBuf,
    map: Mmap,
    header: TokenShardHeader,
}

impl std::fmt::Debug for TokenShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenShard")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl TokenShard {
    /// Maps the shard at `path` after checking its magic, header and length. A file that is not a
    /// shard, or is cut short, is a [`DataError::InvalidTokenShard`] naming the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let invalid = |reason: String| DataError::InvalidTokenShard {
            path: path.clone(),
            reason,
        };
        let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
        let file_len = file.metadata().map_err(|e| DataError::io(&path, e))?.len();
        if file_len < 16 {
            return Err(invalid(format!(
                "{file_len} bytes is too short for a shard"
            )));
        }
        // SAFETY: a shard is written under a temporary name and renamed into place once complete
        // (`TokenShardWriter::finish`); nothing writes to it afterwards, so the mapped bytes do not
        // change under us. Replacing the file by another rename leaves this mapping on the old one.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(&path, e))?;
        if &map[..8] != MAGIC {
            return Err(invalid(
                "missing the FMTOKENS magic: not a token shard".into(),
            ));
        }
        let header_len = u64::from_le_bytes(map[8..16].try_into().expect("8 bytes"));
        if header_len > file_len - 16 {
            return Err(invalid(format!(
                "header length {header_len} runs past the end of the file ({file_len} bytes)"
            )));
        }
        let header: TokenShardHeader = serde_json::from_slice(&map[16..16 + header_len as usize])
            .map_err(|e| DataError::json(&path, &e))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(invalid(format!(
                "format {:?} version {} (expected {FORMAT:?} version {VERSION})",
                header.format, header.version
            )));
        }
        let expected = header
            .tokens
            .checked_mul(header.dtype.size() as u64)
            .and_then(|b| b.checked_add(header.data_offset));
        if header.data_offset < 16 + header_len || expected != Some(file_len) {
            return Err(invalid(format!(
                "header says {} {:?} tokens from byte {}, but the file has {file_len} bytes",
                header.tokens, header.dtype, header.data_offset
            )));
        }
        Ok(TokenShard { path, map, header })
    }

    /// The header.
    pub fn header(&self) -> &TokenShardHeader {
        &self.header
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.header.tokens as usize
    }

    /// Whether the shard holds no token.
    pub fn is_empty(&self) -> bool {
        self.header.tokens == 0
    }

    /// Ids are in `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        self.header.vocab_size as usize
    }

    fn data(&self) -> &[u8] {
        &self.map[self.header.data_offset as usize..]
    }

    fn check_range(&self, start: usize, len: usize) -> Result<()> {
        match start.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(DataError::OutOfRange {
                what: "token shard",
                start,
                len,
                size: self.len(),
            }),
        }
    }

    /// Copies ids `start..start + out.len()` into `out`.
    pub fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()> {
        self.check_range(start, out.len())?;
        let size = self.header.dtype.size();
        let bytes = &self.data()[start * size..(start + out.len()) * size];
        match self.header.dtype {
            TokenDtype::U16 => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = u16::from_le_bytes([b[0], b[1]]) as u32;
                }
            }
            TokenDtype::U32 => {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
        }
        Ok(())
    }

    /// Ids `start..start + len`.
    pub fn read(&self, start: usize, len: usize) -> Result<Vec<u32>> {
        let mut out = vec![0; len];
        self.read_into(start, &mut out)?;
        Ok(out)
    }

    /// Ids `start..start + len` as an ndarray vector.
    pub fn window(&self, start: usize, len: usize) -> Result<Array1<u32>> {
        self.read(start, len).map(Array1::from)
    }

    /// One row of `len` ids per start: a `[starts.len(), len]` batch (for language modelling, take
    /// `len = context + 1` and split inputs and shifted targets).
    pub fn windows(&self, starts: &[usize], len: usize) -> Result<Array2<u32>> {
        let mut out = Array2::zeros((starts.len(), len));
        for (mut row, &start) in out.rows_mut().into_iter().zip(starts) {
            let row = row
                .as_slice_mut()
                .expect("rows of a fresh standard-layout array are contiguous");
            self.read_into(start, row)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::CharTokenizer;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fm-data-shard-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn u16_and_u32_round_trip() {
        for (vocab, dtype) in [(70_000usize, TokenDtype::U32), (500, TokenDtype::U16)] {
            let path = temp(&format!("rt-{vocab}.tokens"));
            let ids: Vec<u32> = (0..10_000u32).map(|i| i * 7919 % vocab as u32).collect();
            let mut w = TokenShardWriter::create(&path, vocab).unwrap();
            w.set_metadata("source", serde_json::json!("test"));
            w.write(&ids[..3000]).unwrap();
            w.write(&ids[3000..]).unwrap();
            let header = w.finish().unwrap();
            assert_eq!(header.dtype, dtype);
            let shard = TokenShard::open(&path).unwrap();
            assert_eq!(shard.header(), &header);
            assert_eq!(shard.header().metadata["source"], "test");
            assert_eq!(shard.read(0, ids.len()).unwrap(), ids);
            assert_eq!(shard.window(9990, 10).unwrap().to_vec(), &ids[9990..]);
            let batch = shard.windows(&[0, 5000, 9000], 65).unwrap();
            assert_eq!(batch.shape(), &[3, 65]);
            assert_eq!(batch.row(1).to_vec(), &ids[5000..5065]);
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                DATA_OFFSET + (ids.len() * dtype.size()) as u64
            );
            fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn bad_ids_ranges_and_settings_are_errors() {
        let path = temp("bad.tokens");
        let mut w = TokenShardWriter::create(&path, 10).unwrap();
        assert!(matches!(
            w.write(&[1, 10]),
            Err(DataError::UnknownTokenId {
                id: 10,
                vocab_size: 10
            })
        ));
        assert_eq!(w.len(), 0, "a refused write writes nothing");
        w.write(&[1, 2, 3]).unwrap();
        w.finish().unwrap();
        let shard = TokenShard::open(&path).unwrap();
        let e = shard.read(2, 2).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::OutOfRange {
                    start: 2,
                    len: 2,
                    size: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(shard.windows(&[0, usize::MAX], 1).is_err());
        assert!(TokenShardWriter::with_dtype(temp("x"), 70_000, TokenDtype::U16).is_err());
        assert!(TokenShardWriter::create(temp("y"), 0).is_err());
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn corrupt_files_name_the_file_and_the_problem() {
        let path = temp("corrupt.tokens");
        let mut w = TokenShardWriter::create(&path, 100).unwrap();
        w.write(&[1, 2, 3, 4]).unwrap();
        w.finish().unwrap();
        let good = fs::read(&path).unwrap();

        let check = |bytes: &[u8], needle: &str| {
            fs::write(&path, bytes).unwrap();
            let e = TokenShard::open(&path).unwrap_err().to_string();
            assert!(e.contains("corrupt.tokens"), "{e}");
            assert!(e.contains(needle), "{e}");
        };
        check(&good[..good.len() - 1], "but the file has");
        check(&good[..10], "too short");
        let mut bad = good.clone();
        bad[0] = b'X';
        check(&bad, "magic");
        let mut bad = good.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&bad, "runs past the end");
        let mut bad = good.clone();
        bad[16] = b'[';
        check(&bad, "corrupt.tokens:1:");
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing_behind() {
        let path = temp("unfinished.tokens");
        let mut w = TokenShardWriter::create(&path, 10).unwrap();
        w.write(&[1]).unwrap();
        drop(w);
        assert!(!path.exists());
        let dir = path.parent().unwrap();
        assert!(fs::read_dir(dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("unfinished")));
    }

    #[test]
    fn texts_are_tokenized_into_a_shard_with_separators() {
        let tok = CharTokenizer::from_text("abc", ["<eot>"]).unwrap();
        let path = temp("texts.tokens");
        let texts = ["ab", "", "cba", "c"];
        let header = write_token_shard(&path, &tok, texts, Some(0), 3).unwrap();
        assert_eq!(header.tokens, 6 + 4);
        let shard = TokenShard::open(&path).unwrap();
        assert_eq!(shard.read(0, 10).unwrap(), [1, 2, 0, 0, 3, 2, 1, 0, 3, 0]);
        // An encoding error stops the write and leaves no shard.
        let bad = temp("bad-texts.tokens");
        assert!(write_token_shard(&bad, &tok, ["abz"], None, 2).is_err());
        assert!(!bad.exists());
        fs::remove_file(&path).unwrap();
    }
}
