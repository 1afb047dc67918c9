//! The one error type of fm-attention.
//!
//! Shape errors name the operation and every shape involved, so a user can see which argument is
//! off without a debugger. Panics are reserved for broken internal invariants.

/// Result alias used throughout fm-attention.
pub type Result<T, E = AttentionError> = std::result::Result<T, E>;

/// What went wrong in an attention kernel, module, positional encoding or KV cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttentionError {
    /// Arguments whose shapes do not fit together (head_dim, sequence lengths, heads, masks).
    #[error("{op}: {detail}")]
    Shape {
        /// The operation that refused them.
        op: &'static str,
        /// Which shapes, and why they do not fit (names every shape involved).
        detail: String,
    },
    /// A configuration value outside its domain (heads not divisible by kv heads, dropout p ∉ [0, 1), ...).
    #[error("{what}: {reason}")]
    InvalidConfig {
        /// The setting.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A KV cache asked to hold more positions than its capacity.
    #[error("KV cache full: holds {len} of {capacity} positions, cannot append {requested} more")]
    CacheFull {
        /// Positions already cached.
        len: usize,
        /// Maximum number of positions.
        capacity: usize,
        /// Positions the append asked for.
        requested: usize,
    },
    /// An error from fm-tensor (GEMM, autograd).
    #[error(transparent)]
    Tensor(#[from] fm_tensor::TensorError),
}

#[allow(dead_code)] // constructors for the kernels and modules landing next
impl AttentionError {
    /// A shape error for `op`.
    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        AttentionError::Shape {
            op,
            detail: detail.into(),
        }
    }

    /// A configuration value outside its domain.
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        AttentionError::InvalidConfig {
            what,
            reason: reason.into(),
        }
    }
}
