//! Test support for the kernels: seeded random arrays, the finite-difference gradient check and the
//! "any thread count gives the same bits" check.

use ndarray::ArrayD;
use ndarray_rand::rand::rngs::SmallRng;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::Uniform;
use ndarray_rand::RandomExt;

use crate::element::Element;

/// A seeded array of `shape` with entries uniform in [-2, 2).
pub(crate) fn random_array<T: Element>(shape: &[usize], seed: u64) -> ArrayD<T> {
    random_in::<T>(shape, seed, -2.0, 2.0)
}

/// A seeded array of `shape` with entries uniform in [lo, hi).
pub(crate) fn random_in<T: Element>(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<T> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let uniform = Uniform::new(lo, hi).expect("valid range");
    ArrayD::<f64>::random_using(shape.to_vec(), uniform, &mut rng).mapv(T::from_f64_lossy)
}

/// Σ w·y: the scalar loss whose gradient with respect to `y` is `w`.
pub(crate) fn weighted_sum(y: &ArrayD<f64>, w: &ArrayD<f64>) -> f64 {
    assert_eq!(y.shape(), w.shape());
    y.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// Compares `analytic` (the gradient of `loss` at `x`) with central differences (step 1e-6): the
/// relative error, with denominator max(1, |analytic|, |numeric|), must stay under 1e-6.
pub(crate) fn check_gradient(
    what: &str,
    x: &ArrayD<f64>,
    analytic: &ArrayD<f64>,
    loss: impl Fn(&ArrayD<f64>) -> f64,
) {
    const STEP: f64 = 1e-6;
    assert_eq!(x.shape(), analytic.shape(), "{what}: gradient shape");
    let mut probe = x.clone();
    for (i, &a) in analytic.iter().enumerate() {
        let original = probe.as_slice().unwrap()[i];
        probe.as_slice_mut().unwrap()[i] = original + STEP;
        let up = loss(&probe);
        probe.as_slice_mut().unwrap()[i] = original - STEP;
        let down = loss(&probe);
        probe.as_slice_mut().unwrap()[i] = original;
        let numeric = (up - down) / (2.0 * STEP);
        let error = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
        assert!(
            error < 1e-6,
            "{what}: element {i} of shape {:?}: analytic {a}, numeric {numeric}, relative error {error:e}",
            x.shape()
        );
    }
}

/// Values whose exact bits can be compared.
pub(crate) trait ToBits {
    /// Every element's bit pattern (f32 widened to f64, which keeps distinct values distinct).
    fn to_bits(&self) -> Vec<u64>;
}

impl<T: Element> ToBits for ArrayD<T> {
    fn to_bits(&self) -> Vec<u64> {
        self.iter().map(|v| v.to_f64_lossless().to_bits()).collect()
    }
}

impl<A: ToBits, B: ToBits> ToBits for (A, B) {
    fn to_bits(&self) -> Vec<u64> {
        let mut bits = self.0.to_bits();
        bits.extend(self.1.to_bits());
        bits
    }
}

impl<A: ToBits, B: ToBits, C: ToBits> ToBits for (A, B, C) {
    fn to_bits(&self) -> Vec<u64> {
        let mut bits = (&self.0, &self.1).to_bits();
        bits.extend(self.2.to_bits());
        bits
    }
}

impl<A: ToBits> ToBits for &A {
    fn to_bits(&self) -> Vec<u64> {
        (*self).to_bits()
    }
}

impl<T: Element> ToBits for ndarray::Array1<T> {
    fn to_bits(&self) -> Vec<u64> {
        self.iter().map(|v| v.to_f64_lossless().to_bits()).collect()
    }
}

/// Runs `compute` in pools of 1, 2 and 3 threads and asserts the results are bitwise identical.
pub(crate) fn assert_bitwise_eq_across_threads<R: ToBits>(compute: impl Fn() -> R + Send + Sync) {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| compute().to_bits())
    };
    let one = run(1);
    assert!(
        !one.is_empty(),
        "the thread-count check needs a non-empty result"
    );
    for threads in [2, 3] {
        assert!(
            run(threads) == one,
            "result with {threads} threads differs from 1 thread"
        );
    }
}
