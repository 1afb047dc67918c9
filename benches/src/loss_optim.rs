//! Helpers for the fm-loss and fm-optim benchmarks and reports: a STREAM-triad bandwidth probe, a
//! timing loop reporting median and minimum, and the unfused cross-entropy baseline.

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rayon::prelude::*;

/// Median and minimum of timed runs, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Median over the timed runs.
    pub median: f64,
    /// Fastest timed run.
    pub min: f64,
}

/// Runs `f` `warmup` times untimed, then `reps` times timed.
pub fn time(warmup: usize, reps: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Timing {
        median: times[times.len() / 2],
        min: times[0],
    }
}

/// STREAM triad `a = b + s·c` on `f32` arrays in the current rayon pool.
pub struct Triad {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Triad {
    /// Arrays of `len` elements each (use well above the last-level cache: 32 Mi elements = 128 MiB
    /// per array).
    pub fn new(len: usize) -> Self {
        Triad {
            a: vec![0.0; len],
            b: vec![1.0; len],
            c: vec![2.0; len],
        }
    }

    /// One pass.
    pub fn run(&mut self) {
        const CHUNK: usize = 1 << 16;
        let s = 3.0f32;
        self.a
            .par_chunks_mut(CHUNK)
            .zip(self.b.par_chunks(CHUNK))
            .zip(self.c.par_chunks(CHUNK))
            .for_each(|((a, b), c)| {
                for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + s * c;
                }
            });
    }

    /// Bytes one pass moves by STREAM's convention (two reads, one write: 12 per `f32` element; the
    /// write-allocate read is not counted).
    pub fn bytes(&self) -> f64 {
        12.0 * self.a.len() as f64
    }

    /// Median bandwidth in GB/s (and the best) over `reps` passes after two warm-up passes.
    pub fn measure(&mut self, reps: usize) -> (f64, f64) {
        let bytes = self.bytes();
        let t = time(2, reps, || self.run());
        (bytes / t.median / 1e9, bytes / t.min / 1e9)
    }
}

/// `exp(x)` for `x <= 0` by range reduction and a degree-5 polynomial, branch-free (the same method as
/// fm-loss's row kernels, compiled here without run-time ISA dispatch): lets the unfused baseline use
/// a vectorisable exp, so that its comparison with the fused kernel measures fusion, not libm.
#[inline(always)]
pub fn fast_exp_nonpositive(x: f32) -> f32 {
    let x = if x < -88.0 { -88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n_float = t - 12_582_912.0;
    let n = t.to_bits() as i32 - 12_582_912.0f32.to_bits() as i32;
    let r = x - n_float * 0.693_359_4 - n_float * -2.121_944_4e-4;
    let p = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    (p * (r * r) + r + 1.0) * f32::from_bits(((n + 127).max(0) as u32) << 23)
}

/// Cross-entropy (mean over rows) and its gradient the unfused way: one separate, row-parallel
/// pass per op — max, subtract, exp, sum/log, subtract (log-softmax), gather, and for the backward
/// a scatter, exp (softmax), row sum and combine — each writing a fresh `[N, V]` array, as a chain of
/// tensor ops on a tape does. `exp` is applied to non-positive arguments only.
pub fn unfused_cross_entropy(
    logits: ArrayView2<'_, f32>,
    targets: &[usize],
    exp: impl Fn(f32) -> f32 + Sync + Copy,
) -> (f32, Array2<f32>) {
    let mut workspace = UnfusedCrossEntropy::new(logits.nrows(), logits.ncols());
    let loss = workspace.run(logits, targets, exp);
    (loss, workspace.grad)
}

/// The unfused chain of [`unfused_cross_entropy`] with its five `[N, V]` intermediates and the
/// gradient allocated once and reused: the same passes without the cost of fresh arrays (page
/// faults, zeroing), i.e. the strongest unfused baseline.
pub struct UnfusedCrossEntropy {
    shifted: Array2<f32>,
    exp_shifted: Array2<f32>,
    log_probs: Array2<f32>,
    grad_lp: Array2<f32>,
    softmax: Array2<f32>,
    /// The gradient of the last [`run`](Self::run).
    pub grad: Array2<f32>,
}

impl UnfusedCrossEntropy {
    /// Buffers for `[rows, classes]` logits.
    pub fn new(rows: usize, classes: usize) -> Self {
        let z = || Array2::<f32>::zeros((rows, classes));
        UnfusedCrossEntropy {
            shifted: z(),
            exp_shifted: z(),
            log_probs: z(),
            grad_lp: z(),
            softmax: z(),
            grad: z(),
        }
    }

    /// Loss (mean) and, in `self.grad`, its gradient.
    pub fn run(
        &mut self,
        logits: ArrayView2<'_, f32>,
        targets: &[usize],
        exp: impl Fn(f32) -> f32 + Sync + Copy,
    ) -> f32 {
        let n = logits.nrows();
        let max: Array1<f32> =
            par_rows_map(logits, |r| r.fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
        Zip::from(self.shifted.rows_mut())
            .and(logits.rows())
            .and(&max)
            .par_for_each(|mut s, x, &m| s.zip_mut_with(&x, |s, &x| *s = x - m));
        Zip::from(&mut self.exp_shifted)
            .and(&self.shifted)
            .par_for_each(|e, &s| *e = exp(s));
        let lse: Array1<f32> = par_rows_map(self.exp_shifted.view(), |r| r.sum().ln());
        Zip::from(self.log_probs.rows_mut())
            .and(self.shifted.rows())
            .and(&lse)
            .par_for_each(|mut lp, s, &l| lp.zip_mut_with(&s, |lp, &s| *lp = s - l));
        let picked: f32 = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| self.log_probs[[i, t]])
            .sum();
        // Backward: d log_softmax = scatter(−1/N); dx = g − softmax · Σ g.
        self.grad_lp.par_mapv_inplace(|_| 0.0);
        for (i, &t) in targets.iter().enumerate() {
            self.grad_lp[[i, t]] = -1.0 / n as f32;
        }
        Zip::from(&mut self.softmax)
            .and(&self.log_probs)
            .par_for_each(|sm, &lp| *sm = exp(lp));
        let row_sums: Array1<f32> = par_rows_map(self.grad_lp.view(), |r| r.sum());
        Zip::from(self.grad.rows_mut())
            .and(self.grad_lp.rows())
            .and(self.softmax.rows())
            .and(&row_sums)
            .par_for_each(|mut g, gl, sm, &s| {
                Zip::from(&mut g)
                    .and(&gl)
                    .and(&sm)
                    .for_each(|g, &gl, &sm| *g = gl - sm * s)
            });
        -picked / n as f32
    }
}

fn par_rows_map(
    a: ArrayView2<'_, f32>,
    f: impl Fn(ndarray::ArrayView1<'_, f32>) -> f32 + Sync + Send,
) -> Array1<f32> {
    let values: Vec<f32> = a.axis_iter(Axis(0)).into_par_iter().map(f).collect();
    Array1::from(values)
}
