//! Kernels on plain ndarray: the ops a Transformer needs, forward and backward as separate functions.

pub mod dropout;
pub mod embedding;
pub mod shape;
