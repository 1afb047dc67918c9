//! Kernels on plain ndarray: the ops a Transformer needs, forward and backward as separate functions.

pub mod activation;
pub mod broadcast;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub(crate) mod parallel;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod special;

#[cfg(test)]
pub(crate) mod testing;
