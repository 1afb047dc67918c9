//! Language-model packing: tokenized documents joined into one stream and cut into training
//! windows of `context + 1` tokens.
//!
//! Each document is followed by the end-of-text id (GPT-2's convention), so the model learns where
//! documents stop and a window may span several of them. Window `w` covers stream positions
//! `w * context ..= w * context + context`; its first `context` tokens are the inputs and its last
//! `context` tokens the targets (the inputs shifted left by one). Consecutive windows share one
//! token, so every token of the stream after the first is a target exactly once.
//!
//! What is left after the last full window (fewer than `context` targets) is the *tail*:
//! [`TailPolicy::Drop`] leaves it out, [`TailPolicy::Pad`] makes one more window filled up with a
//! padding id, and [`PackedWindows::target_mask`] marks which targets are real.
//!
//! ```
//! use fm_data::packing::{pack_documents, PackingOptions, TailPolicy};
//!
//! let docs = [vec![1, 2, 3], vec![4, 5]];
//! // Stream: 1 2 3 EOT 4 5 EOT (EOT = 0), context 3.
//! let packed = pack_documents(&docs, &PackingOptions::new(3, 0))?;
//! assert_eq!(packed.inputs.row(0).to_vec(), [1, 2, 3]);
//! assert_eq!(packed.targets.row(0).to_vec(), [2, 3, 0]);
//! assert_eq!(packed.inputs.row(1).to_vec(), [0, 4, 5]);
//! assert_eq!(packed.targets.row(1).to_vec(), [4, 5, 0]);
//! assert_eq!(packed.len(), 2);
//!
//! // Padding the tail instead of dropping it:
//! let opts = PackingOptions::new(4, 0).tail(TailPolicy::Pad { pad_id: 9 });
//! let packed = pack_documents(&docs, &opts)?;
//! assert_eq!(packed.inputs.row(1).to_vec(), [4, 5, 9, 9]);
//! assert_eq!(packed.targets.row(1).to_vec(), [5, 0, 9, 9]);
//! assert_eq!(packed.target_mask.row(1).to_vec(), [true, true, false, false]);
//! # Ok::<(), fm_data::DataError>(())
//! ```

use ndarray::Array2;

use crate::error::{DataError, Result};

/// What to do with the tokens after the last full window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailPolicy {
    /// Leave them out (the usual choice for pre-training: every window is full).
    Drop,
    /// Emit one more window, filled up with `pad_id`; its padded targets are `false` in the mask.
    Pad {
        /// The id written in padded positions (inputs and targets).
        pad_id: u32,
    },
}

/// Settings for [`pack_documents`] and [`pack_stream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackingOptions {
    /// Tokens of input per window (each window reads `context + 1` tokens of the stream).
    pub context: usize,
    /// Id appended after every document.
    pub end_of_text: u32,
    /// What to do with the tail.
    pub tail: TailPolicy,
}

impl PackingOptions {
    /// `context` tokens per window, documents ended by `end_of_text`, tail dropped.
    pub fn new(context: usize, end_of_text: u32) -> Self {
        PackingOptions {
            context,
            end_of_text,
            tail: TailPolicy::Drop,
        }
    }

    /// The same options with another tail policy.
    pub fn tail(mut self, tail: TailPolicy) -> Self {
        self.tail = tail;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.context == 0 {
            return Err(DataError::config(
                "PackingOptions::context",
                "a window needs at least one token of context",
            ));
        }
        Ok(())
    }
}

/// Packed training windows: `[windows, context]` inputs and targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedWindows {
    /// Input ids; row `w` is stream positions `w * context .. w * context + context`.
    pub inputs: Array2<u32>,
    /// Target ids: the inputs shifted left by one position of the stream.
    pub targets: Array2<u32>,
    /// `true` where the target is a real token, `false` where it is padding (only in the padded
    /// tail window).
    pub target_mask: Array2<bool>,
}

impl PackedWindows {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    /// Whether there is no window.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Joins `documents` with the end-of-text id after each and packs the stream (see the module docs).
/// An empty document contributes just its end-of-text id.
pub fn pack_documents<D: AsRef<[u32]>>(
    documents: &[D],
    options: &PackingOptions,
) -> Result<PackedWindows> {
    options.validate()?;
    let total: usize = documents.iter().map(|d| d.as_ref().len() + 1).sum();
    let mut stream = Vec::with_capacity(total);
    for doc in documents {
        stream.extend_from_slice(doc.as_ref());
        stream.push(options.end_of_text);
    }
    pack_stream(&stream, options)
}

/// Packs a stream that is already joined (`options.end_of_text` is not used).
pub fn pack_stream(stream: &[u32], options: &PackingOptions) -> Result<PackedWindows> {
    options.validate()?;
    let context = options.context;
    // Every position after the first is a target; full windows hold `context` targets each.
    let targets_total = stream.len().saturating_sub(1);
    let full = targets_total / context;
    let tail = targets_total % context;
    let (rows, pad_id) = match options.tail {
        TailPolicy::Pad { pad_id } if tail > 0 => (full + 1, pad_id),
        _ => (full, 0),
    };
    let mut inputs = Array2::from_elem((rows, context), pad_id);
    let mut targets = Array2::from_elem((rows, context), pad_id);
    let mut target_mask = Array2::from_elem((rows, context), false);
    for w in 0..rows {
        let start = w * context;
        let real = (targets_total - start).min(context);
        for t in 0..real {
            inputs[[w, t]] = stream[start + t];
            targets[[w, t]] = stream[start + t + 1];
            target_mask[[w, t]] = true;
        }
    }
    Ok(PackedWindows {
        inputs,
        targets,
        target_mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    #[test]
    fn every_token_after_the_first_is_a_target_once() {
        let stream = stream_of(13);
        let packed = pack_stream(&stream, &PackingOptions::new(4, 0)).unwrap();
        // 12 targets, 3 full windows of 4.
        assert_eq!(packed.len(), 3);
        let targets: Vec<u32> = packed.targets.iter().copied().collect();
        assert_eq!(targets, stream[1..].to_vec());
        let inputs: Vec<u32> = packed.inputs.iter().copied().collect();
        assert_eq!(inputs, stream[..12].to_vec());
        assert!(packed.target_mask.iter().all(|&m| m));
    }

    #[test]
    fn targets_are_inputs_shifted_by_one() {
        let packed = pack_stream(&stream_of(50), &PackingOptions::new(7, 0)).unwrap();
        for w in 0..packed.len() {
            for t in 0..6 {
                assert_eq!(packed.targets[[w, t]], packed.inputs[[w, t + 1]]);
            }
            if w + 1 < packed.len() {
                // The last target of a window is the first input of the next.
                assert_eq!(packed.targets[[w, 6]], packed.inputs[[w + 1, 0]]);
            }
        }
    }

    #[test]
    fn documents_are_joined_with_end_of_text_after_each() {
        let docs: [&[u32]; 3] = [&[5, 6], &[], &[7]];
        let packed = pack_documents(&docs, &PackingOptions::new(5, 99)).unwrap();
        // Stream: 5 6 99 99 7 99 -> one full window of 5 targets.
        assert_eq!(packed.inputs.row(0).to_vec(), [5, 6, 99, 99, 7]);
        assert_eq!(packed.targets.row(0).to_vec(), [6, 99, 99, 7, 99]);
    }

    #[test]
    fn tail_is_dropped_or_padded_with_a_mask() {
        let stream = stream_of(10); // 9 targets: two windows of 4, tail of 1
        let dropped = pack_stream(&stream, &PackingOptions::new(4, 0)).unwrap();
        assert_eq!(dropped.len(), 2);
        let padded = pack_stream(
            &stream,
            &PackingOptions::new(4, 0).tail(TailPolicy::Pad { pad_id: 0 }),
        )
        .unwrap();
        assert_eq!(padded.len(), 3);
        assert_eq!(padded.inputs.row(2).to_vec(), [9, 0, 0, 0]);
        assert_eq!(padded.targets.row(2).to_vec(), [10, 0, 0, 0]);
        assert_eq!(
            padded.target_mask.row(2).to_vec(),
            [true, false, false, false]
        );
        assert_eq!(
            padded.inputs.slice(ndarray::s![..2, ..]),
            dropped.inputs.view()
        );
    }

    #[test]
    fn an_exact_fit_has_no_tail_window_even_when_padding() {
        let stream = stream_of(9); // 8 targets = 2 windows of 4
        let opts = PackingOptions::new(4, 0).tail(TailPolicy::Pad { pad_id: 0 });
        assert_eq!(pack_stream(&stream, &opts).unwrap().len(), 2);
    }

    #[test]
    fn short_and_empty_inputs() {
        let opts = PackingOptions::new(4, 0);
        assert!(pack_stream(&[], &opts).unwrap().is_empty());
        assert!(pack_stream(&[1], &opts).unwrap().is_empty());
        assert_eq!(
            pack_stream(&[1, 2, 3], &opts).unwrap().inputs.shape(),
            [0, 4]
        );
        let padded = pack_stream(&[1, 2], &opts.tail(TailPolicy::Pad { pad_id: 7 })).unwrap();
        assert_eq!(padded.inputs.row(0).to_vec(), [1, 7, 7, 7]);
        assert_eq!(padded.targets.row(0).to_vec(), [2, 7, 7, 7]);
        let none: [Vec<u32>; 0] = [];
        assert!(pack_documents(&none, &opts).unwrap().is_empty());
    }

    #[test]
    fn zero_context_is_an_error() {
        let err = pack_stream(&[1, 2, 3], &PackingOptions::new(0, 0)).unwrap_err();
        assert!(err.to_string().contains("context"), "{err}");
    }
}
