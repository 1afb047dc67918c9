//! ALiBi: attention with linear biases (Press, Smith and Lewis, 2022, "Train Short, Test Long").
//!
//! No position is added to embeddings; instead each head `h` adds `−m_h · distance` to its attention
//! scores, with head slopes `m_h` a geometric sequence. For `n` heads a power of two the slopes are
//! `2^(−8/n), 2^(−16/n), …, 2^(−8)`; for other `n` the paper takes the `2^⌊log₂ n⌋` slopes of the power of
//! two below, then every other slope of the sequence for twice that power, until there are `n`.
//!
//! The bias here is `−m_h · |q_pos − k_pos|`. Under a causal mask (the paper's setting) that is exactly
//! the paper's `m · [−(i−1), …, −1, 0]`; without a mask it penalises distance in both directions.
//! Queries are aligned to the end of the keys (query `i` of `seq_q` sits at position
//! `seq_k − seq_q + i`), which is where new tokens sit when decoding with a KV cache.

use fm_tensor::Element;
use ndarray::Array3;

use crate::error::{AttentionError, Result};

/// The paper's head slopes `m_h`, in head order.
///
/// ```
/// use fm_attention::positional::alibi_slopes;
/// assert_eq!(alibi_slopes(8)?, vec![0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625]);
/// # Ok::<(), fm_attention::AttentionError>(())
/// ```
pub fn alibi_slopes(n_heads: usize) -> Result<Vec<f64>> {
    if n_heads == 0 {
        return Err(AttentionError::config("alibi heads", "must be at least 1"));
    }
    Ok(slopes(n_heads))
}

fn slopes_power_of_two(n: usize) -> Vec<f64> {
    let start = 2f64.powf(-8.0 / n as f64);
    (1..=n).map(|i| start.powi(i as i32)).collect()
}

fn slopes(n: usize) -> Vec<f64> {
    if n.is_power_of_two() {
        return slopes_power_of_two(n);
    }
    let below = 1usize << n.ilog2();
    let mut out = slopes_power_of_two(below);
    out.extend(slopes(2 * below).into_iter().step_by(2).take(n - below));
    out
}

/// The additive score bias `[n_heads, seq_q, seq_k]`: `−m_h · |q_pos − k_pos|`, queries aligned to the
/// end of the keys (see the module doc). Add it to attention scores (as an additive mask) per head.
///
/// ```
/// use fm_attention::positional::alibi_bias;
/// // Two heads (slopes 2^-4 and 2^-8); one new query at position 2 after keys 0, 1, 2.
/// let bias = alibi_bias::<f64>(2, 1, 3)?;
/// assert_eq!(bias[[0, 0, 0]], -0.0625 * 2.0);
/// assert_eq!(bias[[0, 0, 2]], 0.0);
/// assert_eq!(bias[[1, 0, 1]], -0.00390625);
/// # Ok::<(), fm_attention::AttentionError>(())
/// ```
pub fn alibi_bias<T: Element>(n_heads: usize, seq_q: usize, seq_k: usize) -> Result<Array3<T>> {
    let slopes = alibi_slopes(n_heads)?;
    let offset = seq_k as i64 - seq_q as i64;
    Ok(Array3::from_shape_fn(
        (n_heads, seq_q, seq_k),
        |(h, i, j)| {
            let distance = (i as i64 + offset - j as i64).unsigned_abs() as f64;
            T::from_f64_lossy(-slopes[h] * distance)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_for_eight_heads_are_the_papers() {
        // Paper §3: "For models with 8 heads, the slopes that we used are the geometric sequence
        // 1/2^1, 1/2^2, ..., 1/2^8."
        let want: Vec<f64> = (1..=8).map(|i| 1.0 / 2f64.powi(i)).collect();
        assert_eq!(alibi_slopes(8).unwrap(), want);
        // "For models that require 16 heads, we interpolate those 8 slopes by geometrically averaging
        // every consecutive pair, resulting in 1/2^0.5, 1/2^1, 1/2^1.5, ..., 1/2^8."
        let want16: Vec<f64> = (1..=16).map(|i| 2f64.powf(-0.5 * i as f64)).collect();
        for (a, b) in alibi_slopes(16).unwrap().iter().zip(&want16) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn slopes_for_twelve_heads_follow_the_non_power_of_two_rule() {
        // The eight slopes of 8 heads, then every other slope of 16 heads (2^-0.5, 2^-1.5, ...), 4 of them.
        let mut want: Vec<f64> = (1..=8).map(|i| 2f64.powi(-i)).collect();
        want.extend([-0.5, -1.5, -2.5, -3.5].map(|e: f64| 2f64.powf(e)));
        let got = alibi_slopes(12).unwrap();
        assert_eq!(got.len(), 12);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-15, "{got:?}");
        }
        assert!(alibi_slopes(0).is_err());
        assert_eq!(alibi_slopes(1).unwrap(), vec![2f64.powi(-8)]);
    }

    #[test]
    fn bias_is_the_papers_row_under_causality() {
        let slopes = alibi_slopes(4).unwrap();
        let bias = alibi_bias::<f64>(4, 5, 5).unwrap();
        for h in 0..4 {
            for i in 0..5 {
                for j in 0..=i {
                    assert_eq!(bias[[h, i, j]], -slopes[h] * (i - j) as f64);
                }
            }
        }
        // Decoding: one query after 6 cached keys equals the last row of the full bias.
        let full = alibi_bias::<f32>(4, 7, 7).unwrap();
        let step = alibi_bias::<f32>(4, 1, 7).unwrap();
        assert_eq!(full.slice(ndarray::s![.., 6..7, ..]), step);
    }
}
