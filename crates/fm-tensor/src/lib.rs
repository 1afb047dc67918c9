//! # fm-tensor
//!
//! The floor of the fm stack: n-dimensional tensors on [`ndarray`], a fast SIMD matrix product, the
//! ops a Transformer needs, and reverse-mode automatic differentiation. Use it when you want to train or
//! run a model on the CPU from Rust, or when you only need a fast `matmul` for your own ndarray arrays.
//!
//! ## A first example
//!
//! Fit `y = 2x + 1` with one weight, one bias and plain gradient descent:
//!
//! ```
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use ndarray::array;
//!
//! let mut params = ParamStore::<f64>::new();
//! let w = params.add("w", array![[0.0]])?;
//! let b = params.add("b", array![0.0])?;
//! let x = array![[1.0], [2.0], [3.0], [4.0]];
//! let y = array![[3.0], [5.0], [7.0], [9.0]];
//!
//! for _step in 0..500 {
//!     let tape = Tape::new();
//!     let pred = tape.constant(x.clone()).matmul(tape.param(&params, w)?)?.add(tape.param(&params, b)?)?;
//!     let loss = pred.sub(tape.constant(y.clone()))?.square()?.mean()?;
//!     params.accumulate(&tape.backward(loss)?)?;
//!     for (_name, value, grad) in params.pairs_mut() {
//!         value.zip_mut_with(grad, |v, g| *v -= 0.05 * g);
//!     }
//!     params.zero_grad();
//! }
//! assert!((params.value(w)[[0, 0]] - 2.0).abs() < 1e-3);
//! assert!((params.value(b)[[0]] - 1.0).abs() < 1e-3);
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```
//!
//! ## Where to look next, in the order a newcomer meets things
//!
//! 1. [`Tensor`]: an `ArrayD` behind a shared handle; zero-copy from and to ndarray arrays.
//! 2. [`gemm`] and [`matmul`]: C = αAB + βC with any strides and transposes, packed and cache-blocked,
//!    with AVX-512 / AVX2 micro-kernels chosen at run time and rayon over output blocks.
//! 3. [`ops`]: every other kernel on plain ndarray — elementwise with broadcasting, reductions, softmax,
//!    norms, activations, shape ops, embedding, dropout — forward and backward side by side.
//! 4. [`autograd`]: the [`Tape`], parameters in a [`ParamStore`], the [`CustomOp`] extension point and
//!    the [`check_gradients`](autograd::check_gradients) finite-difference checker.
//! 5. [`init`] for seeded initialisers, [`safetensors`] for weights on disk, [`Compute`] for thread caps
//!    and peak memory, [`buffers`] for the pool that hands freed op outputs to the next ops.
//!
//! ## Determinism
//!
//! Kernels split parallel work over outputs (rows, blocks), never over a reduction axis, so a result is
//! bitwise the same for any number of threads. The few places where that does not hold say so in their
//! documentation.
//!
//! ## Errors
//!
//! Every public function that can be given bad input returns [`Result`]; a shape error names the op and
//! both shapes. Nothing panics on user input.

pub mod autograd;
pub mod buffers;
pub mod compute;
pub mod element;
pub mod error;
pub mod gemm;
pub mod init;
pub mod ops;
pub mod safetensors;
pub mod tensor;

pub use crate::safetensors::{load_safetensors, save_safetensors, SafeTensorsFile};
pub use autograd::{CustomOp, ParamStore, Tape, Var};
pub use compute::{Compute, MemoryTracker};
pub use element::{DType, Element};
pub use error::{Result, TensorError};
pub use gemm::{batched_matmul, gemm, matmul};
pub use init::{FanMode, Initializer, Nonlinearity};
pub use tensor::Tensor;
