//! Tests of the public GEMM entry points: every kernel against the scalar reference and a naive
//! triple loop, every layout, the accumulate forms, thread-count determinism, batching, errors.

use ndarray::{s, Array2, ArrayD, ArrayView2, Axis, IxDyn, ShapeBuilder};

use super::*;

/// Deterministic values in [-1, 1) from a 64-bit LCG.
fn random<T: Element>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array2::from_shape_simple_fn((rows, cols), || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        T::from_f64_lossy(((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
    })
}

/// C = αAB + βC by the definition, in f64.
fn naive<T: Element>(
    alpha: f64,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: f64,
    c: &Array2<T>,
) -> Array2<f64> {
    Array2::from_shape_fn(c.dim(), |(i, j)| {
        let dot: f64 = (0..a.ncols())
            .map(|p| a[[i, p]].to_f64_lossless() * b[[p, j]].to_f64_lossless())
            .sum();
        let old = if beta == 0.0 {
            0.0
        } else {
            beta * c[[i, j]].to_f64_lossless()
        };
        alpha * dot + old
    })
}

/// |x − y| ≤ tol·max(1, |y|) everywhere.
fn assert_close<T: Element>(
    got: ArrayView2<'_, T>,
    want: ArrayView2<'_, f64>,
    tol: f64,
    what: &str,
) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let g = g.to_f64_lossless();
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: at {idx:?} got {g}, want {w}"
        );
    }
}

fn to_f64<T: Element>(x: ArrayView2<'_, T>) -> Array2<f64> {
    x.mapv(|v| v.to_f64_lossless())
}

fn fast_kernels() -> Vec<GemmKernel> {
    GemmKernel::available()
        .into_iter()
        .filter(|&k| k != GemmKernel::Scalar)
        .collect()
}

/// Every kernel equals the scalar reference for m, n, k in 1..=67 (all m × n for a few k, all k
/// for a few m × n), including the matrix-vector shapes.
fn sweep_against_scalar<T: Element>(tol: f64) {
    let a_all = random::<T>(67, 67, 1);
    let b_all = random::<T>(67, 67, 2);
    let mut shapes = Vec::new();
    for m in 1..=67 {
        for n in 1..=67 {
            for k in [1, 17, 67] {
                shapes.push((m, n, k));
            }
        }
    }
    for k in 1..=67 {
        for (m, n) in [(1, 1), (1, 40), (29, 1), (14, 32), (15, 33), (67, 67)] {
            shapes.push((m, n, k));
        }
    }
    let mut want = Array2::<T>::zeros((67, 67));
    let mut got = Array2::<T>::zeros((67, 67));
    for kernel in fast_kernels() {
        for &(m, n, k) in &shapes {
            let (a, b) = (a_all.slice(s![..m, ..k]), b_all.slice(s![..k, ..n]));
            let mut w = want.slice_mut(s![..m, ..n]);
            gemm_with_kernel(GemmKernel::Scalar, T::one(), a, b, T::zero(), w.view_mut()).unwrap();
            let mut g = got.slice_mut(s![..m, ..n]);
            gemm_with_kernel(kernel, T::one(), a, b, T::zero(), g.view_mut()).unwrap();
            assert_close(
                g.view(),
                to_f64(w.view()).view(),
                tol,
                &format!("{kernel} {m}x{n}x{k}"),
            );
        }
    }
}

#[test]
fn every_kernel_matches_scalar_f32() {
    sweep_against_scalar::<f32>(1e-5);
}

#[test]
fn every_kernel_matches_scalar_f64() {
    sweep_against_scalar::<f64>(1e-12);
}

/// A named operand layout: the backing array and how to view it.
type Layout<T> = (
    &'static str,
    Array2<T>,
    Box<dyn Fn(&Array2<T>) -> ArrayView2<'_, T>>,
);

/// Operand layouts a caller may pass: contiguous, transposed, column-major, stepped, reversed.
fn layouts<T: Element>(rows: usize, cols: usize, seed: u64) -> Vec<Layout<T>> {
    let plain = random::<T>(rows, cols, seed);
    let transposed = random::<T>(cols, rows, seed);
    let col_major = {
        let mut x = Array2::<T>::zeros((rows, cols).f());
        x.assign(&plain);
        x
    };
    let stepped = random::<T>(2 * rows, 3 * cols, seed);
    vec![
        (
            "row-major",
            plain.clone(),
            Box::new(|x: &Array2<T>| x.view()),
        ),
        ("transposed", transposed, Box::new(|x: &Array2<T>| x.t())),
        (
            "column-major",
            col_major,
            Box::new(|x: &Array2<T>| x.view()),
        ),
        (
            "stepped",
            stepped,
            Box::new(|x: &Array2<T>| x.slice(s![..;2, ..;3])),
        ),
        (
            "reversed",
            plain,
            Box::new(|x: &Array2<T>| x.slice(s![..;-1, ..;-1])),
        ),
    ]
}

/// Every (A layout, B layout, C layout, α, β) against the naive product, for every kernel.
fn layouts_and_accumulate<T: Element>(tol: f64) {
    // The last shape crosses every kernel's KC, so later depth slices accumulate onto earlier ones.
    for &(m, n, k) in &[
        (23, 37, 19),
        (1, 45, 30),
        (33, 1, 30),
        (70, 80, 300),
        (61, 50, 40),
        (17, 40, 1100),
    ] {
        let a_layouts = layouts::<T>(m, k, 3);
        let b_layouts = layouts::<T>(k, n, 4);
        let c0 = random::<T>(m, n, 5);
        for (an, a_store, a_view) in &a_layouts {
            for (bn, b_store, b_view) in &b_layouts {
                let (a, b) = (a_view(a_store), b_view(b_store));
                for &(alpha, beta) in &[(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)] {
                    let want = naive(alpha, a, b, beta, &c0);
                    let (al, be) = (T::from_f64_lossy(alpha), T::from_f64_lossy(beta));
                    for kernel in GemmKernel::available() {
                        // C row-major, column-major, and a stepped window of a larger array.
                        let mut c_row = c0.clone();
                        let mut c_col = Array2::<T>::zeros((m, n).f());
                        c_col.assign(&c0);
                        let mut c_big = Array2::<T>::from_elem((2 * m, 2 * n), T::nan());
                        c_big.slice_mut(s![..;2, ..;-2]).assign(&c0);
                        if beta == 0.0 {
                            c_row.fill(T::nan());
                            c_col.fill(T::nan());
                            c_big.fill(T::nan());
                        }
                        gemm_with_kernel(kernel, al, a, b, be, c_row.view_mut()).unwrap();
                        gemm_with_kernel(kernel, al, a, b, be, c_col.view_mut()).unwrap();
                        gemm_with_kernel(kernel, al, a, b, be, c_big.slice_mut(s![..;2, ..;-2]))
                            .unwrap();
                        let what = format!("{kernel} {m}x{n}x{k} A {an} B {bn} α={alpha} β={beta}");
                        assert_close(c_row.view(), want.view(), tol, &format!("{what} C row"));
                        assert_close(c_col.view(), want.view(), tol, &format!("{what} C col"));
                        let window = c_big.slice(s![..;2, ..;-2]);
                        assert_close(window, want.view(), tol, &format!("{what} C stepped"));
                        if beta == 0.0 {
                            // Untouched elements of the larger array stay as they were.
                            assert!(c_big.slice(s![1..;2, ..]).iter().all(|x| x.is_nan()));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn layouts_and_accumulate_f32() {
    layouts_and_accumulate::<f32>(1e-4);
}

#[test]
fn layouts_and_accumulate_f64() {
    layouts_and_accumulate::<f64>(1e-12);
}

#[test]
fn broadcast_operands_with_zero_strides() {
    let row = random::<f64>(1, 30, 9);
    let a = row.broadcast((20, 30)).unwrap();
    let b = random::<f64>(30, 25, 10);
    let got = matmul(a, b.view()).unwrap();
    assert_close(
        got.view(),
        naive(1.0, a, b.view(), 0.0, &Array2::zeros((20, 25))).view(),
        1e-12,
        "broadcast A",
    );
}

/// Shapes that go parallel (blocked with M split, blocked with N split, both matrix-vector forms).
#[test]
fn results_are_bitwise_identical_for_any_thread_count() {
    let cases: Vec<(Array2<f32>, Array2<f32>, bool)> = vec![
        (random(300, 200, 1), random(200, 170, 2), false),
        (random(600, 260, 14), random(260, 300, 15), false),
        (random(40, 1500, 12), random(100, 1500, 13), true),
        (random(9, 130, 3), random(130, 3000, 4), false),
        (random(1, 700, 5), random(700, 900, 6), false),
        (random(1, 700, 7), random(900, 700, 8), true),
        (random(900, 300, 9), random(300, 1, 10), false),
    ];
    for kernel in GemmKernel::available() {
        for (a, b, transpose_b) in &cases {
            let b = if *transpose_b { b.t() } else { b.view() };
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut c = random::<f32>(a.nrows(), b.ncols(), 11);
                    gemm_with_kernel(kernel, 1.5, a.view(), b, 0.5, c.view_mut()).unwrap();
                    c
                })
            };
            let one = run(1);
            for threads in [2, 3, 4, 7] {
                let many = run(threads);
                assert!(
                    one.iter()
                        .zip(many.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{kernel} {:?}x{:?}: {threads} threads differ from 1",
                    a.dim(),
                    b.dim()
                );
            }
        }
    }
}

/// Both ways of feeding B to the kernels: a shared block packed up front (tall A) and micro-panels
/// packed by each task right before use (short A), on every kernel.
#[test]
fn shared_and_per_task_b_packing_match_naive() {
    for m in [600, 100] {
        let a = random::<f32>(m, 260, 16);
        let b = random::<f32>(260, 70, 17);
        let want = naive(1.0, a.view(), b.view(), 0.0, &Array2::zeros((m, 70)));
        for kernel in GemmKernel::available() {
            let mut c = Array2::<f32>::zeros((m, 70));
            gemm_with_kernel(kernel, 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
            assert_close(c.view(), want.view(), 1e-5, &format!("{kernel} m={m}"));
        }
    }
}

#[test]
fn large_product_matches_naive() {
    // Crosses every block boundary (KC, MC, several B panels) on the fast kernel, in parallel.
    let a = random::<f64>(400, 600, 12);
    let b = random::<f64>(600, 300, 13);
    let got = matmul(a.view(), b.t().t()).unwrap();
    assert_close(
        got.view(),
        naive(1.0, a.view(), b.view(), 0.0, &got).view(),
        1e-12,
        "400x300x600",
    );
}

#[test]
fn empty_dimensions_are_fine_and_k_zero_scales_c() {
    let a = Array2::<f32>::zeros((0, 3));
    let b = Array2::<f32>::zeros((3, 4));
    assert_eq!(matmul(a.view(), b.view()).unwrap().dim(), (0, 4));
    let a = Array2::<f32>::zeros((2, 3));
    let b = Array2::<f32>::zeros((3, 0));
    assert_eq!(matmul(a.view(), b.view()).unwrap().dim(), (2, 0));
    // k = 0: C = βC, and β = 0 clears NaN.
    let a = Array2::<f32>::zeros((2, 0));
    let b = Array2::<f32>::zeros((0, 3));
    let mut c = Array2::<f32>::from_elem((2, 3), 4.0);
    gemm(1.0, a.view(), b.view(), 0.5, c.view_mut()).unwrap();
    assert!(c.iter().all(|&x| x == 2.0));
    c.fill(f32::NAN);
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
    assert!(c.iter().all(|&x| x == 0.0));
    assert_eq!(
        matmul(a.view(), b.view()).unwrap(),
        Array2::<f32>::zeros((2, 3))
    );
}

#[test]
fn alpha_zero_does_not_read_a_or_b() {
    let a = Array2::from_elem((3, 4), f64::NAN);
    let b = Array2::from_elem((4, 5), f64::NAN);
    let mut c = Array2::from_elem((3, 5), 2.0);
    gemm(0.0, a.view(), b.view(), 3.0, c.view_mut()).unwrap();
    assert!(c.iter().all(|&x| x == 6.0));
}

#[test]
fn shape_errors_name_both_shapes() {
    let a = Array2::<f32>::zeros((2, 3));
    let b = Array2::<f32>::zeros((4, 5));
    let err = matmul(a.view(), b.view()).unwrap_err().to_string();
    assert!(err.contains("[2, 3]") && err.contains("[4, 5]"), "{err}");
    let b = Array2::<f32>::zeros((3, 5));
    let mut c = Array2::<f32>::zeros((2, 4));
    let err = gemm(1.0, a.view(), b.view(), 0.0, c.view_mut())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 5]") && err.contains("[2, 4]"), "{err}");
}

#[test]
fn unavailable_kernels_are_errors() {
    let a = Array2::<f32>::zeros((2, 3));
    let b = Array2::<f32>::zeros((3, 5));
    for kernel in GemmKernel::ALL {
        let mut c = Array2::<f32>::zeros((2, 5));
        let result = gemm_with_kernel(kernel, 1.0, a.view(), b.view(), 0.0, c.view_mut());
        assert_eq!(result.is_ok(), kernel.is_available(), "{kernel}");
    }
}

/// The batched product, entry by entry, as a loop of [`matmul`] calls.
fn batched_by_loop(a: &ArrayD<f64>, b: &ArrayD<f64>, out_batch: &[usize]) -> ArrayD<f64> {
    let (m, n) = (a.shape()[a.ndim() - 2], b.shape()[b.ndim() - 1]);
    let mut shape = out_batch.to_vec();
    shape.extend([m, n]);
    let mut out = ArrayD::zeros(IxDyn(&shape));
    let entries: usize = out_batch.iter().product();
    for e in 0..entries {
        let mut idx = vec![0; out_batch.len()];
        let mut rem = e;
        for d in (0..out_batch.len()).rev() {
            idx[d] = rem % out_batch[d];
            rem /= out_batch[d];
        }
        fn pick<'a>(x: &'a ArrayD<f64>, idx: &[usize], out_rank: usize) -> ArrayView2<'a, f64> {
            let mut v = x.view();
            let extra = out_rank + 2 - x.ndim();
            for d in (0..x.ndim() - 2).rev() {
                let i = if x.shape()[d] == 1 { 0 } else { idx[d + extra] };
                v = v.index_axis_move(Axis(d), i);
            }
            v.into_dimensionality::<ndarray::Ix2>().unwrap()
        }
        let prod = matmul(
            pick(a, &idx, out_batch.len()),
            pick(b, &idx, out_batch.len()),
        )
        .unwrap();
        let mut slot = out.view_mut();
        for &i in &idx {
            slot = slot.index_axis_move(Axis(0), i);
        }
        slot.assign(&prod.into_dyn());
    }
    out
}

fn random_d(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let len = shape.iter().product();
    random::<f64>(1, len, seed)
        .into_shape_with_order(IxDyn(shape))
        .unwrap()
}

#[test]
fn batched_matmul_broadcasts_like_numpy() {
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[4, 1, 5, 6], &[3, 6, 7], &[4, 3]),
        (&[2, 5, 6], &[6, 7], &[2]),
        (&[6, 7], &[3, 7, 2], &[3]),
        (&[2, 3, 1, 6], &[1, 3, 6, 4], &[2, 3]),
        (&[5, 1, 40], &[1, 40, 30], &[5]),
        (&[3, 64, 64], &[3, 64, 64], &[3]),
        (&[2, 2, 100, 120], &[120, 110], &[2, 2]),
    ];
    for (sa, sb, batch) in cases {
        let (a, b) = (random_d(sa, 1), random_d(sb, 2));
        let got = batched_matmul(a.view(), b.view()).unwrap();
        let want = batched_by_loop(&a, &b, batch);
        assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{sa:?} x {sb:?}: {g} vs {w}"
            );
        }
    }
    // Permuted (non-contiguous) batch layouts.
    let a = random_d(&[5, 4, 3], 3);
    let a = a.view().permuted_axes(vec![1, 0, 2]); // [4, 5, 3], batch axis not outermost in memory
    let b = random_d(&[4, 3, 2], 4);
    let got = batched_matmul(a.view(), b.view()).unwrap();
    let want = batched_by_loop(&a.to_owned(), &b, &[4]);
    assert!(got
        .iter()
        .zip(want.iter())
        .all(|(g, w)| (g - w).abs() <= 1e-12));
    // Broadcast B folded into one product, with a transposed (non-foldable) A.
    let a = random_d(&[3, 8, 5], 5);
    let at = a.view().permuted_axes(vec![0, 2, 1]);
    let b = random_d(&[8, 6], 6);
    let got = batched_matmul(at.view(), b.view()).unwrap();
    let want = batched_by_loop(&at.to_owned(), &b, &[3]);
    assert!(got
        .iter()
        .zip(want.iter())
        .all(|(g, w)| (g - w).abs() <= 1e-12));
}

#[test]
fn batched_matmul_errors_name_both_shapes() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[3], &[3, 2]),
        (&[2, 3, 4], &[2, 5, 6]),
        (&[2, 3, 4], &[3, 4, 6]),
    ];
    for (sa, sb) in cases {
        let err = batched_matmul(random_d(sa, 1).view(), random_d(sb, 2).view())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{sa:?}")) && err.contains(&format!("{sb:?}")),
            "{err}"
        );
    }
}

#[test]
fn batched_matmul_empty_batch() {
    let a = ArrayD::<f32>::zeros(IxDyn(&[0, 2, 3]));
    let b = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
    assert_eq!(
        batched_matmul(a.view(), b.view()).unwrap().shape(),
        &[0, 2, 4]
    );
}

#[test]
fn kernel_tables_match_their_family() {
    for kernel in GemmKernel::available() {
        let s32 = <f32 as sealed::Sealed>::kernel_spec(kernel).unwrap();
        let s64 = <f64 as sealed::Sealed>::kernel_spec(kernel).unwrap();
        assert_eq!((s32.kernel, s64.kernel), (kernel, kernel));
        for (mr, nr, kc, mc, nc) in [
            (s32.mr, s32.nr, s32.kc, s32.mc, s32.nc),
            (s64.mr, s64.nr, s64.kc, s64.mc, s64.nc),
        ] {
            assert!(
                mc % mr == 0 && nc % nr == 0 && kc > 0,
                "{kernel}: blocks are whole tiles"
            );
        }
    }
}

/// Every family's in-place-A micro-kernel gives the packed kernel's bits, reading A row-major and
/// column-major (leading dimension wider than needed), for every row count of the tile, partial
/// columns, odd depths and α/β variants.
fn unpacked_a_kernel_equals_packed<T: Element>() {
    use crate::gemm::kernels::MicroTile;
    use crate::gemm::pack::MatRef;
    for kernel in GemmKernel::available() {
        let spec = <T as sealed::Sealed>::kernel_spec(kernel).unwrap();
        let Some(unpacked_a) = spec.micro_unpacked_a else {
            continue;
        };
        let (mr, nr) = (spec.mr, spec.nr);
        for k in [1, 2, 17, 64, 67] {
            let lda = k + 3;
            let a = random::<T>(mr, lda, 7);
            let b = random::<T>(k, nr, 8);
            // The same A stored column-major: element (i, s) at s·(mr + 3) + i.
            let mut a_cm = Array2::<T>::zeros((k, mr + 3));
            for i in 0..mr {
                for step in 0..k {
                    a_cm[[step, i]] = a[[i, step]];
                }
            }
            let mut apack = vec![T::zero(); mr * k];
            let mut bpack = vec![T::zero(); nr * k];
            let a_ref = MatRef {
                ptr: a.as_ptr(),
                rs: lda as isize,
                cs: 1,
            };
            let b_ref = MatRef {
                ptr: b.as_ptr(),
                rs: nr as isize,
                cs: 1,
            };
            // SAFETY: the buffers hold one A micro-panel (MR × k) and one B micro-panel (k × NR).
            unsafe {
                (spec.pack_a)(apack.as_mut_ptr(), a_ref, mr, k);
                (spec.pack_b)(bpack.as_mut_ptr(), b_ref, k, nr);
            }
            for rows in 1..=mr {
                for cols in [1, nr / 2 + 1, nr] {
                    for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (1.0, -2.0)] {
                        let c0 = random::<T>(mr, nr, 9);
                        let (mut want, mut got, mut got_cm) = (c0.clone(), c0.clone(), c0.clone());
                        let tile = |a: *const T, rsa: isize, csa: isize, c: *mut T| MicroTile {
                            kc: k,
                            a,
                            rsa,
                            csa,
                            b: bpack.as_ptr(),
                            c,
                            rsc: nr as isize,
                            csc: 1,
                            rows,
                            cols,
                            alpha: T::from_f64_lossy(alpha),
                            beta: T::from_f64_lossy(beta),
                        };
                        // SAFETY: panels and tiles as described above; the CPU has `kernel`.
                        unsafe {
                            (spec.micro)(&tile(apack.as_ptr(), 0, 0, want.as_mut_ptr()));
                            unpacked_a(&tile(a.as_ptr(), lda as isize, 1, got.as_mut_ptr()));
                            let ld_cm = (mr + 3) as isize;
                            unpacked_a(&tile(a_cm.as_ptr(), 1, ld_cm, got_cm.as_mut_ptr()));
                        }
                        for (layout, got) in [("row-major", &got), ("column-major", &got_cm)] {
                            assert!(
                                want.iter().zip(got.iter()).all(|(w, g)| {
                                    w.to_f64_lossless().to_bits() == g.to_f64_lossless().to_bits()
                                }),
                                "{kernel} {layout} rows {rows} cols {cols} k {k} alpha {alpha} beta {beta}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn unpacked_a_kernels_equal_packed_kernels() {
    unpacked_a_kernel_equals_packed::<f32>();
    unpacked_a_kernel_equals_packed::<f64>();
}
