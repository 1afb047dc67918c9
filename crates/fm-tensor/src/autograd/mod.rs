//! Reverse-mode automatic differentiation.
//!
//! Three pieces, each in its own file:
//! - [`Tape`] records ops as they run and replays their backward passes ([`Tape::backward`]).
//! - [`ParamStore`] holds parameters outside the tape; a step binds them with [`Tape::param`] and
//!   accumulates the resulting [`Gradients`] back with [`ParamStore::accumulate`].
//! - [`CustomOp`] is the extension point every op implements — the built-in ones, fm-attention's and
//!   fm-loss's fused kernels, and yours.
//!
//! [`check_gradients`] compares an op's backward with central differences in f64.

mod gradcheck;
mod op;
mod ops;
mod params;
mod tape;
mod var;

pub use gradcheck::{check_gradients, GradCheckConfig, GradCheckReport};
pub use op::{BackwardContext, CustomOp};
pub use ops::shape::concat;
pub use params::{ParamId, ParamStore, Parameter};
pub use tape::{Gradients, Tape};
pub use var::Var;
