//! The fused, tiled kernels: [`forward`] (online softmax, one log-sum-exp per row kept) and
//! [`backward`] (probabilities recomputed per tile), both built on fm-tensor's GEMM.

mod backward;
mod forward;
mod rowops;

use ndarray::{s, ArrayView2, ArrayViewMut2};

use fm_tensor::gemm::{gemm, gemm_prepacked, Lhs, PackedRhs, Rhs};
use fm_tensor::Element;

use crate::problem::Problem;

pub(crate) use backward::backward;
pub(crate) use forward::forward;

/// Queries per tile: a multiple of the AVX-512 GEMM kernel's 14-row register tile, so the products
/// whose rows are queries waste no partial tiles.
pub(crate) const BLOCK_Q: usize = 112;
/// Keys per tile: a multiple of the 32-column register tile; a 112 × 128 `f32` score tile (56 KiB)
/// stays in L2 with the Q, K and V blocks it is made from.
pub(crate) const BLOCK_K: usize = 128;

/// A head's keys and values cut into `BLOCK_K`-key blocks and packed once, for the products that
/// meet every query block: `kt[j]` is block `j` of Kᵀ (`head_dim × keys`), `v[j]` block `j` of V.
pub(crate) struct KeyBlocks<T: Element> {
    pub kt: Vec<PackedRhs<T>>,
    pub v: Vec<PackedRhs<T>>,
}

impl<T: Element> KeyBlocks<T> {
    /// Packs `k` (`keys × head_dim`) and `v` (`keys × v_dim`) block by block.
    pub fn pack(k: ArrayView2<'_, T>, v: ArrayView2<'_, T>) -> Self {
        let blocks = |x: ArrayView2<'_, T>, transpose: bool| -> Vec<PackedRhs<T>> {
            (0..x.nrows())
                .step_by(BLOCK_K)
                .map(|j0| {
                    let blk = x.slice(s![j0..(j0 + BLOCK_K).min(x.nrows()), ..]);
                    PackedRhs::new(if transpose { blk.t() } else { blk })
                })
                .collect()
        };
        KeyBlocks {
            kt: blocks(k, true),
            v: blocks(v, false),
        }
    }
}

/// `C = α·A·B + β·C`: fm-tensor's [`gemm`] when both operands are plain views (so a matrix-vector
/// product, as in decoding, keeps its own path), else [`gemm_prepacked`].
pub(crate) fn product<T: Element>(
    alpha: T,
    a: Lhs<'_, T>,
    b: Rhs<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> fm_tensor::Result<()> {
    match (a, b) {
        (Lhs::View(a), Rhs::View(b)) => gemm(alpha, a, b, beta, c),
        (a, b) => gemm_prepacked(alpha, a, b, beta, c),
    }
}

/// Turns a tile of scaled `q·k` (queries `i0..`, keys `j0..` of head `(b, h)`) into scores: the
/// per-element rules when any apply, else only the causal mask on the rows that need it.
pub(crate) fn mask_tile_rows<T: Element>(
    pb: &Problem<'_, T>,
    b: usize,
    h: usize,
    i0: usize,
    j0: usize,
    tile: &mut ArrayViewMut2<'_, T>,
) {
    let cols = tile.ncols();
    let elementwise = pb.has_elementwise_rules();
    let straddles_diagonal = pb.causal && j0 + cols > pb.visible_keys(i0);
    if !elementwise && !straddles_diagonal {
        return;
    }
    for (r, mut row) in tile.axis_iter_mut(ndarray::Axis(0)).enumerate() {
        let row = row.as_slice_mut().expect("tile rows are contiguous");
        if elementwise {
            pb.apply_rules(b, h, i0 + r, j0, row);
        } else {
            let visible = pb.visible_keys(i0 + r).saturating_sub(j0).min(cols);
            row[visible..].fill(T::neg_infinity());
        }
    }
}
