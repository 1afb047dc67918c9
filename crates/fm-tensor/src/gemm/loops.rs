//! The BLIS loops around the micro-kernel, and how they are split between threads.
//!
//! ```text
//! for jc in 0..n step NC            (5th loop: a block of NC columns of B)
//!   for pc in 0..k step KC          (4th loop: one depth slice; pack B[pc.., jc..] (L3))
//!     parallel over tasks           (an M block of A × a range of B micro-panels)
//!       pack A[ic.., pc..]          (into this thread's buffer: MC × KC, in L2)
//!       for jr over micro-panels    (2nd loop: a KC × NR micro-panel of B, L1/L2)
//!         for ir in 0..mc step MR   (1st loop: a MR × KC micro-panel of A, from L2)
//!           micro-kernel            (MR × NR tile of C in registers)
//! ```
//!
//! When A's rows for a depth slice are few (they fit in [`PACK_B_PER_TASK_MAX_A_BYTES`]) there is
//! one M block, and instead of packing the whole B slice up front each task packs each B
//! micro-panel right before its tiles use it, so the panel is read from L1/L2 rather than L3.
//!
//! Threads split the output only: tasks are rectangles of C (M blocks of whole tiles, and N ranges
//! when M is too short to share). The depth is never split, and every C element is accumulated
//! over the same KC slices in the same order with the same per-lane operations, whatever the number
//! of threads or the task shapes — so results are bitwise identical for any thread count. Work runs
//! in the current rayon pool; products below [`PARALLEL_MIN_MACS`] stay on the calling thread.

use rayon::prelude::*;

use super::kernels::{KernelSpec, MicroTile};
use super::pack::{with_buffer, MatMut, MatRef, A_BUFFER, B_BUFFER, B_PANEL_BUFFER};
use crate::element::Element;

/// Products with fewer multiply-adds (`m·n·k`) than this run on the calling thread: about 1M, a few
/// microseconds of AVX-512 work, is where waking a rayon worker stops costing more than it saves.
pub(crate) const PARALLEL_MIN_MACS: usize = 1 << 20;

/// When all of A's rows for one depth slice fit in this many bytes (half the L2), the product has
/// one M block and each task packs the B micro-panels it uses right before using them: the panel
/// is then read from L1/L2 by every tile, instead of from a shared packed block that has already
/// left L2 for L3 (which costs ~10% at 128×768×768).
const PACK_B_PER_TASK_MAX_A_BYTES: usize = 512 << 10;

/// A pointer into a packed buffer that tasks of one call share: B is written by disjoint panel
/// tasks, then only read.
#[derive(Clone, Copy)]
struct SharedPacked<T>(*mut T);

// SAFETY: the packing tasks write disjoint panels, and the compute tasks start only after all
// packing has finished (rayon's `for_each` returns when every task is done).
unsafe impl<T: Send> Send for SharedPacked<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedPacked<T> {}

impl<T> SharedPacked<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    fn ptr(self) -> *mut T {
        self.0
    }
}

/// How one call splits C into tasks: M blocks of whole MR-row tiles, times N ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TaskGrid {
    /// MR-row tiles in M (the last one possibly partial).
    tiles: usize,
    /// Number of M blocks; block `b` holds tiles `b·tiles/m_blocks .. (b+1)·tiles/m_blocks`, so
    /// the blocks differ by at most one tile.
    m_blocks: usize,
    /// Number of N ranges each block's micro-panels are split into.
    n_chunks: usize,
    /// Each task packs the B micro-panels it uses, right before using them (small M: one M block).
    pack_b_per_task: bool,
}

impl TaskGrid {
    /// Blocks of at most `spec.mc` rows; with several threads, a multiple of the thread count of
    /// them (equal shares), or, when M is too short for that, N split as well.
    fn new<T>(spec: &KernelSpec<T>, m: usize, n: usize, kc: usize, threads: usize) -> Self {
        let tiles = m.div_ceil(spec.mr);
        let panels = n.min(spec.nc).div_ceil(spec.nr);
        if tiles * spec.mr * kc * std::mem::size_of::<T>() <= PACK_B_PER_TASK_MAX_A_BYTES {
            return TaskGrid {
                tiles,
                m_blocks: 1,
                n_chunks: threads.min(panels).max(1),
                pack_b_per_task: true,
            };
        }
        let mut m_blocks = tiles.div_ceil(spec.mc / spec.mr);
        let mut n_chunks = 1;
        if threads > 1 {
            if m_blocks >= threads || tiles >= 4 * threads {
                m_blocks = m_blocks.div_ceil(threads) * threads;
            } else {
                // Few rows: split the columns too, so every thread gets a share.
                n_chunks = threads.div_ceil(m_blocks).min(panels).max(1);
            }
        }
        TaskGrid {
            tiles,
            m_blocks: m_blocks.min(tiles),
            n_chunks,
            pack_b_per_task: false,
        }
    }

    /// First row and number of rows of M block `b` (of an `m`-row C, `mr`-row tiles).
    fn block_rows(&self, b: usize, m: usize, mr: usize) -> (usize, usize) {
        let first = b * self.tiles / self.m_blocks * mr;
        let end = ((b + 1) * self.tiles / self.m_blocks * mr).min(m);
        (first, end - first)
    }

    /// The most rows any block has.
    fn max_block_rows(&self, mr: usize) -> usize {
        self.tiles.div_ceil(self.m_blocks) * mr
    }
}

/// `C = α·A·B + β·C` for an `m × n` C, depth `k ≥ 1`, with the packed, blocked algorithm.
///
/// # Safety
/// `a` is valid for `m × k` elements, `b` for `k × n`, `c` for `m × n` and does not overlap them.
pub(crate) unsafe fn gemm_blocked<T: Element>(
    spec: &KernelSpec<T>,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: MatMut<T>,
) {
    let threads = if m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_MACS {
        1
    } else {
        rayon::current_num_threads()
    };
    // Equal depth slices of at most KC (1100 → 2 × 550, not 1024 + 76): no short, inefficient
    // last slice. The slicing depends on k only, never on the thread count.
    let kc_even = k.div_ceil(k.div_ceil(spec.kc));
    let grid = TaskGrid::new(spec, m, n, kc_even, threads);
    let (mr, nr) = (spec.mr, spec.nr);
    for jc in (0..n).step_by(spec.nc) {
        let nc = spec.nc.min(n - jc);
        let panels = nc.div_ceil(nr);
        let panels_per_chunk = panels.div_ceil(grid.n_chunks);
        for pc in (0..k).step_by(kc_even) {
            let kc = kc_even.min(k - pc);
            // Later depth slices add to what the first one wrote.
            let beta = if pc == 0 { beta } else { T::one() };
            // Safety of the closures below ("see above"): panel q covers columns jc + q·nr..
            // (clipped to nc) of rows pc..pc+kc, inside B; rows ic..ic+rows and depth pc..pc+kc lie
            // inside A; the buffers have room for what is packed into them; each tile lies inside
            // C, and a task's tiles (rows of its M block, its panels) are disjoint from every
            // other task's.
            let pack_b_panel = |dst: *mut T, q: usize| {
                // SAFETY: see above; `dst` has room for kc·nr values.
                unsafe { (spec.pack_b)(dst, b.at(pc, jc + q * nr), kc, nr.min(nc - q * nr)) }
            };
            let run_task = |task: usize, shared_b: Option<SharedPacked<T>>| {
                let (ib, jb) = (task / grid.n_chunks, task % grid.n_chunks);
                let (ic, rows) = grid.block_rows(ib, m, mr);
                let q_lo = jb * panels_per_chunk;
                let q_hi = panels.min(q_lo + panels_per_chunk);
                if q_lo >= q_hi {
                    return;
                }
                with_buffer::<T, _>(&A_BUFFER, grid.max_block_rows(mr) * kc, |apack| {
                    // SAFETY: see above.
                    unsafe { (spec.pack_a)(apack, a.at(ic, pc), rows, kc) };
                    let run_panel = |q: usize, bpanel: *const T| {
                        let col = q * nr;
                        for ir in (0..rows).step_by(mr) {
                            // SAFETY: see above.
                            unsafe {
                                let tile = MicroTile {
                                    kc,
                                    a: apack.add(ir * kc),
                                    rsa: 0,
                                    csa: 0,
                                    b: bpanel,
                                    c: c.at(ic + ir, jc + col),
                                    rsc: c.rs,
                                    csc: c.cs,
                                    rows: mr.min(rows - ir),
                                    cols: nr.min(nc - col),
                                    alpha,
                                    beta,
                                };
                                (spec.micro)(&tile);
                            }
                        }
                    };
                    match shared_b {
                        // SAFETY: the shared block holds every panel of this slice.
                        Some(bpack) => (q_lo..q_hi)
                            .for_each(|q| run_panel(q, unsafe { bpack.ptr().add(q * nr * kc) })),
                        None => with_buffer::<T, _>(&B_PANEL_BUFFER, nr * kc, |bpanel| {
                            for q in q_lo..q_hi {
                                pack_b_panel(bpanel, q);
                                run_panel(q, bpanel);
                            }
                        }),
                    }
                });
            };
            let tasks = grid.m_blocks * grid.n_chunks;
            let parallel = threads > 1 && tasks > 1;
            if grid.pack_b_per_task {
                if parallel {
                    (0..tasks).into_par_iter().for_each(|t| run_task(t, None));
                } else {
                    (0..tasks).for_each(|t| run_task(t, None));
                }
                continue;
            }
            with_buffer::<T, _>(&B_BUFFER, panels * nr * kc, |bpack| {
                let bpack = SharedPacked(bpack);
                // SAFETY: panel q's slot is inside the buffer sized above.
                let pack_slot = |q: usize| pack_b_panel(unsafe { bpack.ptr().add(q * nr * kc) }, q);
                if threads > 1 {
                    (0..panels).into_par_iter().for_each(pack_slot);
                } else {
                    (0..panels).for_each(pack_slot);
                }
                if parallel {
                    (0..tasks)
                        .into_par_iter()
                        .for_each(|t| run_task(t, Some(bpack)));
                } else {
                    (0..tasks).for_each(|t| run_task(t, Some(bpack)));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_grid_covers_rows_and_balances_threads() {
        let spec = &crate::gemm::kernels::portable::F32;
        for &(m, n, threads) in &[
            (1, 1, 1),
            (1000, 64, 1),
            (1000, 64, 2),
            (7, 4096, 2),
            (144, 16, 4),
            (300, 3, 3),
        ] {
            let g = TaskGrid::new(spec, m, n, 256, threads);
            // Blocks tile the rows exactly, start on tile boundaries, and differ by ≤ 1 tile.
            let mut next = 0;
            for b in 0..g.m_blocks {
                let (first, rows) = g.block_rows(b, m, spec.mr);
                assert_eq!(first, next, "{g:?} for m={m}");
                assert!(
                    first.is_multiple_of(spec.mr) && rows > 0 && rows <= g.max_block_rows(spec.mr)
                );
                assert!(
                    rows <= spec.mc || threads > 1,
                    "{g:?}: block of {rows} rows"
                );
                next = first + rows;
            }
            assert_eq!(next, m, "{g:?} for m={m}");
            let panels = n.min(spec.nc).div_ceil(spec.nr);
            assert!(
                g.m_blocks * g.n_chunks >= threads.min(g.m_blocks * panels),
                "{g:?} for m={m}, n={n}"
            );
            if threads > 1 && g.m_blocks >= threads {
                assert!(g.m_blocks.is_multiple_of(threads), "equal shares");
            }
        }
    }
}
