//! Class-index targets: the integer labels of cross-entropy, NLL and the multiclass hinge.
//!
//! A loss takes its targets as anything that converts into [`ClassTargets`]: a slice or `Vec` of
//! `usize`, `u32`, `u64`, `i32` or `i64`, or an ndarray array view of those. Their shape must be the
//! logits' shape without the class axis (`[N]` for `[N, C]` logits, `[B, T]` for `[B, T, V]`), or a
//! flat vector with one target per row. Signed types exist so PyTorch's convention of a negative
//! `ignore_index` (`-100`) carries over.

use std::borrow::Cow;

use ndarray::{ArrayView, Dimension};

use crate::error::{LossError, Result};

/// An integer type that can hold a class index.
pub trait ClassIndex: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The index as `i64` (values above `i64::MAX` saturate, and are then out of range).
    fn to_i64(self) -> i64;
}

macro_rules! class_index {
    ($($t:ty),*) => {$(
        impl ClassIndex for $t {
            #[inline]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
class_index!(usize, u8, u16, u32, u64, i8, i16, i32, i64);

/// Class-index targets, borrowed where their layout allows (see the module doc for the accepted
/// shapes).
#[derive(Debug, Clone)]
pub struct ClassTargets<'a, I: ClassIndex> {
    data: Cow<'a, [I]>,
    shape: Vec<usize>,
}

impl<'a, I: ClassIndex> ClassTargets<'a, I> {
    /// The targets in row-major order.
    pub fn as_slice(&self) -> &[I] {
        &self.data
    }

    /// Their shape as given (`[len]` for slices).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// An owned copy (for ops that keep their targets until the backward pass).
    pub fn into_owned(self) -> ClassTargets<'static, I> {
        ClassTargets {
            data: Cow::Owned(self.data.into_owned()),
            shape: self.shape,
        }
    }
}

impl<'a, I: ClassIndex> From<&'a [I]> for ClassTargets<'a, I> {
    fn from(data: &'a [I]) -> Self {
        ClassTargets {
            shape: vec![data.len()],
            data: Cow::Borrowed(data),
        }
    }
}

impl<'a, I: ClassIndex, const N: usize> From<&'a [I; N]> for ClassTargets<'a, I> {
    fn from(data: &'a [I; N]) -> Self {
        ClassTargets::from(&data[..])
    }
}

impl<'a, I: ClassIndex> From<&'a Vec<I>> for ClassTargets<'a, I> {
    fn from(data: &'a Vec<I>) -> Self {
        ClassTargets::from(data.as_slice())
    }
}

impl<I: ClassIndex> From<Vec<I>> for ClassTargets<'static, I> {
    fn from(data: Vec<I>) -> Self {
        ClassTargets {
            shape: vec![data.len()],
            data: Cow::Owned(data),
        }
    }
}

impl<'a, I: ClassIndex, D: Dimension> From<ArrayView<'a, I, D>> for ClassTargets<'a, I> {
    fn from(view: ArrayView<'a, I, D>) -> Self {
        let shape = view.shape().to_vec();
        // Borrow when the view is row-major contiguous; copy once otherwise.
        let data = match view.to_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(view.iter().copied().collect()),
        };
        ClassTargets { data, shape }
    }
}

impl<'a, 'b, I: ClassIndex, D: Dimension> From<&'b ArrayView<'a, I, D>> for ClassTargets<'a, I> {
    fn from(view: &'b ArrayView<'a, I, D>) -> Self {
        ClassTargets::from(view.clone())
    }
}

/// Where a target points once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A class index below the number of classes.
    Class(usize),
    /// The `ignore_index`: the row contributes no loss and no gradient.
    Ignored,
}

/// Resolves one target (already validated by [`validate`]).
#[inline]
pub(crate) fn resolve(raw: i64, ignore_index: Option<i64>) -> Target {
    if Some(raw) == ignore_index {
        Target::Ignored
    } else {
        Target::Class(raw as usize)
    }
}

/// Checks the targets' shape against the logits' leading shape and every index against `classes`,
/// and returns the mean's denominator: the number of non-ignored targets, or the sum of their class
/// weights when `weights` are given.
pub(crate) fn validate<I: ClassIndex>(
    op: &'static str,
    targets: &ClassTargets<'_, I>,
    leading_shape: &[usize],
    classes: usize,
    ignore_index: Option<i64>,
    weights: Option<&[f64]>,
) -> Result<f64> {
    let rows: usize = leading_shape.iter().product();
    let shape_ok =
        targets.shape() == leading_shape || (targets.shape().len() == 1 && targets.len() == rows);
    if !shape_ok {
        return Err(LossError::shape_mismatch(
            op,
            leading_shape,
            targets.shape(),
            "targets need the logits' shape without the class axis, or one flat target per row",
        ));
    }
    let mut denominator = 0.0;
    for (position, &target) in targets.as_slice().iter().enumerate() {
        let raw = target.to_i64();
        match (Some(raw) == ignore_index, usize::try_from(raw)) {
            (true, _) => {}
            (false, Ok(class)) if class < classes => {
                denominator += weights.map_or(1.0, |w| w[class]);
            }
            _ => {
                return Err(LossError::ClassOutOfRange {
                    op,
                    position,
                    class: raw,
                    classes,
                })
            }
        }
    }
    Ok(denominator)
}

/// Checks per-class weights: one finite, non-negative weight per class.
pub(crate) fn validate_class_weights(
    op: &'static str,
    weights: &[f64],
    classes: usize,
) -> Result<()> {
    if weights.len() != classes {
        return Err(LossError::shape_mismatch(
            op,
            &[classes],
            &[weights.len()],
            "class weights need one weight per class",
        ));
    }
    if let Some((class, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(LossError::invalid_option(
            op,
            format!("class weight {w} for class {class} must be finite and non-negative"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn targets_from_slices_vecs_and_views() {
        let v = vec![1u32, 2, 0];
        assert_eq!(ClassTargets::from(&v).shape(), &[3]);
        let a = array![[1i64, 2], [0, -100]];
        let t = ClassTargets::from(a.view());
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.as_slice(), &[1, 2, 0, -100]);
        // A transposed view is copied in logical order.
        let t = ClassTargets::from(a.t());
        assert_eq!(t.as_slice(), &[1, 0, 2, -100]);
    }

    #[test]
    fn validation_reports_position_and_class() {
        let t = ClassTargets::from(&[0i64, 3, -1]);
        let e = validate("ce", &t, &[3], 3, None, None).unwrap_err();
        assert!(matches!(
            e,
            LossError::ClassOutOfRange {
                position: 1,
                class: 3,
                classes: 3,
                ..
            }
        ));
        let e = validate(
            "ce",
            &ClassTargets::from(&[0i64, 2, -1]),
            &[3],
            3,
            None,
            None,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            LossError::ClassOutOfRange {
                position: 2,
                class: -1,
                ..
            }
        ));
        let d = validate(
            "ce",
            &ClassTargets::from(&[0i64, 2, -1]),
            &[3],
            3,
            Some(-1),
            None,
        )
        .unwrap();
        assert_eq!(d, 2.0);
        let d = validate(
            "ce",
            &ClassTargets::from(&[0i64, 2, -1]),
            &[3],
            3,
            Some(-1),
            Some(&[0.5, 1.0, 2.0]),
        )
        .unwrap();
        assert_eq!(d, 2.5);
        let e = validate("ce", &ClassTargets::from(&[0u32, 1]), &[3], 3, None, None).unwrap_err();
        assert!(matches!(e, LossError::ShapeMismatch { .. }));
    }
}
