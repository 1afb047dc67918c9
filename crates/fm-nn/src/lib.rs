//! # fm-nn
//!
//! (Crate tour: see the end of this file's doc once written.)

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
