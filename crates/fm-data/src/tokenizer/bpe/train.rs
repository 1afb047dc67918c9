//! Learning byte-level BPE merges from text, the way Hugging Face's `BpeTrainer` does.
//!
//! **Counting.** Each text is cut into pieces by the GPT-2 pattern and identical pieces are counted
//! ([`WordCounts`]); texts are counted in parallel and the counts summed. As in HF, special tokens
//! written in the training text are not cut out: they are counted as ordinary text.
//!
//! **The vocabulary** starts with the special tokens (ids `0..k` in the order given), then the 256
//! single bytes ordered by the code point of their character in the byte ↔ character map (so `!` is
//! first and `Ġ`, the space, comes after `ÿ`), as HF does with `initial_alphabet =
//! ByteLevel.alphabet()`.
//!
//! **Merging.** Repeatedly, the adjacent pair of symbols that occurs most often over all words
//! (weighted by word counts) is merged into a new token, until the vocabulary reaches the requested
//! size, no pair is left, or the best pair occurs fewer than `min_frequency` times. Ties are broken
//! deterministically by the smaller pair of ids (left id first, then right id) — HF's rule, which
//! favours pairs of older tokens. Within a word, occurrences are merged left to right without
//! overlap (`aaa` with `a`+`a` gives `aa a`). When the merged string is already a token (the same
//! bytes reached by another path), HF records the merge and reuses the id without growing the
//! vocabulary; so does this.
//!
//! The algorithm is HF's: pair counts are kept up to date with the changes each merge makes, and a
//! max-heap of candidate pairs, each with the words it occurs in, is corrected lazily (an entry
//! whose count is stale is pushed back with the current count). Only the parts HF leaves to hash
//! map iteration order differ — which word gets which index — and they do not change the result.
//! So the merges and ids match HF's for the same text and settings; the tests compare them on
//! committed HF fixtures. Results are the same for any number of threads.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::fast_hash::{pair_key, pair_of, FastMap};
use super::{BpeOptions, BpeTokenizer};
use crate::error::{DataError, Result};
use crate::tokenizer::added_tokens::AddedToken;
use crate::tokenizer::byte_level::{byte_to_char, split_gpt2};

/// Counts of the pre-tokenized pieces ("words") of a corpus: the input of BPE training.
///
/// Build it in one go with [`WordCounts::from_texts`], or stream a corpus larger than memory
/// through [`add_text`](Self::add_text) / [`add_texts`](Self::add_texts) (memory grows with the
/// number of distinct words, not with the corpus).
#[derive(Clone, Debug, Default)]
pub struct WordCounts {
    counts: FastMap<Box<[u8]>, u64>,
}

impl WordCounts {
    /// No words yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the words of `texts`, in parallel on the current rayon pool.
    pub fn from_texts<S: AsRef<str> + Sync>(texts: &[S]) -> Self {
        let mut counts = WordCounts::new();
        counts.add_texts(texts);
        counts
    }

    /// Adds the words of one text.
    pub fn add_text(&mut self, text: &str) {
        for piece in split_gpt2(text) {
            let piece = piece.as_bytes();
            match self.counts.get_mut(piece) {
                Some(c) => *c += 1,
                None => {
                    self.counts.insert(piece.into(), 1);
                }
            }
        }
    }

    /// Adds the words of `texts`, in parallel on the current rayon pool (counts are sums, so the
    /// result does not depend on the number of threads).
    pub fn add_texts<S: AsRef<str> + Sync>(&mut self, texts: &[S]) {
        let counted = texts
            .par_iter()
            .fold(WordCounts::new, |mut acc, t| {
                acc.add_text(t.as_ref());
                acc
            })
            .reduce(WordCounts::new, |mut a, b| {
                a.merge(b);
                a
            });
        self.merge(counted);
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: WordCounts) {
        let (mut big, small) = if other.counts.len() > self.counts.len() {
            (other.counts, std::mem::take(&mut self.counts))
        } else {
            (std::mem::take(&mut self.counts), other.counts)
        };
        for (word, n) in small {
            *big.entry(word).or_insert(0) += n;
        }
        self.counts = big;
    }

    /// How many times `word` was seen.
    pub fn get(&self, word: &str) -> u64 {
        self.counts.get(word.as_bytes()).copied().unwrap_or(0)
    }

    /// The number of distinct words.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no word was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The number of words counted, repeats included.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Settings of BPE training, validated by [`build`](BpeTrainerBuilder::build).
#[derive(Clone, Debug)]
pub struct BpeTrainerBuilder {
    vocab_size: usize,
    min_frequency: u64,
    special_tokens: Vec<String>,
}

impl Default for BpeTrainerBuilder {
    fn default() -> Self {
        BpeTrainerBuilder {
            vocab_size: 30_000,
            min_frequency: 0,
            special_tokens: Vec::new(),
        }
    }
}

impl BpeTrainerBuilder {
    /// The vocabulary size to reach: special tokens + 256 bytes + merges (default 30000, HF's).
    /// Training stops earlier if no pair is left or the best is rarer than `min_frequency`.
    pub fn vocab_size(mut self, vocab_size: usize) -> Self {
        self.vocab_size = vocab_size;
        self
    }

    /// The fewest occurrences a pair needs to be merged (default 0: any pair that occurs).
    pub fn min_frequency(mut self, min_frequency: u64) -> Self {
        self.min_frequency = min_frequency;
        self
    }

    /// Special tokens, given ids `0..k` in this order (duplicates are kept once).
    pub fn special_tokens<I, S>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.special_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the settings: no empty special token, and room for the specials and the 256 bytes.
    pub fn build(mut self) -> Result<BpeTrainer> {
        let mut seen = std::collections::HashSet::new();
        self.special_tokens.retain(|t| seen.insert(t.clone()));
        if self.special_tokens.iter().any(String::is_empty) {
            return Err(DataError::config(
                "BpeTrainer",
                "a special token is the empty string",
            ));
        }
        let floor = self.special_tokens.len() + 256;
        if self.vocab_size < floor {
            return Err(DataError::config(
                "BpeTrainer",
                format!(
                    "vocab_size {} is below the {} special tokens + 256 bytes = {floor}",
                    self.vocab_size,
                    self.special_tokens.len()
                ),
            ));
        }
        if self.vocab_size > u32::MAX as usize {
            return Err(DataError::config(
                "BpeTrainer",
                format!("vocab_size {} does not fit u32 ids", self.vocab_size),
            ));
        }
        Ok(BpeTrainer {
            vocab_size: self.vocab_size,
            min_frequency: self.min_frequency,
            special_tokens: self.special_tokens,
        })
    }
}

/// Learns a [`BpeTokenizer`] from text (see the module docs for the algorithm).
///
/// ```
/// use fm_data::tokenizer::{BpeTrainer, Tokenizer};
///
/// let trainer = BpeTrainer::builder()
///     .vocab_size(260)
///     .min_frequency(2)
///     .special_tokens(["<|endoftext|>"])
///     .build()?;
/// let tok = trainer.train(&["hug hug hug pug pun bun"])?;
/// assert_eq!(tok.vocab_size(), 260);
/// assert_eq!(tok.merges().next(), Some(("u", "g"))); // the most frequent pair first
/// # Ok::<(), fm_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BpeTrainer {
    vocab_size: usize,
    min_frequency: u64,
    special_tokens: Vec<String>,
}

/// A candidate merge in the heap: a pair, its count when pushed, and words it occurs in.
struct Candidate {
    count: u64,
    pair: u64,
    words: Vec<u32>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.pair == other.pair
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    /// Larger count first; on equal counts the smaller pair (HF's tie rule).
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
    }
}

impl BpeTrainer {
    /// Settings with HF's defaults (vocab size 30000, no minimum frequency, no special tokens).
    pub fn builder() -> BpeTrainerBuilder {
        BpeTrainerBuilder::default()
    }

    /// Counts the words of `texts` (in parallel) and learns the merges.
    pub fn train<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<BpeTokenizer> {
        self.train_from_counts(&WordCounts::from_texts(texts))
    }

    /// Learns the merges from counted words.
    pub fn train_from_counts(&self, counts: &WordCounts) -> Result<BpeTokenizer> {
        // Vocabulary strings, as HF keys them: specials as written, bytes and merged tokens in the
        // byte ↔ character map.
        let mut token_of_id: Vec<String> = Vec::with_capacity(self.vocab_size);
        let mut id_of_token: FastMap<String, u32> = FastMap::default();
        for special in &self.special_tokens {
            id_of_token.insert(special.clone(), token_of_id.len() as u32);
            token_of_id.push(special.clone());
        }
        let mut bytes_by_char: Vec<u8> = (0..=255u8).collect();
        bytes_by_char.sort_by_key(|&b| byte_to_char(b) as u32);
        let mut byte_ids = [0u32; 256];
        for b in bytes_by_char {
            let token = byte_to_char(b).to_string();
            // A special token that is a single byte's character shares its id, as in HF.
            let id = *id_of_token.entry(token.clone()).or_insert_with(|| {
                token_of_id.push(token);
                token_of_id.len() as u32 - 1
            });
            byte_ids[b as usize] = id;
        }

        // Words in byte order, so every index and list below is reproducible.
        let mut entries: Vec<(&[u8], u64)> =
            counts.counts.iter().map(|(w, &c)| (&**w, c)).collect();
        entries.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut words: Vec<Vec<u32>> = entries
            .par_iter()
            .map(|(w, _)| w.iter().map(|&b| byte_ids[b as usize]).collect())
            .collect();
        let weights: Vec<i64> = entries.iter().map(|&(_, c)| c as i64).collect();
        drop(entries);

        let (mut pair_counts, occurrences) = count_pairs(&words, &weights);
        let mut heap: BinaryHeap<Candidate> = occurrences
            .into_iter()
            .filter_map(|(pair, words)| {
                let count = pair_counts[&pair];
                (count > 0).then_some(Candidate {
                    count: count as u64,
                    pair,
                    words,
                })
            })
            .collect();

        let mut merges: Vec<(u32, u32)> = Vec::new();
        let mut new_occurrences: FastMap<u64, Vec<u32>> = FastMap::default();
        let mut changes: Vec<(u64, i32)> = Vec::new();
        while token_of_id.len() < self.vocab_size {
            let Some(mut top) = heap.pop() else { break };
            let current = pair_counts.get(&top.pair).copied().unwrap_or(0).max(0) as u64;
            if top.count != current {
                top.count = current;
                heap.push(top);
                continue;
            }
            if top.count < 1 || top.count < self.min_frequency {
                break;
            }
            let (left, right) = pair_of(top.pair);
            let merged = format!(
                "{}{}",
                token_of_id[left as usize], token_of_id[right as usize]
            );
            let new_id = match id_of_token.get(&merged) {
                Some(&id) => id,
                None => {
                    let id = token_of_id.len() as u32;
                    id_of_token.insert(merged.clone(), id);
                    token_of_id.push(merged);
                    id
                }
            };
            merges.push((left, right));

            for &w in &top.words {
                changes.clear();
                merge_in_word(&mut words[w as usize], left, right, new_id, &mut changes);
                let weight = weights[w as usize];
                for &(pair, delta) in &changes {
                    *pair_counts.entry(pair).or_insert(0) += delta as i64 * weight;
                    if delta > 0 {
                        let list = new_occurrences.entry(pair).or_default();
                        if list.last() != Some(&w) {
                            list.push(w);
                        }
                    }
                }
            }
            for (pair, words) in new_occurrences.drain() {
                let count = pair_counts[&pair];
                if count > 0 {
                    heap.push(Candidate {
                        count: count as u64,
                        pair,
                        words,
                    });
                }
            }
        }

        // A pair merged twice (possible only when its result already existed) keeps its last rank,
        // as HF's merge map does; `BpeTokenizer::build` applies that rule.
        let vocab: Vec<(String, u32)> = token_of_id
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();
        let merges: Vec<(String, String)> = merges
            .into_iter()
            .map(|(l, r)| {
                (
                    token_of_id[l as usize].clone(),
                    token_of_id[r as usize].clone(),
                )
            })
            .collect();
        let added = self
            .special_tokens
            .iter()
            .map(|t| AddedToken::special(t.clone(), id_of_token[t]))
            .collect();
        BpeTokenizer::from_vocab_and_merges(vocab, merges, added, BpeOptions::default())
    }
}

/// Pair counts over all words (weighted) and, for each pair, the words it occurs in (ascending,
/// once each). Parallel over blocks of words; block results are combined in block order.
#[allow(clippy::type_complexity)]
fn count_pairs(words: &[Vec<u32>], weights: &[i64]) -> (FastMap<u64, i64>, FastMap<u64, Vec<u32>>) {
    const BLOCK: usize = 8192;
    let blocks: Vec<(FastMap<u64, i64>, FastMap<u64, Vec<u32>>)> = words
        .par_chunks(BLOCK)
        .enumerate()
        .map(|(b, chunk)| {
            let mut counts: FastMap<u64, i64> = FastMap::default();
            let mut where_: FastMap<u64, Vec<u32>> = FastMap::default();
            for (k, word) in chunk.iter().enumerate() {
                let w = (b * BLOCK + k) as u32;
                for pair in word.windows(2) {
                    let key = pair_key(pair[0], pair[1]);
                    *counts.entry(key).or_insert(0) += weights[w as usize];
                    let list = where_.entry(key).or_default();
                    if list.last() != Some(&w) {
                        list.push(w);
                    }
                }
            }
            (counts, where_)
        })
        .collect();
    let mut counts: FastMap<u64, i64> = FastMap::default();
    let mut where_: FastMap<u64, Vec<u32>> = FastMap::default();
    for (c, w) in blocks {
        for (k, v) in c {
            *counts.entry(k).or_insert(0) += v;
        }
        for (k, mut v) in w {
            where_.entry(k).or_default().append(&mut v);
        }
    }
    (counts, where_)
}

/// Merges every non-overlapping occurrence of (left, right) in `word`, left to right, and records
/// how the word's pair counts change (HF's `Word::merge`: the merged pair itself is not reported).
fn merge_in_word(
    word: &mut Vec<u32>,
    left: u32,
    right: u32,
    new_id: u32,
    changes: &mut Vec<(u64, i32)>,
) {
    let n = word.len();
    let mut read = 0;
    let mut write = 0;
    while read < n {
        if read + 1 < n && word[read] == left && word[read + 1] == right {
            if write > 0 {
                let before = word[write - 1];
                changes.push((pair_key(before, left), -1));
                changes.push((pair_key(before, new_id), 1));
            }
            if read + 2 < n {
                let after = word[read + 2];
                changes.push((pair_key(right, after), -1));
                changes.push((pair_key(new_id, after), 1));
            }
            word[write] = new_id;
            read += 2;
        } else {
            word[write] = word[read];
            read += 1;
        }
        write += 1;
    }
    word.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::byte_level::bytes_to_token_string;
    use crate::tokenizer::Tokenizer;

    #[test]
    fn merging_in_a_word_is_left_to_right_without_overlap() {
        let mut word = vec![1, 1, 1, 1, 1];
        let mut changes = Vec::new();
        merge_in_word(&mut word, 1, 1, 9, &mut changes);
        assert_eq!(word, [9, 9, 1]);
        // Net change: (1,1) loses the two pairs that overlapped merges, (9,9) and (9,1) appear.
        let mut net: FastMap<u64, i32> = FastMap::default();
        for (p, d) in changes {
            *net.entry(p).or_insert(0) += d;
        }
        assert_eq!(net[&pair_key(1, 1)], -2);
        assert_eq!(net[&pair_key(9, 9)], 1);
        assert_eq!(net[&pair_key(9, 1)], 1);
    }

    #[test]
    fn word_counts_merge_and_stream() {
        let mut a = WordCounts::new();
        a.add_text("the cat the");
        let mut b = WordCounts::new();
        b.add_text(" the dog");
        a.merge(b);
        assert_eq!(a.get("the"), 1);
        assert_eq!(a.get(" the"), 2);
        assert_eq!(a.len(), 4);
        assert_eq!(a.total(), 5);
        let all = WordCounts::from_texts(&["the cat the", " the dog"]);
        assert_eq!(all.len(), a.len());
        assert_eq!(all.total(), a.total());
    }

    #[test]
    fn settings_are_validated() {
        assert!(BpeTrainer::builder().vocab_size(255).build().is_err());
        assert!(BpeTrainer::builder()
            .vocab_size(257)
            .special_tokens(["<a>", "<b>"])
            .build()
            .is_err());
        assert!(BpeTrainer::builder().special_tokens([""]).build().is_err());
        let t = BpeTrainer::builder()
            .vocab_size(257)
            .special_tokens(["<a>", "<a>"])
            .build()
            .unwrap();
        assert_eq!(t.special_tokens, ["<a>"]);
    }

    #[test]
    fn most_frequent_pair_first_and_ties_to_older_ids() {
        // Words: "ab" x1, " ab" x2, " cd" x3. Pairs: (a,b) 3, (Ġ,a) 2, (Ġ,c) 3, (c,d) 3.
        // Three pairs tie at 3; by ids a < c < Ġ, so (a,b) goes first, then (c,d) beats (Ġ,c).
        let tok = BpeTrainer::builder()
            .vocab_size(256 + 2)
            .build()
            .unwrap()
            .train(&["ab ab ab cd cd cd"])
            .unwrap();
        let merges: Vec<_> = tok.merges().collect();
        assert_eq!(merges[0], ("a", "b"));
        assert_eq!(merges[1], ("c", "d"));
    }

    #[test]
    fn stops_at_min_frequency_and_when_no_pair_is_left() {
        let t = BpeTrainer::builder()
            .vocab_size(1000)
            .min_frequency(3)
            .build()
            .unwrap();
        let tok = t.train(&["aaab aaab aaab xy"]).unwrap();
        assert!(tok.merges().all(|(l, r)| l != "x" && r != "y"));
        let t = BpeTrainer::builder().vocab_size(1000).build().unwrap();
        let tok = t.train(&["abc"]).unwrap();
        assert_eq!(tok.merges().count(), 2); // a+b, ab+c, then nothing is left
        assert_eq!(tok.vocab_size(), 258);
        assert_eq!(tok.encode("abc").unwrap().len(), 1);
    }

    #[test]
    fn an_empty_corpus_gives_the_byte_alphabet() {
        let tok = BpeTrainer::builder()
            .vocab_size(1000)
            .special_tokens(["<s>"])
            .build()
            .unwrap()
            .train(&[""; 0])
            .unwrap();
        assert_eq!(tok.vocab_size(), 257);
        assert_eq!(tok.merges().count(), 0);
        assert_eq!(
            tok.decode(&tok.encode("any text ✓").unwrap()).unwrap(),
            "any text ✓"
        );
    }

    #[test]
    fn specials_come_first_then_bytes_in_character_order() {
        let tok = BpeTrainer::builder()
            .vocab_size(300)
            .special_tokens(["<|endoftext|>", "<pad>"])
            .build()
            .unwrap()
            .train(&["hello"])
            .unwrap();
        assert_eq!(tok.token_to_id("<|endoftext|>"), Some(0));
        assert_eq!(tok.token_to_id("<pad>"), Some(1));
        assert_eq!(tok.token_to_id("!"), Some(2));
        assert_eq!(tok.token_to_id("Ā"), Some(2 + 188)); // byte 0 after the 188 printable bytes
        assert_eq!(tok.special_tokens().len(), 2);
        assert_eq!(
            tok.encode("hello<pad>").unwrap().last(),
            Some(&1),
            "specials are matched when encoding"
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let texts: Vec<String> = (0..400)
            .map(|i| format!("line {i}: the quick brown fox {} jumps", i * 7919 % 1000))
            .collect();
        let train = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let tok = BpeTrainer::builder()
                    .vocab_size(400)
                    .build()
                    .unwrap()
                    .train(&texts)
                    .unwrap();
                let merges: Vec<(String, String)> = tok
                    .merges()
                    .map(|(l, r)| (l.to_string(), r.to_string()))
                    .collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                (merges, tok.encode_batch(&refs).unwrap())
            })
        };
        assert_eq!(train(1), train(2));
        assert_eq!(train(1), train(3));
    }

    #[test]
    fn bytes_of_merged_tokens_are_the_concatenation() {
        let tok = BpeTrainer::builder()
            .vocab_size(270)
            .build()
            .unwrap()
            .train(&["naïve naïve naïve café café"])
            .unwrap();
        for (l, r) in tok.merges() {
            let merged = format!("{l}{r}");
            let id = tok.token_to_id(&merged).unwrap();
            let mut bytes = tok
                .token_bytes(tok.token_to_id(l).unwrap())
                .unwrap()
                .to_vec();
            bytes.extend_from_slice(tok.token_bytes(tok.token_to_id(r).unwrap()).unwrap());
            assert_eq!(tok.token_bytes(id).unwrap(), &bytes[..]);
            assert_eq!(bytes_to_token_string(&bytes), merged);
        }
    }
}
