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
//! five GEMMs per tile, each through fm-tensor's GEMM, with the operands that recur packed once:
//! each key block's Kᵀ, Vᵀ and K for all query blocks, and each query block's Q and dO (in both
//! roles) for all key blocks; only P̃ᵀ, dSᵀ and dS are packed per product. A task owns the dK and dV of its KV head and the
//! dQ of its query heads, so nothing is shared between threads, and every gradient element is
//! accumulated in the same order (key blocks ascending, then heads, then query blocks) whatever the
//! number of threads: the results are bitwise identical for any thread count. The parallelism is
//! therefore `batch × kv_heads` tasks (32 in the benchmark shape); a single KV head runs on one thread.
//!
//! Extra memory: two `BLOCK_Q × BLOCK_K` tiles (three with dropout), one `seq_q` vector, the packed
//! Q and dO of the task's heads (four copies of `seq_q × head_dim` per head) and one packed key block
//! per running task — linear in the sequence length.

use ndarray::{s, Array2, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use fm_tensor::gemm::{Lhs, PackedLhs, PackedRhs, Rhs};
use fm_tensor::{buffers, Element};

use super::rowops::exp_shifted_sum;
use super::{mask_tile_rows, product, BLOCK_K, BLOCK_Q};
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
    // Zeroed: the kernels accumulate into them.
    let mut dq = buffers::zeroed_array(q.raw_dim());
    let mut dk = buffers::zeroed_array(k.raw_dim());
    let mut dv = buffers::zeroed_array(v.raw_dim());
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

/// The packed operand when there is one, else the view (packed during the product).
fn lhs<'a, T: Element>(packed: Option<&'a PackedLhs<T>>, view: ArrayView2<'a, T>) -> Lhs<'a, T> {
    packed.map_or(Lhs::View(view), Lhs::from)
}

/// As [`lhs`], for a right operand.
fn rhs<'a, T: Element>(packed: Option<&'a PackedRhs<T>>, view: ArrayView2<'a, T>) -> Rhs<'a, T> {
    packed.map_or(Rhs::View(view), Rhs::from)
}

/// One block of a head's queries and output gradients, packed for each product that reads it:
/// `Q·Kᵀ` and `dO·Vᵀ` (left operands), `dSᵀ·Q` and `Pᵀ·dO` (right operands).
struct QueryBlock<T: Element> {
    q_lhs: PackedLhs<T>,
    do_lhs: PackedLhs<T>,
    q_rhs: PackedRhs<T>,
    do_rhs: PackedRhs<T>,
}

impl<T: Element> QueryBlock<T> {
    fn pack(q: ArrayView2<'_, T>, d_o: ArrayView2<'_, T>) -> Self {
        QueryBlock {
            q_lhs: PackedLhs::new(q),
            do_lhs: PackedLhs::new(d_o),
            q_rhs: PackedRhs::new(q),
            do_rhs: PackedRhs::new(d_o),
        }
    }
}

/// One block of keys and values, packed as the right operands of `Q·Kᵀ`, `dO·Vᵀ` and `dS·K`.
struct KeyBlock<T: Element> {
    kt: PackedRhs<T>,
    vt: PackedRhs<T>,
    k: PackedRhs<T>,
}

impl<T: Element> KeyBlock<T> {
    fn pack(k: ArrayView2<'_, T>, v: ArrayView2<'_, T>) -> Self {
        KeyBlock {
            kt: PackedRhs::new(k.t()),
            vt: PackedRhs::new(v.t()),
            k: PackedRhs::new(k),
        }
    }
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
    // Every query block meets every key block (past the causal cut): with several key blocks,
    // pack each head's Q and dO blocks once, in both roles, on the grid of BLOCK_Q rows; with
    // several query blocks, pack each key block's K and V once (below).
    let query_blocks: Option<Vec<Vec<QueryBlock<T>>>> = (d.seq_k > BLOCK_K).then(|| {
        (0..group)
            .map(|g| {
                let h = kvh * group + g;
                (0..d.seq_q)
                    .step_by(BLOCK_Q)
                    .map(|i0| {
                        let rows = i0..(i0 + BLOCK_Q).min(d.seq_q);
                        QueryBlock::pack(
                            x.q.slice(s![b, h, rows.clone(), ..]),
                            x.grad_output.slice(s![b, h, rows, ..]),
                        )
                    })
                    .collect()
            })
            .collect()
    });
    let reuse_keys = d.seq_q * group > BLOCK_Q;
    for j0 in (0..d.seq_k).step_by(BLOCK_K) {
        let cols = BLOCK_K.min(d.seq_k - j0);
        let k_blk = k_head.slice(s![j0..j0 + cols, ..]);
        let v_blk = v_head.slice(s![j0..j0 + cols, ..]);
        let key_block = reuse_keys.then(|| KeyBlock::pack(k_blk, v_blk));
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
            // Query blocks on the BLOCK_Q grid, the first one cut to start at `first_query`.
            let mut i0 = first_query;
            while i0 < d.seq_q {
                let rows = ((i0 / BLOCK_Q + 1) * BLOCK_Q).min(d.seq_q) - i0;
                let packed_q = query_blocks
                    .as_ref()
                    .filter(|_| i0 % BLOCK_Q == 0)
                    .map(|blocks| &blocks[g][i0 / BLOCK_Q]);
                let q_blk = x.q.slice(s![b, h, i0..i0 + rows, ..]);
                let do_blk = x.grad_output.slice(s![b, h, i0..i0 + rows, ..]);
                let mut p = probs.slice_mut(s![..rows, ..cols]);
                product(
                    pb.scale,
                    lhs(packed_q.map(|blk| &blk.q_lhs), q_blk.reborrow()),
                    rhs(key_block.as_ref().map(|blk| &blk.kt), k_blk.t().reborrow()),
                    T::zero(),
                    p.view_mut(),
                )?;
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
                product(
                    T::one(),
                    lhs(packed_q.map(|blk| &blk.do_lhs), do_blk.reborrow()),
                    rhs(key_block.as_ref().map(|blk| &blk.vt), v_blk.t().reborrow()),
                    T::zero(),
                    ds.view_mut(),
                )?;
                let do_rhs = rhs(packed_q.map(|blk| &blk.do_rhs), do_blk.reborrow());
                match (pb.dropout, dropped.as_mut()) {
                    (Some(rule), Some(buf)) => {
                        let mut pd = buf.slice_mut(s![..rows, ..cols]);
                        for ((r, c), w) in pd.indexed_iter_mut() {
                            let keep = rule.keep(&d, b, h, i0 + r, j0 + c);
                            let factor = if keep { rule.keep_scale } else { T::zero() };
                            *w = p[[r, c]] * factor;
                            ds[[r, c]] = ds[[r, c]] * factor;
                        }
                        product(
                            T::one(),
                            Lhs::View(pd.t()),
                            do_rhs,
                            T::one(),
                            dv_blk.view_mut(),
                        )?;
                    }
                    _ => product(
                        T::one(),
                        Lhs::View(p.t()),
                        do_rhs,
                        T::one(),
                        dv_blk.view_mut(),
                    )?,
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
                product(
                    pb.scale,
                    Lhs::View(ds.t()),
                    rhs(packed_q.map(|blk| &blk.q_rhs), q_blk.reborrow()),
                    T::one(),
                    dk_blk.view_mut(),
                )?;
                product(
                    pb.scale,
                    Lhs::View(ds.view()),
                    rhs(key_block.as_ref().map(|blk| &blk.k), k_blk.reborrow()),
                    T::one(),
                    dq_head.slice_mut(s![i0..i0 + rows, ..]),
                )?;
                i0 += rows;
            }
        }
    }
    Ok(())
}
