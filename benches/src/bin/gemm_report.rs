//! GEMM report: fm beside ndarray `.dot()` and the `gemm` crate (0.19, `x86-v4`), in one run.
//!
//! Measures the machine's FMA peak and STREAM-triad bandwidth first, then every shape of
//! BENCHMARKS.md at 1 and 2 threads (each in its own rayon pool), interleaving the contenders, and
//! prints GFLOP/s (median and best), the ratios, and for matrix-vector products GB/s as a share of
//! the triad. `--out PATH` also writes the tables as markdown; `--quick` takes fewer runs.
//!
//! ```text
//! cargo run --release -p fm-benches --features gemm-peer --bin gemm_report -- --out target/gemm_report.md
//! ```

use std::fmt::Write as _;

use fm_benches::{
    fma_peak_gflops, interleaved, pool, random_f32, triad_gbps, FmaWidth, GemmShape, Timing,
    GEMM_SHAPES, MATVEC_SHAPES,
};
use ndarray::{Array2, ArrayView2, ShapeBuilder};

/// Thread counts reported.
const THREADS: [usize; 2] = [1, 2];

/// Matrix-vector operands are cycled through this many bytes of copies, so each call streams B from
/// memory rather than from the 32 MiB L3 (as a decoder's weights would).
const MATVEC_WORKING_SET_BYTES: usize = 96 << 20;

struct Options {
    out: Option<String>,
    quick: bool,
    only: Option<String>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        out: None,
        quick: false,
        only: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => o.out = args.next(),
            "--quick" => o.quick = true,
            "--only" => o.only = args.next(),
            "--bench" => {}
            other => eprintln!("gemm_report: ignoring argument {other:?} (use --out PATH, --quick, --only SUBSTRING)"),
        }
    }
    o
}

fn main() {
    let opts = options();
    let kernel = fm_tensor::gemm::selected_kernel();
    let mut md = String::new();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let _ = writeln!(md, "# GEMM report ({})\n", date.trim());
    let _ = writeln!(
        md,
        "fm kernel: `{kernel}`. Peers: ndarray `.dot()` (matrixmultiply, default features: single-threaded, so its 2-thread \
         rows repeat one thread), `gemm` 0.19 with `x86-v4` (`Parallelism::None` / `Rayon(2)`). f32, row-major operands, \
         C = A·B (β = 0). GFLOP/s as median (best) of interleaved runs after warm-up.\n"
    );

    eprintln!("measuring FMA peak and triad bandwidth ...");
    // Ceilings are the best of several short runs, measured before and after the kernels, so a
    // busy moment of a shared machine does not lower them.
    let ceilings = Ceilings::measure();
    ceilings.note_before(&mut md);
    print!("{md}");

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| shape (M×N×K) | set | threads | fm | gemm crate | ndarray | fm/gemm | fm/ndarray | fm % peak | fm 2T/1T |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|---|---|---|");
    println!("{table}");
    for shape in GEMM_SHAPES.iter().filter(|s| {
        opts.only
            .as_ref()
            .is_none_or(|o| s.label().contains(o.as_str()))
    }) {
        let rows = bench_gemm(shape, &ceilings.peak, opts.quick);
        print!("{rows}");
        table.push_str(&rows);
    }
    md.push_str(&table);

    let mut mv = String::new();
    let _ = writeln!(
        mv,
        "\nMatrix-vector (M = 1, decoding), B cycled through {} MiB of copies so it streams from memory; \
         GB/s counts B's bytes once; % triad is against the triad at the same thread count.\n",
        MATVEC_WORKING_SET_BYTES >> 20
    );
    let _ = writeln!(mv, "| shape (1×N×K) | B layout | threads | fm GB/s | gemm crate GB/s | ndarray GB/s | fm/gemm | fm/ndarray | fm % triad | fm 2T/1T |");
    let _ = writeln!(mv, "|---|---|---|---|---|---|---|---|---|---|");
    print!("{mv}");
    for shape in MATVEC_SHAPES.iter().filter(|s| {
        opts.only
            .as_ref()
            .is_none_or(|o| s.label().contains(o.as_str()))
    }) {
        for transposed in [false, true] {
            let rows = bench_matvec(shape, transposed, &ceilings.triad, opts.quick);
            print!("{rows}");
            mv.push_str(&rows);
        }
    }
    md.push_str(&mv);

    let after = Ceilings::measure();
    let mut tail = String::new();
    let _ = writeln!(
        tail,
        "\nCeilings re-measured after the kernels: FMA peak {:.0} / {:.0} GFLOP/s (1 / 2 threads), 256-bit FMA \
         peak {:.0} (1 thread), triad {:.1} / {:.1} GB/s. The % columns above use the ceilings measured first.",
        after.peak[0], after.peak[1], after.peak_256, after.triad[0], after.triad[1]
    );
    print!("{tail}");
    md.push_str(&tail);

    if let Some(path) = opts.out {
        std::fs::write(&path, &md).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        eprintln!("wrote {path}");
    }
}

/// The machine's ceilings: FMA peak (widest vectors, 1 and 2 threads; 256-bit, 1 thread) and
/// STREAM-triad bandwidth (1 and 2 threads).
struct Ceilings {
    peak: [f64; 2],
    peak_256: f64,
    triad: [f64; 2],
}

impl Ceilings {
    fn measure() -> Ceilings {
        Ceilings {
            peak: [
                fma_peak_gflops(1, FmaWidth::Widest, 8),
                fma_peak_gflops(2, FmaWidth::Widest, 8),
            ],
            peak_256: fma_peak_gflops(1, FmaWidth::Avx2, 8),
            triad: [triad_gbps(1, 6), triad_gbps(2, 6)],
        }
    }

    fn note_before(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "Machine ceilings, measured in this run: FMA peak {:.0} GFLOP/s (1 thread), {:.0} (2 threads); the same \
             loop with 256-bit FMAs {:.0} (1 thread){}. STREAM triad {:.1} GB/s (1 thread), {:.1} (2 threads).\n",
            self.peak[0],
            self.peak[1],
            self.peak_256,
            if self.peak_256 > 0.75 * self.peak[0] {
                " — 512-bit FMAs are not faster than 256-bit ones on this machine now, so AVX-512 code can only \
                 match, not double, AVX2 code"
            } else {
                ""
            },
            self.triad[0],
            self.triad[1]
        );
    }
}

fn gflops(flops: f64, t: f64) -> f64 {
    flops / t / 1e9
}

fn fmt_rate(flops: f64, t: &Timing) -> String {
    format!(
        "{:.0} ({:.0})",
        gflops(flops, t.median),
        gflops(flops, t.best)
    )
}

/// The `gemm` crate on row-major (or, with `b_transposed`, column-major B) f32 operands.
fn gemm_crate(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, c: &mut Array2<f32>, threads: usize) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: pointers and strides describe live arrays of the stated shapes; C does not overlap.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            sc[1],
            sc[0],
            false,
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

fn runs_for(seconds_per_run: f64, quick: bool) -> (usize, usize) {
    let budget = if quick { 0.15 } else { 1.2 };
    let runs = ((budget / seconds_per_run) as usize).clamp(if quick { 3 } else { 7 }, 41);
    (if seconds_per_run > 0.05 { 1 } else { 2 }, runs)
}

fn bench_gemm(shape: &GemmShape, peak: &[f64; 2], quick: bool) -> String {
    let (m, n, k) = (shape.m, shape.n, shape.k);
    let a = Array2::from_shape_vec((m, k), random_f32(m * k, 1)).unwrap();
    let b = Array2::from_shape_vec((k, n), random_f32(k * n, 2)).unwrap();
    let mut c_fm = Array2::<f32>::zeros((m, n));
    let mut c_nd = Array2::<f32>::zeros((m, n));
    let mut c_gc = Array2::<f32>::zeros((m, n));
    let flops = shape.flops();
    let mut out = String::new();
    let mut fm_median = [0.0; 2];
    for (ti, &threads) in THREADS.iter().enumerate() {
        let (warmup, runs) = runs_for(flops / (150e9 * threads as f64), quick);
        let p = pool(threads);
        let t = p.install(|| {
            interleaved(
                warmup,
                runs,
                &mut [
                    &mut || {
                        fm_tensor::gemm::gemm(1.0, a.view(), b.view(), 0.0, c_fm.view_mut())
                            .unwrap()
                    },
                    &mut || gemm_crate(a.view(), b.view(), &mut c_gc, threads),
                    &mut || ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut c_nd),
                ],
            )
        });
        let rel = c_fm
            .iter()
            .zip(c_gc.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            rel < 1e-2 * (k as f32).sqrt(),
            "fm and gemm crate disagree on {}: {rel}",
            shape.label()
        );
        fm_median[ti] = gflops(flops, t[0].median);
        let scaling = if ti == 1 {
            format!("{:.2}×", fm_median[1] / fm_median[0])
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0}% | {} |",
            shape.label(),
            shape.group,
            threads,
            fmt_rate(flops, &t[0]),
            fmt_rate(flops, &t[1]),
            fmt_rate(flops, &t[2]),
            t[1].median / t[0].median,
            t[2].median / t[0].median,
            100.0 * fm_median[ti] / peak[ti],
            scaling
        );
    }
    out
}

fn bench_matvec(shape: &GemmShape, transposed: bool, triad: &[f64; 2], quick: bool) -> String {
    let (n, k) = (shape.n, shape.k);
    let bytes = 4 * n * k;
    let copies = MATVEC_WORKING_SET_BYTES.div_ceil(bytes).max(2);
    let x = Array2::from_shape_vec((1, k), random_f32(k, 3)).unwrap();
    // Row-major B [k, n], or B = Wᵀ for a row-major W [n, k] (the layout of a tied LM head).
    let bs: Vec<Array2<f32>> = (0..copies)
        .map(|i| {
            let data = random_f32(n * k, 10 + i as u64);
            if transposed {
                Array2::from_shape_vec((k, n).f(), data).unwrap()
            } else {
                Array2::from_shape_vec((k, n), data).unwrap()
            }
        })
        .collect();
    let mut c_fm = Array2::<f32>::zeros((1, n));
    let mut c_nd = Array2::<f32>::zeros((1, n));
    let mut c_gc = Array2::<f32>::zeros((1, n));
    let mut out = String::new();
    let mut fm_rate = [0.0; 2];
    let runs = if quick { 3 * copies } else { 24 * copies };
    for (ti, &threads) in THREADS.iter().enumerate() {
        let p = pool(threads);
        // Each contender walks the copies a third of the cycle apart from the others, so none reads a
        // copy another has just pulled into cache.
        let (mut i_fm, mut i_gc, mut i_nd) = (0, copies / 3, 2 * copies / 3);
        let t = p.install(|| {
            interleaved(
                copies,
                runs,
                &mut [
                    &mut || {
                        i_fm = (i_fm + 1) % copies;
                        fm_tensor::gemm::gemm(1.0, x.view(), bs[i_fm].view(), 0.0, c_fm.view_mut())
                            .unwrap()
                    },
                    &mut || {
                        i_gc = (i_gc + 1) % copies;
                        gemm_crate(x.view(), bs[i_gc].view(), &mut c_gc, threads)
                    },
                    &mut || {
                        i_nd = (i_nd + 1) % copies;
                        ndarray::linalg::general_mat_mul(1.0, &x, &bs[i_nd], 0.0, &mut c_nd)
                    },
                ],
            )
        });
        let gbps = |t: &Timing| {
            format!(
                "{:.1} ({:.1})",
                bytes as f64 / t.median / 1e9,
                bytes as f64 / t.best / 1e9
            )
        };
        fm_rate[ti] = bytes as f64 / t[0].median / 1e9;
        let scaling = if ti == 1 {
            format!("{:.2}×", fm_rate[1] / fm_rate[0])
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0}% | {} |",
            shape.label(),
            if transposed {
                "Wᵀ (columns contiguous)"
            } else {
                "row-major"
            },
            threads,
            gbps(&t[0]),
            gbps(&t[1]),
            gbps(&t[2]),
            t[1].median / t[0].median,
            t[2].median / t[0].median,
            100.0 * fm_rate[ti] / triad[ti],
            scaling
        );
    }
    out
}
