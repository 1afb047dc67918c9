//! Exact, order-independent summation of `f64` values.
//!
//! Floating-point addition is not associative: summing a column in one pass and summing it as two
//! shards that are then added give different last bits. Every floating-point metric in this crate
//! therefore accumulates through [`ExactSum`], a fixed-point "superaccumulator" wide enough to hold any
//! sum of `f64` values without rounding. Merging two of them is exact, so the order of updates, the
//! batch sizes and the way data was split over threads or shards cannot change a result, and
//! [`ExactSum::value`] returns the correctly rounded sum (the value Python's `math.fsum` returns).
//!
//! Use it for your own accumulators when you need the same guarantee.

/// Bits of payload per limb; the rest of each `i64` is headroom for carries.
const LIMB_BITS: u32 = 32;
const LIMB_MASK: i64 = (1 << LIMB_BITS) - 1;
/// Limb 0 holds bit 0 = 2^-1074 (the smallest subnormal). The largest finite `f64` ends at bit 2097;
/// two spare limbs above absorb the growth of sums of up to 2^64 terms.
const LIMBS: usize = 68;
/// Each add puts less than 2^32 into a limb; carries are propagated before 2^30 adds can bring a limb
/// near 2^63.
const NORMALIZE_EVERY: u32 = 1 << 30;

/// An exact sum of `f64` values: add in any order, merge any split, get the correctly rounded total.
///
/// Costs 552 bytes and a few nanoseconds per [`add`](Self::add). Infinities and NaN are kept apart and
/// summed the IEEE way, so a sum that saw `+inf` is `+inf` and one that saw `+inf` and `-inf` is NaN.
///
/// ```
/// use fm_eval::ExactSum;
///
/// let mut a = ExactSum::new();
/// for x in [1e100, 1.0, -1e100] {
///     a.add(x);
/// }
/// assert_eq!(a.value(), 1.0); // naive left-to-right summation gives 0.0
///
/// let mut left = ExactSum::new();
/// let mut right = ExactSum::new();
/// left.add(0.1);
/// right.add(0.2);
/// right.add(0.3);
/// left.merge(&right);
/// assert_eq!(left.value(), 0.6); // 0.1 + 0.2 + 0.3 in floating point is 0.6000000000000001
/// ```
#[derive(Clone, Debug)]
pub struct ExactSum {
    limbs: [i64; LIMBS],
    pending: u32,
    nonfinite: Option<f64>,
}

impl Default for ExactSum {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for ExactSum {
    /// Two sums are equal when they hold the same exact value (and the same non-finite part).
    fn eq(&self, other: &Self) -> bool {
        let a = self.normalized();
        let b = other.normalized();
        a == b
            && match (self.nonfinite, other.nonfinite) {
                (None, None) => true,
                (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                _ => false,
            }
    }
}

impl ExactSum {
    /// An empty sum (value `0.0`).
    pub fn new() -> Self {
        Self {
            limbs: [0; LIMBS],
            pending: 0,
            nonfinite: None,
        }
    }

    /// Adds `x` exactly.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let bits = x.to_bits();
        let biased_exponent = ((bits >> 52) & 0x7ff) as u32;
        let fraction = bits & ((1u64 << 52) - 1);
        if biased_exponent == 0x7ff {
            self.nonfinite = Some(self.nonfinite.map_or(x, |s| s + x));
            return;
        }
        // x = mantissa * 2^(position - 1074); subnormals share the exponent of the smallest normal.
        let (mantissa, position) = if biased_exponent == 0 {
            (fraction, 0)
        } else {
            (fraction | (1u64 << 52), biased_exponent - 1)
        };
        let limb = (position / LIMB_BITS) as usize;
        let shifted = u128::from(mantissa) << (position % LIMB_BITS);
        // Conditional negation without a branch: (v ^ m) - m is -v when m = -1 and v when m = 0.
        let sign_mask = -((bits >> 63) as i64);
        let piece = |v: u128| ((v as i64) ^ sign_mask) - sign_mask;
        self.limbs[limb] += piece(shifted & LIMB_MASK as u128);
        self.limbs[limb + 1] += piece((shifted >> LIMB_BITS) & LIMB_MASK as u128);
        self.limbs[limb + 2] += piece(shifted >> (2 * LIMB_BITS));
        self.pending += 1;
        if self.pending == NORMALIZE_EVERY {
            self.normalize();
        }
    }

    /// Adds the exact product `a * b` (both halves of a fused multiply-add split).
    #[inline]
    pub fn add_product(&mut self, a: f64, b: f64) {
        let product = a * b;
        if !product.is_finite() {
            self.add(product);
            return;
        }
        let error = a.mul_add(b, -product);
        self.add(product);
        self.add(error);
    }

    /// Adds another sum into this one, exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        self.normalize();
        let other_limbs = other.normalized();
        for (mine, theirs) in self.limbs.iter_mut().zip(other_limbs) {
            *mine += theirs;
        }
        // Two normalised limbs add up to less than 2 * 2^32: as if two values had been added.
        self.pending = 2;
        if let Some(x) = other.nonfinite {
            self.nonfinite = Some(self.nonfinite.map_or(x, |s| s + x));
        }
    }

    /// Back to an empty sum.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// True when nothing non-zero (and nothing non-finite) has been added.
    pub fn is_zero(&self) -> bool {
        self.nonfinite.is_none() && self.normalized().iter().all(|&l| l == 0)
    }

    /// The sum, correctly rounded to the nearest `f64` (ties to even). Overflows to `±inf` when the
    /// exact sum is beyond `f64::MAX`; returns the IEEE sum of the non-finite terms if any were added.
    pub fn value(&self) -> f64 {
        if let Some(x) = self.nonfinite {
            return x;
        }
        round_limbs(self.normalized())
    }

    /// The sum as `hi + lo` with `hi = value()` and `lo` the correctly rounded remainder: about 106
    /// bits of the exact sum, for computations (variances) that subtract nearly equal quantities.
    pub fn value_hi_lo(&self) -> (f64, f64) {
        let hi = self.value();
        if !hi.is_finite() {
            return (hi, 0.0);
        }
        let mut rest = self.clone();
        rest.add(-hi);
        (hi, rest.value())
    }

    /// Propagates carries so every limb but the top one is in `0..2^32`.
    fn normalize(&mut self) {
        self.limbs = self.normalized();
        self.pending = 0;
    }

    fn normalized(&self) -> [i64; LIMBS] {
        let mut limbs = self.limbs;
        if self.pending != 0 {
            propagate_carries(&mut limbs);
        }
        limbs
    }
}

fn propagate_carries(limbs: &mut [i64; LIMBS]) {
    let mut carry = 0i64;
    for limb in limbs.iter_mut().take(LIMBS - 1) {
        let v = *limb + carry;
        carry = v >> LIMB_BITS;
        *limb = v & LIMB_MASK;
    }
    limbs[LIMBS - 1] += carry;
}

/// Rounds a normalised fixed-point value (limb i weighs 2^(32 i - 1074)) to the nearest `f64`.
fn round_limbs(mut limbs: [i64; LIMBS]) -> f64 {
    let negative = limbs[LIMBS - 1] < 0;
    if negative {
        for limb in limbs.iter_mut() {
            *limb = -*limb;
        }
        propagate_carries(&mut limbs);
    }
    let Some(top) = limbs.iter().rposition(|&l| l != 0) else {
        return 0.0;
    };
    // The three highest limbs carry at least 65 significant bits; everything below only decides
    // ties (the sticky bit).
    let limb_at = |i: isize| -> u128 {
        if i < 0 {
            0
        } else {
            limbs[i as usize] as u128
        }
    };
    let top = top as isize;
    let window = (limb_at(top) << 64) | (limb_at(top - 1) << 32) | limb_at(top - 2);
    let sticky = top >= 3 && limbs[..(top - 2) as usize].iter().any(|&l| l != 0);
    let window_exponent = 32 * (top as i32 - 2) - 1074;
    let bit_length = 128 - window.leading_zeros() as i32;
    // Keep 53 bits, or fewer where the result is subnormal (its last bit cannot go below 2^-1074).
    let shift = (bit_length - 53).max(-1074 - window_exponent);
    let magnitude = if shift <= 0 {
        ldexp_exact(window as f64, window_exponent)
    } else {
        let mut kept = window >> shift;
        let rest = window & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rest > half || (rest == half && (sticky || kept & 1 == 1)) {
            kept += 1;
        }
        ldexp_exact(kept as f64, window_exponent + shift)
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// `q * 2^k` for an integer-valued `q < 2^54` whose product is representable (or overflows to inf).
fn ldexp_exact(q: f64, k: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    if k > 1023 {
        q * pow2(1023) * pow2(k - 1023)
    } else if k < -1022 {
        q * pow2(-1022) * pow2(k + 1022)
    } else {
        q * pow2(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        for &x in xs {
            s.add(x);
        }
        s.value()
    }

    #[test]
    fn cancellation_is_exact() {
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum(&[0.1; 10]), 1.0);
        assert_eq!(sum(&[1.0, -1.0]), 0.0);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[-0.5, -0.25]), -0.75);
    }

    #[test]
    fn ties_round_to_even() {
        let two53 = 9007199254740992.0;
        assert_eq!(sum(&[two53, 1.0]), two53);
        assert_eq!(sum(&[two53, 3.0]), two53 + 4.0);
        // A tiny extra term breaks the tie upwards.
        assert_eq!(sum(&[two53, 1.0, 1e-300]), two53 + 2.0);
        assert_eq!(sum(&[-two53, -1.0, -1e-300]), -(two53 + 2.0));
    }

    #[test]
    fn subnormals_and_overflow() {
        let tiny = f64::from_bits(1);
        assert_eq!(sum(&[tiny, tiny]), f64::from_bits(2));
        assert_eq!(sum(&[f64::MIN_POSITIVE, -tiny]), f64::MIN_POSITIVE - tiny);
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[f64::MAX, f64::MAX, -f64::MAX]), f64::MAX);
        assert_eq!(sum(&[-f64::MAX, -f64::MAX]), f64::NEG_INFINITY);
    }

    #[test]
    fn nonfinite_terms_follow_ieee() {
        assert_eq!(sum(&[1.0, f64::INFINITY]), f64::INFINITY);
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(sum(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn merge_equals_single_pass_and_products_are_exact() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 * 1e-3 * if i % 3 == 0 { -1e8 } else { 1.0 })
            .collect();
        let mut whole = ExactSum::new();
        for &x in &xs {
            whole.add(x);
        }
        let mut left = ExactSum::new();
        let mut right = ExactSum::new();
        for &x in &xs[..377] {
            left.add(x);
        }
        for &x in xs[377..].iter().rev() {
            right.add(x);
        }
        right.merge(&left);
        assert_eq!(right, whole);
        assert_eq!(right.value().to_bits(), whole.value().to_bits());

        let mut p = ExactSum::new();
        p.add_product(0.1, 0.1);
        p.add(-0.1 * 0.1);
        // The rounding error of 0.1 * 0.1, which fma recovers exactly.
        assert_eq!(p.value(), 0.1f64.mul_add(0.1, -(0.1 * 0.1)));
        let (hi, lo) = whole.value_hi_lo();
        assert_eq!(hi, whole.value());
        assert!(lo.abs() <= hi.abs() * f64::EPSILON);
    }

    #[test]
    fn carries_survive_many_adds() {
        let mut s = ExactSum::new();
        s.pending = NORMALIZE_EVERY - 3;
        for _ in 0..10 {
            s.add(f64::from_bits(0x000f_ffff_ffff_ffff));
        }
        assert_eq!(s.value(), 10.0 * f64::from_bits(0x000f_ffff_ffff_ffff));
    }
}
