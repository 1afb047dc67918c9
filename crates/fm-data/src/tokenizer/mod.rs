//! Tokenizers: text to token ids and back.
//!
//! Two tokenizers implement one [`Tokenizer`] trait:
//!
//! - [`BpeTokenizer`]: byte-level byte-pair encoding as in GPT-2 — trained here with [`BpeTrainer`]
//!   or loaded from a Hugging Face `tokenizer.json` ([`BpeTokenizer::from_file`]), and saved back in
//!   that format ([`BpeTokenizer::save`]). It encodes every string (any byte has a token), and
//!   `decode(encode(s)) == s` for every `s`.
//! - [`CharTokenizer`]: one token per character, for tiny demos and tests.
//!
//! The pieces: [`byte_level`] (the GPT-2 pre-tokenizer and the byte ↔ character map), [`bpe`]
//! (training and encoding), [`char_level`], and [`hf_json`] (the `tokenizer.json` format).
//!
//! ```
//! use fm_data::tokenizer::{BpeTrainer, Tokenizer};
//!
//! let texts = ["the cat sat on the mat", "the dog sat on the log"];
//! let tok = BpeTrainer::builder()
//!     .vocab_size(300)
//!     .special_tokens(["<|endoftext|>"])
//!     .build()?
//!     .train(&texts)?;
//! let ids = tok.encode("the cat sat<|endoftext|>")?;
//! assert_eq!(tok.decode(&ids)?, "the cat sat<|endoftext|>");
//! assert_eq!(ids.last(), Some(&tok.token_to_id("<|endoftext|>").unwrap()));
//! # Ok::<(), fm_data::DataError>(())
//! ```

pub mod added_tokens;
pub mod bpe;
pub mod byte_level;
pub mod char_level;
pub mod hf_json;
mod unicode_classes;

use rayon::prelude::*;

use crate::error::Result;

pub use added_tokens::AddedToken;
pub use bpe::{BpeTokenizer, BpeTrainer, BpeTrainerBuilder, WordCounts};
pub use char_level::CharTokenizer;

/// Text to token ids and back.
///
/// Ids are `u32` in `0..vocab_size()`. Special tokens (end-of-text, padding, ...) written in the
/// text are recognised by [`encode`](Tokenizer::encode) and become their ids; decoding writes them
/// back as text unless [`decode_skip_special`](Tokenizer::decode_skip_special) is used.
pub trait Tokenizer: Send + Sync {
    /// The ids of `text`.
    fn encode(&self, text: &str) -> Result<Vec<u32>>;

    /// The ids of each text, computed in parallel on the current rayon pool; the output is in input
    /// order and the same for any number of threads. On failure, the error of the first failing
    /// text (in input order).
    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let results: Vec<Result<Vec<u32>>> = texts.par_iter().map(|t| self.encode(t)).collect();
        results.into_iter().collect()
    }

    /// The text of `ids`, special tokens included. An id outside the vocabulary is an error.
    fn decode(&self, ids: &[u32]) -> Result<String>;

    /// The text of `ids` without the special tokens. An id outside the vocabulary is an error.
    fn decode_skip_special(&self, ids: &[u32]) -> Result<String>;

    /// One past the largest id: the number of rows an embedding table needs.
    fn vocab_size(&self) -> usize;

    /// The id of a token given as it is written in the vocabulary (for byte-level BPE, in the
    /// byte ↔ character map's characters, e.g. `"Ġthe"` for `" the"`).
    fn token_to_id(&self, token: &str) -> Option<u32>;

    /// The vocabulary string of `id`, or `None` if `id` is not in the vocabulary.
    fn id_to_token(&self, id: u32) -> Option<&str>;

    /// The special tokens, in id order.
    fn special_tokens(&self) -> Vec<AddedToken>;
}
