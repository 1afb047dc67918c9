//! MinHash signatures over word n-gram shingles.
//!
//! A document's shingles are its runs of `shingle_words` consecutive words (words split on
//! Unicode whitespace, as Python's `str.split()` does; a document shorter than that is one
//! shingle). Each shingle is hashed once to 32 bits (a word hash, then an order-sensitive mix of
//! the n word hashes), and each of the `num_perm` "permutations" is a multiply-add-shift hash
//! `h_i(x) = (a_i·x + b_i mod 2^64) >> 32`, with `a_i` odd and `b_i` 64-bit drawn from the seed
//! (Dietzfelbinger's 2-universal family for 32-bit keys). The signature keeps, per permutation, the smallest value over the
//! document's shingles; two signatures agree at a position with probability ≈ the Jaccard
//! similarity of the shingle sets.
//!
//! The inner loop (one shingle against all permutations) is a 64×32-bit multiply, add, shift
//! and min per lane: it vectorises, and on x86-64 a copy compiled for AVX2 is chosen at run
//! time.

use rayon::prelude::*;

use crate::DataError;

/// Settings of a [`MinHasher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinHashConfig {
    /// Number of hash functions (signature length).
    pub num_perm: usize,
    /// Words per shingle.
    pub shingle_words: usize,
    /// Seed of the hash functions; signatures are comparable only under one seed.
    pub seed: u64,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        Self {
            num_perm: 128,
            shingle_words: 5,
            seed: 0x5eed,
        }
    }
}

/// Computes MinHash signatures; see the module docs.
#[derive(Debug, Clone)]
pub struct MinHasher {
    /// Multipliers, odd, 64-bit.
    mul: Vec<u64>,
    /// Offsets.
    add: Vec<u64>,
    shingle_words: usize,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Murmur3's 64-bit finaliser: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// A 64-bit hash of a word's bytes, eight bytes at a time.
fn hash_word(word: &[u8]) -> u64 {
    let mut h = (word.len() as u64).wrapping_mul(K2);
    let mut chunks = word.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("chunks of 8"));
        h = (h ^ v).wrapping_mul(K1).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf))
            .wrapping_mul(K2)
            .rotate_left(29);
    }
    fmix64(h)
}

/// Appends the 32-bit hash of every `n`-word shingle of `text` to `out`.
pub fn shingle_hashes(text: &str, n: usize, out: &mut Vec<u32>) {
    let n = n.max(1);
    // Ring of the last n word hashes.
    let mut ring = vec![0u64; n];
    let mut count = 0usize;
    let emit = |ring: &[u64], newest: usize, len: usize, out: &mut Vec<u32>| {
        let mut h = K2;
        for j in 0..len {
            let w = ring[(newest + ring.len() + 1 - len + j) % ring.len()];
            h = (h ^ w).wrapping_mul(K1).rotate_left(31);
        }
        let h = fmix64(h);
        out.push((h ^ (h >> 32)) as u32);
    };
    for word in text.split_whitespace() {
        let slot = count % n;
        ring[slot] = hash_word(word.as_bytes());
        count += 1;
        if count >= n {
            emit(&ring, slot, n, out);
        }
    }
    if count > 0 && count < n {
        emit(&ring, count - 1, count, out);
    }
}

impl MinHasher {
    /// Hash functions drawn from `config.seed`.
    pub fn new(config: &MinHashConfig) -> Result<Self, DataError> {
        if config.num_perm == 0 || config.shingle_words == 0 {
            return Err(DataError::config(
                "MinHashConfig",
                format!(
                    "num_perm and shingle_words must be at least 1, got {} and {}",
                    config.num_perm, config.shingle_words
                ),
            ));
        }
        let mut state = config.seed;
        let mut mul = Vec::with_capacity(config.num_perm);
        let mut add = Vec::with_capacity(config.num_perm);
        for _ in 0..config.num_perm {
            mul.push(splitmix(&mut state) | 1);
            add.push(splitmix(&mut state));
        }
        Ok(Self {
            mul,
            add,
            shingle_words: config.shingle_words,
        })
    }

    /// Signature length.
    pub fn num_perm(&self) -> usize {
        self.mul.len()
    }

    /// Words per shingle.
    pub fn shingle_words(&self) -> usize {
        self.shingle_words
    }

    /// The signature of a set of shingle hashes, written to `out` (length [`num_perm`]).
    /// An empty set gives all `u32::MAX`. A buffer of another length is an error.
    ///
    /// [`num_perm`]: MinHasher::num_perm
    pub fn signature_of_hashes(&self, hashes: &[u32], out: &mut [u32]) -> Result<(), DataError> {
        if out.len() != self.num_perm() {
            return Err(DataError::config(
                "MinHasher::signature_of_hashes",
                format!(
                    "buffer has length {}, expected {}",
                    out.len(),
                    self.num_perm()
                ),
            ));
        }
        self.fill_signature(hashes, out);
        Ok(())
    }

    fn fill_signature(&self, hashes: &[u32], out: &mut [u32]) {
        out.fill(u32::MAX);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
            // `update_avx2`.
            unsafe { update_avx2(&self.mul, &self.add, hashes, out) };
            return;
        }
        update_portable(&self.mul, &self.add, hashes, out);
    }

    /// The signature of `text`.
    pub fn signature(&self, text: &str) -> Vec<u32> {
        let mut hashes = Vec::new();
        shingle_hashes(text, self.shingle_words, &mut hashes);
        let mut out = vec![0; self.num_perm()];
        self.fill_signature(&hashes, &mut out);
        out
    }

    /// Signatures of many texts on the current rayon pool, as one row-major matrix
    /// (`texts.len() × num_perm`); the same bits for any thread count.
    pub fn signatures<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<u32> {
        let p = self.num_perm();
        let mut out = vec![0u32; texts.len() * p];
        out.par_chunks_mut(p)
            .zip(texts.par_iter())
            .with_min_len(16)
            .for_each_init(Vec::new, |hashes, (row, text)| {
                hashes.clear();
                shingle_hashes(text.as_ref(), self.shingle_words, hashes);
                self.fill_signature(hashes, row);
            });
        out
    }
}

#[inline(always)]
fn update_portable(mul: &[u64], add: &[u64], hashes: &[u32], mins: &mut [u32]) {
    let n = mins.len();
    let (mul, add) = (&mul[..n], &add[..n]);
    for &x in hashes {
        let x = u64::from(x);
        for i in 0..n {
            // `x` < 2^32, so the product is two 32×32→64 multiplies; it must wrap (a full 64-bit
            // `mul`), or every function would order the shingles almost as `x` does.
            let v = mul[i].wrapping_mul(x).wrapping_add(add[i]) >> 32;
            mins[i] = mins[i].min(v as u32);
        }
    }
}

/// [`update_portable`] compiled for AVX2 (4-lane 32×32→64 multiplies, 32-bit unsigned min).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(mul: &[u64], add: &[u64], hashes: &[u32], mins: &mut [u32]) {
    update_portable(mul, add, hashes, mins);
}

/// Fraction of positions where two signatures agree: an estimate of the Jaccard similarity.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shingle_set(text: &str, n: usize) -> HashSet<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() < n {
            return HashSet::from([words.join(" ")]);
        }
        words.windows(n).map(|w| w.join(" ")).collect()
    }

    #[test]
    fn shingles_match_word_windows() {
        let mut h = Vec::new();
        shingle_hashes("a b c d e f", 3, &mut h);
        assert_eq!(h.len(), 4);
        let mut again = Vec::new();
        shingle_hashes("x a  b\tc y", 3, &mut again);
        assert_eq!(again[1], h[0], "same words, same shingle hash");
        let mut short = Vec::new();
        shingle_hashes("only two", 5, &mut short);
        assert_eq!(short.len(), 1);
        let mut none = Vec::new();
        shingle_hashes("   ", 5, &mut none);
        assert!(none.is_empty());
        // Order matters within a shingle.
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        shingle_hashes("p q", 2, &mut ab);
        shingle_hashes("q p", 2, &mut ba);
        assert_ne!(ab, ba);
    }

    #[test]
    fn estimate_tracks_exact_jaccard() {
        let mh = MinHasher::new(&MinHashConfig {
            num_perm: 256,
            shingle_words: 2,
            seed: 3,
        })
        .unwrap();
        let base: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let mut errors = Vec::new();
        for changed in [0usize, 20, 60, 120, 200] {
            let mut other = base.clone();
            for k in 0..changed {
                other[k * 2] = format!("z{k}");
            }
            let (a, b) = (base.join(" "), other.join(" "));
            let (sa, sb) = (shingle_set(&a, 2), shingle_set(&b, 2));
            let exact = sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64;
            let est = estimated_jaccard(&mh.signature(&a), &mh.signature(&b));
            errors.push((exact - est).abs());
        }
        assert_eq!(errors[0], 0.0);
        // Standard error at 256 permutations is at most 0.031; allow four of them.
        assert!(errors.iter().all(|&e| e < 0.125), "{errors:?}");
    }

    #[test]
    fn parallel_signatures_equal_serial_and_portable() {
        let mh = MinHasher::new(&MinHashConfig::default()).unwrap();
        let texts: Vec<String> = (0..50)
            .map(|i| format!("doc {i} has some words in it number {}", i * 7))
            .collect();
        let all = mh.signatures(&texts);
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(&all[i * 128..(i + 1) * 128], mh.signature(t).as_slice());
            let mut hashes = Vec::new();
            shingle_hashes(t, 5, &mut hashes);
            let mut portable = vec![u32::MAX; 128];
            update_portable(&mh.mul, &mh.add, &hashes, &mut portable);
            assert_eq!(portable, mh.signature(t));
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| mh.signatures(&texts)), all);
    }

    #[test]
    fn bad_config_is_an_error() {
        let cfg = MinHashConfig {
            num_perm: 0,
            ..MinHashConfig::default()
        };
        assert!(MinHasher::new(&cfg).is_err());
    }
}
