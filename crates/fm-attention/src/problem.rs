//! One attention call, checked: the dimensions of Q, K and V and the options resolved into the
//! computing type, with the per-score rules (scale, masks, biases, dropout) every kernel applies the
//! same way.
//!
//! Both the naive reference and the fused kernels build a [`Problem`] first, so they validate alike and
//! agree on what a masked or dropped score is.

use ndarray::{Array4, ArrayView4};

use fm_tensor::Element;

use crate::error::{AttentionError, Result};
use crate::options::AttentionOptions;

/// Sizes of one attention call; Q is `[batch, heads, seq_q, head_dim]`, K `[batch, kv_heads, seq_k,
/// head_dim]`, V `[batch, kv_heads, seq_k, v_dim]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq_q: usize,
    pub seq_k: usize,
    pub head_dim: usize,
    pub v_dim: usize,
}

impl Dims {
    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// `seq_k − seq_q`: how far the bottom-right-aligned queries are shifted along the keys.
    pub fn offset(&self) -> isize {
        self.seq_k as isize - self.seq_q as isize
    }
}

/// Checks Q, K, V against each other (and the options against them) and returns the sizes.
pub(crate) fn check_qkv(
    op: &'static str,
    q: &[usize],
    k: &[usize],
    v: &[usize],
    opts: &AttentionOptions,
) -> Result<Dims> {
    for (name, shape) in [("q", q), ("k", k), ("v", v)] {
        if shape.len() != 4 {
            return Err(AttentionError::shape(
                op,
                format!("{name} must be [batch, heads, seq, head_dim], got shape {shape:?}"),
            ));
        }
    }
    let dims = Dims {
        batch: q[0],
        heads: q[1],
        kv_heads: k[1],
        seq_q: q[2],
        seq_k: k[2],
        head_dim: q[3],
        v_dim: v[3],
    };
    if k[0] != q[0] || v[0] != q[0] {
        return Err(AttentionError::shape(
            op,
            format!("batch sizes differ: q {q:?}, k {k:?}, v {v:?}"),
        ));
    }
    if k[3] != q[3] {
        return Err(AttentionError::shape(
            op,
            format!("head_dim of q and k differ: q {q:?}, k {k:?}"),
        ));
    }
    if v[2] != k[2] {
        return Err(AttentionError::shape(
            op,
            format!("seq lengths of k and v differ: k {k:?}, v {v:?}"),
        ));
    }
    if v[1] != k[1] {
        return Err(AttentionError::shape(
            op,
            format!("k and v have different numbers of heads: k {k:?}, v {v:?}"),
        ));
    }
    if dims.seq_q == 0 || dims.seq_k == 0 {
        return Err(AttentionError::shape(
            op,
            format!("empty sequence: q {q:?}, k {k:?}"),
        ));
    }
    if dims.head_dim == 0 || dims.v_dim == 0 {
        return Err(AttentionError::shape(
            op,
            format!("empty head_dim: q {q:?}, v {v:?}"),
        ));
    }
    if dims.kv_heads == 0 || !dims.heads.is_multiple_of(dims.kv_heads) {
        return Err(AttentionError::config(
            "kv heads",
            format!(
                "{} query heads are not divisible by {} kv heads (q {q:?}, k {k:?})",
                dims.heads, dims.kv_heads
            ),
        ));
    }
    if let Some(mask) = &opts.key_padding {
        if mask.dim() != (dims.batch, dims.seq_k) {
            return Err(AttentionError::shape(
                op,
                format!(
                    "key_padding must be [batch, seq_k] = [{}, {}], got {:?}",
                    dims.batch,
                    dims.seq_k,
                    mask.shape()
                ),
            ));
        }
    }
    if let Some(mask) = &opts.additive_mask {
        let target = [dims.batch, dims.heads, dims.seq_q, dims.seq_k];
        let fits = mask.ndim() <= 4
            && mask
                .shape()
                .iter()
                .rev()
                .zip(target.iter().rev())
                .all(|(&m, &t)| m == t || m == 1);
        if !fits {
            return Err(AttentionError::shape(
                op,
                format!(
                    "additive_mask of shape {:?} does not broadcast to [batch, heads, seq_q, seq_k] = {target:?}",
                    mask.shape()
                ),
            ));
        }
    }
    if let Some(slopes) = &opts.alibi_slopes {
        if slopes.len() != dims.heads {
            return Err(AttentionError::shape(
                op,
                format!(
                    "alibi_slopes has {} slopes for {} query heads (q {q:?})",
                    slopes.len(),
                    dims.heads
                ),
            ));
        }
    }
    if let Some(d) = opts.dropout {
        if !(0.0..1.0).contains(&d.p) {
            return Err(AttentionError::config(
                "dropout",
                format!("p = {} is outside [0, 1)", d.p),
            ));
        }
    }
    if let Some(scale) = opts.scale {
        if !scale.is_finite() {
            return Err(AttentionError::config(
                "scale",
                format!("{scale} is not finite"),
            ));
        }
    }
    Ok(dims)
}

/// Checks that an array passed to the backward has the shape the forward would have produced.
pub(crate) fn check_same(
    op: &'static str,
    name: &str,
    got: &[usize],
    expected: &[usize],
) -> Result<()> {
    if got != expected {
        return Err(AttentionError::shape(
            op,
            format!("{name} must have shape {expected:?}, got {got:?}"),
        ));
    }
    Ok(())
}

/// The rules for turning `q·k` into a score, resolved into the computing type.
pub(crate) struct Problem<'o, T> {
    pub dims: Dims,
    pub scale: T,
    pub causal: bool,
    key_padding: Option<&'o ndarray::Array2<bool>>,
    /// The additive mask padded to four axes (broadcast axes have length 1).
    additive: Option<Array4<T>>,
    alibi: Option<Vec<T>>,
    pub dropout: Option<DropoutRule<T>>,
}

/// Dropout as a pure function of the score's coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropoutRule<T> {
    seed: u64,
    /// Keep when the top 53 bits of the hash are at least this.
    threshold: u64,
    /// `1/(1 − p)`.
    pub keep_scale: T,
}

impl<T: Element> DropoutRule<T> {
    /// Whether weight `(b, h, i, j)` is kept.
    #[inline]
    pub fn keep(&self, dims: &Dims, b: usize, h: usize, i: usize, j: usize) -> bool {
        let index = (((b * dims.heads + h) * dims.seq_q + i) * dims.seq_k + j) as u64;
        let x = splitmix64(self.seed ^ splitmix64(index.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        (x >> 11) >= self.threshold
    }
}

/// A strong 64-bit mix (SplitMix64's finaliser): consecutive inputs give independent-looking outputs.
#[inline]
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<'o, T: Element> Problem<'o, T> {
    /// Validates and resolves one call.
    pub fn new(
        op: &'static str,
        q: &ArrayView4<'_, T>,
        k: &ArrayView4<'_, T>,
        v: &ArrayView4<'_, T>,
        opts: &'o AttentionOptions,
    ) -> Result<Self> {
        let dims = check_qkv(op, q.shape(), k.shape(), v.shape(), opts)?;
        let additive = opts.additive_mask.as_ref().map(|mask| {
            let mut shape = [1usize; 4];
            shape[4 - mask.ndim()..].copy_from_slice(mask.shape());
            mask.to_shape(shape)
                .expect("a mask of the same element count reshapes")
                .mapv(T::from_f64_lossy)
        });
        let dropout = opts.active_dropout().map(|d| DropoutRule {
            seed: d.seed,
            threshold: (d.p * (1u64 << 53) as f64) as u64,
            keep_scale: T::from_f64_lossy(1.0 / (1.0 - d.p)),
        });
        Ok(Problem {
            dims,
            scale: T::from_f64_lossy(opts.scale_for(dims.head_dim)),
            causal: opts.causal,
            key_padding: opts.key_padding.as_ref(),
            additive,
            alibi: opts
                .alibi_slopes
                .as_ref()
                .map(|s| s.iter().map(|&x| T::from_f64_lossy(x)).collect()),
            dropout,
        })
    }

    /// Whether any per-element bias or mask besides causal applies (padding, additive, ALiBi).
    pub fn has_elementwise_rules(&self) -> bool {
        self.key_padding.is_some() || self.additive.is_some() || self.alibi.is_some()
    }

    /// Number of keys query `i` may see under the causal rule (all of them when not causal).
    #[inline]
    pub fn visible_keys(&self, i: usize) -> usize {
        if !self.causal {
            return self.dims.seq_k;
        }
        let last = i as isize + self.dims.offset();
        (last + 1).clamp(0, self.dims.seq_k as isize) as usize
    }

    /// Turns already-scaled `q·k` values of query `i` (head `h`, batch `b`) for keys `j0..` into
    /// scores: adds ALiBi and the additive mask, and writes `−∞` where a key is masked.
    pub fn apply_rules(&self, b: usize, h: usize, i: usize, j0: usize, row: &mut [T]) {
        let visible = self.visible_keys(i);
        for (offset, s) in row.iter_mut().enumerate() {
            let j = j0 + offset;
            if j >= visible {
                *s = T::neg_infinity();
                continue;
            }
            if let Some(pad) = self.key_padding {
                if !pad[[b, j]] {
                    *s = T::neg_infinity();
                    continue;
                }
            }
            if let Some(slopes) = &self.alibi {
                let pos_q = i as isize + self.dims.offset();
                let distance = T::from_f64_lossy((pos_q - j as isize).unsigned_abs() as f64);
                *s = *s - slopes[h] * distance;
            }
            if let Some(mask) = &self.additive {
                let sh = mask.shape();
                let idx = [
                    if sh[0] == 1 { 0 } else { b },
                    if sh[1] == 1 { 0 } else { h },
                    if sh[2] == 1 { 0 } else { i },
                    if sh[3] == 1 { 0 } else { j },
                ];
                *s = *s + mask[idx];
            }
        }
    }
}
