//! Kernels on plain ndarray: the ops a Transformer needs, forward and backward as separate functions.

pub mod broadcast;
pub(crate) mod parallel;
pub mod reduce;

#[cfg(test)]
pub(crate) mod testing;
pub mod special;
