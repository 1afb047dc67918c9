//! What the trainer reads batches from: the [`DataLoader`] trait, its resumable [`LoaderPosition`],
//! and [`VecLoader`], an in-memory loader that reshuffles by seed every epoch.
//!
//! A loader hands out batches forever, epoch after epoch; the trainer decides when to stop. Its
//! position — epoch, index within the epoch, and seed — is saved in every checkpoint and given back
//! with [`DataLoader::set_position`] on resume, so the resumed run sees exactly the batches the
//! uninterrupted run would have seen. Any source can implement the trait (fm-data's token loaders do
//! through an adapter) as long as its order is a function of the position.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::rng::{epoch_seed, SplitMix64};

/// Where a loader is: the next batch to hand out is batch `index` of epoch `epoch`, in the order that
/// `seed` gives that epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct LoaderPosition {
    /// Epochs completed.
    pub epoch: u64,
    /// Batches handed out in the current epoch.
    pub index: u64,
    /// The seed the shuffle order derives from.
    pub seed: u64,
}

/// A source of training batches with a position that can be saved and restored.
pub trait DataLoader {
    /// One batch (whatever the loss function takes: ndarray arrays, token ids, ...).
    type Batch;

    /// The next batch, moving to the next epoch (reshuffled) after the last batch of one.
    fn next_batch(&mut self) -> Result<Self::Batch>;

    /// The current position (saved in checkpoints).
    fn position(&self) -> LoaderPosition;

    /// Moves to a saved position. Errors, changing nothing, when the position does not fit the loader
    /// (an index past the end of an epoch, a seed other than the loader's).
    fn set_position(&mut self, position: LoaderPosition) -> Result<()>;

    /// Batches in one epoch, when known (used for progress reports).
    fn batches_per_epoch(&self) -> Option<u64> {
        None
    }
}

/// An in-memory loader over a `Vec` of batches, reshuffled every epoch by [`epoch_seed`]`(seed,
/// epoch)`, or kept in order with [`VecLoader::in_order`].
///
/// ```
/// use fm_train::{DataLoader, VecLoader};
///
/// let mut loader = VecLoader::new(vec![10, 20, 30, 40], 7)?;
/// let first_epoch: Vec<i32> = (0..4).map(|_| loader.next_batch()).collect::<Result<_, _>>()?;
/// let mut sorted = first_epoch.clone();
/// sorted.sort();
/// assert_eq!(sorted, [10, 20, 30, 40]);
///
/// // Save the position, draw on, come back: the same batches again.
/// let saved = loader.position();
/// let ahead: Vec<i32> = (0..3).map(|_| loader.next_batch()).collect::<Result<_, _>>()?;
/// loader.set_position(saved)?;
/// let again: Vec<i32> = (0..3).map(|_| loader.next_batch()).collect::<Result<_, _>>()?;
/// assert_eq!(ahead, again);
/// # Ok::<(), fm_train::TrainError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VecLoader<B> {
    batches: Vec<B>,
    shuffle: bool,
    position: LoaderPosition,
    /// The order of the current epoch (indices into `batches`).
    order: Vec<usize>,
}

impl<B: Clone> VecLoader<B> {
    /// A loader over `batches`, shuffled by `seed` every epoch. Errors when `batches` is empty.
    pub fn new(batches: Vec<B>, seed: u64) -> Result<Self> {
        Self::build(batches, seed, true)
    }

    /// A loader that hands out `batches` in the given order every epoch.
    pub fn in_order(batches: Vec<B>) -> Result<Self> {
        Self::build(batches, 0, false)
    }

    fn build(batches: Vec<B>, seed: u64, shuffle: bool) -> Result<Self> {
        if batches.is_empty() {
            return Err(TrainError::Loader("no batches to load".into()));
        }
        let mut loader = VecLoader {
            order: Vec::with_capacity(batches.len()),
            batches,
            shuffle,
            position: LoaderPosition {
                epoch: 0,
                index: 0,
                seed,
            },
        };
        loader.compute_order();
        Ok(loader)
    }

    /// The order of the current epoch as indices into the batches.
    pub fn epoch_order(&self) -> &[usize] {
        &self.order
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Always false (an empty loader cannot be built).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn compute_order(&mut self) {
        self.order.clear();
        self.order.extend(0..self.batches.len());
        if self.shuffle {
            let seed = epoch_seed(self.position.seed, self.position.epoch);
            SplitMix64::new(seed).shuffle(&mut self.order);
        }
    }
}

impl<B: Clone> DataLoader for VecLoader<B> {
    type Batch = B;

    fn next_batch(&mut self) -> Result<B> {
        if self.position.index as usize >= self.batches.len() {
            self.position.epoch += 1;
            self.position.index = 0;
            self.compute_order();
        }
        let batch = self.batches[self.order[self.position.index as usize]].clone();
        self.position.index += 1;
        Ok(batch)
    }

    fn position(&self) -> LoaderPosition {
        self.position
    }

    fn set_position(&mut self, position: LoaderPosition) -> Result<()> {
        if position.index > self.batches.len() as u64 {
            return Err(TrainError::Loader(format!(
                "position index {} is past the end of an epoch of {} batches",
                position.index,
                self.batches.len()
            )));
        }
        if self.shuffle && position.seed != self.position.seed {
            return Err(TrainError::Loader(format!(
                "position was saved with shuffle seed {}, this loader uses {} (the order would differ)",
                position.seed, self.position.seed
            )));
        }
        self.position = position;
        self.compute_order();
        Ok(())
    }

    fn batches_per_epoch(&self) -> Option<u64> {
        Some(self.batches.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(loader: &mut VecLoader<u32>, n: usize) -> Vec<u32> {
        (0..n).map(|_| loader.next_batch().unwrap()).collect()
    }

    #[test]
    fn every_epoch_is_a_permutation_with_its_own_order() {
        let mut loader = VecLoader::new((0..20).collect(), 5).unwrap();
        let e0 = take(&mut loader, 20);
        let e1 = take(&mut loader, 20);
        assert_ne!(e0, e1, "epochs are reshuffled");
        for e in [&e0, &e1] {
            let mut s = e.clone();
            s.sort();
            assert_eq!(s, (0..20).collect::<Vec<_>>());
        }
        assert_eq!(loader.position().epoch, 1);
        assert_eq!(loader.position().index, 20);
    }

    #[test]
    fn restoring_a_position_replays_across_an_epoch_boundary() {
        let mut a = VecLoader::new((0..6).collect(), 11).unwrap();
        take(&mut a, 4);
        let saved = a.position();
        let rest = take(&mut a, 9);
        let mut b = VecLoader::new((0..6).collect(), 11).unwrap();
        b.set_position(saved).unwrap();
        assert_eq!(take(&mut b, 9), rest);
    }

    #[test]
    fn bad_positions_are_refused() {
        let mut a = VecLoader::new(vec![1u32, 2], 1).unwrap();
        let err = a
            .set_position(LoaderPosition {
                epoch: 0,
                index: 3,
                seed: 1,
            })
            .unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        let err = a
            .set_position(LoaderPosition {
                epoch: 0,
                index: 0,
                seed: 2,
            })
            .unwrap_err();
        assert!(err.to_string().contains("seed"), "{err}");
        assert!(VecLoader::<u32>::new(vec![], 0).is_err());
        let mut ordered = VecLoader::in_order(vec![1u32, 2, 3]).unwrap();
        assert_eq!(take(&mut ordered, 4), [1, 2, 3, 1]);
    }
}
