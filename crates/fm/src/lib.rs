//! # fm
//!
//! Open infrastructure for foundation models on the CPU, as one dependency: each stage's crate is
//! re-exported under a short name. Add the single crates instead when you need only one stage.
//!
//! | module | crate | for |
//! |---|---|---|
//! | [`tensor`] | `fm-tensor` | tensors, GEMM, ops, autograd, init, safetensors, threads and memory |
//! | [`attention`] | `fm-attention` | fused attention (forward and backward), masks, positions, KV cache, MHA |
//! | [`nn`] | `fm-nn` | layers, a GPT-style decoder, an encoder classifier, generation, save/load |
//! | [`data`] | `fm-data` | collection, cleaning, dedup, BPE tokenizers, datasets, loaders, packing |
//! | [`loss`] | `fm-loss` | losses with gradients, fused LM cross-entropy |
//! | [`optim`] | `fm-optim` | optimizers, clipping, LR schedules |
//! | [`eval`] | `fm-eval` | metrics matching scikit-learn, evaluation reports |
//! | [`train`] | `fm-train` | training-loop building blocks, checkpoints with exact resume, logs |
//!
//! ```
//! use fm::tensor::autograd::Tape;
//! let tape = Tape::<f32>::new();
//! let x = tape.variable(ndarray::array![[1.0f32, 2.0]]);
//! let y = x.matmul(tape.constant(ndarray::array![[3.0f32], [4.0]]))?;
//! assert_eq!(y.item()?, 11.0);
//! # Ok::<(), fm::tensor::TensorError>(())
//! ```
//!
//! The end-to-end example is the README's main job: `cargo run --release -p fm --example end_to_end`.
//! Smaller examples: `sentiment` (an encoder classifier trained on a small labelled JSON Lines set,
//! evaluated against the majority-class baseline) and `tabular_mlp` (a regression MLP on autograd).

pub use fm_attention as attention;
pub use fm_data as data;
pub use fm_eval as eval;
pub use fm_loss as loss;
pub use fm_nn as nn;
pub use fm_optim as optim;
pub use fm_tensor as tensor;
pub use fm_train as train;
