//! Learned absolute position embeddings (GPT-2 style): a trained `[max_len, dim]` table whose row `p`
//! is added to the embedding of the token at position `p`.
//!
//! The table is a parameter in a [`ParamStore`] under `"<prefix>.weight"`, so optimizers and
//! safetensors checkpoints see it like any other weight. Lookup goes through fm-tensor's embedding op,
//! whose backward scatter-adds into the table deterministically.

use fm_tensor::autograd::{ParamId, ParamStore, Tape, Var};
use fm_tensor::{init, Element};
use ndarray::{Array1, ArrayViewD};

use crate::error::{AttentionError, Result};

/// Standard deviation of the initial table (GPT-2's choice for position embeddings).
const INIT_STD: f64 = 0.02;

/// A trained table of position embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedPositionalEmbedding {
    weight: ParamId,
    max_len: usize,
    dim: usize,
}

impl LearnedPositionalEmbedding {
    /// Adds a `[max_len, dim]` table named `"<prefix>.weight"` to `store`, drawn from N(0, 0.02²) with
    /// `seed`. Errors when a size is 0 or the name is taken.
    ///
    /// ```
    /// use fm_attention::positional::LearnedPositionalEmbedding;
    /// use fm_tensor::autograd::{ParamStore, Tape};
    ///
    /// let mut store = ParamStore::<f32>::new();
    /// let pos = LearnedPositionalEmbedding::new(&mut store, "wpe", 16, 8, 0)?;
    /// assert!(store.id("wpe.weight").is_some());
    /// let tape = Tape::new();
    /// let rows = pos.forward(&tape, &store, 3, 4)?; // positions 3, 4, 5, 6
    /// assert_eq!(rows.shape(), vec![4, 8]);
    /// assert!(pos.forward(&tape, &store, 14, 4).is_err()); // past max_len 16
    /// # Ok::<(), fm_attention::AttentionError>(())
    /// ```
    pub fn new<T: Element>(
        store: &mut ParamStore<T>,
        prefix: &str,
        max_len: usize,
        dim: usize,
        seed: u64,
    ) -> Result<Self> {
        if max_len == 0 || dim == 0 {
            return Err(AttentionError::config(
                "learned positional embedding",
                format!("max_len and dim must be at least 1, got max_len {max_len}, dim {dim}"),
            ));
        }
        let table = init::normal::<T>(&[max_len, dim], 0.0, INIT_STD, seed)?;
        let weight = store.add(format!("{prefix}.weight"), table)?;
        Ok(LearnedPositionalEmbedding {
            weight,
            max_len,
            dim,
        })
    }

    /// Wraps a table already in a store (loaded from a checkpoint); it must be 2-D.
    pub fn from_param<T: Element>(store: &ParamStore<T>, weight: ParamId) -> Result<Self> {
        let shape = store.value(weight).shape().to_vec();
        match shape[..] {
            [max_len, dim] if max_len > 0 && dim > 0 => Ok(LearnedPositionalEmbedding {
                weight,
                max_len,
                dim,
            }),
            _ => Err(AttentionError::shape(
                "learned positional embedding",
                format!("table {shape:?} must be [max_len, dim] with both at least 1"),
            )),
        }
    }

    /// The table's id in its store.
    pub fn weight(&self) -> ParamId {
        self.weight
    }

    /// Number of positions the table covers.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Width of each embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `[len, dim]` rows for positions `start .. start + len`.
    pub fn forward<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        store: &ParamStore<T>,
        start: usize,
        len: usize,
    ) -> Result<Var<'t, T>> {
        if start + len > self.max_len {
            return Err(AttentionError::shape(
                "learned positional embedding",
                format!(
                    "positions {start}..{} run past the table of {} positions [{}, {}]",
                    start + len,
                    self.max_len,
                    self.max_len,
                    self.dim
                ),
            ));
        }
        let ids = Array1::from_iter(start..start + len).into_dyn();
        self.forward_ids(tape, store, ids.view())
    }

    /// The rows for explicit position ids of any shape: output `ids.shape() + [dim]` (left-padded
    /// batches, packed sequences). An id past the table is an error naming it.
    pub fn forward_ids<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        store: &ParamStore<T>,
        ids: ArrayViewD<'_, usize>,
    ) -> Result<Var<'t, T>> {
        let table = tape.param(store, self.weight)?;
        Ok(table.embedding(ids)?)
    }

    /// `x + rows` for `x` of shape `[batch, seq, dim]` or `[seq, dim]`, positions starting at `start`.
    pub fn add<'t, T: Element>(
        &self,
        x: Var<'t, T>,
        store: &ParamStore<T>,
        start: usize,
    ) -> Result<Var<'t, T>> {
        let shape = x.shape();
        let fits = matches!(shape.len(), 2 | 3) && shape[shape.len() - 1] == self.dim;
        if !fits {
            return Err(AttentionError::shape(
                "learned positional embedding",
                format!(
                    "input {shape:?} must be [batch, seq, {}] or [seq, {}]",
                    self.dim, self.dim
                ),
            ));
        }
        let rows = self.forward(x.tape(), store, start, shape[shape.len() - 2])?;
        Ok(x.add(rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::autograd::{check_gradients, GradCheckConfig};
    use ndarray::{s, Array2, Array3};

    #[test]
    fn rows_are_the_table_rows_and_gradient_scatters_back() {
        let mut store = ParamStore::<f64>::new();
        let pos = LearnedPositionalEmbedding::new(&mut store, "pos", 10, 3, 7).unwrap();
        let table = store.value(pos.weight()).clone();
        let tape = Tape::new();
        let x = tape.constant(Array3::<f64>::zeros((2, 4, 3)));
        let y = pos.add(x, &store, 5).unwrap();
        let value = y.value().into_dimensionality::<ndarray::Ix3>().unwrap();
        for b in 0..2 {
            assert_eq!(value.slice(s![b, .., ..]), table.slice(s![5..9, ..]));
        }
        let grads = tape.backward(y.sum().unwrap()).unwrap();
        let g = grads.param(pos.weight()).unwrap();
        // Each used row received one gradient of 1 per batch row; the others none.
        for p in 0..10 {
            let want = if (5..9).contains(&p) { 2.0 } else { 0.0 };
            assert!(g.slice(s![p, ..]).iter().all(|&v| v == want), "row {p}");
        }
    }

    #[test]
    fn gradient_check_f64() {
        let table =
            Array2::from_shape_fn((6, 3), |(i, j)| (i as f64 - 0.3 * j as f64).sin()).into_dyn();
        let x = Array3::from_shape_fn((2, 4, 3), |(b, i, j)| (b + i * j) as f64 * 0.1).into_dyn();
        let report = check_gradients(
            |_tape, v| {
                let ids = Array1::from_iter(1..5usize).into_dyn();
                v[0].add(v[1].embedding(ids.view())?)?.tanh()
            },
            &[x, table],
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
    }

    #[test]
    fn errors_name_shapes() {
        let mut store = ParamStore::<f32>::new();
        assert!(LearnedPositionalEmbedding::new(&mut store, "p", 0, 3, 0).is_err());
        let pos = LearnedPositionalEmbedding::new(&mut store, "p", 8, 3, 0).unwrap();
        assert!(LearnedPositionalEmbedding::new(&mut store, "p", 8, 3, 0).is_err()); // name taken
        let tape = Tape::new();
        let err = pos.forward(&tape, &store, 6, 3).unwrap_err().to_string();
        assert!(err.contains("6..9") && err.contains("[8, 3]"), "{err}");
        let x = tape.constant(Array3::<f32>::zeros((1, 2, 4)));
        let err = pos.add(x, &store, 0).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 4]"), "{err}");
        let ids = ndarray::arr1(&[1usize, 8]).into_dyn();
        assert!(pos.forward_ids(&tape, &store, ids.view()).is_err());
    }
}
