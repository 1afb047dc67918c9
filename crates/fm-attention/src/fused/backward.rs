//! The fused backward: per (batch, KV head), stream over key blocks and, inside, over the query blocks
//! of every query head sharing that KV head, recomputing each probability tile from the saved
//! log-sum-exp.
//!
//! Per tile (`BLOCK_Q` queries × `BLOCK_K` keys), with `D_i = Σ dO_i·O_i`:
//! ```text
//! S  = scale·Q·Kᵀ,  P = exp(S − lse)        (recomputed, masked like the forward)
//! dV += P̃ᵀ·dO                               (P̃: P with dropout applied)
//! dP̃ = dO·Vᵀ,  dS = P ⊙ (dP − D)            (dP: dP̃ with dropout applied)
//! dK += scale·dSᵀ·Q,  dQ += scale·dS·K
//! ```
//! five GEMMs per tile, each through fm-tensor's GEMM. A task owns the dK and dV of its KV head and the
//! dQ of its query heads, so nothing is shared between threads, and every gradient element is
//! accumulated in the same order (key blocks ascending, then heads, then query blocks) whatever the
//! number of threads: the results are bitwise identical for any thread count. The parallelism is
//! therefore `batch × kv_heads` tasks (32 in the benchmark shape); a single KV head runs on one thread.
//!
//! Extra memory: two `BLOCK_Q × BLOCK_K` tiles (three with dropout) and one `seq_q` vector per
//! running task — linear in the sequence length.

use ndarray::{s, Array2, Array4, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use fm_tensor::{gemm, Element};

use super::rowops::exp_shifted_sum;
use super::{mask_tile_rows, BLOCK_K, BLOCK_Q};
use crate::error::Result;
use crate::kernels::AttentionGrads;
use crate::options::AttentionOptions;
use crate::problem::{check_same, Problem};

/// The forward's arrays the backward reads.
struct Saved<'a, T> {
    q: ArrayView4<'a, T>,
    k: ArrayView4<'a, T>,
    v: ArrayView4<'a, T>,
    output: ArrayView4<'a, T>,
    lse: ArrayView3<'a, T>,
    grad_output: ArrayView4<'a, T>,
}

/// See [`attention_backward`](crate::attention_backward).
pub(crate) fn backward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    output: ArrayView4<'_, T>,
    lse: ArrayView3<'_, T>,
    grad_output: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionGrads<T>> {
    const OP: &str = "attention_backward";
    let pb = Problem::new(OP, &q, &k, &v, opts)?;
    let d = pb.dims;
    let out_shape = [d.batch, d.heads, d.seq_q, d.v_dim];
    check_same(OP, "output", output.shape(), &out_shape)?;
    check_same(OP, "grad_output", grad_output.shape(), &out_shape)?;
    check_same(OP, "lse", lse.shape(), &[d.batch, d.heads, d.seq_q])?;
    let saved = Saved {
        q,
        k,
        v,
        output,
        lse,
        grad_output,
    };
    let mut dq = Array4::zeros(q.raw_dim());
    let mut dk = Array4::zeros(k.raw_dim());
    let mut dv = Array4::zeros(v.raw_dim());
    {
        let tasks = d.batch * d.kv_heads;
        let mut dq_groups = dq
            .view_mut()
            .into_shape_with_order((tasks, d.group(), d.seq_q, d.head_dim))
            .expect("fresh array is contiguous");
        let mut dk_heads = dk
            .view_mut()
            .into_shape_with_order((tasks, d.seq_k, d.head_dim))
            .expect("fresh array is contiguous");
        let mut dv_heads = dv
            .view_mut()
            .into_shape_with_order((tasks, d.seq_k, d.v_dim))
            .expect("fresh array is contiguous");
        dq_groups
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(dk_heads.axis_iter_mut(Axis(0)).into_par_iter())
            .zip(dv_heads.axis_iter_mut(Axis(0)).into_par_iter())
            .enumerate()
            .try_for_each(|(task, ((dq_g, dk_h), dv_h))| {
                backward_kv_head(
                    &pb,
                    &saved,
                    task / d.kv_heads,
                    task % d.kv_heads,
                    dq_g,
                    dk_h,
                    dv_h,
                )
            })?;
    }
    Ok(AttentionGrads { dq, dk, dv })
}

/// All gradients that flow through KV head `kvh` of batch row `b`.
fn backward_kv_head<T: Element>(
    pb: &Problem<'_, T>,
    x: &Saved<'_, T>,
    b: usize,
    kvh: usize,
    mut dq_group: ArrayViewMut3<'_, T>,
    mut dk: ArrayViewMut2<'_, T>,
    mut dv: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let d = pb.dims;
    let group = d.group();
    let k_head = x.k.slice(s![b, kvh, .., ..]);
    let v_head = x.v.slice(s![b, kvh, .., ..]);
    // D_i = Σ dO_i·O_i per query head of the group.
    let deltas: Vec<Vec<T>> = (0..group)
        .map(|g| {
            let h = kvh * group + g;
            let o = x.output.slice(s![b, h, .., ..]);
            let d_o = x.grad_output.slice(s![b, h, .., ..]);
            o.axis_iter(Axis(0))
                .zip(d_o.axis_iter(Axis(0)))
                .map(|(o, d_o)| o.dot(&d_o))
                .collect()
        })
        .collect();
    let tile_cols = BLOCK_K.min(d.seq_k);
    let tile_rows = BLOCK_Q.min(d.seq_q);
    let mut probs = Array2::<T>::zeros((tile_rows, tile_cols));
    let mut dscores = Array2::<T>::zeros((tile_rows, tile_cols));
    let mut dropped = pb
        .dropout
        .map(|_| Array2::<T>::zeros((tile_rows, tile_cols)));
    for j0 in (0..d.seq_k).step_by(BLOCK_K) {
        let cols = BLOCK_K.min(d.seq_k - j0);
        let k_blk = k_head.slice(s![j0..j0 + cols, ..]);
        let v_blk = v_head.slice(s![j0..j0 + cols, ..]);
        let mut dk_blk = dk.slice_mut(s![j0..j0 + cols, ..]);
        let mut dv_blk = dv.slice_mut(s![j0..j0 + cols, ..]);
        // Causal: queries before this one see none of these keys.
        let first_query = if pb.causal {
            (j0 as isize - d.offset()).clamp(0, d.seq_q as isize) as usize
        } else {
            0
        };
        for g in 0..group {
            let h = kvh * group + g;
            let mut dq_head = dq_group.index_axis_mut(Axis(0), g);
            for i0 in (first_query..d.seq_q).step_by(BLOCK_Q) {
                let rows = BLOCK_Q.min(d.seq_q - i0);
                let q_blk = x.q.slice(s![b, h, i0..i0 + rows, ..]);
                let do_blk = x.grad_output.slice(s![b, h, i0..i0 + rows, ..]);
                let mut p = probs.slice_mut(s![..rows, ..cols]);
                gemm(pb.scale, q_blk, k_blk.t(), T::zero(), p.view_mut())?;
                mask_tile_rows(pb, b, h, i0, j0, &mut p);
                for (r, mut row) in p.axis_iter_mut(Axis(0)).enumerate() {
                    let row = row.as_slice_mut().expect("tile rows are contiguous");
                    let l = x.lse[[b, h, i0 + r]];
                    if l.is_finite() {
                        exp_shifted_sum(row, l);
                    } else {
                        row.fill(T::zero());
                    }
                }
                let mut ds = dscores.slice_mut(s![..rows, ..cols]);
                gemm(T::one(), do_blk, v_blk.t(), T::zero(), ds.view_mut())?;
                match (pb.dropout, dropped.as_mut()) {
                    (Some(rule), Some(buf)) => {
                        let mut pd = buf.slice_mut(s![..rows, ..cols]);
                        for ((r, c), w) in pd.indexed_iter_mut() {
                            let keep = rule.keep(&d, b, h, i0 + r, j0 + c);
                            let factor = if keep { rule.keep_scale } else { T::zero() };
                            *w = p[[r, c]] * factor;
                            ds[[r, c]] = ds[[r, c]] * factor;
                        }
                        gemm(T::one(), pd.t(), do_blk, T::one(), dv_blk.view_mut())?;
                    }
                    _ => gemm(T::one(), p.t(), do_blk, T::one(), dv_blk.view_mut())?,
                }
                let delta = &deltas[g][i0..i0 + rows];
                for ((mut ds_row, p_row), &delta) in ds
                    .axis_iter_mut(Axis(0))
                    .zip(p.axis_iter(Axis(0)))
                    .zip(delta)
                {
                    let ds_row = ds_row.as_slice_mut().expect("tile rows are contiguous");
                    let p_row = p_row.to_slice().expect("tile rows are contiguous");
                    for (dsv, &pv) in ds_row.iter_mut().zip(p_row) {
                        *dsv = pv * (*dsv - delta);
                    }
                }
                gemm(pb.scale, ds.t(), q_blk, T::one(), dk_blk.view_mut())?;
                gemm(
                    pb.scale,
                    ds.view(),
                    k_blk,
                    T::one(),
                    dq_head.slice_mut(s![i0..i0 + rows, ..]),
                )?;
            }
        }
    }
    Ok(())
}
