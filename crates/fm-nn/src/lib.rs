//! # fm-nn
//!
//! Transformer layers and models on fm-tensor's autograd: the pieces of a GPT or a BERT-style
//! classifier, ready to train with fm-loss and fm-optim, generate text with a KV cache, and save as
//! safetensors. Use it when you want a language model or a text classifier on the CPU from Rust,
//! with your own training loop (or fm-train's).
//!
//! ## A first example
//!
//! Build a tiny GPT, take one AdamW step on a batch, and generate a few tokens:
//!
//! ```
//! use fm_nn::{generate, GenerateOptions, Gpt, GptConfig};
//! use fm_optim::{AdamConfig, AdamW, Optimizer};
//! use fm_tensor::autograd::Tape;
//! use ndarray::array;
//!
//! // vocab 32, context 16, d_model 16, 2 layers, 4 heads; GPT-2 defaults otherwise.
//! let mut model = Gpt::<f32>::new(GptConfig::new(32, 16, 16, 2, 4), 42)?;
//! let mut optimizer = AdamW::new(AdamConfig::adamw().lr(1e-2).build()?);
//!
//! let ids = array![[1u32, 5, 9, 13], [2, 6, 10, 14]];
//! let targets = array![[5u32, 9, 13, 17], [6, 10, 14, 18]];
//! let loss_before = {
//!     let tape = Tape::new();
//!     let ctx = model.context(&tape).with_dropout_seed(0);
//!     let loss = model.loss(&ctx, ids.view(), targets.view())?;
//!     let grads = tape.backward(loss)?;
//!     let value = loss.item()?;
//!     drop(ctx);
//!     model.params_mut().accumulate(&grads)?;
//!     value
//! };
//! optimizer.step(model.params_mut())?;
//! model.params_mut().zero_grad();
//!
//! let tape = Tape::new();
//! let loss_after = model.loss(&model.context(&tape), ids.view(), targets.view())?.item()?;
//! assert!(loss_after < loss_before);
//!
//! let options = GenerateOptions { max_new_tokens: 8, ..GenerateOptions::greedy() };
//! let generated = generate(&model, &[1, 5], &options)?;
//! assert_eq!(generated.tokens.len(), 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Concepts, in the order a newcomer meets them
//!
//! 1. [`Module`] and [`ParamRef`]: layers hold parameter references with stable hierarchical names
//!    (`blocks.0.attn.qkv_proj.weight`); the values live in a [`ParamStore`](fm_tensor::ParamStore)
//!    that an optimizer steps. [`ParamBuilder`] registers them with seeded initial values.
//! 2. [`ForwardContext`]: one forward pass's binding of the parameters onto a tape (dropout seed
//!    included). Gradient checks bind parameters to their own variables through it.
//! 3. Layers: [`Linear`] (one fused GEMM op), [`Embedding`], [`LayerNorm`], [`RmsNorm`],
//!    [`Dropout`], [`Mlp`] (GELU erf or tanh, SwiGLU), [`SelfAttention`] (fused QKV, grouped-query
//!    heads, rotary positions, key padding, [`KvCache`]), [`TransformerBlock`] (pre-norm).
//! 4. Models: [`Gpt`] (configured by [`GptConfig`]) and [`EncoderClassifier`] ([`EncoderConfig`]).
//! 5. [`generate()`]: greedy or sampled decoding with the KV cache.
//! 6. [`checkpoint`]: a model directory of `config.json` and `model.safetensors`, written
//!    atomically, loaded with every mismatch reported.
//!
//! ## Correctness
//!
//! The GPT's logits, loss and every parameter's gradient match PyTorch within 1e-4 (relative to each
//! tensor's largest value; measured about 1e-6) for two configurations — learned positions, tied
//! embeddings, GELU, LayerNorm; and rotary positions, grouped-query attention, SwiGLU, RMSNorm —
//! from fixtures written by `tests/fixtures/make_gpt_fixture.py`. Every layer and both models pass
//! f64 finite-difference gradient checks.
//!
//! ## Determinism
//!
//! Initial weights depend only on the seed and each parameter's name; dropout masks only on the
//! context's dropout seed and the layer's name; sampling only on its seed. Kernels underneath are
//! bitwise the same for any thread count, so a model's outputs are too.
//!
//! ## Errors
//!
//! Everything that can be given bad input returns [`Result`] with an [`NnError`]: invalid
//! configurations (`d_model` not divisible by `n_heads`, ...), token ids outside the vocabulary,
//! sequences longer than the context, mismatched weight files. Nothing panics on user input.

pub mod attention;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod error;
pub mod generate;
pub mod gpt;
pub mod linear;
pub mod mlp;
pub mod module;
pub mod norm;
pub mod trunk;

pub use attention::{AttentionConfig, KvCache, SelfAttention};
pub use block::{BlockConfig, TransformerBlock};
pub use config::{EncoderConfig, GptConfig, Pooling, PositionEncoding};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use encoder::EncoderClassifier;
pub use error::{NnError, Result, WeightProblem};
pub use generate::{generate, GenerateOptions, Generation, StopReason};
pub use gpt::Gpt;
pub use linear::Linear;
pub use mlp::{Activation, Mlp};
pub use module::{ForwardContext, Module, ParamBuilder, ParamRef};
pub use norm::{LayerNorm, Norm, NormKind, RmsNorm};
pub use trunk::TransformerTrunk;
