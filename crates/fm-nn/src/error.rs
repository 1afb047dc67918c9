//! The one error type of fm-nn.
//!
//! Model configurations are validated when a model is built, inputs when they are fed, and weight
//! files when they are loaded; each failure says what was wrong in terms a user can act on (the
//! offending value and the limit, both shapes, the file). Errors from the crates below (tensor ops,
//! losses, attention) pass through unchanged.

use std::fmt;
use std::path::PathBuf;

use fm_attention::AttentionError;
use fm_loss::LossError;
use fm_tensor::TensorError;

/// Result alias used throughout fm-nn.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// What went wrong while building, running, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// A model or layer configuration that cannot be built (`d_model` not divisible by `n_heads`, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A token id that is not below the vocabulary size.
    #[error("token id {token} at batch row {row}, position {position} is out of range for a vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id given.
        token: u64,
        /// Row of the batch it is in.
        row: usize,
        /// Position in its row.
        position: usize,
        /// Vocabulary size of the model.
        vocab: usize,
    },
    /// A sequence (or a cached prefix plus new tokens) longer than the model's context.
    #[error("sequence of {len} tokens is longer than the model's context of {context}")]
    SequenceTooLong {
        /// Tokens in the sequence (including any cached prefix).
        len: usize,
        /// The model's context length.
        context: usize,
    },
    /// An input whose shape does not fit the layer.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which input.
        what: String,
        /// What the layer expects (0 where any size goes).
        expected: Vec<usize>,
        /// What it was given.
        got: Vec<usize>,
    },
    /// An argument outside its domain (a temperature below 0, an empty batch, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A weights file whose tensors do not match the model: every problem is listed.
    #[error("{}: weights do not match the model: {}", .path.display(), WeightProblems(.problems))]
    WeightMismatch {
        /// The weights file.
        path: PathBuf,
        /// Every mismatch found.
        problems: Vec<WeightProblem>,
    },
    /// A file that could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file that is not valid JSON for the expected config.
    #[error("{}: invalid config JSON at line {}, column {}: {source}", .path.display(), .source.line(), .source.column())]
    ConfigJson {
        /// The file.
        path: PathBuf,
        /// The parse error (with its line and column).
        source: serde_json::Error,
    },
    /// A tensor op failed (shapes, autograd, safetensors).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A loss rejected its input.
    #[error(transparent)]
    Loss(#[from] LossError),
    /// The attention kernel rejected its input.
    #[error(transparent)]
    Attention(#[from] AttentionError),
}

/// One way a weights file disagrees with a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightProblem {
    /// The model has a parameter the file lacks.
    Missing {
        /// Parameter name.
        name: String,
        /// The shape the model expects.
        expected_shape: Vec<usize>,
    },
    /// The file has a tensor the model does not.
    Unexpected {
        /// Tensor name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// Same name, different shape.
    WrongShape {
        /// Parameter name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Same name, a dtype that cannot be read as floating point.
    WrongDtype {
        /// Parameter name.
        name: String,
        /// The dtype in the file (`"I64"`, ...).
        found: String,
    },
}

impl fmt::Display for WeightProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightProblem::Missing {
                name,
                expected_shape,
            } => write!(
                f,
                "missing tensor `{name}` (expected shape {expected_shape:?})"
            ),
            WeightProblem::Unexpected { name, shape } => {
                write!(f, "unexpected tensor `{name}` (shape {shape:?})")
            }
            WeightProblem::WrongShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, the model expects {expected:?}"
            ),
            WeightProblem::WrongDtype { name, found } => write!(
                f,
                "tensor `{name}` has dtype {found}, expected F32, F64, F16 or BF16"
            ),
        }
    }
}

/// Formats a list of problems as one `; `-separated line.
struct WeightProblems<'a>(&'a [WeightProblem]);

impl fmt::Display for WeightProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl From<NnError> for TensorError {
    /// Lets fm-nn errors travel through closures that must return fm-tensor's error (gradient checks).
    fn from(error: NnError) -> Self {
        match error {
            NnError::Tensor(inner) => inner,
            other => TensorError::Autograd(other.to_string()),
        }
    }
}
