//! Micro-kernels: the innermost loop of the GEMM, one file per instruction set.
//!
//! A micro-kernel multiplies one packed micro-panel of A (`kc` steps of `MR` values: a column of
//! the `MR`-row strip per step) by one packed micro-panel of B (`kc` steps of `NR` values: a row of
//! the `NR`-column strip per step), keeping the whole `MR×NR` tile of C in registers, and then
//! writes `C = α·(ÃB̃) + β·C` for the valid `rows × cols` corner of the tile.
//!
//! The bodies are written once, generically over [`SimdVec`] (one SIMD register and the few
//! operations the kernels need), and instantiated per instruction set in the files beside this one
//! behind `#[target_feature]`:
//! - [`avx512`]: AVX-512F, 14×32 (f32) and 14×16 (f64) tiles — 28 accumulator registers;
//! - [`avx2`]: AVX2 + FMA, 6×16 (f32) and 6×8 (f64) tiles — 12 accumulator registers;
//! - [`portable`]: fixed-size arrays the compiler vectorises (any target);
//! - [`scalar`]: simple loops, the reference the tests compare every other kernel with.
//!
//! The vector is laid along N (a row of the C tile), A's values are broadcast: with row-major C (the
//! common case, and the one [`gemm`](super::gemm) reduces column-major C to) the tile is written
//! with plain vector stores.
//!
//! Each kernel family also provides its packing routines (the AVX-512 and AVX2 files transpose a
//! row-major A, or a B = Wᵀ, in registers) and the two matrix-vector bodies used by
//! [`gemv`](super::gemv).

pub(crate) mod portable;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use crate::element::Element;

use super::dispatch::GemmKernel;
use super::pack::MatRef;

/// One call of a micro-kernel: a `rows × cols` tile of C (at most `MR × NR`).
#[derive(Clone, Copy)]
pub struct MicroTile<T> {
    /// Depth of the product (number of packed steps), at least 1.
    pub kc: usize,
    /// Packed A micro-panel: `kc` steps of `MR` values. For [`KernelSpec::micro_unpacked_a`]: the
    /// tile's first element in a plain A instead.
    pub a: *const T,
    /// Row stride of that plain A (elements); not used by the packed kernels.
    pub rsa: isize,
    /// Column stride of that plain A (elements); not used by the packed kernels.
    pub csa: isize,
    /// Packed B micro-panel: `kc` steps of `NR` values, zero-padded past `cols`.
    pub b: *const T,
    /// Top-left element of the C tile.
    pub c: *mut T,
    /// Row stride of C (elements).
    pub rsc: isize,
    /// Column stride of C (elements).
    pub csc: isize,
    /// Valid rows of the tile (1..=MR).
    pub rows: usize,
    /// Valid columns of the tile (1..=NR).
    pub cols: usize,
    /// Multiplier of the product.
    pub alpha: T,
    /// Multiplier of the old C; exactly zero means C is not read (NaN in C is overwritten).
    pub beta: T,
}

/// A micro-kernel entry point.
///
/// # Safety
/// The pointers of the tile must be valid for the reads and writes its fields describe, and the
/// CPU must support the kernel's instruction set.
pub type MicroKernelFn<T> = unsafe fn(&MicroTile<T>);

/// A matrix-vector product `y = α·xᵀB + β·y` over `n` outputs and depth `k`, `x` contiguous.
pub struct GemvCall<T> {
    /// Depth (length of `x`).
    pub k: usize,
    /// Number of outputs (columns of B).
    pub n: usize,
    /// The vector, contiguous.
    pub x: *const T,
    /// B's first element.
    pub b: *const T,
    /// B's stride along the non-contiguous axis: the row stride for [`GemvFn`] `rows`, the column
    /// stride for `cols`.
    pub ldb: isize,
    /// Output vector.
    pub y: *mut T,
    /// Stride of `y`.
    pub incy: isize,
    /// Multiplier of the product.
    pub alpha: T,
    /// Multiplier of the old `y`; exactly zero means `y` is not read.
    pub beta: T,
}

/// A matrix-vector entry point.
///
/// # Safety
/// As [`MicroKernelFn`]: valid pointers for the described extents, a CPU with the instruction set.
pub type GemvFn<T> = unsafe fn(&GemvCall<T>);

/// Packs a block of A: `(dst, a, rows, kc)` into `⌈rows/MR⌉` micro-panels (see [`super::pack`]).
///
/// # Safety
/// `a` is valid for `rows × kc` elements, `dst` for `⌈rows/MR⌉·MR·kc`; the CPU has the kernel's
/// instruction set.
pub type PackAFn<T> = unsafe fn(*mut T, MatRef<T>, usize, usize);

/// Packs one micro-panel of B: `(dst, b, kc, cols)`, zero-padded to NR columns.
///
/// # Safety
/// `b` is valid for `kc × cols` elements, `dst` for `kc·NR`; the CPU has the instruction set.
pub type PackBFn<T> = unsafe fn(*mut T, MatRef<T>, usize, usize);

/// Everything the loops need to know about one kernel family for one scalar type: its tile,
/// its cache blocking, and its entry points.
pub struct KernelSpec<T> {
    /// Which family this is.
    pub kernel: GemmKernel,
    /// Rows of the register tile (height of a packed A micro-panel).
    pub mr: usize,
    /// Columns of the register tile (width of a packed B micro-panel).
    pub nr: usize,
    /// Most steps of a depth slice: C is loaded and stored once per slice, so longer is better
    /// until the `KC × NR` B micro-panel and the `MR × KC` A micro-panel no longer stream from L2.
    pub kc: usize,
    /// Rows of a packed A block (`MC × KC` is sized to sit in the per-core L2).
    pub mc: usize,
    /// Columns of a packed B block (`KC × NC` shared by the threads, sized for L3).
    pub nc: usize,
    /// The micro-kernel.
    pub micro: MicroKernelFn<T>,
    /// The same micro-kernel reading A unpacked, in place at its strides `tile.rsa`, `tile.csa` —
    /// for a small A met by few B panels, where packing would cost a good part of the product
    /// (where the family has one).
    pub micro_unpacked_a: Option<MicroKernelFn<T>>,
    /// Packing of A blocks into this kernel's micro-panels.
    pub pack_a: PackAFn<T>,
    /// Packing of B micro-panels.
    pub pack_b: PackBFn<T>,
    /// `y = α·xᵀB + β·y` for B with contiguous rows (unit column stride).
    pub gemv_rows: GemvFn<T>,
    /// `y = α·xᵀB + β·y` for B with contiguous columns (unit row stride).
    pub gemv_cols: GemvFn<T>,
}

/// One SIMD register of `T` and the operations the generic kernel bodies need.
///
/// Implemented per instruction set; every method is `#[inline(always)]` so that it is compiled
/// inside the `#[target_feature]` entry point that calls the generic body.
///
/// # Safety
/// The methods may use instructions of the implementing instruction set; callers must have checked
/// the CPU supports it. Pointer arguments must be valid for `LANES` (or `n`) elements.
pub(crate) unsafe trait SimdVec<T: Copy>: Copy {
    /// Elements per register.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: T) -> Self;
    /// Loads `LANES` elements (unaligned).
    unsafe fn load(p: *const T) -> Self;
    /// Stores `LANES` elements (unaligned).
    unsafe fn store(self, p: *mut T);
    /// Loads the first `n < LANES` elements, zero in the others; reads nothing past `n`.
    unsafe fn load_partial(p: *const T, n: usize) -> Self;
    /// Stores the first `n < LANES` lanes; writes nothing past `n`.
    unsafe fn store_partial(self, p: *mut T, n: usize);
    /// `a·b + c`, fused where the instruction set has FMA.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `a·b`.
    unsafe fn mul(a: Self, b: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// Sum of the lanes, in a fixed order.
    unsafe fn reduce_sum(self) -> T;
    /// Hints the cache line holding `p` into L1 (no-op where unsupported).
    #[inline(always)]
    unsafe fn prefetch(_p: *const T) {}
}

/// The register-tile body: `ROWS × (NV·LANES)` accumulators. With `PACKED_A`, A is a packed
/// micro-panel of stride `MRP` per step; without, A is read in place at its strides `tile.rsa`
/// and `tile.csa`. Both run the same operations in the same order: same bits.
///
/// `ROWS < MRP` serves the bottom edge of a block without computing padded rows.
///
/// # Safety
/// See [`MicroKernelFn`]; `tile.rows == ROWS`, `1 <= tile.kc`, `tile.cols <= NV·LANES`, and the
/// caller's `#[target_feature]` covers `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn tile_body<
    T: Element,
    V: SimdVec<T>,
    const MRP: usize,
    const ROWS: usize,
    const NV: usize,
    const PACKED_A: bool,
>(
    tile: &MicroTile<T>,
) {
    let lanes = V::LANES;
    let nr = NV * lanes;
    // SAFETY: the caller guarantees the packed panels hold `kc ≥ 1` steps of MRP (A) and nr (B)
    // values, that the C tile is valid for `rows × cols` elements at its strides, and that the
    // CPU supports V's instructions.
    unsafe {
        for i in 0..ROWS {
            let row = tile.c.offset(i as isize * tile.rsc);
            V::prefetch(row);
            V::prefetch(row.offset((nr as isize - 1) * tile.csc));
        }
        let mut a = tile.a;
        let mut b = tile.b;
        // Row i of A at the step `a` points to, and the distance to the next step.
        let a_row = |a: *const T, i: usize| {
            if PACKED_A {
                a.add(i)
            } else {
                a.offset(i as isize * tile.rsa)
            }
        };
        let a_step = if PACKED_A { MRP as isize } else { tile.csa };
        // The first step initialises the accumulators (no zeroing pass; kc ≥ 1).
        let bv: [V; NV] = std::array::from_fn(|j| V::load(b.add(j * lanes)));
        let mut acc: [[V; NV]; ROWS] = std::array::from_fn(|i| {
            let av = V::splat(*a_row(a, i));
            std::array::from_fn(|j| V::mul(av, bv[j]))
        });
        // B's cache lines `B_PREFETCH_STEPS` steps ahead (past the panel's end near its end: a
        // prefetch never faults, and that is where the next panel usually lies).
        let line = 64 / std::mem::size_of::<T>();
        let ahead = B_PREFETCH_STEPS * nr;
        for _ in 1..tile.kc {
            a = a.offset(a_step);
            b = b.add(nr);
            for offset in (0..nr).step_by(line) {
                V::prefetch(b.wrapping_add(ahead + offset));
            }
            let bv: [V; NV] = std::array::from_fn(|j| V::load(b.add(j * lanes)));
            for i in 0..ROWS {
                let av = V::splat(*a_row(a, i));
                for j in 0..NV {
                    acc[i][j] = V::mul_add(av, bv[j], acc[i][j]);
                }
            }
        }
        if tile.csc == 1 && tile.cols == nr {
            store_full_rows::<T, V, ROWS, NV>(tile, acc);
        } else {
            const {
                assert!(
                    ROWS * NV * V::LANES <= MAX_TILE,
                    "spill buffer too small for the tile"
                )
            };
            // Spill the whole tile to a buffer with the straight-line store (indexing `acc` with
            // loop variables would pull the accumulators out of registers for every tile), then
            // update the valid corner of C from it.
            let mut spill = std::mem::MaybeUninit::<[T; MAX_TILE]>::uninit();
            let spill = spill.as_mut_ptr().cast::<T>();
            let to_buffer = MicroTile {
                c: spill,
                rsc: nr as isize,
                csc: 1,
                alpha: T::one(),
                beta: T::zero(),
                ..*tile
            };
            store_full_rows::<T, V, ROWS, NV>(&to_buffer, acc);
            store_tile_edge::<T, V>(tile, spill, ROWS, NV);
        }
    }
}

/// How many steps ahead the kernel prefetches its B micro-panel into L1. A panel's first tile reads
/// it from L3 (later tiles from L2), and with the hardware prefetchers alone the FMAs wait on those
/// loads. Prefetching 16 steps (2 KiB of an f32 AVX-512 panel) ahead raised 1024³ and 2048³ by 3–10
/// points of the FMA peak in each of eight interleaved pairs (1 thread, each run normalised by a peak
/// measurement just before it; e.g. 66–72% → 70–75%); 8, 12, 24 and 32 steps did no better. The
/// LLM-shaped products of docs/gemm.md moved by −3 to +7 points (medians of three runs).
const B_PREFETCH_STEPS: usize = 16;

/// Elements of the largest register tile (14×32 f32), the size of the edge-path spill buffer.
const MAX_TILE: usize = 512;

/// Writes `C = α·acc + β·C` for a whole tile whose rows are contiguous: straight-line vector code,
/// so the accumulators never leave the registers.
///
/// # Safety
/// As [`tile_body`], with `csc == 1` and `cols == NV·LANES`.
#[inline(always)]
unsafe fn store_full_rows<T: Element, V: SimdVec<T>, const ROWS: usize, const NV: usize>(
    tile: &MicroTile<T>,
    acc: [[V; NV]; ROWS],
) {
    let lanes = V::LANES;
    // SAFETY: the tile is valid for ROWS rows of NV·LANES contiguous elements.
    unsafe {
        let alpha = V::splat(tile.alpha);
        let beta = V::splat(tile.beta);
        match (tile.alpha == T::one(), tile.beta == T::zero()) {
            (true, true) => {
                for i in 0..ROWS {
                    let row = tile.c.offset(i as isize * tile.rsc);
                    for j in 0..NV {
                        acc[i][j].store(row.add(j * lanes));
                    }
                }
            }
            (false, true) => {
                for i in 0..ROWS {
                    let row = tile.c.offset(i as isize * tile.rsc);
                    for j in 0..NV {
                        V::mul(alpha, acc[i][j]).store(row.add(j * lanes));
                    }
                }
            }
            (true, false) => {
                for i in 0..ROWS {
                    let row = tile.c.offset(i as isize * tile.rsc);
                    for j in 0..NV {
                        let p = row.add(j * lanes);
                        V::mul_add(beta, V::load(p), acc[i][j]).store(p);
                    }
                }
            }
            (false, false) => {
                for i in 0..ROWS {
                    let row = tile.c.offset(i as isize * tile.rsc);
                    for j in 0..NV {
                        let p = row.add(j * lanes);
                        V::mul_add(beta, V::load(p), V::mul(alpha, acc[i][j])).store(p);
                    }
                }
            }
        }
    }
}

/// Writes `C = α·acc + β·C` for the valid corner of an edge tile, or of any tile whose rows are
/// not contiguous, from the accumulators spilled row by row (`rows × nv` vectors).
///
/// # Safety
/// As [`tile_body`]; `spill` holds `rows·nv·LANES` values.
#[inline(always)]
unsafe fn store_tile_edge<T: Element, V: SimdVec<T>>(
    tile: &MicroTile<T>,
    spill: *const T,
    rows: usize,
    nv: usize,
) {
    let lanes = V::LANES;
    let beta_is_zero = tile.beta == T::zero();
    let alpha_is_one = tile.alpha == T::one();
    // SAFETY: as the caller's: the tile is valid for `rows × cols` elements at its strides.
    unsafe {
        let alpha = V::splat(tile.alpha);
        let beta = V::splat(tile.beta);
        for i in 0..rows {
            let row = tile.c.offset(i as isize * tile.rsc);
            for j in 0..nv {
                let start = j * lanes;
                if start >= tile.cols {
                    break;
                }
                let n = (tile.cols - start).min(lanes);
                let v = V::load(spill.add((i * nv + j) * lanes));
                let ab = if alpha_is_one { v } else { V::mul(alpha, v) };
                if tile.csc == 1 {
                    let p = row.add(start);
                    if n == lanes {
                        let out = if beta_is_zero {
                            ab
                        } else {
                            V::mul_add(beta, V::load(p), ab)
                        };
                        out.store(p);
                    } else {
                        let out = if beta_is_zero {
                            ab
                        } else {
                            V::mul_add(beta, V::load_partial(p, n), ab)
                        };
                        out.store_partial(p, n);
                    }
                } else {
                    // Any other layout: element by element.
                    let mut lane = [T::zero(); 16];
                    ab.store(lane.as_mut_ptr());
                    for (l, &x) in lane.iter().enumerate().take(n) {
                        let p = row.offset((start + l) as isize * tile.csc);
                        *p = if beta_is_zero { x } else { tile.beta * *p + x };
                    }
                }
            }
        }
    }
}

/// Expands to a `match` on a runtime row count that calls `$body` with a const `$R` for each of
/// the listed counts (the edge instantiations of a micro-kernel).
macro_rules! with_const_rows {
    ($rows:expr, |$R:ident| $body:expr, [$($n:literal)*]) => {
        match $rows {
            $( $n => { const $R: usize = $n; $body } )*
            _ => unreachable!("micro-kernel called with {} rows", $rows),
        }
    };
}
pub(crate) use with_const_rows;

/// Columns per pass of [`gemv_rows_body`]: the accumulators (16 KiB of f32) stay in L1, and a
/// single thread reads whole rows for N ≤ 4096.
const GEMV_ROWS_CHUNK: usize = 4096;

/// Rows of B folded into the accumulators per pass over a chunk: fewer loads and stores of the
/// accumulators per element of B, and the next group of rows is prefetched meanwhile.
const GEMV_ROWS_PER_PASS: usize = 8;

/// `y = α·xᵀB + β·y` where B's rows are contiguous: streams B a few rows at a time, adding
/// `x[p]·B[p, ..]` into a chunk of `y` kept in L1. Each output sums over `p` in order with one FMA
/// per step, so the result does not depend on how the columns were split between threads.
///
/// # Safety
/// See [`GemvFn`]; B has unit column stride and row stride `ldb`.
#[inline(always)]
pub(crate) unsafe fn gemv_rows_body<T: Element, V: SimdVec<T>>(call: &GemvCall<T>) {
    const R: usize = GEMV_ROWS_PER_PASS;
    let lanes = V::LANES;
    // Only the first `w` accumulators of a pass are initialised and read (no 16 KiB memset for a
    // short row).
    let mut acc = std::mem::MaybeUninit::<[T; GEMV_ROWS_CHUNK]>::uninit();
    let accp = acc.as_mut_ptr().cast::<T>();
    // SAFETY: x has k elements, B is k rows of n contiguous elements at stride ldb, y has n
    // elements at stride incy; the CPU supports V. Prefetches past the end never fault.
    unsafe {
        let mut j0 = 0;
        while j0 < call.n {
            let w = (call.n - j0).min(GEMV_ROWS_CHUNK);
            let full = w / lanes * lanes;
            let tail = w - full;
            for j in 0..w {
                accp.add(j).write(T::zero());
            }
            let base = call.b.add(j0);
            let mut p = 0;
            while p < call.k {
                let rows_here = (call.k - p).min(R);
                let xs: [V; R] = std::array::from_fn(|r| {
                    V::splat(if r < rows_here {
                        *call.x.add(p + r)
                    } else {
                        T::zero()
                    })
                });
                let rows: [*const T; R] = std::array::from_fn(|r| {
                    base.offset((p + r.min(rows_here - 1)) as isize * call.ldb)
                });
                let ahead = base.wrapping_offset((p + R) as isize * call.ldb);
                if rows_here == R {
                    let mut j = 0;
                    while j < full {
                        let mut s = V::load(accp.add(j));
                        for r in 0..R {
                            V::prefetch(
                                ahead.wrapping_offset(r as isize * call.ldb).wrapping_add(j),
                            );
                            s = V::mul_add(xs[r], V::load(rows[r].add(j)), s);
                        }
                        s.store(accp.add(j));
                        j += lanes;
                    }
                    if tail > 0 {
                        let mut s = V::load_partial(accp.add(j), tail);
                        for r in 0..R {
                            s = V::mul_add(xs[r], V::load_partial(rows[r].add(j), tail), s);
                        }
                        s.store_partial(accp.add(j), tail);
                    }
                } else {
                    // The last few rows, one at a time (the same FMAs, in the same order).
                    for r in 0..rows_here {
                        let mut j = 0;
                        while j < full {
                            V::mul_add(xs[r], V::load(rows[r].add(j)), V::load(accp.add(j)))
                                .store(accp.add(j));
                            j += lanes;
                        }
                        if tail > 0 {
                            let s = V::mul_add(
                                xs[r],
                                V::load_partial(rows[r].add(j), tail),
                                V::load_partial(accp.add(j), tail),
                            );
                            s.store_partial(accp.add(j), tail);
                        }
                    }
                }
                p += rows_here;
            }
            write_gemv_outputs(call, j0, std::slice::from_raw_parts(accp, w));
            j0 += w;
        }
    }
}

/// How far ahead [`gemv_cols_body`] prefetches the columns of B, in bytes.
const GEMV_COLS_PREFETCH_BYTES: usize = 4096;

/// `y = α·xᵀB + β·y` where B's columns are contiguous: one dot product per column, column after
/// column, so B is read as a single forward stream when its columns are adjacent (`x·Wᵀ` for a
/// row-major W), which the hardware prefetchers follow best. Each dot product uses four vector
/// accumulators and the same sequence of operations for every column, so results do not depend
/// on the thread split.
///
/// # Safety
/// See [`GemvFn`]; B has unit row stride and column stride `ldb`.
#[inline(always)]
pub(crate) unsafe fn gemv_cols_body<T: Element, V: SimdVec<T>>(call: &GemvCall<T>) {
    let lanes = V::LANES;
    let (k, x) = (call.k, call.x);
    // Columns about 4 KiB ahead in the stream are prefetched while this one is summed: on one core
    // of the Xeon we measure on, decoding (gemv-bound) ran 1.03-1.36x faster with it, paired runs.
    let ahead = (GEMV_COLS_PREFETCH_BYTES / (k * std::mem::size_of::<T>()).max(1)).max(1) as isize;
    // SAFETY: column j holds k contiguous elements at b + j·ldb; x has k elements. Prefetches past
    // the end never fault.
    unsafe {
        for j in 0..call.n {
            let col = call.b.offset(j as isize * call.ldb);
            let next = col.wrapping_offset(ahead * call.ldb);
            let mut acc = [V::zero(); 4];
            let mut p = 0;
            while p + 4 * lanes <= k {
                for (u, a) in acc.iter_mut().enumerate() {
                    let q = p + u * lanes;
                    V::prefetch(next.wrapping_add(q));
                    *a = V::mul_add(V::load(x.add(q)), V::load(col.add(q)), *a);
                }
                p += 4 * lanes;
            }
            let mut u = 0;
            while p + lanes <= k {
                acc[u] = V::mul_add(V::load(x.add(p)), V::load(col.add(p)), acc[u]);
                p += lanes;
                u += 1;
            }
            if p < k {
                let n = k - p;
                acc[3] = V::mul_add(
                    V::load_partial(x.add(p), n),
                    V::load_partial(col.add(p), n),
                    acc[3],
                );
            }
            let sum = V::add(V::add(acc[0], acc[1]), V::add(acc[2], acc[3])).reduce_sum();
            write_gemv_outputs(call, j, &[sum]);
        }
    }
}

/// `y[j0 + i] = α·sums[i] + β·y[j0 + i]`, not reading `y` when β is zero.
///
/// # Safety
/// `y` is valid for `j0 + sums.len()` elements at stride `incy`.
#[inline(always)]
unsafe fn write_gemv_outputs<T: Element>(call: &GemvCall<T>, j0: usize, sums: &[T]) {
    let beta_is_zero = call.beta == T::zero();
    for (i, &s) in sums.iter().enumerate() {
        // SAFETY: in bounds by the caller's contract.
        unsafe {
            let p = call.y.offset((j0 + i) as isize * call.incy);
            *p = if beta_is_zero {
                call.alpha * s
            } else {
                call.alpha * s + call.beta * *p
            };
        }
    }
}
