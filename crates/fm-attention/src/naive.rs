//! The naive reference: materialise each head's `[seq_q, seq_k]` scores, softmax them, multiply by V.
//!
//! Straight from the formulas, kept for tests and as the baseline of the benchmark report. The products
//! go through fm-tensor's GEMM; the memory is one `seq_q × seq_k` matrix (two in the backward) per head
//! being processed, i.e. quadratic in the sequence length. Work is split over (batch, head) and the
//! per-head K/V gradients of a group are summed in head order, so results do not depend on the
//! number of threads.

use ndarray::{s, Array2, Array3, Array4, ArrayView4, Axis};
use rayon::prelude::*;

use fm_tensor::{gemm, Element};

use crate::error::Result;
use crate::kernels::{AttentionGrads, AttentionOutput};
use crate::options::AttentionOptions;
use crate::problem::{check_same, Problem};

/// Scores of head `(b, h)`: `scale·Q·Kᵀ` with the masks and biases applied (`−∞` where masked).
fn scores<T: Element>(
    pb: &Problem<'_, T>,
    q: &ArrayView4<'_, T>,
    k: &ArrayView4<'_, T>,
    b: usize,
    h: usize,
) -> Result<Array2<T>> {
    let d = pb.dims;
    let kvh = h / d.group();
    let mut s = Array2::zeros((d.seq_q, d.seq_k));
    gemm(
        pb.scale,
        q.slice(s![b, h, .., ..]),
        k.slice(s![b, kvh, .., ..]).t(),
        T::zero(),
        s.view_mut(),
    )?;
    for (i, mut row) in s.axis_iter_mut(Axis(0)).enumerate() {
        pb.apply_rules(b, h, i, 0, row.as_slice_mut().expect("row-major"));
    }
    Ok(s)
}

/// Multiplies kept weights by `1/(1 − p)` and zeroes dropped ones (no-op without dropout).
fn apply_dropout<T: Element>(pb: &Problem<'_, T>, p: &mut Array2<T>, b: usize, h: usize) {
    if let Some(rule) = pb.dropout {
        for ((i, j), w) in p.indexed_iter_mut() {
            *w = if rule.keep(&pb.dims, b, h, i, j) {
                *w * rule.keep_scale
            } else {
                T::zero()
            };
        }
    }
}

/// Reference forward: same contract as [`attention_forward`](crate::attention_forward).
///
/// # Errors
/// As [`attention_forward`](crate::attention_forward).
pub fn attention_forward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionOutput<T>> {
    let pb = Problem::new("naive::attention_forward", &q, &k, &v, opts)?;
    let d = pb.dims;
    let per_head: Vec<(Array2<T>, Vec<T>)> = (0..d.batch * d.heads)
        .into_par_iter()
        .map(|bh| -> Result<_> {
            let (b, h) = (bh / d.heads, bh % d.heads);
            let mut p = scores(&pb, &q, &k, b, h)?;
            let mut lse = vec![T::zero(); d.seq_q];
            for (i, mut row) in p.axis_iter_mut(Axis(0)).enumerate() {
                let max = row.fold(T::neg_infinity(), |m, &x| m.max(x));
                if max == T::neg_infinity() {
                    row.fill(T::zero());
                    lse[i] = T::neg_infinity();
                    continue;
                }
                row.mapv_inplace(|x| (x - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|x| x / sum);
                lse[i] = max + sum.ln();
            }
            apply_dropout(&pb, &mut p, b, h);
            let mut o = Array2::zeros((d.seq_q, d.v_dim));
            gemm(
                T::one(),
                p.view(),
                v.slice(s![b, h / d.group(), .., ..]),
                T::zero(),
                o.view_mut(),
            )?;
            Ok((o, lse))
        })
        .collect::<Result<_>>()?;
    let mut output = Array4::zeros((d.batch, d.heads, d.seq_q, d.v_dim));
    let mut lse = Array3::zeros((d.batch, d.heads, d.seq_q));
    for (bh, (o, l)) in per_head.into_iter().enumerate() {
        let (b, h) = (bh / d.heads, bh % d.heads);
        output.slice_mut(s![b, h, .., ..]).assign(&o);
        lse.slice_mut(s![b, h, ..])
            .assign(&ndarray::ArrayView1::from(&l[..]));
    }
    Ok(AttentionOutput { output, lse })
}

/// Reference backward: same contract as [`attention_backward`](crate::attention_backward).
///
/// # Errors
/// As [`attention_backward`](crate::attention_backward).
pub fn attention_backward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    output: ArrayView4<'_, T>,
    lse: ndarray::ArrayView3<'_, T>,
    grad_output: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionGrads<T>> {
    const OP: &str = "naive::attention_backward";
    let pb = Problem::new(OP, &q, &k, &v, opts)?;
    let d = pb.dims;
    let out_shape = [d.batch, d.heads, d.seq_q, d.v_dim];
    check_same(OP, "output", output.shape(), &out_shape)?;
    check_same(OP, "grad_output", grad_output.shape(), &out_shape)?;
    check_same(OP, "lse", lse.shape(), &[d.batch, d.heads, d.seq_q])?;
    type HeadGrads<T> = (Array2<T>, Array2<T>, Array2<T>);
    let per_head: Vec<HeadGrads<T>> = (0..d.batch * d.heads)
        .into_par_iter()
        .map(|bh| -> Result<_> {
            let (b, h) = (bh / d.heads, bh % d.heads);
            let kvh = h / d.group();
            let mut p = scores(&pb, &q, &k, b, h)?;
            for (i, mut row) in p.axis_iter_mut(Axis(0)).enumerate() {
                let l = lse[[b, h, i]];
                if l.is_finite() {
                    row.mapv_inplace(|x| (x - l).exp());
                } else {
                    row.fill(T::zero());
                }
            }
            let mut p_dropped = p.clone();
            apply_dropout(&pb, &mut p_dropped, b, h);
            let d_o = grad_output.slice(s![b, h, .., ..]);
            let mut dv = Array2::zeros((d.seq_k, d.v_dim));
            gemm(T::one(), p_dropped.t(), d_o, T::zero(), dv.view_mut())?;
            let mut dp = Array2::zeros((d.seq_q, d.seq_k));
            gemm(
                T::one(),
                d_o,
                v.slice(s![b, kvh, .., ..]).t(),
                T::zero(),
                dp.view_mut(),
            )?;
            apply_dropout(&pb, &mut dp, b, h);
            let o = output.slice(s![b, h, .., ..]);
            // dS = P ⊙ (dP − rowsum(dO ⊙ O)).
            for (i, (mut ds_row, p_row)) in dp
                .axis_iter_mut(Axis(0))
                .zip(p.axis_iter(Axis(0)))
                .enumerate()
            {
                let delta = d_o.row(i).dot(&o.row(i));
                ds_row.zip_mut_with(&p_row, |ds, &pw| *ds = pw * (*ds - delta));
            }
            let mut dq = Array2::zeros((d.seq_q, d.head_dim));
            gemm(
                pb.scale,
                dp.view(),
                k.slice(s![b, kvh, .., ..]),
                T::zero(),
                dq.view_mut(),
            )?;
            let mut dk = Array2::zeros((d.seq_k, d.head_dim));
            gemm(
                pb.scale,
                dp.t(),
                q.slice(s![b, h, .., ..]),
                T::zero(),
                dk.view_mut(),
            )?;
            Ok((dq, dk, dv))
        })
        .collect::<Result<_>>()?;
    let mut dq = Array4::zeros(q.raw_dim());
    let mut dk = Array4::zeros(k.raw_dim());
    let mut dv = Array4::zeros(v.raw_dim());
    for (bh, (gq, gk, gv)) in per_head.into_iter().enumerate() {
        let (b, h) = (bh / d.heads, bh % d.heads);
        let kvh = h / d.group();
        dq.slice_mut(s![b, h, .., ..]).assign(&gq);
        dk.slice_mut(s![b, kvh, .., ..]).scaled_add(T::one(), &gk);
        dv.slice_mut(s![b, kvh, .., ..]).scaled_add(T::one(), &gv);
    }
    Ok(AttentionGrads { dq, dk, dv })
}
