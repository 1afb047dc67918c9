//! Seeded inverted dropout whose mask depends only on the seed, never on the thread count.
//!
//! Each element is kept with probability `1 - p` and kept values are scaled by `1 / (1 - p)`, so the
//! expected output equals the input ("inverted" dropout: nothing to rescale at inference).
//!
//! The keep/drop decision for the element at row-major position `i` is a pure function of
//! `(seed, i)`: a counter-based generator hashes the seed's key and the counter `i / 2` with the
//! SplitMix64 finaliser, and element `i` takes the low (even `i`) or high (odd `i`) 32 bits of that
//! hash; it is dropped when those bits fall below `floor(p · 2³²)` (so `p` is honoured to within
//! 2⁻³²). Any split of the elements over threads therefore produces the same bits, and a mask can be
//! rebuilt from its seed instead of being stored ([`DropoutMask::new`]).
//!
//! The mask is stored as one bit per element (`len / 8` bytes, rounded up to whole `u64` words):
//! 1/32 of an `f32` activation of the same shape.
//!
//! Seeds: one seed gives one fixed pattern over positions `0..len`, so every dropout site and step
//! needs its own seed; [`dropout_seed`] derives well-mixed seeds from a base seed and a stream number.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};

/// Above this many elements mask generation and masking use the rayon pool. Below it a call is a
/// few microseconds of hashing, less than a round of thread wake-ups.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// SplitMix64's increment (the odd integer nearest 2⁶⁴/φ): successive counters land far apart.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Separates dropout's key derivation from other users of the same seed.
const DROPOUT_DOMAIN: u64 = 0xD50F_D7A1_6C3B_2E49;

/// The SplitMix64 output function (Stafford's "Mix13"): a bijection on `u64` with full avalanche.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 64 random bits of counter `index` under `key` (they decide elements `2·index` and
/// `2·index + 1`): the `index`-th output of a SplitMix64 stream started at `key`. This is the
/// definition; [`keep_word`] computes the same values by stepping the counter state.
#[cfg(test)]
#[inline]
fn element_bits(key: u64, index: u64) -> u64 {
    mix64(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)))
}

/// Derives the seed of stream `stream` (a layer, a step, or a combination) from `base_seed`.
///
/// Nearby inputs give unrelated outputs, so `dropout_seed(seed, step * n_sites + site)` gives every
/// dropout site of every step its own mask.
///
/// ```
/// use fm_tensor::ops::dropout::dropout_seed;
/// assert_ne!(dropout_seed(42, 0), dropout_seed(42, 1));
/// assert_eq!(dropout_seed(42, 7), dropout_seed(42, 7));
/// ```
pub fn dropout_seed(base_seed: u64, stream: u64) -> u64 {
    mix64(mix64(base_seed ^ DROPOUT_DOMAIN).wrapping_add(mix64(stream.wrapping_add(GOLDEN_GAMMA))))
}

/// `floor(p · 2³²)`: 32 random bits below it mean "drop". Exact, since scaling by 2³² only changes
/// the exponent, and below 2³² for every `p < 1`.
fn drop_threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0) as u32
}

fn check_probability(op: &'static str, p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(TensorError::invalid_argument(
            op,
            format!("drop probability p must be in [0, 1), got {p}"),
        ))
    }
}

/// Which elements a dropout call kept, one bit per element, plus the `p` and seed it came from.
///
/// Memory: `8 · ceil(len / 64)` bytes ([`memory_bytes`](Self::memory_bytes)).
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutMask {
    shape: Vec<usize>,
    p: f64,
    seed: u64,
    /// Bit `i % 64` of word `i / 64` is set when row-major element `i` is kept; bits past `len` are 0.
    keep: Vec<u64>,
}

/// The keep bits of word `word` (elements `64·word .. 64·word + 64`): 32 hashes, two decisions each.
/// Bits for elements past the end are cleared by the caller.
#[inline]
fn keep_word(key: u64, threshold: u32, word: usize) -> u64 {
    // element_bits(key, c) for c = 32·word, 32·word + 1, ..., stepping the counter state directly.
    let mut state = key.wrapping_add((word as u64 * 32 + 1).wrapping_mul(GOLDEN_GAMMA));
    let mut bits = 0u64;
    for k in 0..32 {
        let h = mix64(state);
        state = state.wrapping_add(GOLDEN_GAMMA);
        let even = u64::from(h as u32 >= threshold);
        let odd = u64::from((h >> 32) as u32 >= threshold);
        bits |= (even | odd << 1) << (2 * k);
    }
    bits
}

impl DropoutMask {
    /// Builds the mask that [`dropout`] with this `p` and `seed` uses for a tensor of `shape`.
    ///
    /// Errors when `p` is not in `[0, 1)` (NaN included).
    ///
    /// ```
    /// use fm_tensor::ops::dropout::DropoutMask;
    /// let mask = DropoutMask::new(&[4, 100], 0.25, 7)?;
    /// assert_eq!(mask.len(), 400);
    /// assert_eq!(mask, DropoutMask::new(&[4, 100], 0.25, 7)?); // same seed, same mask
    /// assert_eq!(mask.memory_bytes(), 56); // 7 words of 64 bits
    /// # Ok::<(), fm_tensor::TensorError>(())
    /// ```
    pub fn new(shape: &[usize], p: f64, seed: u64) -> Result<Self> {
        check_probability("dropout", p)?;
        let len: usize = shape.iter().product();
        let words = len.div_ceil(64);
        let mut keep = vec![0u64; words];
        let count = |w: usize| (len - 64 * w).min(64);
        if p == 0.0 {
            // Every element kept: skip the hashing.
            keep.iter_mut()
                .enumerate()
                .for_each(|(w, k)| *k = u64::MAX >> (64 - count(w)));
        } else {
            let key = mix64(seed ^ DROPOUT_DOMAIN);
            let threshold = drop_threshold(p);
            let fill = |(w, k): (usize, &mut u64)| {
                *k = keep_word(key, threshold, w) & (u64::MAX >> (64 - count(w)))
            };
            if len >= PARALLEL_MIN_ELEMENTS {
                keep.par_iter_mut().enumerate().for_each(fill);
            } else {
                keep.iter_mut().enumerate().for_each(fill);
            }
        }
        Ok(DropoutMask {
            shape: shape.to_vec(),
            p,
            seed,
            keep,
        })
    }

    /// Shape of the tensor the mask applies to.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The seed the mask was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of elements covered.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the mask covers no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the element at row-major position `index` is kept; `None` past the end.
    pub fn is_kept(&self, index: usize) -> Option<bool> {
        (index < self.len()).then(|| self.keep[index / 64] >> (index % 64) & 1 == 1)
    }

    /// Number of kept elements.
    pub fn kept_count(&self) -> usize {
        self.keep.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The factor kept elements are multiplied by, `1 / (1 - p)`, rounded to `T`.
    pub fn scale<T: Element>(&self) -> T {
        T::from_f64_lossy(1.0 / (1.0 - self.p))
    }

    /// Bytes of mask storage (one bit per element, in whole `u64` words).
    pub fn memory_bytes(&self) -> usize {
        self.keep.len() * std::mem::size_of::<u64>()
    }

    /// `x * (1 / (1 - p))` where kept and `x * 0` where dropped, in standard layout.
    fn apply<T: Element>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let scale: T = self.scale();
        // factors[byte][j] is the multiplier of the element under bit j of a mask byte. Looking up
        // 8 factors per byte turns masking into a plain multiply, which vectorizes; testing bits one
        // by one does not.
        let factors: Vec<[T; 8]> = (0..256usize)
            .map(|byte| std::array::from_fn(|j| if byte >> j & 1 == 1 { scale } else { T::zero() }))
            .collect();
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard layout");
        let mut out = crate::buffers::vec_for_overwrite(src.len());
        let mask_chunk = |((dst, src), &bits): ((&mut [T], &[T]), &u64)| {
            // A full word has no tail byte: its index 8 shifts every bit out (checked_shr gives None).
            let factors_of = |byte: usize| {
                &factors[bits.checked_shr(8 * byte as u32).unwrap_or(0) as usize & 0xFF]
            };
            let full = dst.len() / 8;
            let mut dst8 = dst.chunks_exact_mut(8);
            let mut src8 = src.chunks_exact(8);
            // Whole groups of 8 have a known length, so the inner loop compiles to vector code.
            for (i, (d8, s8)) in (&mut dst8).zip(&mut src8).enumerate() {
                for ((d, &s), &m) in d8.iter_mut().zip(s8).zip(factors_of(i)) {
                    *d = s * m;
                }
            }
            let tail_factors = factors_of(full);
            for ((d, &s), &m) in dst8
                .into_remainder()
                .iter_mut()
                .zip(src8.remainder())
                .zip(tail_factors)
            {
                *d = s * m;
            }
        };
        if src.len() >= PARALLEL_MIN_ELEMENTS {
            out.par_chunks_mut(64)
                .zip(src.par_chunks(64))
                .zip(self.keep.par_iter())
                .for_each(mask_chunk);
        } else {
            out.chunks_mut(64)
                .zip(src.chunks(64))
                .zip(self.keep.iter())
                .for_each(mask_chunk);
        }
        ArrayD::from_shape_vec(IxDyn(&self.shape), out).expect("length matches shape")
    }
}

/// Inverted dropout of `x` with drop probability `p`, seeded by `seed`: returns the output and the
/// mask its backward needs.
///
/// Kept elements are multiplied by `1 / (1 - p)` (rounded to `T`), dropped ones by zero (so a NaN or
/// infinity stays visible as NaN, as in PyTorch).
/// `p = 0` returns a copy of `x` with an all-kept mask. Elements are numbered in row-major order of
/// `x`'s logical shape, whatever its memory layout, and the mask depends only on `(shape, p, seed)`.
/// The output is a fresh standard-layout array.
///
/// Errors when `p` is not in `[0, 1)` (NaN included).
///
/// ```
/// use ndarray::{Array, IxDyn};
/// use fm_tensor::ops::dropout::{dropout, dropout_backward};
/// let x = Array::<f32, _>::ones(IxDyn(&[8, 128]));
/// let (y, mask) = dropout(x.view(), 0.5, 1234)?;
/// // Every output is 0 or 2, and the kept ones are the mask's.
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// assert_eq!(y.iter().filter(|&&v| v == 2.0).count(), mask.kept_count());
/// let dx = dropout_backward(x.view(), &mask)?;
/// assert_eq!(dx, y); // same mask, same scale
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn dropout<T: Element>(
    x: ArrayViewD<'_, T>,
    p: f64,
    seed: u64,
) -> Result<(ArrayD<T>, DropoutMask)> {
    let mask = DropoutMask::new(x.shape(), p, seed)?;
    let y = mask.apply(x);
    Ok((y, mask))
}

/// Gradient of [`dropout`]: `grad * (1 / (1 - p))` where the mask kept the element, `grad * 0`
/// elsewhere.
///
/// Errors when `grad`'s shape differs from the mask's (naming both).
pub fn dropout_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    mask: &DropoutMask,
) -> Result<ArrayD<T>> {
    if grad.shape() != mask.shape() {
        return Err(TensorError::shape_mismatch(
            "dropout_backward",
            grad.shape(),
            mask.shape(),
            "the gradient must have the mask's shape",
        ));
    }
    Ok(mask.apply(grad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::shape::gradcheck::{assert_gradient, random_array};
    use ndarray::Array;
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::SeedableRng;

    #[test]
    fn splitmix_matches_reference_values() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        assert_eq!(element_bits(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(element_bits(0, 1), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(element_bits(0, 2), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn threshold_is_floor_of_p_times_2_pow_32() {
        assert_eq!(drop_threshold(0.0), 0);
        assert_eq!(drop_threshold(0.5), 1 << 31);
        assert_eq!(drop_threshold(0.1), 429_496_729);
        assert_eq!(drop_threshold(1.0 - f64::EPSILON / 2.0), u32::MAX);
    }

    #[test]
    fn zero_probability_is_identity() {
        let x = Array::from_shape_fn(IxDyn(&[3, 70]), |i| (i[0] * 70 + i[1]) as f32 - 50.0);
        let (y, mask) = dropout(x.view(), 0.0, 99).unwrap();
        assert_eq!(y, x);
        assert_eq!(mask.kept_count(), 210);
        assert_eq!(mask.is_kept(209), Some(true));
        assert_eq!(mask.is_kept(210), None);
        assert_eq!(dropout_backward(x.view(), &mask).unwrap(), x);
    }

    #[test]
    fn hand_checked_values_and_scaling() {
        let x = Array::from_shape_fn(IxDyn(&[5, 13]), |i| 1.0 + (i[0] * 13 + i[1]) as f64);
        let (y, mask) = dropout(x.view(), 0.75, 5).unwrap();
        assert_eq!(mask.scale::<f64>(), 4.0);
        for (i, (&xv, &yv)) in x.iter().zip(y.iter()).enumerate() {
            let expected = if mask.is_kept(i).unwrap() {
                4.0 * xv
            } else {
                0.0
            };
            assert_eq!(yv, expected);
            // The decision is the documented function of (seed, position).
            let key = mix64(5 ^ DROPOUT_DOMAIN);
            let h = element_bits(key, i as u64 / 2);
            let half = if i % 2 == 0 { h & 0xFFFF_FFFF } else { h >> 32 };
            let kept = half >= 3 << 30; // 0.75 · 2³²
            assert_eq!(mask.is_kept(i), Some(kept));
        }
        // Dropped positions are x·0: a non-finite input stays visible as NaN (as in PyTorch).
        let z =
            Array::from_shape_vec(IxDyn(&[4]), vec![f32::NAN, f32::INFINITY, -1.0, 1.0]).unwrap();
        let (y, mask) = dropout(z.view(), 0.5, 1).unwrap();
        assert!(y[[0]].is_nan());
        assert_eq!(y[[1]].is_nan(), !mask.is_kept(1).unwrap());
        assert_eq!(y[[3]], if mask.is_kept(3).unwrap() { 2.0 } else { 0.0 });
    }

    #[test]
    fn statistics_match_p_and_preserve_the_mean() {
        let n = 100_000;
        let x = Array::<f64, _>::ones(IxDyn(&[n]));
        for (k, p) in [0.1, 0.5, 0.9].into_iter().enumerate() {
            let (y, mask) = dropout(x.view(), p, 1000 + k as u64).unwrap();
            let dropped = (n - mask.kept_count()) as f64 / n as f64;
            // Six standard deviations of a binomial proportion.
            let tol = 6.0 * (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (dropped - p).abs() < tol,
                "p {p}: dropped fraction {dropped}"
            );
            let mean = y.sum() / n as f64;
            let mean_tol = 6.0 * (p / (1.0 - p) / n as f64).sqrt();
            assert!((mean - 1.0).abs() < mean_tol, "p {p}: mean {mean}");
        }
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let shape = [300, 100];
        let a = DropoutMask::new(&shape, 0.5, 17).unwrap();
        assert_eq!(a, DropoutMask::new(&shape, 0.5, 17).unwrap());
        // Adjacent seeds: about half the decisions agree, as for independent masks.
        for other in [18, 16, 17 ^ (1 << 63)] {
            let b = DropoutMask::new(&shape, 0.5, other).unwrap();
            let agree = (0..a.len())
                .filter(|&i| a.is_kept(i) == b.is_kept(i))
                .count() as f64
                / a.len() as f64;
            assert!(
                (agree - 0.5).abs() < 0.02,
                "seed {other}: agreement {agree}"
            );
        }
        assert_ne!(dropout_seed(1, 2), dropout_seed(2, 1));
        let s: Vec<u64> = (0..4).map(|k| dropout_seed(3, k)).collect();
        assert!(s
            .iter()
            .enumerate()
            .all(|(i, a)| s[i + 1..].iter().all(|b| a != b)));
    }

    #[test]
    fn mask_is_identical_for_1_and_2_threads() {
        let x = Array::from_shape_fn(IxDyn(&[257, 301]), |i| (i[0] as f32).sin() + i[1] as f32);
        assert!(x.len() >= PARALLEL_MIN_ELEMENTS);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (y, mask) = dropout(x.view(), 0.3, 77).unwrap();
                let dx = dropout_backward(x.view(), &mask).unwrap();
                (y, mask, dx)
            })
        };
        let (y1, m1, d1) = run(1);
        let (y2, m2, d2) = run(2);
        assert_eq!(m1, m2);
        let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y1), bits(&y2));
        assert_eq!(bits(&d1), bits(&d2));
        // The parallel path agrees with the serial rule on a small prefix-shaped tensor: the mask of
        // the first 1000 elements does not depend on the tensor's total length.
        let small = DropoutMask::new(&[1000], 0.3, 77).unwrap();
        assert!((0..1000).all(|i| small.is_kept(i) == m1.is_kept(i)));
    }

    #[test]
    fn layout_does_not_change_the_mask() {
        let x = Array::from_shape_fn(IxDyn(&[6, 9]), |i| (i[0] * 9 + i[1]) as f64);
        let t = x.view().reversed_axes();
        let (a, _) = dropout(t.clone(), 0.4, 3).unwrap();
        let (b, _) = dropout(t.as_standard_layout().view(), 0.4, 3).unwrap();
        assert_eq!(a, b);
        assert!(a.is_standard_layout());
    }

    #[test]
    fn invalid_p_and_shape_errors() {
        let x = Array::<f32, _>::ones(IxDyn(&[2, 3]));
        for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let e = dropout(x.view(), p, 0).unwrap_err().to_string();
            assert!(
                e.contains("dropout") && e.contains("[0, 1)") && e.contains(&format!("{p}")),
                "{e}"
            );
        }
        let (_, mask) = dropout(x.view(), 0.5, 0).unwrap();
        let g = Array::<f32, _>::ones(IxDyn(&[3, 2]));
        let e = dropout_backward(g.view(), &mask).unwrap_err().to_string();
        assert!(
            e.contains("dropout_backward") && e.contains("[3, 2]") && e.contains("[2, 3]"),
            "{e}"
        );
    }

    #[test]
    fn empty_and_scalar_tensors() {
        let x = Array::<f32, _>::zeros(IxDyn(&[0, 4]));
        let (y, mask) = dropout(x.view(), 0.5, 1).unwrap();
        assert_eq!(y.shape(), &[0, 4]);
        assert!(mask.is_empty());
        assert_eq!(mask.memory_bytes(), 0);
        assert_eq!(dropout_backward(y.view(), &mask).unwrap().shape(), &[0, 4]);
        let s = Array::from_elem(IxDyn(&[]), 3.0f64);
        let (y, mask) = dropout(s.view(), 0.5, 1).unwrap();
        assert_eq!(mask.len(), 1);
        assert_eq!(y[[]], if mask.is_kept(0).unwrap() { 6.0 } else { 0.0 });
    }

    #[test]
    fn memory_is_one_bit_per_element() {
        for (n, bytes) in [(1, 8), (64, 8), (65, 16), (100_000, 12_504)] {
            assert_eq!(
                DropoutMask::new(&[n], 0.1, 0).unwrap().memory_bytes(),
                bytes
            );
        }
    }

    #[test]
    fn gradient_check() {
        let mut rng = StdRng::seed_from_u64(21);
        for (k, shape) in [vec![3, 1, 5], vec![1, 70], vec![4]]
            .into_iter()
            .enumerate()
        {
            let x = random_array(&mut rng, &shape);
            let (y, mask) = dropout(x.view(), 0.3, k as u64).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = dropout_backward(w.view(), &mask).unwrap();
            assert_gradient(
                "dropout",
                &x,
                &w,
                |x| dropout(x.view(), 0.3, k as u64).unwrap().0,
                &g,
            );
        }
    }
}
