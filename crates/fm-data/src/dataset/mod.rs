//! Datasets and the loader that feeds training.
//!
//! - [`Dataset`]: anything with a length and an item per index. [`InMemoryDataset`] holds a
//!   `Vec`; [`TokenWindowDataset`] reads fixed-length windows out of a memory-mapped
//!   [`TokenShard`](crate::token_shard::TokenShard), so a corpus larger than memory is read one
//!   window at a time; [`Subset`] views some indices of another dataset (what a split gives).
//! - [`split`]: train/validation/test index lists by seed.
//! - [`sampler`]: the order of an epoch — sequential, shuffled by (seed, epoch), and sharded by
//!   rank for data-parallel training.
//! - [`collate`]: items to an ndarray batch — padded to the longest with an attention mask, or
//!   language-model windows split into inputs and targets.
//! - [`loader`]: batches in sampler order, prepared ahead on rayon, the same batches for any
//!   number of threads, resumable from a serialisable [`LoaderPosition`].
//!
//! ```
//! use fm_data::dataset::{
//!     split::{split_indices, SplitFractions},
//!     collate::PadCollate, sampler::ShuffledSampler, DataLoader, Dataset, InMemoryDataset,
//!     Subset,
//! };
//! use std::sync::Arc;
//!
//! let sequences: Vec<Vec<u32>> = (1..=10).map(|n| (0..n).collect()).collect();
//! let data = Arc::new(InMemoryDataset::new(sequences));
//! let splits = split_indices(data.len(), SplitFractions::new(0.8, 0.1, 0.1)?, 42)?;
//! let train = Arc::new(Subset::new(data.clone(), splits.train)?);
//!
//! let loader = DataLoader::new(train.clone(), ShuffledSampler::new(train.len(), 42), PadCollate::new(0), 4)?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?;
//!     // ids and attention_mask are [batch, longest] arrays; the mask is 1 on real tokens.
//!     assert_eq!(batch.ids.shape(), batch.attention_mask.shape());
//! }
//! # Ok::<(), fm_data::DataError>(())
//! ```

pub mod collate;
pub mod loader;
mod rng;
pub mod sampler;
pub mod split;
mod token_windows;

use std::sync::Arc;

pub use loader::{DataLoader, EpochBatches, LoaderPosition};
pub use token_windows::TokenWindowDataset;

use crate::error::{DataError, Result};

/// Items by index. `get` is `&self` and the type is `Send + Sync`, so a loader can read items from
/// several threads at once.
pub trait Dataset: Send + Sync {
    /// What one index gives.
    type Item: Send;

    /// Number of items.
    fn len(&self) -> usize;

    /// The item at `index`; an index past the end is [`DataError::OutOfRange`].
    fn get(&self, index: usize) -> Result<Self::Item>;

    /// Whether there is no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Item> {
        (**self).get(index)
    }
}

/// The error for `index` past the end of a dataset of `size` items.
pub(crate) fn index_out_of_range(what: &'static str, index: usize, size: usize) -> DataError {
    DataError::OutOfRange {
        what,
        start: index,
        len: 1,
        size,
    }
}

/// Items held in memory; `get` returns a clone.
#[derive(Clone, Debug, PartialEq)]
pub struct InMemoryDataset<T> {
    items: Vec<T>,
}

impl<T> InMemoryDataset<T> {
    /// A dataset of `items`, in order.
    pub fn new(items: Vec<T>) -> Self {
        InMemoryDataset { items }
    }

    /// The items.
    pub fn items(&self) -> &[T] {
        &self.items
    }
}

impl<T: Clone + Send + Sync> Dataset for InMemoryDataset<T> {
    type Item = T;
    fn len(&self) -> usize {
        self.items.len()
    }
    fn get(&self, index: usize) -> Result<T> {
        self.items
            .get(index)
            .cloned()
            .ok_or_else(|| index_out_of_range("in-memory dataset", index, self.items.len()))
    }
}

/// Some indices of another dataset, in the order given: item `i` is `inner.get(indices[i])`.
#[derive(Clone, Debug)]
pub struct Subset<D> {
    inner: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// A view of `indices` of `inner`; an index past its end is [`DataError::OutOfRange`].
    pub fn new(inner: D, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(index_out_of_range("subset index", bad, inner.len()));
        }
        Ok(Subset { inner, indices })
    }

    /// The indices into the inner dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    type Item = D::Item;
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<D::Item> {
        let &inner = self
            .indices
            .get(index)
            .ok_or_else(|| index_out_of_range("subset", index, self.indices.len()))?;
        self.inner.get(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_and_subset_index_and_refuse_past_the_end() {
        let data = Arc::new(InMemoryDataset::new(vec!["a", "b", "c", "d"]));
        assert_eq!(data.len(), 4);
        assert_eq!(data.get(2).unwrap(), "c");
        let err = data.get(4).unwrap_err();
        assert!(err.to_string().contains("length 4"), "{err}");

        let sub = Subset::new(data.clone(), vec![3, 0]).unwrap();
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.get(0).unwrap(), "d");
        assert_eq!(sub.get(1).unwrap(), "a");
        assert!(sub.get(2).is_err());
        let err = Subset::new(data, vec![0, 9]).unwrap_err();
        assert!(err.to_string().contains("subset index"), "{err}");
    }
}
