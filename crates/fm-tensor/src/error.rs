//! The one error type of fm-tensor.
//!
//! Every public function that can be handed bad input returns [`Result`]. Variants carry what a user
//! needs to fix the call: the op's name and both shapes for a shape mismatch, the file and the reason
//! for a malformed safetensors file. Panics are reserved for broken internal invariants.

use std::path::PathBuf;

/// Result alias used throughout fm-tensor.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// What went wrong in a tensor operation, a kernel call or a file read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// Two operands whose shapes do not fit together for `op`.
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}{}", detail_suffix(.detail))]
    ShapeMismatch {
        /// The operation that rejected the shapes.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Vec<usize>,
        /// Shape of the second operand.
        rhs: Vec<usize>,
        /// Which dimensions disagree, or what was expected.
        detail: String,
    },
    /// An operand whose shape is wrong on its own (wrong rank, empty where data is required, ...).
    #[error("{op}: invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The operation that rejected the shape.
        op: &'static str,
        /// The offending shape.
        shape: Vec<usize>,
        /// What was expected instead.
        reason: String,
    },
    /// An argument outside its domain (an axis past the rank, a probability outside [0, 1), ...).
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument {
        /// The operation that rejected the argument.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An index (token id, gather index) past the end of the axis it indexes.
    #[error("{op}: index {index} out of bounds for axis of length {len}")]
    IndexOutOfBounds {
        /// The operation that rejected the index.
        op: &'static str,
        /// The index given.
        index: usize,
        /// The length of the indexed axis.
        len: usize,
    },
    /// A mistake in the use of the autograd tape (a variable from another tape, a non-scalar loss, ...).
    #[error("autograd: {0}")]
    Autograd(String),
    /// A safetensors file that cannot be read as it claims to be.
    #[error("{}: malformed safetensors file: {reason}", .path.display())]
    MalformedFile {
        /// The file (or `<memory>` for in-memory buffers).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor stored with a dtype this crate cannot convert to the one requested.
    #[error("{}: tensor {name:?} has unsupported dtype {dtype}", .path.display())]
    UnsupportedDtype {
        /// The file the tensor came from.
        path: PathBuf,
        /// The tensor's name in the file.
        name: String,
        /// The dtype recorded in the file.
        dtype: String,
    },
    /// A named tensor that was asked for but is not there.
    #[error("no tensor named {name:?}{}", detail_suffix(.detail))]
    MissingTensor {
        /// The missing name.
        name: String,
        /// Where it was looked for.
        detail: String,
    },
    /// An I/O failure, with the file it happened on.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Building a thread pool failed.
    #[error("thread pool: {0}")]
    ThreadPool(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl TensorError {
    /// Shape mismatch between two operands of `op`.
    pub fn shape_mismatch(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        detail: impl Into<String>,
    ) -> Self {
        TensorError::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            detail: detail.into(),
        }
    }

    /// An operand whose shape is wrong on its own.
    pub fn invalid_shape(op: &'static str, shape: &[usize], reason: impl Into<String>) -> Self {
        TensorError::InvalidShape {
            op,
            shape: shape.to_vec(),
            reason: reason.into(),
        }
    }

    /// An argument outside its domain.
    pub fn invalid_argument(op: &'static str, reason: impl Into<String>) -> Self {
        TensorError::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_mismatch_names_op_and_both_shapes() {
        let e = TensorError::shape_mismatch(
            "matmul",
            &[2, 3],
            &[4, 5],
            "inner dimensions 3 and 4 differ",
        );
        let text = e.to_string();
        assert_eq!(
            text,
            "matmul: shape mismatch between [2, 3] and [4, 5] (inner dimensions 3 and 4 differ)"
        );
    }

    #[test]
    fn malformed_file_names_the_file() {
        let e = TensorError::MalformedFile {
            path: "w.safetensors".into(),
            reason: "header too short".into(),
        };
        assert!(e.to_string().starts_with("w.safetensors: malformed"));
    }
}
