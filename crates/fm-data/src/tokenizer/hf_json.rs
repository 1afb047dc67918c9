//! Hugging Face `tokenizer.json` for byte-level BPE: read and write.
//!
//! The supported shape is the one HF's `ByteLevelBPETokenizer` and `BpeTrainer` with a `ByteLevel`
//! pre-tokenizer produce, and that GPT-2, RoBERTa-style and many other checkpoints ship:
//!
//! - `model`: `BPE` with `vocab` and `merges` (either `"a b"` strings or `["a", "b"]` pairs),
//!   optional `unk_token`, `fuse_unk`, `ignore_merges`; no dropout, no subword prefix or suffix,
//!   no byte fallback;
//! - `pre_tokenizer`: `ByteLevel` with `use_regex: true` (`add_prefix_space` either way);
//! - `decoder`: `ByteLevel` or none; `post_processor`: `ByteLevel` or none (neither changes ids);
//! - `normalizer`: none; `truncation`: none (`padding` is ignored: it applies to HF batches only);
//! - `added_tokens`: any, without `single_word`, `lstrip` or `rstrip`.
//!
//! Anything else is refused with [`DataError::UnsupportedTokenizer`] naming the field, because
//! encoding it would silently give other ids than HF. A syntax or structure error is a
//! [`DataError::Json`] with the file, line and column.
//!
//! Written files use HF's layout and key order (pretty-printed, vocabulary in id order), so a
//! tokenizer trained here with the same settings as in HF writes the same bytes HF does.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::added_tokens::AddedToken;
use super::bpe::{BpeOptions, BpeTokenizer, IN_MEMORY};
use crate::error::{DataError, Result};

#[derive(Deserialize)]
struct FileIn {
    #[serde(default)]
    truncation: Option<Value>,
    #[serde(default)]
    added_tokens: Vec<AddedTokenIn>,
    #[serde(default)]
    normalizer: Option<Value>,
    #[serde(default)]
    pre_tokenizer: Option<Value>,
    #[serde(default)]
    post_processor: Option<Value>,
    #[serde(default)]
    decoder: Option<Value>,
    model: ModelIn,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct AddedTokenIn {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default = "yes")]
    normalized: bool,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct ModelIn {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    fuse_unk: bool,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
    vocab: HashMap<String, u32>,
    merges: Vec<MergeIn>,
}

/// A merge as HF writes it: `"a b"` (before tokenizers 0.20) or `["a", "b"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MergeIn {
    Joined(String),
    Pair(String, String),
}

/// The `type` of a component object, or a description of what it is instead.
fn component_type(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => format!("{v}"),
    }
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

impl BpeTokenizer {
    /// Loads a Hugging Face `tokenizer.json` (see the [module docs](crate::tokenizer::hf_json) for
    /// what is supported).
    ///
    /// ```no_run
    /// use fm_data::tokenizer::{BpeTokenizer, Tokenizer};
    ///
    /// let tok = BpeTokenizer::from_file("tokenizer.json")?;
    /// let ids = tok.encode("Hello world")?;
    /// # Ok::<(), fm_data::DataError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        parse(path, &text)
    }

    /// Parses the text of a `tokenizer.json`; errors name `<memory>` as the file.
    pub fn from_json_str(json: &str) -> Result<Self> {
        parse(Path::new(IN_MEMORY), json)
    }

    /// The `tokenizer.json` text of this tokenizer, in HF's layout.
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out)
            .expect("writing JSON to memory cannot fail");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Saves as `tokenizer.json` at `path`. The file is written beside `path` under a temporary
    /// name, flushed to disk and renamed over `path`, so a failed save leaves an existing file
    /// intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), |out| self.write_json(out))
    }

    fn write_json<W: Write>(&self, out: W) -> io::Result<()> {
        let opts = self.options();
        let file = FileOut {
            version: "1.0",
            truncation: None,
            padding: None,
            added_tokens: self
                .added_tokens()
                .iter()
                .map(|t| AddedTokenOut {
                    id: t.id,
                    content: &t.content,
                    single_word: false,
                    lstrip: false,
                    rstrip: false,
                    normalized: t.normalized,
                    special: t.special,
                })
                .collect(),
            normalizer: None,
            pre_tokenizer: ByteLevelOut::new(opts.add_prefix_space),
            post_processor: None,
            decoder: ByteLevelOut::new(true),
            model: ModelOut {
                kind: "BPE",
                dropout: None,
                unk_token: opts.unk_token.as_deref(),
                continuing_subword_prefix: None,
                end_of_word_suffix: None,
                fuse_unk: opts.fuse_unk,
                byte_fallback: false,
                ignore_merges: opts.ignore_merges,
                vocab: VocabOut(self),
                merges: self.merges().map(|(l, r)| [l, r]).collect(),
            },
        };
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        let mut ser = serde_json::Serializer::with_formatter(out, formatter);
        file.serialize(&mut ser).map_err(io::Error::other)
    }
}

fn parse(path: &Path, text: &str) -> Result<BpeTokenizer> {
    let file: FileIn = serde_json::from_str(text).map_err(|e| DataError::json(path, &e))?;
    let unsupported = |feature: String| DataError::UnsupportedTokenizer {
        path: path.to_path_buf(),
        feature,
    };

    if let Some(t) = &file.truncation {
        return Err(unsupported(format!(
            "truncation {t} (truncate the ids yourself)"
        )));
    }
    if let Some(n) = &file.normalizer {
        let empty_sequence = n.get("type").and_then(Value::as_str) == Some("Sequence")
            && n.get("normalizers")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
        if !empty_sequence {
            return Err(unsupported(format!("normalizer {}", component_type(n))));
        }
    }
    let add_prefix_space = match &file.pre_tokenizer {
        Some(p) if component_type(p) == "ByteLevel" => {
            if !flag(p, "use_regex", true) {
                return Err(unsupported(
                    "pre_tokenizer ByteLevel with use_regex: false".into(),
                ));
            }
            flag(p, "add_prefix_space", true)
        }
        Some(p) => {
            return Err(unsupported(format!(
                "pre_tokenizer {} (only ByteLevel is supported)",
                component_type(p)
            )))
        }
        None => {
            return Err(unsupported(
                "no pre_tokenizer (byte-level BPE needs ByteLevel)".into(),
            ))
        }
    };
    for (field, component) in [
        ("decoder", &file.decoder),
        ("post_processor", &file.post_processor),
    ] {
        if let Some(c) = component {
            if component_type(c) != "ByteLevel" {
                return Err(unsupported(format!(
                    "{field} {} (only ByteLevel or none)",
                    component_type(c)
                )));
            }
        }
    }

    let model = file.model;
    if let Some(kind) = &model.kind {
        if kind != "BPE" {
            return Err(unsupported(format!("model type {kind}")));
        }
    }
    if let Some(d) = model.dropout {
        if d != 0.0 {
            return Err(unsupported(format!("BPE dropout {d}")));
        }
    }
    if let Some(p) = &model.continuing_subword_prefix {
        return Err(unsupported(format!("continuing_subword_prefix {p:?}")));
    }
    if let Some(s) = &model.end_of_word_suffix {
        return Err(unsupported(format!("end_of_word_suffix {s:?}")));
    }
    if model.byte_fallback {
        return Err(unsupported("byte_fallback: true".into()));
    }

    let mut added = Vec::with_capacity(file.added_tokens.len());
    for t in file.added_tokens {
        for (set, name) in [
            (t.single_word, "single_word"),
            (t.lstrip, "lstrip"),
            (t.rstrip, "rstrip"),
        ] {
            if set {
                return Err(unsupported(format!(
                    "added token {:?} with {name}: true",
                    t.content
                )));
            }
        }
        added.push(AddedToken {
            content: t.content,
            id: t.id,
            special: t.special,
            normalized: t.normalized,
        });
    }

    let mut merges = Vec::with_capacity(model.merges.len());
    for (k, m) in model.merges.into_iter().enumerate() {
        merges.push(match m {
            MergeIn::Pair(l, r) => (l, r),
            MergeIn::Joined(s) => {
                let mut parts = s.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(l), Some(r), None) => (l.to_string(), r.to_string()),
                    _ => {
                        return Err(DataError::InvalidTokenizer {
                            path: path.to_path_buf(),
                            reason: format!("merge {} {s:?} is not two tokens", k + 1),
                        })
                    }
                }
            }
        });
    }
    let options = BpeOptions {
        add_prefix_space,
        unk_token: model.unk_token,
        fuse_unk: model.fuse_unk,
        ignore_merges: model.ignore_merges,
    };
    BpeTokenizer::build(
        path,
        model.vocab.into_iter().collect(),
        merges,
        added,
        options,
    )
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: &'static str,
    truncation: Option<()>,
    padding: Option<()>,
    added_tokens: Vec<AddedTokenOut<'a>>,
    normalizer: Option<()>,
    pre_tokenizer: ByteLevelOut,
    post_processor: Option<()>,
    decoder: ByteLevelOut,
    model: ModelOut<'a>,
}

#[derive(Serialize)]
struct AddedTokenOut<'a> {
    id: u32,
    content: &'a str,
    single_word: bool,
    lstrip: bool,
    rstrip: bool,
    normalized: bool,
    special: bool,
}

#[derive(Serialize)]
struct ByteLevelOut {
    #[serde(rename = "type")]
    kind: &'static str,
    add_prefix_space: bool,
    trim_offsets: bool,
    use_regex: bool,
}

impl ByteLevelOut {
    fn new(add_prefix_space: bool) -> Self {
        ByteLevelOut {
            kind: "ByteLevel",
            add_prefix_space,
            trim_offsets: true,
            use_regex: true,
        }
    }
}

#[derive(Serialize)]
struct ModelOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    dropout: Option<f64>,
    unk_token: Option<&'a str>,
    continuing_subword_prefix: Option<()>,
    end_of_word_suffix: Option<()>,
    fuse_unk: bool,
    byte_fallback: bool,
    ignore_merges: bool,
    vocab: VocabOut<'a>,
    merges: Vec<[&'a str; 2]>,
}

/// The model vocabulary as a JSON object in id order (HF's `OrderedVocabIter`).
struct VocabOut<'a>(&'a BpeTokenizer);

impl Serialize for VocabOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (token, id) in self.0.model_vocab() {
            map.serialize_entry(token, &id)?;
        }
        map.end()
    }
}

/// Distinguishes temporary files of concurrent saves within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs `write` into a fresh temporary file beside `path`, fsyncs it and renames it over `path`.
/// On any failure the temporary file is removed and `path` is untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> Result<()> {
    let Some(file_name) = path.file_name() else {
        return Err(DataError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "path does not name a file"),
        ));
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
            Err(e) => return Err(DataError::io(path, e)),
        }
    };
    let written = (|| {
        let mut out = BufWriter::new(&file);
        write(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })();
    // Closed before the rename or removal, which some platforms refuse on an open file.
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&temp_path, path)) {
        let _ = fs::remove_file(&temp_path);
        return Err(DataError::io(path, e));
    }
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        // Makes the rename durable; best effort, the file is complete either way.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{BpeTrainer, Tokenizer};

    fn small() -> BpeTokenizer {
        BpeTrainer::builder()
            .vocab_size(300)
            .special_tokens(["<|endoftext|>"])
            .build()
            .unwrap()
            .train(&["the theme of the thesis", "then there"])
            .unwrap()
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let tok = small();
        let json = tok.to_json_string();
        let back = BpeTokenizer::from_json_str(&json).unwrap();
        assert_eq!(back.to_json_string(), json);
        assert_eq!(back.vocab_size(), tok.vocab_size());
        let text = "the thesis<|endoftext|>then";
        assert_eq!(back.encode(text).unwrap(), tok.encode(text).unwrap());
        assert!(json.starts_with("{\n  \"version\": \"1.0\",\n  \"truncation\": null,"));
    }

    #[test]
    fn save_and_load_a_file() {
        let dir = std::env::temp_dir().join(format!("fm-data-hfjson-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        let tok = small();
        tok.save(&path).unwrap();
        let back = BpeTokenizer::from_file(&path).unwrap();
        assert_eq!(back.to_json_string(), tok.to_json_string());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn legacy_string_merges_are_read() {
        let tok = small();
        let (l, r) = tok.merges().next().unwrap();
        let pair = format!("[\n        \"{l}\",\n        \"{r}\"\n      ]");
        let json = tok.to_json_string();
        assert!(json.contains(&pair));
        let legacy = json.replacen(&pair, &format!("\"{l} {r}\""), 1);
        let back = BpeTokenizer::from_json_str(&legacy).unwrap();
        assert_eq!(
            back.merges().collect::<Vec<_>>(),
            tok.merges().collect::<Vec<_>>()
        );
    }

    fn error_of(json: &str) -> String {
        BpeTokenizer::from_json_str(json).unwrap_err().to_string()
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = error_of("{\n  \"model\": {\n    \"vocab\": {\"a\": 0,}\n  }\n}");
        assert!(e.starts_with("<memory>:3:"), "{e}");
        let e = error_of("{\"model\": {\"vocab\": {}}}");
        assert!(e.contains("missing field `merges`"), "{e}");
        let dir = std::env::temp_dir().join(format!("fm-data-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.json");
        fs::write(&path, "{\n\n  oops").unwrap();
        let e = BpeTokenizer::from_file(&path).unwrap_err();
        match &e {
            DataError::Json { path: p, line, .. } => {
                assert_eq!(p, &path);
                assert_eq!(*line, 3);
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
        assert!(e.to_string().contains("broken.json:3:"), "{e}");
        let missing = BpeTokenizer::from_file(dir.join("absent.json")).unwrap_err();
        assert!(matches!(missing, DataError::Io { .. }));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unsupported_features_are_named() {
        let base: Value = serde_json::from_str(&small().to_json_string()).unwrap();
        let with = |pointer: &str, value: Value| {
            let mut v = base.clone();
            *v.pointer_mut(pointer).unwrap() = value;
            error_of(&v.to_string())
        };
        let e = with("/normalizer", serde_json::json!({"type": "NFC"}));
        assert!(e.contains("unsupported tokenizer: normalizer NFC"), "{e}");
        let e = with("/pre_tokenizer", serde_json::json!({"type": "Whitespace"}));
        assert!(e.contains("pre_tokenizer Whitespace"), "{e}");
        let e = with("/pre_tokenizer/use_regex", Value::Bool(false));
        assert!(e.contains("use_regex: false"), "{e}");
        let e = with("/model/type", Value::String("WordPiece".into()));
        assert!(e.contains("model type WordPiece"), "{e}");
        let e = with("/model/dropout", serde_json::json!(0.1));
        assert!(e.contains("dropout"), "{e}");
        let e = with(
            "/post_processor",
            serde_json::json!({"type": "TemplateProcessing"}),
        );
        assert!(e.contains("post_processor TemplateProcessing"), "{e}");
        let e = with("/added_tokens/0/lstrip", Value::Bool(true));
        assert!(e.contains("lstrip"), "{e}");
        let e = with("/truncation", serde_json::json!({"max_length": 8}));
        assert!(e.contains("truncation"), "{e}");
        let e = with("/model/merges/0", Value::String("a b c".into()));
        assert!(e.contains("merge 1 \"a b c\" is not two tokens"), "{e}");
        let e = with("/model/merges/0", serde_json::json!(["t", "zzz"]));
        assert!(e.contains("\"zzz\" is not in the vocabulary"), "{e}");
        // What does not change ids is accepted.
        let mut v = base.clone();
        v["post_processor"] = serde_json::json!({"type": "ByteLevel", "trim_offsets": false});
        v["padding"] = serde_json::json!({"strategy": "BatchLongest"});
        v["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": []});
        assert!(BpeTokenizer::from_json_str(&v.to_string()).is_ok());
    }
}
