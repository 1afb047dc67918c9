//! Byte-level byte-pair encoding (BPE), as in GPT-2 and Hugging Face's `ByteLevel` BPE.
//!
//! A [`BpeTokenizer`] encodes text in three steps: added tokens such as `<|endoftext|>` are cut out
//! (see [`added_tokens`](super::added_tokens)); the rest is split into pieces by the GPT-2 pattern
//! ([`split_gpt2`](super::byte_level::split_gpt2)); each piece starts as one symbol per byte and
//! adjacent symbols are merged by the learned merges, lowest rank first. Every byte has a token, so
//! every string encodes and decodes back to itself.
//!
//! [`BpeTrainer`] learns the merges from text (`train.rs`), with the same choices as Hugging Face's
//! `BpeTrainer`, so both learn the same vocabulary from the same text. The encoder (`encode.rs`)
//! caches the ids of repeated words per thread.

mod encode;
mod fast_hash;
mod train;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use self::encode::{with_word_cache, Merger, NO_ID};
use self::fast_hash::{pair_key, FastMap};
use super::added_tokens::{AddedToken, AddedTokenMatcher, Segment};
use super::byte_level::{byte_to_char, token_string_to_bytes, Gpt2Scanner};
use super::Tokenizer;
use crate::error::{DataError, Result};

pub use self::train::{BpeTrainer, BpeTrainerBuilder, WordCounts};

/// Options of a byte-level BPE model beyond its vocabulary and merges. The defaults are those of a
/// tokenizer trained here; the others exist to load Hugging Face files faithfully.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BpeOptions {
    /// Put a space before every stretch of text that does not start with one (Hugging Face's
    /// `ByteLevel(add_prefix_space=True)`), so a word at the start encodes as it does mid-sentence.
    /// The space stays in the decoded text, so `decode(encode(s)) == s` holds only without it.
    pub add_prefix_space: bool,
    /// A token for bytes that have none (HF's `unk_token`). A byte-level vocabulary has all 256
    /// bytes and never needs it; without it such bytes are dropped, as HF does.
    pub unk_token: Option<String>,
    /// Whether consecutive unknown bytes share one unknown token (HF's `fuse_unk`).
    pub fuse_unk: bool,
    /// Whether a piece that is itself a token skips the merges (HF's `ignore_merges`, used by some
    /// recent models).
    pub ignore_merges: bool,
}

/// Gives each tokenizer its own key in the per-thread word caches.
static NEXT_CACHE_OWNER: AtomicU64 = AtomicU64::new(1);

/// A byte-level BPE tokenizer: vocabulary, merges and added tokens.
///
/// Immutable once built, cheap to share across threads (`&BpeTokenizer` is `Sync`). Encoding keeps
/// a per-thread cache of the ids of words seen, bounded at 2^17 words or 8 MiB of word text per
/// thread and emptied when the thread encodes with another tokenizer.
///
/// ```
/// use fm_data::tokenizer::{BpeTrainer, Tokenizer};
///
/// let tok = BpeTrainer::builder().vocab_size(280).build()?.train(&["low lower lowest"; 3])?;
/// let ids = tok.encode("lower")?;
/// assert_eq!(tok.decode(&ids)?, "lower");
/// assert!(ids.len() < "lower".len()); // merges learned from the text
/// # Ok::<(), fm_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BpeTokenizer {
    /// Vocabulary string of each id (`None` for ids with no token).
    tokens: Vec<Option<Box<str>>>,
    /// Bytes each id decodes to.
    token_bytes: Vec<Option<Box<[u8]>>>,
    /// Whether each id is in the model's vocabulary (as opposed to only an added token).
    in_model: Vec<bool>,
    /// Vocabulary string → id, model vocabulary and added tokens.
    ids: FastMap<Box<str>, u32>,
    /// Merges in rank order, as (left id, right id, merged id).
    merges: Vec<(u32, u32, u32)>,
    /// Pair key → `rank << 32 | merged id`.
    merge_map: FastMap<u64, u64>,
    /// Token of each byte, or `NO_ID`.
    byte_ids: [u32; 256],
    /// Token of each byte string, for `ignore_merges` only (empty otherwise).
    whole_words: FastMap<Box<[u8]>, u32>,
    /// Added tokens, in id order.
    added: Vec<AddedToken>,
    /// Whether each id is a special added token.
    special: Vec<bool>,
    matcher: AddedTokenMatcher,
    options: BpeOptions,
    unk_id: Option<u32>,
    cache_owner: u64,
}

/// Where a tokenizer description came from, for error messages.
pub(crate) const IN_MEMORY: &str = "<memory>";

impl BpeTokenizer {
    /// A tokenizer from a vocabulary (token string → id, tokens written in the byte ↔ character
    /// map, e.g. `"Ġthe"`), merges in rank order (pairs of token strings whose concatenation is in
    /// the vocabulary), added tokens and options: the content of GPT-2's `vocab.json` and
    /// `merges.txt`, or of a `tokenizer.json`.
    ///
    /// Errors name the first inconsistency: an id used twice, a merge whose parts or result are not
    /// in the vocabulary, an added token whose id disagrees with the vocabulary.
    pub fn from_vocab_and_merges(
        vocab: impl IntoIterator<Item = (String, u32)>,
        merges: impl IntoIterator<Item = (String, String)>,
        added_tokens: Vec<AddedToken>,
        options: BpeOptions,
    ) -> Result<Self> {
        Self::build(
            Path::new(IN_MEMORY),
            vocab.into_iter().collect(),
            merges.into_iter().collect(),
            added_tokens,
            options,
        )
    }

    pub(crate) fn build(
        origin: &Path,
        vocab: Vec<(String, u32)>,
        merges: Vec<(String, String)>,
        mut added: Vec<AddedToken>,
        options: BpeOptions,
    ) -> Result<Self> {
        let invalid = |reason: String| DataError::InvalidTokenizer {
            path: origin.to_path_buf(),
            reason,
        };
        let max_id = vocab
            .iter()
            .map(|(_, id)| *id)
            .chain(added.iter().map(|t| t.id))
            .max();
        let size = max_id.map_or(0, |m| m as usize + 1);
        if size > (u32::MAX as usize) {
            return Err(invalid("token id u32::MAX is reserved".into()));
        }
        // Tables are indexed by id: refuse ids so sparse that one typo would allocate gigabytes.
        let count = vocab.len() + added.len();
        if size > 16 * count + (1 << 16) {
            return Err(invalid(format!(
                "largest id {} for only {count} tokens: ids this sparse are not supported",
                size - 1
            )));
        }
        let mut tokens: Vec<Option<Box<str>>> = vec![None; size];
        let mut token_bytes: Vec<Option<Box<[u8]>>> = vec![None; size];
        let mut in_model = vec![false; size];
        let mut ids: FastMap<Box<str>, u32> = FastMap::default();
        for (token, id) in vocab {
            if let Some(other) = &tokens[id as usize] {
                return Err(invalid(format!(
                    "id {id} is given to both {other:?} and {token:?}"
                )));
            }
            if ids.contains_key(token.as_str()) {
                return Err(invalid(format!("token {token:?} appears twice")));
            }
            // A token outside the byte map (a special such as "<my pad>") decodes to its own
            // UTF-8, as HF's ByteLevel decoder does.
            let bytes = token_string_to_bytes(&token).unwrap_or_else(|| token.as_bytes().to_vec());
            token_bytes[id as usize] = Some(bytes.into_boxed_slice());
            in_model[id as usize] = true;
            ids.insert(token.clone().into_boxed_str(), id);
            tokens[id as usize] = Some(token.into_boxed_str());
        }

        added.sort_by_key(|t| t.id);
        let mut special = vec![false; size];
        for (k, t) in added.iter().enumerate() {
            if k > 0 && added[k - 1].id == t.id {
                return Err(invalid(format!(
                    "added tokens {:?} and {:?} share id {}",
                    added[k - 1].content,
                    t.content,
                    t.id
                )));
            }
            match (&tokens[t.id as usize], ids.get(t.content.as_str())) {
                (_, Some(&id)) if id != t.id => {
                    return Err(invalid(format!(
                        "added token {:?} has id {} but the vocabulary gives it {id}",
                        t.content, t.id
                    )))
                }
                (Some(other), None) => {
                    return Err(invalid(format!(
                        "added token {:?} has id {} which the vocabulary gives to {other:?}",
                        t.content, t.id
                    )))
                }
                _ => {}
            }
            tokens[t.id as usize] = Some(t.content.clone().into_boxed_str());
            // Added tokens decode to their own text.
            token_bytes[t.id as usize] = Some(t.content.as_bytes().into());
            ids.insert(t.content.clone().into_boxed_str(), t.id);
            special[t.id as usize] = t.special;
        }
        let matcher = AddedTokenMatcher::new(&added).map_err(|e| invalid(e.to_string()))?;

        let mut byte_ids = [NO_ID; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let mut buf = [0u8; 4];
            let s: &str = byte_to_char(b as u8).encode_utf8(&mut buf);
            if let Some(&id) = ids.get(s) {
                if in_model[id as usize] {
                    *slot = id;
                }
            }
        }

        let model_id = |token: &str| ids.get(token).copied().filter(|&id| in_model[id as usize]);
        let mut merge_list = Vec::with_capacity(merges.len());
        let mut merge_map: FastMap<u64, u64> = FastMap::default();
        merge_map.reserve(merges.len());
        for (rank, (left, right)) in merges.into_iter().enumerate() {
            let line = rank + 1;
            let lookup = |t: &str| {
                model_id(t).ok_or_else(|| {
                    invalid(format!(
                        "merge {line} ({left:?}, {right:?}): {t:?} is not in the vocabulary"
                    ))
                })
            };
            let (l, r) = (lookup(&left)?, lookup(&right)?);
            let merged = format!("{left}{right}");
            let new = lookup(&merged)?;
            // A pair listed twice keeps its last rank, as in HF (a later insert overwrites).
            merge_map.insert(pair_key(l, r), ((rank as u64) << 32) | new as u64);
            merge_list.push((l, r, new));
        }
        // Keep only the entry whose rank the map holds, so `merges()` lists what applies.
        let merges: Vec<(u32, u32, u32)> = merge_list
            .into_iter()
            .enumerate()
            .filter(|&(rank, (l, r, _))| merge_map[&pair_key(l, r)] >> 32 == rank as u64)
            .map(|(_, m)| m)
            .collect();

        let unk_id =
            match &options.unk_token {
                None => None,
                Some(unk) => Some(ids.get(unk.as_str()).copied().ok_or_else(|| {
                    invalid(format!("unk_token {unk:?} is not in the vocabulary"))
                })?),
            };
        let whole_words = if options.ignore_merges {
            (0..size)
                .filter(|&id| in_model[id])
                .filter_map(|id| Some((token_bytes[id].clone()?, id as u32)))
                .collect()
        } else {
            FastMap::default()
        };
        Ok(BpeTokenizer {
            tokens,
            token_bytes,
            in_model,
            ids,
            merges,
            merge_map,
            byte_ids,
            whole_words,
            added,
            special,
            matcher,
            options,
            unk_id,
            cache_owner: NEXT_CACHE_OWNER.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn merger(&self) -> Merger<'_> {
        Merger {
            merges: &self.merge_map,
            byte_ids: &self.byte_ids,
            unk: self.unk_id,
            fuse_unk: self.options.fuse_unk,
        }
    }

    /// Encodes `text` without looking for added tokens: `<|endoftext|>` in the text is encoded as
    /// the characters it is made of. Use this for untrusted text that must not inject control
    /// tokens.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        with_word_cache(self.cache_owner, |cache| {
            self.encode_stretch(text, cache, &mut out)
        });
        out
    }

    /// Appends the ids of `text` (added tokens recognised) to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        with_word_cache(self.cache_owner, |cache| {
            if self.matcher.is_empty() {
                self.encode_stretch(text, cache, out);
                return;
            }
            self.matcher.split(text, |segment| match segment {
                Segment::Text(t) => self.encode_stretch(t, cache, out),
                Segment::Added(id) => out.push(id),
            });
        });
    }

    /// Text without added tokens: pre-tokenize and encode each piece.
    fn encode_stretch(&self, text: &str, cache: &mut encode::WordCache, out: &mut Vec<u32>) {
        if self.options.add_prefix_space && !text.starts_with(' ') {
            let spaced = format!(" {text}");
            return self.encode_pieces(&spaced, cache, out);
        }
        self.encode_pieces(text, cache, out)
    }

    fn encode_pieces(&self, text: &str, cache: &mut encode::WordCache, out: &mut Vec<u32>) {
        let scanner = Gpt2Scanner::new();
        let merger = self.merger();
        let bytes = text.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let end = scanner.piece_end(text, pos);
            let piece = &bytes[pos..end];
            pos = end;
            if piece.len() == 1 && self.byte_ids[piece[0] as usize] != NO_ID {
                out.push(self.byte_ids[piece[0] as usize]);
                continue;
            }
            if self.options.ignore_merges {
                if let Some(&id) = self.whole_words.get(piece) {
                    out.push(id);
                    continue;
                }
            }
            cache.encode_piece(&merger, piece, out);
        }
    }

    /// Like [`Tokenizer::encode_batch`] for any string type; in input order, the same for any number
    /// of threads.
    pub fn encode_batch_of<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        texts
            .par_iter()
            .map(|t| {
                let mut out = Vec::with_capacity(t.as_ref().len() / 3 + 1);
                self.encode_into(t.as_ref(), &mut out);
                out
            })
            .collect()
    }

    /// The bytes of `ids`: exactly what was encoded, also when it is not valid UTF-8 (a sequence
    /// cut in the middle of a character). Special tokens are included.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        self.decode_bytes_filtered(ids, false)
    }

    fn decode_bytes_filtered(&self, ids: &[u32], skip_special: bool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.token_bytes.get(id as usize) {
                Some(Some(bytes)) => {
                    if !(skip_special && self.special[id as usize]) {
                        out.extend_from_slice(bytes)
                    }
                }
                _ => {
                    return Err(DataError::UnknownTokenId {
                        id,
                        vocab_size: self.tokens.len(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The merges in rank order, as pairs of vocabulary strings.
    pub fn merges(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.merges
            .iter()
            .map(|&(l, r, _)| (self.token_str(l), self.token_str(r)))
    }

    /// The model's vocabulary (token string, id) in id order; added tokens that are not in the
    /// model vocabulary are not included (see [`added_tokens`](Self::added_tokens)).
    pub fn model_vocab(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        (0..self.tokens.len())
            .filter(|&id| self.in_model[id])
            .map(|id| (self.token_str(id as u32), id as u32))
    }

    /// The added tokens (special or not), in id order.
    pub fn added_tokens(&self) -> &[AddedToken] {
        &self.added
    }

    /// The model options.
    pub fn options(&self) -> &BpeOptions {
        &self.options
    }

    /// The bytes token `id` stands for, or `None` if there is no such token.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.token_bytes.get(id as usize)?.as_deref()
    }

    fn token_str(&self, id: u32) -> &str {
        self.tokens[id as usize]
            .as_deref()
            .expect("merge parts are vocabulary tokens")
    }
}

/// Hugging Face's ByteLevel decoder turns invalid UTF-8 into U+FFFD; so does this.
fn bytes_to_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

impl Tokenizer for BpeTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, &mut out);
        Ok(out)
    }

    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(self.encode_batch_of(texts))
    }

    /// Invalid UTF-8 (only possible for id sequences `encode` does not produce) becomes U+FFFD, as
    /// in Hugging Face; [`decode_bytes`](BpeTokenizer::decode_bytes) gives the exact bytes.
    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(bytes_to_string(self.decode_bytes_filtered(ids, false)?))
    }

    fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        Ok(bytes_to_string(self.decode_bytes_filtered(ids, true)?))
    }

    fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize)?.as_deref()
    }

    fn special_tokens(&self) -> Vec<AddedToken> {
        self.added.iter().filter(|t| t.special).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::byte_level::bytes_to_token_string;

    /// All 256 bytes, then "ab", "abc", "Ġa" merged in that order, and `<s>` as a special token.
    fn tiny() -> BpeTokenizer {
        let mut vocab: Vec<(String, u32)> = (0..=255u8)
            .map(|b| (bytes_to_token_string(&[b]), b as u32))
            .collect();
        vocab.push(("ab".into(), 256));
        vocab.push(("abc".into(), 257));
        vocab.push(("Ġa".into(), 258));
        vocab.push(("<s>".into(), 259));
        let merges =
            [("a", "b"), ("ab", "c"), ("Ġ", "a")].map(|(l, r)| (l.to_string(), r.to_string()));
        BpeTokenizer::from_vocab_and_merges(
            vocab,
            merges,
            vec![AddedToken::special("<s>", 259)],
            BpeOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn encodes_with_merges_and_special_tokens() {
        let tok = tiny();
        assert_eq!(tok.encode("abc").unwrap(), [257]);
        assert_eq!(tok.encode("abd a").unwrap(), [256, b'd' as u32, 258]);
        assert_eq!(tok.encode("<s>abc<s>").unwrap(), [259, 257, 259]);
        assert_eq!(
            tok.encode_ordinary("<s>"),
            [b'<' as u32, b's' as u32, b'>' as u32]
        );
        assert_eq!(tok.encode("").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn decodes_exactly_and_skips_specials_on_request() {
        let tok = tiny();
        let ids = tok.encode("<s>abc a\n").unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "<s>abc a\n");
        assert_eq!(tok.decode_skip_special(&ids).unwrap(), "abc a\n");
        // Half a character: the exact bytes, or U+FFFD in text.
        let e_acute = "é".as_bytes();
        assert_eq!(
            tok.decode_bytes(&[e_acute[0] as u32]).unwrap(),
            [e_acute[0]]
        );
        assert_eq!(tok.decode(&[e_acute[0] as u32]).unwrap(), "\u{FFFD}");
    }

    #[test]
    fn unknown_ids_are_errors_not_panics() {
        let tok = tiny();
        for bad in [260u32, 100_000, u32::MAX] {
            match tok.decode(&[97, bad]) {
                Err(DataError::UnknownTokenId { id, vocab_size }) => {
                    assert_eq!((id, vocab_size), (bad, 260))
                }
                other => panic!("expected UnknownTokenId, got {other:?}"),
            }
        }
    }

    #[test]
    fn vocabulary_lookups() {
        let tok = tiny();
        assert_eq!(tok.vocab_size(), 260);
        assert_eq!(tok.token_to_id("Ġa"), Some(258));
        assert_eq!(tok.id_to_token(32), Some("Ġ"));
        assert_eq!(tok.id_to_token(260), None);
        assert_eq!(tok.special_tokens(), [AddedToken::special("<s>", 259)]);
        assert_eq!(
            tok.merges().collect::<Vec<_>>(),
            [("a", "b"), ("ab", "c"), ("Ġ", "a")]
        );
        assert_eq!(tok.model_vocab().count(), 260);
        assert_eq!(tok.token_bytes(32), Some(&b" "[..]));
    }

    #[test]
    fn inconsistent_vocabularies_are_refused_with_the_reason() {
        let vocab = || vec![("a".to_string(), 0), ("b".to_string(), 1)];
        let err = |vocab: Vec<(String, u32)>, merges: Vec<(&str, &str)>, added| {
            BpeTokenizer::from_vocab_and_merges(
                vocab,
                merges
                    .into_iter()
                    .map(|(l, r)| (l.to_string(), r.to_string())),
                added,
                BpeOptions::default(),
            )
            .unwrap_err()
            .to_string()
        };
        let e = err(vocab(), vec![("a", "b")], vec![]);
        assert!(
            e.contains("merge 1 (\"a\", \"b\"): \"ab\" is not in the vocabulary"),
            "{e}"
        );
        let e = err(vocab(), vec![("a", "z")], vec![]);
        assert!(e.contains("\"z\" is not in the vocabulary"), "{e}");
        let mut dup = vocab();
        dup.push(("c".into(), 1));
        assert!(err(dup, vec![], vec![]).contains("id 1 is given to both"));
        let e = err(vocab(), vec![], vec![AddedToken::special("a", 5)]);
        assert!(e.contains("vocabulary gives it 0"), "{e}");
        let e = err(vocab(), vec![], vec![AddedToken::special("<x>", 1)]);
        assert!(e.contains("which the vocabulary gives to \"b\""), "{e}");
        let mut sparse = vocab();
        sparse.push(("c".into(), 4_000_000_000));
        let e = err(sparse, vec![], vec![]);
        assert!(e.contains("largest id 4000000000 for only 3 tokens"), "{e}");
    }

    #[test]
    fn prefix_space_and_ignore_merges_follow_hf() {
        let base = tiny();
        let vocab: Vec<(String, u32)> = base.model_vocab().map(|(t, i)| (t.into(), i)).collect();
        let merges: Vec<(String, String)> =
            base.merges().map(|(l, r)| (l.into(), r.into())).collect();
        let opts = BpeOptions {
            add_prefix_space: true,
            ..BpeOptions::default()
        };
        let tok = BpeTokenizer::from_vocab_and_merges(
            vocab.clone(),
            merges.clone(),
            vec![AddedToken::special("<s>", 259)],
            opts,
        )
        .unwrap();
        assert_eq!(tok.encode("a<s>a").unwrap(), [258, 259, 258]);
        assert_eq!(tok.decode(&tok.encode("a").unwrap()).unwrap(), " a");

        // "abc" is a token, but without the merge a+b its merges could not build it.
        let merges: Vec<(String, String)> = vec![("ab".into(), "c".into())];
        let opts = BpeOptions {
            ignore_merges: true,
            ..BpeOptions::default()
        };
        let tok = BpeTokenizer::from_vocab_and_merges(vocab.clone(), merges.clone(), vec![], opts)
            .unwrap();
        assert_eq!(tok.encode("abc").unwrap(), [257]);
        let plain =
            BpeTokenizer::from_vocab_and_merges(vocab, merges, vec![], BpeOptions::default())
                .unwrap();
        assert_eq!(plain.encode("abc").unwrap(), [97, 98, 99]);
    }

    #[test]
    fn batches_keep_order() {
        let tok = tiny();
        let texts = ["abc", "<s>", "a a a", ""];
        let batch = tok.encode_batch(&texts).unwrap();
        for (t, ids) in texts.iter().zip(&batch) {
            assert_eq!(&tok.encode(t).unwrap(), ids);
        }
    }
}
