//! The element types an optimizer updates: `f32` and `f64`.
//!
//! Hyper-parameters are `f64` everywhere (they are few, and schedules compute in `f64`); each step
//! converts them once to the parameters' type, so an `f32` model gets `f32` arithmetic in its inner
//! loops, as PyTorch's does.

use std::fmt::Debug;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type fm-optim updates in place: `f32` or `f64`.
pub trait Scalar:
    num_traits::Float + Default + Debug + Send + Sync + 'static + sealed::Sealed
{
    /// Converts a hyper-parameter (rounding for `f32`).
    fn from_f64_lossy(value: f64) -> Self;
    /// Widens to `f64` without loss.
    fn to_f64_lossless(self) -> f64;
}

impl Scalar for f32 {
    #[inline]
    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    #[inline]
    fn from_f64_lossy(value: f64) -> Self {
        value
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
