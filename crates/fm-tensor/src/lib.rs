//! # fm-tensor
//!
//! Tensors on [`ndarray`], a fast SIMD GEMM, the ops a Transformer needs, and reverse-mode autograd.
//! (crate doc to be completed)

pub mod compute;
pub mod element;
pub mod error;
pub mod gemm;
pub mod ops;
pub mod tensor;

pub use compute::{Compute, MemoryTracker};
pub use element::{DType, Element};
pub use error::{Result, TensorError};
pub use gemm::{batched_matmul, gemm, matmul};
pub use tensor::Tensor;
