//! The element types accumulators accept, and the checks every batch goes through.
//!
//! Class labels are integer class indices in `0..n_classes` of any primitive integer type (or `bool`
//! for two classes); map string labels to indices before evaluating. Scores, probabilities and logits
//! are `f32` or `f64` and are widened to `f64`, in which everything is computed. Inputs arrive as
//! ndarray views or anything that converts into one (`&[T]`, `&Vec<T>`, `&Array1<T>`); contiguous
//! inputs are read in place, others are copied once into a contiguous buffer.

use std::borrow::Cow;

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};

/// An integer type usable as a class label: a class index in `0..n_classes`.
pub trait ClassLabel: Copy + PartialEq + Send + Sync + 'static {
    /// The class index, or `usize::MAX` for a negative value, so that one `< n_classes` test rejects
    /// both negative and too-large labels.
    fn to_index(self) -> usize;
    /// The label as `u32`, or `u32::MAX` when it is negative or does not fit: since class counts fit
    /// in 32 bits, one `< n_classes` test still rejects every bad label, and hot loops run in 32-bit
    /// lanes.
    fn to_u32_or_max(self) -> u32;
    /// The label as a wide signed integer, for error messages.
    fn to_i128(self) -> i128;
    /// True when every label is in `0..n_classes`. Implemented per type so the check runs in the
    /// label's own width (16 `u32` lanes per AVX-512 instruction rather than 8 widened ones).
    fn all_below(labels: &[Self], n_classes: usize) -> bool;
}

macro_rules! unsigned_label {
    ($($t:ty),*) => {$(
        impl ClassLabel for $t {
            #[inline(always)]
            fn to_index(self) -> usize {
                usize::try_from(self).unwrap_or(usize::MAX)
            }
            #[inline(always)]
            fn to_u32_or_max(self) -> u32 {
                u32::try_from(self).unwrap_or(u32::MAX)
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline]
            fn all_below(labels: &[Self], n_classes: usize) -> bool {
                match <$t>::try_from(n_classes) {
                    Ok(bound) => labels.iter().fold(0, |m: $t, &x| m.max(x)) < bound,
                    // Every value of the type is a valid class.
                    Err(_) => true,
                }
            }
        }
    )*};
}

macro_rules! signed_label {
    ($($t:ty),*) => {$(
        impl ClassLabel for $t {
            #[inline(always)]
            fn to_index(self) -> usize {
                if self < 0 { usize::MAX } else { usize::try_from(self).unwrap_or(usize::MAX) }
            }
            #[inline(always)]
            fn to_u32_or_max(self) -> u32 {
                u32::try_from(self).unwrap_or(u32::MAX)
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline]
            fn all_below(labels: &[Self], n_classes: usize) -> bool {
                let (min, max) = labels
                    .iter()
                    .fold((0 as $t, 0 as $t), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                min >= 0 && <$t>::try_from(n_classes).map_or(true, |bound| max < bound)
            }
        }
    )*};
}

unsigned_label!(u8, u16, u32, u64, usize);
signed_label!(i8, i16, i32, i64, isize);

impl ClassLabel for bool {
    #[inline(always)]
    fn to_index(self) -> usize {
        usize::from(self)
    }
    #[inline(always)]
    fn to_u32_or_max(self) -> u32 {
        u32::from(self)
    }
    fn to_i128(self) -> i128 {
        i128::from(self)
    }
    fn all_below(labels: &[Self], n_classes: usize) -> bool {
        n_classes >= 2 || labels.iter().all(|&x| !x)
    }
}

/// A floating-point score, probability or logit: `f32` or `f64`, widened to `f64`.
pub trait Score: Copy + Send + Sync + 'static {
    /// Machine epsilon of the input type (log loss clips probabilities to `[eps, 1 - eps]` with the
    /// epsilon of the type it was given, as scikit-learn does).
    const EPSILON: f64;
    /// The value as `f64` (exact).
    fn to_f64(self) -> f64;
}

impl Score for f32 {
    const EPSILON: f64 = f32::EPSILON as f64;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Score for f64 {
    const EPSILON: f64 = f64::EPSILON;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// The view's elements as a slice: borrowed when contiguous, copied otherwise.
pub(crate) fn contiguous<'a, T: Clone>(view: &ArrayView1<'a, T>) -> Cow<'a, [T]> {
    match view.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(view.iter().cloned().collect()),
    }
}

/// The matrix's elements in row-major order: borrowed when already so laid out, copied otherwise.
pub(crate) fn contiguous_rows<'a, T: Clone>(view: &ArrayView2<'a, T>) -> Cow<'a, [T]> {
    match view.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(view.iter().cloned().collect()),
    }
}

pub(crate) fn check_lengths(
    metric: &'static str,
    left: &'static str,
    left_len: usize,
    right: &'static str,
    right_len: usize,
) -> Result<()> {
    if left_len != right_len {
        return Err(EvalError::LengthMismatch {
            metric,
            left,
            left_len,
            right,
            right_len,
        });
    }
    if left_len == 0 {
        return Err(EvalError::EmptyInput { metric, what: left });
    }
    Ok(())
}

pub(crate) fn check_columns(
    metric: &'static str,
    what: &'static str,
    shape: &[usize],
    n_classes: usize,
) -> Result<()> {
    if shape[1] != n_classes {
        return Err(EvalError::ShapeMismatch {
            metric,
            what,
            got: shape.to_vec(),
            expected: format!("must have {n_classes} columns, one per declared class"),
        });
    }
    Ok(())
}

/// Errors on the first label outside `0..n_classes`. The whole slice is checked first with a
/// reduction that vectorises; the position is only searched for when something is wrong.
#[inline]
pub(crate) fn check_labels<L: ClassLabel>(
    metric: &'static str,
    what: &'static str,
    labels: &[L],
    n_classes: usize,
    offset: usize,
) -> Result<()> {
    if L::all_below(labels, n_classes) {
        return Ok(());
    }
    let position = labels
        .iter()
        .position(|l| l.to_index() >= n_classes)
        .expect("a label at or above n_classes exists");
    Err(EvalError::LabelOutOfRange {
        metric,
        what,
        position: offset + position,
        label: labels[position].to_i128(),
        n_classes,
    })
}

/// Errors on the first NaN in `values` (`columns` > 1 reports a row and column).
pub(crate) fn check_not_nan<S: Score>(
    metric: &'static str,
    what: &'static str,
    values: &[S],
    columns: usize,
) -> Result<()> {
    // Any comparison with NaN is false, so a NaN-free slice has x == x everywhere.
    if values.iter().all(|&x| x.to_f64() == x.to_f64()) {
        return Ok(());
    }
    let i = values
        .iter()
        .position(|&x| x.to_f64().is_nan())
        .expect("a NaN exists");
    Err(EvalError::NonFinite {
        metric,
        what,
        position: position_of(i, columns),
        value: f64::NAN,
    })
}

pub(crate) fn position_of(flat: usize, columns: usize) -> Vec<usize> {
    if columns > 1 {
        vec![flat / columns, flat % columns]
    } else {
        vec![flat]
    }
}

/// Errors unless the accumulators were declared with the same number of classes.
pub(crate) fn check_same_classes(metric: &'static str, mine: usize, theirs: usize) -> Result<()> {
    if mine != theirs {
        return Err(EvalError::MergeMismatch {
            metric,
            reason: format!("{mine} classes vs {theirs} classes"),
        });
    }
    Ok(())
}

pub(crate) fn check_n_classes(
    metric: &'static str,
    n_classes: usize,
    at_least: usize,
) -> Result<()> {
    if n_classes < at_least {
        return Err(EvalError::InvalidArgument {
            metric,
            reason: format!("n_classes must be at least {at_least}, got {n_classes}"),
        });
    }
    if u32::try_from(n_classes).is_err() {
        return Err(EvalError::InvalidArgument {
            metric,
            reason: format!("n_classes = {n_classes} does not fit in 32 bits"),
        });
    }
    Ok(())
}

pub(crate) fn empty_accumulator(metric: &'static str) -> EvalError {
    EvalError::EmptyInput {
        metric,
        what: "the accumulator (no update yet)",
    }
}
