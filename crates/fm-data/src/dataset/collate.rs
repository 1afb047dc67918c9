//! Turning the items of one batch into ndarray arrays.
//!
//! A [`Collate`] is handed the items of a batch, in sampler order, and builds the batch.
//! [`PadCollate`] pads token sequences of any lengths to the longest, with an attention mask;
//! [`LmCollate`] splits equal-length windows of `context + 1` ids into inputs and shifted targets.

use ndarray::Array2;

use crate::error::{DataError, Result};

/// Builds one batch from its items.
pub trait Collate<Item>: Send + Sync {
    /// The batch type.
    type Batch: Send;

    /// The batch of `items` (in sampler order).
    fn collate(&self, items: Vec<Item>) -> Result<Self::Batch>;
}

/// Token sequences padded on the right to the longest of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaddedBatch {
    /// `[batch, longest]` ids; positions past a sequence's end hold the padding id.
    pub ids: Array2<u32>,
    /// `[batch, longest]`: 1 on real tokens, 0 on padding (Hugging Face's convention).
    pub attention_mask: Array2<u8>,
    /// The length of each sequence before padding.
    pub lengths: Vec<usize>,
}

/// Pads `Vec<u32>` items to the longest of their batch with `pad_id` (see [`PaddedBatch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PadCollate {
    pad_id: u32,
}

impl PadCollate {
    /// Pads with `pad_id`.
    pub fn new(pad_id: u32) -> Self {
        PadCollate { pad_id }
    }
}

impl Collate<Vec<u32>> for PadCollate {
    type Batch = PaddedBatch;

    fn collate(&self, items: Vec<Vec<u32>>) -> Result<PaddedBatch> {
        let longest = items.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Array2::from_elem((items.len(), longest), self.pad_id);
        let mut attention_mask = Array2::zeros((items.len(), longest));
        for (row, item) in items.iter().enumerate() {
            for (col, &id) in item.iter().enumerate() {
                ids[[row, col]] = id;
                attention_mask[[row, col]] = 1;
            }
        }
        Ok(PaddedBatch {
            ids,
            attention_mask,
            lengths: items.iter().map(Vec::len).collect(),
        })
    }
}

/// Language-model inputs and targets, `[batch, context]` each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmBatch {
    /// The first `context` ids of each window.
    pub inputs: Array2<u32>,
    /// The last `context` ids of each window: the inputs shifted left by one.
    pub targets: Array2<u32>,
}

/// Splits windows of `context + 1` ids (e.g. from
/// [`TokenWindowDataset::language_model`](super::TokenWindowDataset::language_model)) into
/// inputs and targets. Windows of another length are a [`DataError::ShapeMismatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmCollate {
    context: usize,
}

impl LmCollate {
    /// For windows of `context + 1` ids.
    pub fn new(context: usize) -> Self {
        LmCollate { context }
    }
}

impl Collate<Vec<u32>> for LmCollate {
    type Batch = LmBatch;

    fn collate(&self, items: Vec<Vec<u32>>) -> Result<LmBatch> {
        let context = self.context;
        if context == 0 {
            return Err(DataError::config("LmCollate", "context must be at least 1"));
        }
        let mut inputs = Array2::zeros((items.len(), context));
        let mut targets = Array2::zeros((items.len(), context));
        for (row, window) in items.iter().enumerate() {
            if window.len() != context + 1 {
                return Err(DataError::ShapeMismatch {
                    what: "LmCollate window",
                    expected: format!("[{}] (context + 1)", context + 1),
                    found: format!("[{}] in row {row}", window.len()),
                });
            }
            for t in 0..context {
                inputs[[row, t]] = window[t];
                targets[[row, t]] = window[t + 1];
            }
        }
        Ok(LmBatch { inputs, targets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_goes_to_the_longest_and_the_mask_marks_real_tokens() {
        let batch = PadCollate::new(0)
            .collate(vec![vec![5, 6, 7], vec![8], vec![]])
            .unwrap();
        assert_eq!(batch.ids.shape(), [3, 3]);
        assert_eq!(batch.ids.row(0).to_vec(), [5, 6, 7]);
        assert_eq!(batch.ids.row(1).to_vec(), [8, 0, 0]);
        assert_eq!(batch.ids.row(2).to_vec(), [0, 0, 0]);
        assert_eq!(batch.attention_mask.row(0).to_vec(), [1, 1, 1]);
        assert_eq!(batch.attention_mask.row(1).to_vec(), [1, 0, 0]);
        assert_eq!(batch.attention_mask.row(2).to_vec(), [0, 0, 0]);
        assert_eq!(batch.lengths, [3, 1, 0]);
        // The padding id may be a real id (here 6): the mask, not the id, tells them apart.
        let batch = PadCollate::new(6)
            .collate(vec![vec![6], vec![6, 6]])
            .unwrap();
        assert_eq!(batch.attention_mask.row(0).to_vec(), [1, 0]);
        let empty = PadCollate::new(0).collate(vec![]).unwrap();
        assert_eq!(empty.ids.shape(), [0, 0]);
    }

    #[test]
    fn lm_windows_split_into_shifted_targets() {
        let batch = LmCollate::new(3)
            .collate(vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]])
            .unwrap();
        assert_eq!(batch.inputs.row(1).to_vec(), [5, 6, 7]);
        assert_eq!(batch.targets.row(1).to_vec(), [6, 7, 8]);
    }

    #[test]
    fn lm_window_of_the_wrong_length_names_both_shapes() {
        let err = LmCollate::new(3)
            .collate(vec![vec![1, 2, 3, 4], vec![1, 2]])
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("[4]") && text.contains("[2] in row 1"),
            "{text}"
        );
    }
}
