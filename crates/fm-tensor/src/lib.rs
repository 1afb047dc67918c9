//! # fm-tensor
//!
//! Tensors on [`ndarray`], a fast SIMD GEMM, the ops a Transformer needs, and reverse-mode autograd.
//! (crate doc to be completed)

pub mod compute;
pub mod element;
pub mod error;
pub mod gemm;
pub mod init;
pub mod ops;
pub mod safetensors;
pub mod tensor;

pub use crate::safetensors::{load_safetensors, save_safetensors, SafeTensorsFile};
pub use compute::{Compute, MemoryTracker};
pub use element::{DType, Element};
pub use error::{Result, TensorError};
pub use gemm::{gemm, matmul};
pub use init::{FanMode, Initializer, Nonlinearity};
pub use tensor::Tensor;
