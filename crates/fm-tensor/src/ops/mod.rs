//! Kernels on plain ndarray: the ops a Transformer needs, forward and backward as separate functions.

pub mod activation;
pub mod broadcast;
pub mod elementwise;
pub mod norm;
pub(crate) mod parallel;
pub mod reduce;
pub mod softmax;
pub mod special;

#[cfg(test)]
pub(crate) mod testing;
