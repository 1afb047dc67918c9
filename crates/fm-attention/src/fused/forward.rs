//! The fused forward: per (batch, head, query block), stream over key blocks with an online softmax.
//!
//! For a block of `BLOCK_Q` queries the task keeps a running row maximum `m`, a running sum `l` and
//! an unnormalised output accumulator; each key block's scores `S = scale·Q·Kᵀ` (`BLOCK_Q × BLOCK_K`,
//! from fm-tensor's GEMM) become `exp(S − m_new)`, the accumulator is rescaled by `exp(m − m_new)` and
//! `P·V` is added to it (GEMM with β = 1). At the end the rows are divided by `l` and the
//! log-sum-exp `m + ln l` is stored for the backward. Causal key blocks past a query block's last
//! visible key are skipped; the diagonal ones are masked row by row.
//!
//! With more than one query block, each head's Kᵀ and V blocks are packed once for fm-tensor's
//! micro-kernels (`gemm_prepacked`) and each query block's Q once, instead of the GEMM packing them
//! again for every (query block, key block) pair.
//!
//! Extra memory: one `BLOCK_Q × BLOCK_K` score tile, two row vectors and a packed Q block per running
//! task, plus the packed K and V of each head in flight (about `2·seq_k·head_dim` values) — linear in
//! the sequence length. Tasks write disjoint output rows, so any thread count gives the same bits.

use ndarray::{s, Array2, ArrayView4, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use fm_tensor::gemm::{Lhs, PackedLhs, Rhs};
use fm_tensor::{buffers, Element};

use super::rowops::{exp_shifted_sum, max_of};
use super::{mask_tile_rows, product, KeyBlocks, BLOCK_K, BLOCK_Q};
use crate::error::Result;
use crate::kernels::AttentionOutput;
use crate::options::AttentionOptions;
use crate::problem::Problem;

/// See [`attention_forward`](crate::attention_forward).
pub(crate) fn forward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionOutput<T>> {
    let pb = Problem::new("attention_forward", &q, &k, &v, opts)?;
    let d = pb.dims;
    let mut output = buffers::zeroed_array((d.batch, d.heads, d.seq_q, d.v_dim));
    let mut lse = buffers::zeroed_array((d.batch, d.heads, d.seq_q));
    {
        let mut out_heads = output
            .view_mut()
            .into_shape_with_order((d.batch * d.heads, d.seq_q, d.v_dim))
            .expect("fresh array is contiguous");
        let mut lse_heads = lse
            .view_mut()
            .into_shape_with_order((d.batch * d.heads, d.seq_q))
            .expect("fresh array is contiguous");
        out_heads
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(lse_heads.axis_iter_mut(Axis(0)).into_par_iter())
            .enumerate()
            .try_for_each(|(bh, (mut o_head, mut lse_head))| {
                let (b, h) = (bh / d.heads, bh % d.heads);
                let kvh = h / d.group();
                // With several query blocks, every key block meets each of them: pack Kᵀ and V
                // once per head instead of once per (query block, key block).
                let packed = (d.seq_q > BLOCK_Q).then(|| {
                    let keys = pb.visible_keys(d.seq_q - 1);
                    KeyBlocks::pack(
                        k.slice(s![b, kvh, ..keys, ..]),
                        v.slice(s![b, kvh, ..keys, ..]),
                    )
                });
                o_head
                    .axis_chunks_iter_mut(Axis(0), BLOCK_Q)
                    .into_par_iter()
                    .zip(
                        lse_head
                            .axis_chunks_iter_mut(Axis(0), BLOCK_Q)
                            .into_par_iter(),
                    )
                    .enumerate()
                    .try_for_each(|(qb, (o_blk, lse_blk))| {
                        forward_block(
                            &pb,
                            &q,
                            &k,
                            &v,
                            packed.as_ref(),
                            b,
                            h,
                            qb * BLOCK_Q,
                            o_blk,
                            lse_blk,
                        )
                    })
            })?;
    }
    Ok(AttentionOutput { output, lse })
}

/// One query block `i0..i0 + rows` of head `(b, h)`: writes its output rows and log-sum-exps.
/// `packed` holds the head's key blocks when they are shared by several query blocks.
#[allow(clippy::too_many_arguments)]
fn forward_block<T: Element>(
    pb: &Problem<'_, T>,
    q: &ArrayView4<'_, T>,
    k: &ArrayView4<'_, T>,
    v: &ArrayView4<'_, T>,
    packed: Option<&KeyBlocks<T>>,
    b: usize,
    h: usize,
    i0: usize,
    mut o: ArrayViewMut2<'_, T>,
    mut lse: ArrayViewMut1<'_, T>,
) -> Result<()> {
    let d = pb.dims;
    let rows = o.nrows();
    let kvh = h / d.group();
    let q_blk = q.slice(s![b, h, i0..i0 + rows, ..]);
    let k_head = k.slice(s![b, kvh, .., ..]);
    let v_head = v.slice(s![b, kvh, .., ..]);
    // The last row sees the most keys; nothing past them is computed.
    let key_end = pb.visible_keys(i0 + rows - 1);
    let mut scores = Array2::<T>::zeros((rows, BLOCK_K.min(key_end.max(1))));
    let mut m = vec![T::neg_infinity(); rows];
    let mut l = vec![T::zero(); rows];
    // Packed once here when the key blocks are: it meets every one of them.
    let q_packed = packed.map(|_| PackedLhs::new(q_blk));
    let q_op = || q_packed.as_ref().map_or(Lhs::View(q_blk), Lhs::from);
    for (jb, j0) in (0..key_end).step_by(BLOCK_K).enumerate() {
        let cols = BLOCK_K.min(key_end - j0);
        let mut tile = scores.slice_mut(s![.., ..cols]);
        let k_blk = k_head.slice(s![j0..j0 + cols, ..]);
        let kt = match packed {
            Some(p) => Rhs::Packed(p.kt[jb].leading(d.head_dim, cols)?),
            None => Rhs::View(k_blk.t()),
        };
        product(pb.scale, q_op(), kt, T::zero(), tile.view_mut())?;
        mask_tile_rows(pb, b, h, i0, j0, &mut tile);
        for (r, mut row) in tile.axis_iter_mut(Axis(0)).enumerate() {
            let row = row.as_slice_mut().expect("tile rows are contiguous");
            let m_new = m[r].max(max_of(row));
            if m_new == T::neg_infinity() {
                // Nothing visible yet in this row: contributes nothing.
                row.fill(T::zero());
                continue;
            }
            let correction = (m[r] - m_new).exp();
            let sum = exp_shifted_sum(row, m_new);
            l[r] = l[r] * correction + sum;
            m[r] = m_new;
            if correction != T::one() {
                o.row_mut(r).mapv_inplace(|x| x * correction);
            }
        }
        if let Some(rule) = pb.dropout {
            for ((r, c), w) in tile.indexed_iter_mut() {
                *w = if rule.keep(&d, b, h, i0 + r, j0 + c) {
                    *w * rule.keep_scale
                } else {
                    T::zero()
                };
            }
        }
        let v_blk = match packed {
            Some(p) => Rhs::Packed(p.v[jb].leading(cols, d.v_dim)?),
            None => Rhs::View(v_head.slice(s![j0..j0 + cols, ..])),
        };
        product(
            T::one(),
            Lhs::View(tile.view()),
            v_blk,
            T::one(),
            o.view_mut(),
        )?;
    }
    for r in 0..rows {
        if l[r] > T::zero() {
            let inv = T::one() / l[r];
            o.row_mut(r).mapv_inplace(|x| x * inv);
            lse[r] = m[r] + l[r].ln();
        } else {
            // Fully masked row: zeros, and a log-sum-exp of −∞ that the backward reads as "no weights".
            o.row_mut(r).fill(T::zero());
            lse[r] = T::neg_infinity();
        }
    }
    Ok(())
}
