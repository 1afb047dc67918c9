//! A small, fast, non-cryptographic hasher for the BPE tables (pair → merge, word → ids).
//!
//! The standard library's SipHash resists hash flooding but costs more than the rest of a cache hit
//! on a short word. Keys here are token-id pairs and words of the text being tokenized; a hostile
//! text could at worst make lookups slower (the word cache is bounded), never change a result. The
//! mixing is the multiply-rotate scheme of Firefox's and rustc's `FxHasher`, taking eight bytes at a
//! time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Multiply-rotate hasher (see the module docs).
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown picks buckets from the low bits and tags from the top seven: fold the
        // well-mixed high half into the low half so both are good.
        self.hash ^ (self.hash >> 29)
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The key of the token pair (left, right) in the pair tables: left in the high half, so keys
/// order as the pairs do lexicographically.
#[inline]
pub(crate) fn pair_key(left: u32, right: u32) -> u64 {
    ((left as u64) << 32) | right as u64
}

/// The (left, right) ids of a [`pair_key`].
#[inline]
pub(crate) fn pair_of(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash_of(x: impl Hash) -> u64 {
        let mut h = FastHasher::default();
        x.hash(&mut h);
        h.finish()
    }

    #[test]
    fn equal_keys_hash_alike_and_near_keys_differ() {
        assert_eq!(hash_of(b"hello".as_slice()), hash_of(b"hello".as_slice()));
        assert_ne!(hash_of(b"hello".as_slice()), hash_of(b"hellp".as_slice()));
        assert_ne!(hash_of(b"ab".as_slice()), hash_of(b"ab\0".as_slice()));
        assert_ne!(hash_of(pair_key(1, 2)), hash_of(pair_key(2, 1)));
    }

    #[test]
    fn pair_keys_round_trip_and_order_lexicographically() {
        assert_eq!(pair_of(pair_key(7, 9)), (7, 9));
        assert!(pair_key(1, u32::MAX) < pair_key(2, 0));
    }
}
