//! Attention on fm-tensor's tape, through its public [`CustomOp`] extension point.
//!
//! The op's forward runs [`attention_forward`] and keeps the log-sum-exp; its backward runs
//! [`attention_backward`]. fm-tensor knows nothing about attention.
//!
//! ```
//! use fm_attention::{autograd::attention, AttentionOptions};
//! use fm_tensor::Tape;
//! use ndarray::Array4;
//!
//! let tape = Tape::<f64>::new();
//! let q = tape.variable(Array4::<f64>::from_shape_fn((1, 2, 3, 4), |(_, h, i, d)| (h + i * d) as f64 * 0.1));
//! let k = tape.variable(Array4::<f64>::from_elem((1, 1, 3, 4), 0.2)); // one KV head shared by both
//! let v = tape.variable(Array4::<f64>::from_elem((1, 1, 3, 4), 1.0));
//! let out = attention(q, k, v, &AttentionOptions::new().causal(true))?;
//! assert_eq!(out.shape(), vec![1, 2, 3, 4]);
//! let grads = tape.backward(out.sum()?)?;
//! assert_eq!(grads.of(k).unwrap().shape(), &[1, 1, 3, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ndarray::{Array3, ArrayD, ArrayViewD, Ix3, Ix4};

use fm_tensor::autograd::{BackwardContext, CustomOp};
use fm_tensor::{Element, TensorError, Var};

use crate::error::{AttentionError, Result};
use crate::kernels::{attention_backward, attention_forward};
use crate::options::AttentionOptions;

/// Records attention of `q`, `k`, `v` (`[batch, heads, seq, head_dim]`, K/V possibly with fewer
/// heads) on their tape; the result is `[batch, heads, seq_q, v_dim]`.
///
/// # Errors
/// As [`attention_forward`]; also when the variables live on different tapes.
pub fn attention<'t, T: Element>(
    q: Var<'t, T>,
    k: Var<'t, T>,
    v: Var<'t, T>,
    opts: &AttentionOptions,
) -> Result<Var<'t, T>> {
    // Check here so the user gets fm-attention's error, not a wrapped one.
    crate::problem::check_qkv("attention", &q.shape(), &k.shape(), &v.shape(), opts)?;
    let op = AttentionOp::<T> {
        opts: opts.clone(),
        lse: None,
    };
    Ok(q.tape().apply(op, &[q, k, v])?)
}

/// The recorded op: options plus the log-sum-exp saved by the forward.
struct AttentionOp<T> {
    opts: AttentionOptions,
    lse: Option<Array3<T>>,
}

fn to_tensor_error(e: AttentionError) -> TensorError {
    match e {
        AttentionError::Tensor(inner) => inner,
        other => TensorError::Autograd(format!("attention: {other}")),
    }
}

fn view4<'a, T>(x: &ArrayViewD<'a, T>) -> fm_tensor::Result<ndarray::ArrayView4<'a, T>> {
    x.clone().into_dimensionality::<Ix4>().map_err(|_| {
        TensorError::Autograd(format!("attention: expected 4 axes, got {:?}", x.shape()))
    })
}

impl<T: Element> CustomOp<T> for AttentionOp<T> {
    fn name(&self) -> &str {
        "attention"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> fm_tensor::Result<ArrayD<T>> {
        let out = attention_forward(
            view4(&inputs[0])?,
            view4(&inputs[1])?,
            view4(&inputs[2])?,
            &self.opts,
        )
        .map_err(to_tensor_error)?;
        self.lse = Some(out.lse);
        Ok(out.output.into_dyn())
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> fm_tensor::Result<Vec<Option<ArrayD<T>>>> {
        let lse = self
            .lse
            .as_ref()
            .ok_or_else(|| TensorError::Autograd("attention: backward before forward".into()))?;
        let grads = attention_backward(
            view4(&ctx.inputs[0])?,
            view4(&ctx.inputs[1])?,
            view4(&ctx.inputs[2])?,
            view4(&ctx.output)?,
            lse.view().into_dimensionality::<Ix3>().expect("three axes"),
            view4(&ctx.grad_output)?,
            &self.opts,
        )
        .map_err(to_tensor_error)?;
        let keep = |i: usize, g: ndarray::Array4<T>| ctx.needs_grad[i].then(|| g.into_dyn());
        Ok(vec![
            keep(0, grads.dq),
            keep(1, grads.dk),
            keep(2, grads.dv),
        ])
    }
}
