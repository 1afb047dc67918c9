//! Fixed sinusoidal position encodings, as in "Attention Is All You Need" (Vaswani et al., 2017, §3.5):
//!
//! ```text
//! PE(pos, 2i)     = sin(pos / base^(2i / d))
//! PE(pos, 2i + 1) = cos(pos / base^(2i / d))        base = 10000
//! ```
//!
//! Values are computed in f64 and rounded once, so the f32 table is the correctly rounded formula. An odd
//! `d` is allowed: the last column is a sine whose partner cosine would fall past the end.

use fm_tensor::autograd::Var;
use fm_tensor::Element;
use ndarray::Array2;

use crate::error::{AttentionError, Result};

/// The base of the paper's geometric progression of wavelengths.
pub const DEFAULT_SINUSOIDAL_BASE: f64 = 10_000.0;

/// The `[len, dim]` table of encodings for positions `start .. start + len` (base 10000).
///
/// ```
/// use fm_attention::positional::sinusoidal_table;
/// let table = sinusoidal_table::<f64>(0, 4, 6)?;
/// assert_eq!(table.dim(), (4, 6));
/// assert_eq!(table[[0, 0]], 0.0); // sin(0)
/// assert_eq!(table[[0, 1]], 1.0); // cos(0)
/// assert!((table[[1, 0]] - 1f64.sin()).abs() < 1e-15);
/// # Ok::<(), fm_attention::AttentionError>(())
/// ```
pub fn sinusoidal_table<T: Element>(start: usize, len: usize, dim: usize) -> Result<Array2<T>> {
    SinusoidalPositionalEncoding::new(dim)?.table(start, len)
}

/// Adds fixed sinusoidal encodings to token embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct SinusoidalPositionalEncoding {
    dim: usize,
    base: f64,
}

impl SinusoidalPositionalEncoding {
    /// Encodings of width `dim` with the paper's base 10000. Errors when `dim` is 0.
    pub fn new(dim: usize) -> Result<Self> {
        Self::with_base(dim, DEFAULT_SINUSOIDAL_BASE)
    }

    /// Encodings with another base (must be finite and above 1).
    pub fn with_base(dim: usize, base: f64) -> Result<Self> {
        if dim == 0 {
            return Err(AttentionError::config(
                "sinusoidal dim",
                "must be at least 1",
            ));
        }
        if !(base.is_finite() && base > 1.0) {
            return Err(AttentionError::config(
                "sinusoidal base",
                format!("must be finite and above 1, got {base}"),
            ));
        }
        Ok(SinusoidalPositionalEncoding { dim, base })
    }

    /// Width of each encoding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `[len, dim]` encodings of positions `start .. start + len`.
    pub fn table<T: Element>(&self, start: usize, len: usize) -> Result<Array2<T>> {
        let dim = self.dim;
        // One frequency per (sin, cos) pair: 1 / base^(2i / d).
        let inv_freq: Vec<f64> = (0..dim.div_ceil(2))
            .map(|i| self.base.powf(-((2 * i) as f64) / dim as f64))
            .collect();
        Ok(Array2::from_shape_fn((len, dim), |(row, col)| {
            let angle = (start + row) as f64 * inv_freq[col / 2];
            let value = if col % 2 == 0 {
                angle.sin()
            } else {
                angle.cos()
            };
            T::from_f64_lossy(value)
        }))
    }

    /// `x + PE` for `x` of shape `[batch, seq, dim]` or `[seq, dim]`, the sequence starting at position
    /// `start` (non-zero when decoding after a prompt). The encodings are constants on the tape; the
    /// gradient passes to `x` unchanged.
    pub fn add<'t, T: Element>(&self, x: Var<'t, T>, start: usize) -> Result<Var<'t, T>> {
        let shape = x.shape();
        let fits = matches!(shape.len(), 2 | 3) && shape[shape.len() - 1] == self.dim;
        if !fits {
            return Err(AttentionError::shape(
                "sinusoidal positional encoding",
                format!(
                    "input {shape:?} must be [batch, seq, {}] or [seq, {}]",
                    self.dim, self.dim
                ),
            ));
        }
        let seq = shape[shape.len() - 2];
        let table = x.tape().constant(self.table::<T>(start, seq)?);
        Ok(x.add(table)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::autograd::Tape;
    use ndarray::Array3;

    #[test]
    fn table_matches_the_papers_formula() {
        let (start, len, dim) = (3, 7, 10);
        let table = sinusoidal_table::<f64>(start, len, dim).unwrap();
        for p in 0..len {
            let pos = (start + p) as f64;
            for i in 0..dim / 2 {
                let angle = pos / 10_000f64.powf(2.0 * i as f64 / dim as f64);
                assert!((table[[p, 2 * i]] - angle.sin()).abs() < 1e-15);
                assert!((table[[p, 2 * i + 1]] - angle.cos()).abs() < 1e-15);
            }
        }
        // A few spot values written out by hand: position 1, dim 4: [sin 1, cos 1, sin 0.01, cos 0.01].
        let t = sinusoidal_table::<f64>(1, 1, 4).unwrap();
        let expected = [
            0.841_470_984_807_896_5,
            0.540_302_305_868_139_8,
            0.009_999_833_334_166_666,
            0.999_950_000_416_665_3,
        ];
        for (got, want) in t.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn f32_table_is_the_rounded_f64_table() {
        let t32 = sinusoidal_table::<f32>(0, 50, 16).unwrap();
        let t64 = sinusoidal_table::<f64>(0, 50, 16).unwrap();
        for (a, b) in t32.iter().zip(t64.iter()) {
            assert_eq!(*a, *b as f32);
        }
    }

    #[test]
    fn odd_dim_ends_with_a_sine() {
        let t = sinusoidal_table::<f64>(2, 1, 5).unwrap();
        let angle = 2.0 / 10_000f64.powf(4.0 / 5.0);
        assert!((t[[0, 4]] - angle.sin()).abs() < 1e-15);
    }

    #[test]
    fn start_offset_gives_the_later_rows() {
        let whole = sinusoidal_table::<f64>(0, 12, 8).unwrap();
        let tail = sinusoidal_table::<f64>(9, 3, 8).unwrap();
        assert_eq!(whole.slice(ndarray::s![9.., ..]), tail);
    }

    #[test]
    fn add_broadcasts_over_batch_and_passes_gradient() {
        let pe = SinusoidalPositionalEncoding::new(4).unwrap();
        let tape = Tape::<f64>::new();
        let x = tape.variable(Array3::<f64>::zeros((2, 3, 4)));
        let y = pe.add(x, 5).unwrap();
        let table = pe.table::<f64>(5, 3).unwrap();
        let value = y.value().into_dimensionality::<ndarray::Ix3>().unwrap();
        assert_eq!(value.index_axis(ndarray::Axis(0), 1), table);
        let grads = tape.backward(y.sum().unwrap()).unwrap();
        assert!(grads.of(x).unwrap().iter().all(|&g| g == 1.0));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(SinusoidalPositionalEncoding::new(0).is_err());
        assert!(SinusoidalPositionalEncoding::with_base(4, 1.0).is_err());
        let pe = SinusoidalPositionalEncoding::new(4).unwrap();
        let tape = Tape::<f32>::new();
        let x = tape.variable(Array3::<f32>::zeros((2, 3, 5)));
        let err = pe.add(x, 0).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 5]"), "{err}");
    }
}
