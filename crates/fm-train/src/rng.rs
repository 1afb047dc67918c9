//! Seeds and random numbers that depend only on a base seed and counters, so a resumed run draws the
//! same numbers as one that never stopped.
//!
//! The trainer keeps no hidden generator state: each step's seed is a pure function of the run's seed,
//! the step and the micro-batch ([`step_seed`]), and a loader's shuffle is a pure function of its seed
//! and the epoch ([`epoch_seed`]). Saving the counters is therefore saving the RNG state. For numbers
//! drawn inside a step, [`SplitMix64`] is a small generator whose whole state is one `u64`.

use serde::{Deserialize, Serialize};

/// SplitMix64's increment (the odd integer nearest 2⁶⁴/φ).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Domain constants keep the step seeds and the shuffle seeds of one base seed unrelated.
const STEP_DOMAIN: u64 = 0x5DEE_CE66_D1A4_F87B;
const EPOCH_DOMAIN: u64 = 0xA076_1D64_78BD_642F;

/// SplitMix64's output function: a bijection on `u64` with full avalanche.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of micro-batch `micro` of step `step` (for dropout masks and other per-step noise).
///
/// ```
/// use fm_train::rng::step_seed;
/// assert_eq!(step_seed(7, 10, 0), step_seed(7, 10, 0));
/// assert_ne!(step_seed(7, 10, 0), step_seed(7, 10, 1));
/// assert_ne!(step_seed(7, 10, 0), step_seed(7, 11, 0));
/// ```
pub fn step_seed(seed: u64, step: u64, micro: u64) -> u64 {
    let key = mix64(seed ^ STEP_DOMAIN);
    mix64(key.wrapping_add(mix64(step.wrapping_add(GOLDEN_GAMMA)) ^ micro.rotate_left(32)))
}

/// The seed of a loader's shuffle for `epoch`.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    mix64(mix64(seed ^ EPOCH_DOMAIN).wrapping_add(epoch.wrapping_mul(GOLDEN_GAMMA)))
}

/// A SplitMix64 generator (Steele, Lea and Flood 2014): fast, 64 bits of state, serialisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    /// The whole state.
    pub state: u64,
}

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), by Lemire's multiply-and-reject, so there is
    /// no modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0, "SplitMix64::below needs a positive bound");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform `f64` in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = rng.below(7);
            assert!(v < 7);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1000; 800 is more than six standard deviations away.
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let shuffled = |seed| {
            let mut v: Vec<u32> = (0..50).collect();
            SplitMix64::new(seed).shuffle(&mut v);
            v
        };
        let a = shuffled(1);
        assert_eq!(a, shuffled(1));
        assert_ne!(a, shuffled(2));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn seeds_differ_across_steps_epochs_and_domains() {
        assert_ne!(step_seed(1, 0, 0), epoch_seed(1, 0));
        assert_ne!(epoch_seed(1, 0), epoch_seed(1, 1));
        assert_ne!(epoch_seed(1, 0), epoch_seed(2, 0));
        let f = SplitMix64::new(9).next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
