//! # fm-data
//!
//! The first stage of the fm stack: collecting and cleaning text, and turning it into the token ids
//! a model trains on. It speaks
//! plain Rust types (strings, `Vec<u32>`) and needs no autograd, so it is usable on its own — to
//! train a tokenizer, to load a Hugging Face one, or to tokenize a corpus for another framework.
//!
//! ## A first example
//!
//! Train a byte-level BPE tokenizer on a little text, encode, decode, and save it in Hugging Face's
//! `tokenizer.json` format:
//!
//! ```
//! use fm_data::tokenizer::{BpeTokenizer, BpeTrainer, Tokenizer};
//!
//! let corpus = [
//!     "Rust is a systems programming language.",
//!     "Rust programs are fast and memory-safe.",
//!     "Programming in Rust is fun.",
//! ];
//! let tokenizer = BpeTrainer::builder()
//!     .vocab_size(300)
//!     .min_frequency(2)
//!     .special_tokens(["<|endoftext|>"])
//!     .build()?
//!     .train(&corpus)?;
//!
//! let ids = tokenizer.encode("Rust programming<|endoftext|>")?;
//! assert_eq!(tokenizer.decode(&ids)?, "Rust programming<|endoftext|>");
//!
//! // The same file loads in Python with `tokenizers.Tokenizer.from_file`.
//! let json = tokenizer.to_json_string();
//! let reloaded = BpeTokenizer::from_json_str(&json)?;
//! assert_eq!(reloaded.encode("Rust programming")?, tokenizer.encode("Rust programming")?);
//! # Ok::<(), fm_data::DataError>(())
//! ```
//!
//! ## Where to look next
//!
//! 1. [`tokenizer`]: the [`Tokenizer`](tokenizer::Tokenizer) trait, the byte-level
//!    [`BpeTokenizer`](tokenizer::BpeTokenizer) with its [`BpeTrainer`](tokenizer::BpeTrainer),
//!    and the [`CharTokenizer`](tokenizer::CharTokenizer) for tiny demos.
//! 2. [`tokenizer::byte_level`]: the GPT-2 pre-tokenizer (a hand-written scanner equal to the
//!    GPT-2 regex) and the byte ↔ character map.
//! 3. [`tokenizer::hf_json`]: what of Hugging Face's `tokenizer.json` is read and written.
//! 4. [`collect`]: streaming line readers with provenance and a skip-or-stop policy for bad input;
//!    [`clean`]: HTML to text, whitespace and control characters (code blocks keep their lines
//!    and indentation: [`clean::blocks`]), PII masking, quality filters; [`dedup`]: exact,
//!    boilerplate-line ([`dedup::lines`]) and paragraph-level deduplication; [`labels`]: a label
//!    vocabulary, labelled JSON Lines, (text, label) datasets, class counts and stratified splits.
//!    [`pipeline`]: a directory to cleaned, deduplicated documents with a serde report
//!    ([`pipeline::run_directory`]); [`dedup::near`]: MinHash + LSH near-duplicate clusters.
//! 5. [`token_shard`]: a tokenized corpus on disk (u16/u32 ids behind a small JSON header), written
//!    by streaming and read back memory-mapped as windows and ndarray batches.
//! 6. [`dataset`]: the [`Dataset`](dataset::Dataset) trait, in-memory and token-shard datasets,
//!    seeded splits, samplers (sequential, shuffled per epoch, sharded by rank) and the
//!    prefetching, deterministic, resumable [`DataLoader`](dataset::DataLoader);
//!    [`packing`]: documents joined with an end-of-text id and cut into `context + 1` windows.
//! 7. [`tabular`]: CSV to a feature matrix and targets, `StandardScaler` and `MinMaxScaler` as
//!    scikit-learn computes them.
//!
//! ## Compatibility with Hugging Face `tokenizers`
//!
//! Training follows HF's `BpeTrainer` (same vocabulary order, same merge choice and tie-breaking),
//! so the same text and settings give the same merges and ids; encoding follows HF's BPE model and
//! `ByteLevel` pre-tokenizer, with the same Unicode classes. Tests check both against fixtures
//! produced by HF (`tests/fixtures/tokenizer/`).
//!
//! ## Determinism and threads
//!
//! Parallel work (counting words for training, batch encoding) runs on the current rayon pool and
//! gives the same result for any number of threads: outputs are per input, and counts are sums.
//!
//! ## Errors
//!
//! One error type, [`DataError`]. A malformed file names the file, line and column; an unknown
//! token id names the id and the vocabulary size. Nothing panics on user input.

pub mod clean;
pub mod collect;
pub mod dataset;
pub mod dedup;
pub mod error;
pub mod labels;
pub mod packing;
pub mod pipeline;
pub mod tabular;
pub mod token_shard;
pub mod tokenizer;

pub use error::{DataError, Result};
