//! Encoding one pre-tokenized piece with the merges, and the per-thread cache of encoded words.
//!
//! **The merge rule.** A piece starts as one symbol per byte. While some adjacent pair of symbols
//! has a merge, the pair with the lowest merge rank is merged, the leftmost one where ranks tie.
//! This is the rule of Hugging Face `tokenizers` (a priority queue on (rank, position)) and, for
//! vocabularies whose ranks follow their merges, of tiktoken and GPT-2's `bpe()`.
//!
//! Two implementations give the same result: for short pieces (almost all) a flat array of pair
//! ranks is scanned for its minimum after each merge, which is quadratic but touches a few cache
//! lines; for long pieces (runs of spaces or dashes thousands long) a heap over a linked list keeps
//! the cost at O(n log n).
//!
//! **The cache.** Text repeats its words, so each thread keeps the ids of the pieces it has encoded,
//! up to [`CACHE_MAX_ENTRIES`] of them or [`CACHE_MAX_KEY_BYTES`] of piece text, then starts afresh.
//! Long pieces are cached too (up to [`CACHE_MAX_PIECE_LEN`] bytes): they are mostly runs of spaces
//! or newlines (indentation) that recur exactly and cost the most to merge. The cache belongs to one
//! tokenizer at a time: using another tokenizer on the same thread empties it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::fast_hash::{pair_key, FastMap};

/// Marks a byte without a token in `byte_ids`.
pub(super) const NO_ID: u32 = u32::MAX;
/// Marks "no merge" in the packed (rank, new id) values.
const NO_MERGE: u64 = u64::MAX;
/// Pieces longer than this go to the heap-based merger.
const FLAT_MAX_SYMBOLS: usize = 128;
/// Longest piece (in bytes) kept in the word cache.
pub(super) const CACHE_MAX_PIECE_LEN: usize = 4096;
/// Entries after which a thread's word cache is emptied.
pub(super) const CACHE_MAX_ENTRIES: usize = 1 << 17;
/// Bytes of cached piece text after which a thread's word cache is emptied.
pub(super) const CACHE_MAX_KEY_BYTES: usize = 8 << 20;

/// The tables a piece is encoded with: borrowed from the tokenizer.
pub(super) struct Merger<'a> {
    /// Pair key → `rank << 32 | new_id`.
    pub(super) merges: &'a FastMap<u64, u64>,
    /// Token id of each byte, or [`NO_ID`].
    pub(super) byte_ids: &'a [u32; 256],
    /// Id for bytes without a token (Hugging Face's `unk_token`), if any.
    pub(super) unk: Option<u32>,
    /// Whether consecutive unknown bytes share one unknown token (`fuse_unk`).
    pub(super) fuse_unk: bool,
}

/// Reusable buffers for [`Merger::encode_piece`].
#[derive(Default)]
pub(super) struct Scratch {
    symbols: Vec<u32>,
    packed: Vec<u64>,
}

impl Merger<'_> {
    #[inline]
    fn lookup(&self, left: u32, right: u32) -> u64 {
        self.merges
            .get(&pair_key(left, right))
            .copied()
            .unwrap_or(NO_MERGE)
    }

    /// The initial symbols of `piece`: one per byte, unknown bytes handled as HF does (dropped
    /// without an unknown token, fused if `fuse_unk`).
    fn initial_symbols(&self, piece: &[u8], symbols: &mut Vec<u32>) {
        symbols.clear();
        let mut last_was_unk = false;
        for &b in piece {
            let id = self.byte_ids[b as usize];
            if id != NO_ID {
                symbols.push(id);
                last_was_unk = false;
            } else if let Some(unk) = self.unk {
                if !(self.fuse_unk && last_was_unk) {
                    symbols.push(unk);
                }
                last_was_unk = true;
            }
        }
    }

    /// Appends the ids of `piece` to `out`.
    pub(super) fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>, scratch: &mut Scratch) {
        self.initial_symbols(piece, &mut scratch.symbols);
        if scratch.symbols.len() > FLAT_MAX_SYMBOLS {
            merge_with_heap(self, &mut scratch.symbols);
        } else {
            merge_flat(self, &mut scratch.symbols, &mut scratch.packed);
        }
        out.extend_from_slice(&scratch.symbols);
    }
}

/// Lowest rank first, leftmost on ties, by rescanning an array of packed pair values.
fn merge_flat(m: &Merger<'_>, symbols: &mut Vec<u32>, packed: &mut Vec<u64>) {
    if symbols.len() < 2 {
        return;
    }
    packed.clear();
    packed.extend(symbols.windows(2).map(|w| m.lookup(w[0], w[1])));
    loop {
        // Rank sits in the high half, so the smallest packed value is the lowest rank; `<` keeps
        // the leftmost of equal ones.
        let mut best = NO_MERGE;
        let mut at = 0;
        for (i, &p) in packed.iter().enumerate() {
            if p < best {
                best = p;
                at = i;
            }
        }
        if best == NO_MERGE {
            return;
        }
        symbols[at] = best as u32;
        // Shift by hand: these arrays are a few dozen entries, shorter than a memmove call is worth.
        for i in at + 1..symbols.len() - 1 {
            symbols[i] = symbols[i + 1];
        }
        symbols.pop();
        for i in at..packed.len() - 1 {
            packed[i] = packed[i + 1];
        }
        packed.pop();
        if at + 1 < symbols.len() {
            packed[at] = m.lookup(symbols[at], symbols[at + 1]);
        }
        if at > 0 {
            packed[at - 1] = m.lookup(symbols[at - 1], symbols[at]);
        }
    }
}

/// The same rule with a heap of (rank, position) over a doubly linked list of symbols.
fn merge_with_heap(m: &Merger<'_>, symbols: &mut Vec<u32>) {
    const NONE: usize = usize::MAX;
    let n = symbols.len();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut next: Vec<usize> = (1..=n).collect();
    next[n - 1] = NONE;
    let mut alive = vec![true; n];
    // Entries are (packed rank/new id, position); stale ones are skipped when popped.
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = symbols
        .windows(2)
        .enumerate()
        .filter_map(|(i, w)| {
            let p = m.lookup(w[0], w[1]);
            (p != NO_MERGE).then_some(Reverse((p, i)))
        })
        .collect();
    while let Some(Reverse((p, at))) = heap.pop() {
        let right = next[at];
        // Stale if either side has changed since the entry was pushed: the pair must still map to
        // the same merge. (A merged symbol is longer than both parts, so the same new id cannot
        // come from a different pair at the same place.)
        if !alive[at] || right == NONE || m.lookup(symbols[at], symbols[right]) != p {
            continue;
        }
        symbols[at] = p as u32;
        alive[right] = false;
        let after = next[right];
        next[at] = after;
        if after != NONE {
            prev[after] = at;
            let q = m.lookup(symbols[at], symbols[after]);
            if q != NO_MERGE {
                heap.push(Reverse((q, at)));
            }
        }
        let before = prev[at];
        if before != NONE {
            let q = m.lookup(symbols[before], symbols[at]);
            if q != NO_MERGE {
                heap.push(Reverse((q, before)));
            }
        }
    }
    let mut w = 0;
    for r in 0..n {
        if alive[r] {
            symbols[w] = symbols[r];
            w += 1;
        }
    }
    symbols.truncate(w);
}

/// A thread's cache of encoded words (see the module docs).
pub(super) struct WordCache {
    /// The tokenizer the entries belong to.
    owner: u64,
    /// Piece bytes → (start, len) in `ids`, or (the id, 1) for a piece of one token.
    map: FastMap<Box<[u8]>, (u32, u32)>,
    ids: Vec<u32>,
    /// Total length of the keys in `map`.
    key_bytes: usize,
    pub(super) scratch: Scratch,
}

impl WordCache {
    fn new() -> Self {
        WordCache {
            owner: 0,
            map: FastMap::default(),
            ids: Vec::new(),
            key_bytes: 0,
            scratch: Scratch::default(),
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.ids.clear();
        self.key_bytes = 0;
    }

    /// Appends the ids of `piece` to `out`, from the cache or by merging (then remembered).
    #[inline]
    pub(super) fn encode_piece(&mut self, m: &Merger<'_>, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() > CACHE_MAX_PIECE_LEN {
            m.encode_piece(piece, out, &mut self.scratch);
            return;
        }
        if let Some(&(start, len)) = self.map.get(piece) {
            if len == 1 {
                // Most cached pieces are one token: its id is stored in place of the start.
                out.push(start);
            } else {
                out.extend_from_slice(&self.ids[start as usize..(start + len) as usize]);
            }
            return;
        }
        let before = out.len();
        m.encode_piece(piece, out, &mut self.scratch);
        if self.map.len() >= CACHE_MAX_ENTRIES || self.key_bytes + piece.len() > CACHE_MAX_KEY_BYTES
        {
            self.clear();
        }
        self.key_bytes += piece.len();
        let new = &out[before..];
        let entry = if new.len() == 1 {
            (new[0], 1)
        } else {
            let start = self.ids.len() as u32;
            self.ids.extend_from_slice(new);
            (start, new.len() as u32)
        };
        self.map.insert(piece.into(), entry);
    }
}

thread_local! {
    static WORD_CACHE: RefCell<WordCache> = RefCell::new(WordCache::new());
}

/// Runs `f` with this thread's word cache, emptied first if it holds another tokenizer's words.
pub(super) fn with_word_cache<R>(owner: u64, f: impl FnOnce(&mut WordCache) -> R) -> R {
    WORD_CACHE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cache) => {
            if cache.owner != owner {
                cache.clear();
                cache.owner = owner;
            }
            f(&mut cache)
        }
        // Re-entered on this thread (an encode inside an encode): use a fresh, unshared cache.
        Err(_) => f(&mut WordCache::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges over bytes 'a'..: a+b (rank 0), ab+c (1), c+c (2), b+c (3), a+a (4).
    fn toy() -> (FastMap<u64, u64>, [u32; 256]) {
        let mut byte_ids = [NO_ID; 256];
        for (i, b) in (b'a'..=b'e').enumerate() {
            byte_ids[b as usize] = i as u32;
        }
        let (a, b, c) = (0, 1, 2);
        let mut merges = FastMap::default();
        let rules = [(a, b, 10), (10, c, 11), (c, c, 12), (b, c, 13), (a, a, 14)];
        for (rank, &(l, r, new)) in rules.iter().enumerate() {
            merges.insert(pair_key(l, r), ((rank as u64) << 32) | new);
        }
        (merges, byte_ids)
    }

    fn encode(m: &Merger<'_>, s: &[u8], heap: bool) -> Vec<u32> {
        let mut symbols = Vec::new();
        m.initial_symbols(s, &mut symbols);
        if heap {
            if !symbols.is_empty() {
                merge_with_heap(m, &mut symbols);
            }
        } else {
            merge_flat(m, &mut symbols, &mut Vec::new());
        }
        symbols
    }

    #[test]
    fn lowest_rank_first_then_leftmost() {
        let (merges, byte_ids) = toy();
        let m = Merger {
            merges: &merges,
            byte_ids: &byte_ids,
            unk: None,
            fuse_unk: false,
        };
        for heap in [false, true] {
            assert_eq!(encode(&m, b"abc", heap), [11]);
            assert_eq!(encode(&m, b"bcc", heap), [1, 12]); // c+c (rank 2) before b+c (rank 3)
            assert_eq!(encode(&m, b"aaa", heap), [14, 0]); // leftmost of equal ranks
            assert_eq!(encode(&m, b"aaaa", heap), [14, 14]);
            assert_eq!(encode(&m, b"d", heap), [3]);
            assert_eq!(encode(&m, b"", heap), Vec::<u32>::new());
            assert_eq!(encode(&m, b"azc", heap), [0, 2]); // no token for 'z': dropped, as in HF
            assert_eq!(encode(&m, b"azb", heap), [10]); // ... before merging
        }
    }

    #[test]
    fn unknown_bytes_become_unk_fused_or_not() {
        let (merges, byte_ids) = toy();
        let mut m = Merger {
            merges: &merges,
            byte_ids: &byte_ids,
            unk: Some(99),
            fuse_unk: false,
        };
        assert_eq!(encode(&m, b"zza", false), [99, 99, 0]);
        m.fuse_unk = true;
        assert_eq!(encode(&m, b"zzazz", false), [99, 0, 99]);
    }

    #[test]
    fn flat_and_heap_mergers_agree_on_random_words() {
        let (merges, byte_ids) = toy();
        let m = Merger {
            merges: &merges,
            byte_ids: &byte_ids,
            unk: None,
            fuse_unk: false,
        };
        let mut state = 0x1234_5678_9abc_def0_u64;
        for len in [1usize, 2, 3, 7, 40, 300] {
            for _ in 0..50 {
                let word: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        b'a' + (state % 4) as u8
                    })
                    .collect();
                assert_eq!(encode(&m, &word, false), encode(&m, &word, true));
            }
        }
    }
}
