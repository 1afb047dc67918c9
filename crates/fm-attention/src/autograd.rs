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

use ndarray::{
    s, Array3, ArrayD, ArrayView3, ArrayView4, ArrayViewD, ArrayViewMut3, ArrayViewMut4, Axis,
    CowArray, Ix3, Ix4,
};

use fm_tensor::autograd::{BackwardContext, CustomOp};
use fm_tensor::{buffers, Element, TensorError, Var};

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

/// Self-attention read straight from a fused QKV projection: `qkv` is `[batch, seq, (heads +
/// 2·kv_heads)·head_dim]` with the query heads first, then the key heads, then the value heads
/// (what one linear layer of width `(heads + 2·kv_heads)·head_dim` produces); the result is
/// `[batch, seq, heads·head_dim]`, the heads merged back along the last axis.
///
/// The same as splitting `qkv`, reshaping each part to `[batch, seq, n, head_dim]`, permuting it to
/// `[batch, n, seq, head_dim]`, calling [`attention`] and merging the heads of its output, but the
/// attention kernels read Q, K and V as strided views of `qkv`, and the backward writes dQ, dK and
/// dV into one gradient of `qkv`'s shape: no copies of the parts, and no zero-filled gradient per
/// part to sum.
///
/// # Errors
/// When `qkv` is not 3-axis with a last axis of `(heads + 2·kv_heads)·head_dim`, when `heads` is
/// not a multiple of `kv_heads`, and as [`attention_forward`].
///
/// ```
/// use fm_attention::{autograd::attention_packed_qkv, AttentionOptions};
/// use fm_tensor::Tape;
/// use ndarray::Array3;
///
/// let tape = Tape::<f64>::new();
/// // 2 query heads and 1 KV head of width 4: 2·4 + 4 + 4 = 16 columns.
/// let qkv = tape.variable(Array3::from_shape_fn((1, 3, 16), |(_, t, c)| ((t * 16 + c) as f64 * 0.37).sin()));
/// let out = attention_packed_qkv(qkv, 2, 1, 4, &AttentionOptions::new().causal(true))?;
/// assert_eq!(out.shape(), vec![1, 3, 8]);
/// let grads = tape.backward(out.sum()?)?;
/// assert_eq!(grads.of(qkv).unwrap().shape(), &[1, 3, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn attention_packed_qkv<'t, T: Element>(
    qkv: Var<'t, T>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    opts: &AttentionOptions,
) -> Result<Var<'t, T>> {
    let layout = PackedQkv {
        heads,
        kv_heads,
        head_dim,
    };
    layout.check(&qkv.shape())?;
    let op = PackedQkvAttentionOp::<T> {
        layout,
        opts: opts.clone(),
        lse: None,
    };
    Ok(qkv.tape().apply(op, &[qkv])?)
}

/// Where the heads sit in a packed QKV tensor.
#[derive(Clone, Copy, Debug)]
struct PackedQkv {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl PackedQkv {
    fn width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }

    fn check(&self, shape: &[usize]) -> Result<()> {
        let valid_heads =
            self.heads > 0 && self.kv_heads > 0 && self.heads.is_multiple_of(self.kv_heads);
        if !valid_heads || self.head_dim == 0 {
            return Err(AttentionError::Tensor(TensorError::invalid_argument(
                "attention_packed_qkv",
                format!(
                    "heads ({}) must be a positive multiple of kv_heads ({}), head_dim ({}) positive",
                    self.heads, self.kv_heads, self.head_dim
                ),
            )));
        }
        if shape.len() != 3 || shape[2] != self.width() {
            return Err(AttentionError::Tensor(TensorError::shape_mismatch(
                "attention_packed_qkv",
                shape,
                &[0, 0, self.width()],
                format!(
                    "qkv must be [batch, seq, (heads + 2·kv_heads)·head_dim] with heads {}, kv_heads {}, head_dim {}",
                    self.heads, self.kv_heads, self.head_dim
                ),
            )));
        }
        Ok(())
    }

    /// Q, K and V as `[batch, n, seq, head_dim]` views of a standard-layout `[batch, seq, width]`
    /// array.
    fn split<'a, T>(&self, qkv: ArrayView3<'a, T>) -> [ArrayView4<'a, T>; 3] {
        let (b, t, _) = qkv.dim();
        let all = qkv
            .into_shape_with_order((b, t, self.heads + 2 * self.kv_heads, self.head_dim))
            .expect("checked width; standard layout");
        let (h, kv) = (self.heads, self.kv_heads);
        let part = |from: usize, to: usize| {
            all.slice_move(s![.., .., from..to, ..])
                .permuted_axes([0, 2, 1, 3])
        };
        [part(0, h), part(h, h + kv), part(h + kv, h + 2 * kv)]
    }

    /// [`split`](Self::split) of a mutable array.
    fn split_mut<'a, T>(&self, qkv: ArrayViewMut3<'a, T>) -> [ArrayViewMut4<'a, T>; 3] {
        let (b, t, _) = qkv.dim();
        let all = qkv
            .into_shape_with_order((b, t, self.heads + 2 * self.kv_heads, self.head_dim))
            .expect("checked width; a fresh array is contiguous");
        let (q, kv) = all.split_at(Axis(2), self.heads);
        let (k, v) = kv.split_at(Axis(2), self.kv_heads);
        [q, k, v].map(|part| part.permuted_axes([0, 2, 1, 3]))
    }
}

/// The recorded packed-QKV op: layout, options, and the log-sum-exp saved by the forward.
struct PackedQkvAttentionOp<T> {
    layout: PackedQkv,
    opts: AttentionOptions,
    lse: Option<Array3<T>>,
}

/// A 3-axis array in standard layout (borrowed when it already is: tape values of fm's ops are).
fn standard3<'a, T: Element>(x: &ArrayViewD<'a, T>) -> fm_tensor::Result<CowArray<'a, T, Ix3>> {
    let x = x.clone().into_dimensionality::<Ix3>().map_err(|_| {
        TensorError::Autograd(format!(
            "attention_packed_qkv: expected 3 axes, got {:?}",
            x.shape()
        ))
    })?;
    Ok(if x.is_standard_layout() {
        CowArray::from(x)
    } else {
        CowArray::from(x.as_standard_layout().into_owned())
    })
}

/// `[batch, heads, seq, head_dim]` as the `[batch, seq, heads, head_dim]` view of a merged
/// standard-layout `[batch, seq, heads·head_dim]` array.
fn heads_of_merged<'a, T>(merged: ArrayView3<'a, T>, heads: usize) -> ArrayView4<'a, T> {
    let (b, t, width) = merged.dim();
    merged
        .into_shape_with_order((b, t, heads, width / heads))
        .expect("standard layout")
        .permuted_axes([0, 2, 1, 3])
}

impl<T: Element> CustomOp<T> for PackedQkvAttentionOp<T> {
    fn name(&self) -> &str {
        "attention_packed_qkv"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> fm_tensor::Result<ArrayD<T>> {
        let qkv = standard3(&inputs[0])?;
        let (b, t, _) = qkv.dim();
        let [q, k, v] = self.layout.split(qkv.view());
        let out = attention_forward(q, k, v, &self.opts).map_err(to_tensor_error)?;
        self.lse = Some(out.lse);
        let (h, hd) = (self.layout.heads, self.layout.head_dim);
        let mut merged = buffers::array_for_overwrite((b, t, h * hd));
        merged
            .view_mut()
            .into_shape_with_order((b, t, h, hd))
            .expect("a fresh array is contiguous")
            .permuted_axes([0, 2, 1, 3])
            .assign(&out.output);
        buffers::recycle(out.output);
        Ok(merged.into_dyn())
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> fm_tensor::Result<Vec<Option<ArrayD<T>>>> {
        let lse = self.lse.as_ref().ok_or_else(|| {
            TensorError::Autograd("attention_packed_qkv: backward before forward".into())
        })?;
        let qkv = standard3(&ctx.inputs[0])?;
        let (output, grad_output) = (standard3(&ctx.output)?, standard3(&ctx.grad_output)?);
        let [q, k, v] = self.layout.split(qkv.view());
        let h = self.layout.heads;
        let grads = attention_backward(
            q,
            k,
            v,
            heads_of_merged(output.view(), h),
            lse.view(),
            heads_of_merged(grad_output.view(), h),
            &self.opts,
        )
        .map_err(to_tensor_error)?;
        let mut dqkv = buffers::array_for_overwrite(qkv.raw_dim());
        let [mut dq, mut dk, mut dv] = self.layout.split_mut(dqkv.view_mut());
        dq.assign(&grads.dq);
        dk.assign(&grads.dk);
        dv.assign(&grads.dv);
        for g in [grads.dq, grads.dk, grads.dv] {
            buffers::recycle(g);
        }
        Ok(vec![Some(dqkv.into_dyn())])
    }
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
