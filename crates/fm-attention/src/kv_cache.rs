//! The key/value cache of one attention layer, for incremental decoding.
//!
//! When a model generates token `t`, the keys and values of tokens `0 .. t` have not changed: a cache
//! keeps them so each step projects only the new token and attends over the stored ones, making a step
//! cost linear in the cache length instead of recomputing the whole prefix.
//!
//! A [`KvCache`] holds `[batch, kv_heads, capacity, head_dim]` buffers for keys and values, allocated
//! once (capacity is the longest context the caller will decode), filled front to back by
//! [`append`](KvCache::append). Appending past the capacity is an [`AttentionError::CacheFull`] error,
//! never a reallocation or a silent overwrite. [`keys`](KvCache::keys) and [`values`](KvCache::values) are
//! views of the filled part (no copy). One cache serves one layer; a model keeps one per layer.
//!
//! Heads are `kv_heads`, which with grouped-query attention is fewer than the query heads: the cache of
//! a GQA model is smaller by `n_heads / kv_heads`.

use fm_tensor::Element;
use ndarray::{s, Array4, ArrayView4};

use crate::error::{AttentionError, Result};

/// Cached keys and values of one attention layer.
///
/// ```
/// use fm_attention::{AttentionError, KvCache};
/// use ndarray::Array4;
///
/// let mut cache = KvCache::<f32>::new(1, 2, 4, 3)?;          // batch 1, 2 kv heads, head_dim 4, 3 positions
/// let step = Array4::<f32>::ones((1, 2, 1, 4));              // one new position
/// cache.append(step.view(), step.view())?;
/// cache.append(step.view(), step.view())?;
/// assert_eq!(cache.len(), 2);
/// assert_eq!(cache.keys().shape(), &[1, 2, 2, 4]);
/// let two = Array4::<f32>::ones((1, 2, 2, 4));
/// assert!(matches!(cache.append(two.view(), two.view()), Err(AttentionError::CacheFull { len: 2, capacity: 3, requested: 2 })));
/// cache.reset();
/// assert!(cache.is_empty());
/// # Ok::<(), AttentionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct KvCache<T: Element = f32> {
    keys: Array4<T>,
    values: Array4<T>,
    len: usize,
}

impl<T: Element> KvCache<T> {
    /// An empty cache for `batch` sequences of `kv_heads` heads of width `head_dim`, holding up to
    /// `capacity` positions. Allocates `2 · batch · kv_heads · capacity · head_dim` elements now.
    pub fn new(batch: usize, kv_heads: usize, head_dim: usize, capacity: usize) -> Result<Self> {
        if batch == 0 || kv_heads == 0 || head_dim == 0 || capacity == 0 {
            return Err(AttentionError::config(
                "KV cache",
                format!(
                    "batch, kv_heads, head_dim and capacity must all be at least 1, got {batch}, {kv_heads}, {head_dim}, {capacity}"
                ),
            ));
        }
        let shape = (batch, kv_heads, capacity, head_dim);
        Ok(KvCache {
            keys: Array4::zeros(shape),
            values: Array4::zeros(shape),
            len: 0,
        })
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.keys.dim().0
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.keys.dim().1
    }

    /// Width of each head.
    pub fn head_dim(&self) -> usize {
        self.keys.dim().3
    }

    /// Maximum number of positions.
    pub fn capacity(&self) -> usize {
        self.keys.dim().2
    }

    /// Positions stored so far (the position of the next token to decode).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions that can still be appended.
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len
    }

    /// The shape `[batch, kv_heads, new, head_dim]` an append of `new` positions must have.
    pub fn step_shape(&self, new: usize) -> [usize; 4] {
        [self.batch(), self.kv_heads(), new, self.head_dim()]
    }

    /// Checks that `new` positions of shape `shape` can be appended (the check [`append`](Self::append)
    /// makes), without changing anything.
    pub fn check_append(&self, op: &'static str, shape: &[usize]) -> Result<()> {
        let new = if shape.len() == 4 { shape[2] } else { 0 };
        if shape != self.step_shape(new) {
            return Err(AttentionError::shape(
                op,
                format!(
                    "appended keys/values {shape:?} do not fit the cache [batch {}, kv_heads {}, new, head_dim {}]",
                    self.batch(),
                    self.kv_heads(),
                    self.head_dim()
                ),
            ));
        }
        if new > self.remaining() {
            return Err(AttentionError::CacheFull {
                len: self.len,
                capacity: self.capacity(),
                requested: new,
            });
        }
        Ok(())
    }

    /// Appends `new` positions of keys and values, both `[batch, kv_heads, new, head_dim]`. On error
    /// (a shape that does not fit, or [`AttentionError::CacheFull`]) the cache is unchanged.
    pub fn append(&mut self, keys: ArrayView4<'_, T>, values: ArrayView4<'_, T>) -> Result<()> {
        self.check_append("KvCache::append", keys.shape())?;
        if values.shape() != keys.shape() {
            return Err(AttentionError::shape(
                "KvCache::append",
                format!(
                    "keys {:?} and values {:?} must have the same shape",
                    keys.shape(),
                    values.shape()
                ),
            ));
        }
        let (start, end) = (self.len, self.len + keys.dim().2);
        self.keys
            .slice_mut(s![.., .., start..end, ..])
            .assign(&keys);
        self.values
            .slice_mut(s![.., .., start..end, ..])
            .assign(&values);
        self.len = end;
        Ok(())
    }

    /// The cached keys, `[batch, kv_heads, len, head_dim]` (a view, no copy).
    pub fn keys(&self) -> ArrayView4<'_, T> {
        self.keys.slice(s![.., .., ..self.len, ..])
    }

    /// The cached values, `[batch, kv_heads, len, head_dim]` (a view, no copy).
    pub fn values(&self) -> ArrayView4<'_, T> {
        self.values.slice(s![.., .., ..self.len, ..])
    }

    /// Forgets every position (keeps the buffers) so the cache can serve a new sequence.
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Keeps only the first `len` positions (rolls back a speculative or rejected suffix). Errors when
    /// `len` exceeds the stored length.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(AttentionError::config(
                "KvCache::truncate",
                format!("cannot keep {len} positions of the {} stored", self.len),
            ));
        }
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(batch: usize, heads: usize, new: usize, dim: usize, seed: f32) -> Array4<f32> {
        Array4::from_shape_fn((batch, heads, new, dim), |(b, h, t, d)| {
            seed + (b * 1000 + h * 100 + t * 10 + d) as f32
        })
    }

    #[test]
    fn appended_steps_read_back_in_order() {
        let mut cache = KvCache::<f32>::new(2, 3, 4, 10).unwrap();
        let k1 = block(2, 3, 3, 4, 0.0);
        let v1 = block(2, 3, 3, 4, 0.5);
        let k2 = block(2, 3, 1, 4, 7000.0);
        let v2 = block(2, 3, 1, 4, 7000.5);
        cache.append(k1.view(), v1.view()).unwrap();
        cache.append(k2.view(), v2.view()).unwrap();
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.remaining(), 6);
        let want_k = ndarray::concatenate(ndarray::Axis(2), &[k1.view(), k2.view()]).unwrap();
        let want_v = ndarray::concatenate(ndarray::Axis(2), &[v1.view(), v2.view()]).unwrap();
        assert_eq!(cache.keys(), want_k);
        assert_eq!(cache.values(), want_v);
        cache.truncate(3).unwrap();
        assert_eq!(cache.keys(), k1);
        assert!(cache.truncate(4).is_err());
    }

    #[test]
    fn full_cache_is_an_error_and_unchanged() {
        let mut cache = KvCache::<f32>::new(1, 1, 2, 2).unwrap();
        let one = block(1, 1, 1, 2, 1.0);
        cache.append(one.view(), one.view()).unwrap();
        let two = block(1, 1, 2, 2, 9.0);
        let err = cache.append(two.view(), two.view()).unwrap_err();
        assert!(matches!(
            err,
            AttentionError::CacheFull {
                len: 1,
                capacity: 2,
                requested: 2
            }
        ));
        assert!(err.to_string().contains("holds 1 of 2"), "{err}");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.keys(), one);
        cache.append(one.view(), one.view()).unwrap();
        assert!(matches!(
            cache.append(one.view(), one.view()),
            Err(AttentionError::CacheFull { .. })
        ));
        cache.reset();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.keys().shape(), &[1, 1, 0, 2]);
        cache.append(two.view(), two.view()).unwrap();
        assert_eq!(cache.values(), two);
    }

    #[test]
    fn wrong_shapes_are_errors_naming_them() {
        let mut cache = KvCache::<f32>::new(1, 2, 4, 8).unwrap();
        let k = block(1, 3, 1, 4, 0.0);
        let err = cache.append(k.view(), k.view()).unwrap_err().to_string();
        assert!(
            err.contains("[1, 3, 1, 4]") && err.contains("kv_heads 2"),
            "{err}"
        );
        let k = block(1, 2, 1, 4, 0.0);
        let v = block(1, 2, 2, 4, 0.0);
        let err = cache.append(k.view(), v.view()).unwrap_err().to_string();
        assert!(
            err.contains("[1, 2, 1, 4]") && err.contains("[1, 2, 2, 4]"),
            "{err}"
        );
        assert_eq!(cache.len(), 0);
        assert!(KvCache::<f32>::new(1, 0, 4, 8).is_err());
        assert!(KvCache::<f32>::new(1, 1, 4, 0).is_err());
    }
}
