//! Train/validation/test splits by seed.
//!
//! The indices `0..len` are shuffled by the seed (SplitMix64 + Fisher–Yates, fixed by definition,
//! so a seed gives the same split everywhere); validation takes the first `round(len * validation)`
//! of the shuffled order, test the next `round(len * test)`, train the rest. Each list is returned
//! sorted, so reads from a memory-mapped shard stay in file order.

use super::rng::SplitMix64;
use crate::error::{DataError, Result};

/// The fractions of a three-way split; they must be in `[0, 1]` and sum to 1 (within 1e-9).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitFractions {
    train: f64,
    validation: f64,
    test: f64,
}

impl SplitFractions {
    /// Checked fractions.
    pub fn new(train: f64, validation: f64, test: f64) -> Result<Self> {
        let all = [train, validation, test];
        if all.iter().any(|f| !(0.0..=1.0).contains(f)) {
            return Err(DataError::config(
                "SplitFractions",
                format!("fractions must be in [0, 1], got {train}, {validation}, {test}"),
            ));
        }
        let sum: f64 = all.iter().sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(DataError::config(
                "SplitFractions",
                format!("fractions must sum to 1, got {train} + {validation} + {test} = {sum}"),
            ));
        }
        Ok(SplitFractions {
            train,
            validation,
            test,
        })
    }

    /// Train fraction.
    pub fn train(&self) -> f64 {
        self.train
    }

    /// Validation fraction.
    pub fn validation(&self) -> f64 {
        self.validation
    }

    /// Test fraction.
    pub fn test(&self) -> f64 {
        self.test
    }
}

/// The indices of each part, each sorted; together they are `0..len`, each index once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    /// Training indices.
    pub train: Vec<usize>,
    /// Validation indices.
    pub validation: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

/// Splits `0..len` by `seed` (see the module docs).
pub fn split_indices(len: usize, fractions: SplitFractions, seed: u64) -> Result<Splits> {
    let mut order: Vec<usize> = (0..len).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    let n_validation = ((len as f64) * fractions.validation).round() as usize;
    let n_validation = n_validation.min(len);
    let n_test = (((len as f64) * fractions.test).round() as usize).min(len - n_validation);
    let mut validation = order[..n_validation].to_vec();
    let mut test = order[n_validation..n_validation + n_test].to_vec();
    let mut train = order[n_validation + n_test..].to_vec();
    validation.sort_unstable();
    test.sort_unstable();
    train.sort_unstable();
    Ok(Splits {
        train,
        validation,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_have_the_rounded_sizes_and_cover_everything_once() {
        let s = split_indices(1000, SplitFractions::new(0.8, 0.15, 0.05).unwrap(), 3).unwrap();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (800, 150, 50)
        );
        let mut all: Vec<usize> = [s.train, s.validation, s.test].concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let f = SplitFractions::new(0.5, 0.25, 0.25).unwrap();
        let a = split_indices(200, f, 11).unwrap();
        assert_eq!(a, split_indices(200, f, 11).unwrap());
        assert_ne!(a, split_indices(200, f, 12).unwrap());
    }

    #[test]
    fn tiny_and_empty_inputs() {
        let f = SplitFractions::new(0.0, 0.5, 0.5).unwrap();
        let s = split_indices(3, f, 0).unwrap();
        // round(1.5) = 2 to validation, the 1 left to test.
        assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (0, 2, 1));
        let s = split_indices(0, f, 0).unwrap();
        assert!(s.train.is_empty() && s.validation.is_empty() && s.test.is_empty());
    }

    #[test]
    fn bad_fractions_are_refused() {
        assert!(SplitFractions::new(0.8, 0.1, 0.2).is_err());
        assert!(SplitFractions::new(1.2, -0.1, -0.1).is_err());
        assert!(SplitFractions::new(f64::NAN, 0.5, 0.5).is_err());
        let err = SplitFractions::new(0.5, 0.2, 0.2).unwrap_err();
        assert!(err.to_string().contains("sum to 1"), "{err}");
    }
}
