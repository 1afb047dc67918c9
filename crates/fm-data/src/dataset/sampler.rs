//! The order in which an epoch visits a dataset.
//!
//! A [`Sampler`] gives the dataset indices of one epoch. [`SequentialSampler`] is `0..len`;
//! [`ShuffledSampler`] is a permutation drawn from (seed, epoch), so each epoch has its own order
//! and a run restarted with the same seed sees the same orders; [`ShardedSampler`] gives one rank
//! of a data-parallel job its share of another sampler's order. Every rank draws the same full
//! order (same seed, same epoch) and takes the positions `rank, rank + world_size, ...`, so the
//! ranks' shares are disjoint without any communication.

use super::rng::SplitMix64;
use crate::error::{DataError, Result};

/// The dataset indices of each epoch.
pub trait Sampler: Send + Sync {
    /// The indices of `epoch`, in visiting order.
    fn epoch_indices(&self, epoch: u64) -> Vec<usize>;

    /// How many indices an epoch has.
    fn len(&self) -> usize;

    /// Whether an epoch is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `0, 1, ..., len - 1` every epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequentialSampler {
    len: usize,
}

impl SequentialSampler {
    /// Visits `0..len` in order.
    pub fn new(len: usize) -> Self {
        SequentialSampler { len }
    }
}

impl Sampler for SequentialSampler {
    fn epoch_indices(&self, _epoch: u64) -> Vec<usize> {
        (0..self.len).collect()
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// A permutation of `0..len` per epoch, fixed by (seed, epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShuffledSampler {
    len: usize,
    seed: u64,
}

impl ShuffledSampler {
    /// Visits `0..len` in an order drawn from `seed` and the epoch.
    pub fn new(len: usize, seed: u64) -> Self {
        ShuffledSampler { len, seed }
    }
}

impl Sampler for ShuffledSampler {
    fn epoch_indices(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        SplitMix64::for_stream(self.seed, epoch).shuffle(&mut order);
        order
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// What a [`ShardedSampler`] does when the epoch does not divide evenly among ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardRemainder {
    /// Every index goes to exactly one rank; the first `len % world_size` ranks get one more.
    Uneven,
    /// The last `len % world_size` indices of the epoch's order are left out, so every rank has
    /// the same count (they are other indices next epoch, when the order is shuffled).
    Drop,
    /// The order is padded with its own first indices up to a multiple of `world_size` (what
    /// PyTorch's `DistributedSampler` does): equal counts, a few indices seen twice.
    Repeat,
}

/// Rank `rank`'s share of `inner`'s order: positions `rank, rank + world_size, ...`.
#[derive(Clone, Debug)]
pub struct ShardedSampler<S> {
    inner: S,
    rank: usize,
    world_size: usize,
    remainder: ShardRemainder,
}

impl<S: Sampler> ShardedSampler<S> {
    /// The share of `rank` among `world_size` ranks; `rank < world_size` is required.
    pub fn new(
        inner: S,
        rank: usize,
        world_size: usize,
        remainder: ShardRemainder,
    ) -> Result<Self> {
        if world_size == 0 || rank >= world_size {
            return Err(DataError::config(
                "ShardedSampler",
                format!("rank {rank} is not in 0..{world_size}"),
            ));
        }
        Ok(ShardedSampler {
            inner,
            rank,
            world_size,
            remainder,
        })
    }

    fn padded_len(&self) -> usize {
        let n = self.inner.len();
        match self.remainder {
            ShardRemainder::Uneven => n,
            ShardRemainder::Drop => n - n % self.world_size,
            ShardRemainder::Repeat if n == 0 => 0,
            ShardRemainder::Repeat => n.div_ceil(self.world_size) * self.world_size,
        }
    }
}

impl<S: Sampler> Sampler for ShardedSampler<S> {
    fn epoch_indices(&self, epoch: u64) -> Vec<usize> {
        let order = self.inner.epoch_indices(epoch);
        let total = self.padded_len();
        (self.rank..total)
            .step_by(self.world_size)
            .map(|position| order[position % order.len()])
            .collect()
    }

    fn len(&self) -> usize {
        let total = self.padded_len();
        total / self.world_size + usize::from(self.rank < total % self.world_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_is_in_order() {
        assert_eq!(SequentialSampler::new(4).epoch_indices(9), [0, 1, 2, 3]);
    }

    #[test]
    fn shuffled_is_a_permutation_fixed_by_seed_and_epoch() {
        let s = ShuffledSampler::new(100, 5);
        let e0 = s.epoch_indices(0);
        assert_eq!(e0, s.epoch_indices(0));
        assert_eq!(e0, ShuffledSampler::new(100, 5).epoch_indices(0));
        assert_ne!(e0, s.epoch_indices(1));
        assert_ne!(e0, ShuffledSampler::new(100, 6).epoch_indices(0));
        let mut sorted = e0.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn uneven_shards_cover_every_index_exactly_once() {
        for len in [0usize, 1, 7, 10, 101] {
            for world in 1..=5 {
                for epoch in 0..3 {
                    let mut seen = vec![0usize; len];
                    for rank in 0..world {
                        let s = ShardedSampler::new(
                            ShuffledSampler::new(len, 17),
                            rank,
                            world,
                            ShardRemainder::Uneven,
                        )
                        .unwrap();
                        let idx = s.epoch_indices(epoch);
                        assert_eq!(idx.len(), s.len(), "len {len} world {world} rank {rank}");
                        for i in idx {
                            seen[i] += 1;
                        }
                    }
                    assert!(
                        seen.iter().all(|&c| c == 1),
                        "len {len} world {world}: {seen:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn drop_and_repeat_give_equal_shares() {
        let len = 10;
        let world = 4;
        let shares = |remainder| -> Vec<Vec<usize>> {
            (0..world)
                .map(|rank| {
                    ShardedSampler::new(ShuffledSampler::new(len, 1), rank, world, remainder)
                        .unwrap()
                        .epoch_indices(2)
                })
                .collect()
        };
        let dropped = shares(ShardRemainder::Drop);
        assert!(dropped.iter().all(|s| s.len() == 2));
        let mut all: Vec<usize> = dropped.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8, "8 distinct indices, 2 left out");

        let repeated = shares(ShardRemainder::Repeat);
        assert!(repeated.iter().all(|s| s.len() == 3));
        let mut all: Vec<usize> = repeated.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10, "every index at least once");
    }

    #[test]
    fn bad_rank_is_refused() {
        let s = SequentialSampler::new(3);
        assert!(ShardedSampler::new(s, 2, 2, ShardRemainder::Uneven).is_err());
        assert!(ShardedSampler::new(s, 0, 0, ShardRemainder::Uneven).is_err());
    }
}
