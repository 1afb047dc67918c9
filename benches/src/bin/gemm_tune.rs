//! Scratch tuning harness (not part of the report): best-of-N GFLOP/s of fm vs the gemm crate.
use fm_benches::{pool, random_f32};

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}
/// CPU time of this thread (immune to time slicing on a shared machine), or wall time with FM_WALL.
fn now(wall: bool) -> f64 {
    if wall {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(3, &mut ts) };
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}
fn time_once(f: impl FnOnce()) -> f64 {
    let wall = std::env::var("FM_WALL").is_ok();
    let t = now(wall);
    f();
    now(wall) - t
}
use ndarray::Array2;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("peak") {
        // 3 × 20M iterations × 16 chains × 32 flops on the pool thread; CPU time of *this* thread
        // does not see the pool thread, so time a direct call instead.
        let t = time_once(|| {
            std::hint::black_box(fm_benches::peak_direct(20_000_000));
        });
        println!(
            "peak (cpu time) {:.1} GF/s",
            20_000_000.0 * 16.0 * 32.0 / t / 1e9
        );
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("mv") {
        let a: Vec<usize> = std::env::args()
            .skip(2)
            .map(|s| s.parse().unwrap())
            .collect();
        matvec(a[0], a[1], a[2] == 1, a[3]);
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (m, n, k, threads, reps) = (
        args[0],
        args[1],
        args[2],
        args[3],
        args.get(4).copied().unwrap_or(20),
    );
    let mode = args.get(5).copied().unwrap_or(0);
    let a = Array2::from_shape_vec((m, k), random_f32(m * k, 1)).unwrap();
    let b = Array2::from_shape_vec((k, n), random_f32(k * n, 2)).unwrap();
    let mut c = Array2::<f32>::zeros((m, n));
    let mut c2 = Array2::<f32>::zeros((m, n));
    let p = pool(threads);
    let flops = 2.0 * (m * n * k) as f64;
    let (mut best_fm, mut best_gc) = (f64::INFINITY, f64::INFINITY);
    p.install(|| {
        for _ in 0..reps {
            if mode != 2 {
                best_fm = best_fm.min(time_once(|| fm_call(a.view(), b.view(), c.view_mut())));
            }
            let par = if threads == 1 {
                gemm::Parallelism::None
            } else {
                gemm::Parallelism::Rayon(threads)
            };
            if mode != 1 {
                best_gc = best_gc.min(time_once(|| unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c2.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        par,
                    )
                }));
            }
        }
    });
    println!(
        "{m}x{n}x{k} t{threads}: fm {:.1} GF/s, gemm {:.1} GF/s, ratio {:.3}",
        flops / best_fm / 1e9,
        flops / best_gc / 1e9,
        best_gc / best_fm
    );
}

#[allow(dead_code)]
fn peak_cpu_time() {
    let t = time_once(|| {
        std::hint::black_box(fm_benches::fma_peak_gflops(1));
    });
    println!("peak call cpu time {t:.3}");
}

fn fm_call(
    a: ndarray::ArrayView2<'_, f32>,
    b: ndarray::ArrayView2<'_, f32>,
    c: ndarray::ArrayViewMut2<'_, f32>,
) {
    use fm_tensor::gemm::GemmKernel;
    let kernel = match std::env::var("FM_KERNEL").as_deref() {
        Ok("avx2") => GemmKernel::Avx2,
        Ok("portable") => GemmKernel::Portable,
        Ok("scalar") => GemmKernel::Scalar,
        _ => fm_tensor::gemm::selected_kernel(),
    };
    fm_tensor::gemm::gemm_with_kernel(kernel, 1.0, a, b, 0.0, c).unwrap()
}

fn matvec(n: usize, k: usize, transposed: bool, threads: usize) {
    use ndarray::ShapeBuilder;
    let bytes = 4 * n * k;
    let copies = (96usize << 20).div_ceil(bytes).max(2);
    let x = Array2::from_shape_vec((1, k), random_f32(k, 3)).unwrap();
    let bs: Vec<Array2<f32>> = (0..copies)
        .map(|i| {
            let d = random_f32(n * k, 10 + i as u64);
            if transposed {
                Array2::from_shape_vec((k, n).f(), d).unwrap()
            } else {
                Array2::from_shape_vec((k, n), d).unwrap()
            }
        })
        .collect();
    let mut c = Array2::<f32>::zeros((1, n));
    let mut c2 = Array2::<f32>::zeros((1, n));
    let p = pool(threads);
    let (mut t_fm, mut t_gc) = (Vec::new(), Vec::new());
    p.install(|| {
        for r in 0..10 * copies {
            let i = r % copies;
            let j = (r + copies / 2) % copies;
            let s = std::time::Instant::now();
            fm_tensor::gemm::gemm(1.0, x.view(), bs[i].view(), 0.0, c.view_mut()).unwrap();
            t_fm.push(s.elapsed().as_secs_f64());
            let par = if threads == 1 {
                gemm::Parallelism::None
            } else {
                gemm::Parallelism::Rayon(threads)
            };
            let b = &bs[j];
            let s = std::time::Instant::now();
            unsafe {
                gemm::gemm(
                    1,
                    n,
                    k,
                    c2.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    b.strides()[1],
                    b.strides()[0],
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    par,
                )
            };
            t_gc.push(s.elapsed().as_secs_f64());
        }
    });
    t_fm.sort_by(f64::total_cmp);
    t_gc.sort_by(f64::total_cmp);
    let (m1, m2) = (t_fm[t_fm.len() / 2], t_gc[t_gc.len() / 2]);
    println!(
        "mv 1x{n}x{k} {} t{threads}: fm {:.1} GB/s, gemm {:.1} GB/s, ratio {:.2}",
        if transposed { "Wt" } else { "row" },
        bytes as f64 / m1 / 1e9,
        bytes as f64 / m2 / 1e9,
        m2 / m1
    );
}
