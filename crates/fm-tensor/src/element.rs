//! The scalar types a tensor can hold.
//!
//! fm computes in `f32` (the fast path) and `f64` (for gradient checks and reference tests). Everything
//! generic in this crate is generic over [`Element`], which is implemented for exactly those two types:
//! each of them has its own GEMM micro-kernels, so the set is closed (sealed).

use std::fmt::{Debug, Display};
use std::iter::Sum;

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};

/// A floating-point type fm-tensor computes in: `f32` or `f64`.
pub trait Element:
    Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + crate::gemm::GemmElement
{
    /// The dtype tag of this type (as written in safetensors files).
    const DTYPE: DType;

    /// Converts an `f64` constant into this type (rounding for `f32`).
    fn from_f64_lossy(value: f64) -> Self;

    /// Widens to `f64` without loss.
    fn to_f64_lossless(self) -> f64;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    #[inline]
    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    #[inline]
    fn from_f64_lossy(value: f64) -> Self {
        value
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}

/// Storage types that appear in tensor files. Computation happens in [`Element`] types only; `BF16`
/// and `F16` can be read (and widened) from safetensors files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// bfloat16 (read only).
    BF16,
    /// IEEE 754 binary16 (read only).
    F16,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::BF16 | DType::F16 => 2,
        }
    }

    /// The name safetensors uses for this dtype.
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::BF16 => "BF16",
            DType::F16 => "F16",
        }
    }
}

impl Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.safetensors_name())
    }
}
