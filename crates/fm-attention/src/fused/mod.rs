//! The fused, tiled kernels: [`forward`] (online softmax, one log-sum-exp per row kept) and
//! [`backward`] (probabilities recomputed per tile), both built on fm-tensor's GEMM.

mod backward;
mod forward;
mod rowops;

use ndarray::ArrayViewMut2;

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
