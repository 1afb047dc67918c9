//! Built-in ops as [`CustomOp`](crate::autograd::CustomOp) implementations: thin adapters from the
//! tape to the kernels in [`crate::ops`] and [`crate::gemm`]. One file per kernel family.

pub(crate) mod elementwise;
pub(crate) mod embedding;
pub(crate) mod linalg;
pub(crate) mod norm;
pub(crate) mod reduce;
pub(crate) mod shape;
