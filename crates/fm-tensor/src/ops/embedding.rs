//! Embedding lookup: token ids in, rows of a `[vocab, dim]` table out, and the scatter-add backward
//! that turns the output gradient into a gradient of the table.
//!
//! Ids are any [`IndexElement`]: `u32` is what fm's token pipelines produce (half the memory of
//! `usize` for a batch of ids, and vocabularies never need more), `usize` is accepted too. Every id is
//! checked against the vocabulary before anything is written.
//!
//! The backward is deterministic for any thread count: every table row sums the gradients of its
//! tokens in the order the tokens appear in `ids`, whether one thread does all rows or many threads
//! each own a range of rows. There are no atomic or racy adds.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, IxDyn};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::ops::shape::IndexElement;

/// Above this many output elements (tokens × dim) the lookup and its backward use the rayon pool.
/// Below it a whole call takes a few microseconds, less than a round of thread wake-ups.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// Checks every id against `vocab` and returns them flattened in row-major order of `ids`.
fn validated_ids<I: IndexElement>(
    op: &'static str,
    ids: &ArrayViewD<'_, I>,
    vocab: usize,
) -> Result<Vec<usize>> {
    let flat: Vec<usize> = ids.iter().map(|i| i.to_index()).collect();
    match flat.iter().find(|&&id| id >= vocab) {
        Some(&index) => Err(TensorError::IndexOutOfBounds {
            op,
            index,
            len: vocab,
        }),
        None => Ok(flat),
    }
}

/// Looks up the rows of `table` (`[vocab, dim]`) for every id: the output has shape
/// `ids.shape() + [dim]`, in standard layout. `ids` may have any rank, including 0 (one id) or a
/// zero-length axis (empty output).
///
/// Errors: [`TensorError::IndexOutOfBounds`] with the first offending id (in row-major order of
/// `ids`) as `index` and the vocabulary size as `len`.
///
/// Work splits over output rows (tokens) above a size threshold; each output row is written by one
/// thread, so the result is the same for any thread count.
///
/// ```
/// use ndarray::{arr2, Array, IxDyn};
/// use fm_tensor::ops::embedding::embedding;
/// let table = arr2(&[[0.0f32, 0.5], [1.0, 1.5], [2.0, 2.5]]);
/// let ids = Array::from_shape_vec(IxDyn(&[2, 2]), vec![2u32, 0, 1, 2]).unwrap();
/// let out = embedding(table.view(), ids.view())?;
/// assert_eq!(out.shape(), &[2, 2, 2]);
/// assert_eq!(out[[0, 0, 1]], 2.5);
/// assert_eq!(out[[1, 0, 0]], 1.0);
/// let bad = Array::from_shape_vec(IxDyn(&[1]), vec![3u32]).unwrap();
/// assert!(embedding(table.view(), bad.view()).is_err());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn embedding<T: Element, I: IndexElement>(
    table: ArrayView2<'_, T>,
    ids: ArrayViewD<'_, I>,
) -> Result<ArrayD<T>> {
    let (vocab, dim) = table.dim();
    let flat = validated_ids("embedding", &ids, vocab)?;
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    let mut out = crate::buffers::vec_for_overwrite(flat.len() * dim);
    if dim > 0 {
        let copy_row = |(dst, &id): (&mut [T], &usize)| {
            let row = table.row(id);
            match row.as_slice() {
                Some(src) => dst.copy_from_slice(src),
                // A strided table (e.g. a transposed view of a tied output matrix).
                None => dst.iter_mut().zip(row.iter()).for_each(|(d, &s)| *d = s),
            }
        };
        if out.len() >= PARALLEL_MIN_ELEMENTS {
            out.par_chunks_mut(dim)
                .zip(flat.par_iter())
                .for_each(copy_row);
        } else {
            out.chunks_mut(dim).zip(flat.iter()).for_each(copy_row);
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("length matches shape"))
}

/// Gradient of [`embedding`] with respect to the table: a `[vocab, dim]` array where row `v` is the
/// sum of the rows of `grad_out` whose id is `v` (zero for ids that do not occur).
///
/// `grad_out` must have shape `ids.shape() + [dim]`. Errors: a shape that does not fit `ids`
/// ([`TensorError::ShapeMismatch`] naming both shapes), or an id `>= vocab`
/// ([`TensorError::IndexOutOfBounds`]).
///
/// Determinism and memory: each row's sum runs in token order starting from zero, on one thread,
/// so the bits do not depend on the thread count. The serial path scatters directly. The parallel
/// path (above a size threshold, more than one thread) first groups token positions by id with a
/// stable counting sort, `8 · (vocab + 1 + tokens)` extra bytes, then gives each thread a range of
/// vocabulary rows to sum.
///
/// ```
/// use ndarray::{arr2, Array, IxDyn};
/// use fm_tensor::ops::embedding::embedding_backward;
/// let ids = Array::from_shape_vec(IxDyn(&[3]), vec![1u32, 0, 1]).unwrap();
/// let grad = arr2(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn();
/// let d_table = embedding_backward(grad.view(), ids.view(), 3)?;
/// assert_eq!(d_table, arr2(&[[3.0, 4.0], [6.0, 8.0], [0.0, 0.0]]));
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn embedding_backward<T: Element, I: IndexElement>(
    grad_out: ArrayViewD<'_, T>,
    ids: ArrayViewD<'_, I>,
    vocab: usize,
) -> Result<Array2<T>> {
    const OP: &str = "embedding_backward";
    let fits = grad_out.ndim() == ids.ndim() + 1 && &grad_out.shape()[..ids.ndim()] == ids.shape();
    if !fits {
        return Err(TensorError::shape_mismatch(
            OP,
            grad_out.shape(),
            ids.shape(),
            "the gradient must have shape ids.shape + [dim]",
        ));
    }
    let flat = validated_ids(OP, &ids, vocab)?;
    let dim = *grad_out.shape().last().expect("rank >= 1");
    let mut out = crate::buffers::zeroed_vec(vocab * dim);
    if dim > 0 && !flat.is_empty() {
        let grad = grad_out.as_standard_layout();
        let g = grad.as_slice().expect("standard layout");
        if g.len() >= PARALLEL_MIN_ELEMENTS && rayon::current_num_threads() > 1 {
            scatter_add_by_row(&mut out, g, &flat, vocab, dim);
        } else {
            scatter_add_in_token_order(&mut out, g, &flat, dim);
        }
    }
    Ok(Array2::from_shape_vec((vocab, dim), out).expect("length matches shape"))
}

/// Serial backward: walks the tokens in order, adding each gradient row into its id's row.
fn scatter_add_in_token_order<T: Element>(out: &mut [T], g: &[T], ids: &[usize], dim: usize) {
    for (src, &id) in g.chunks_exact(dim).zip(ids) {
        for (d, &s) in out[id * dim..(id + 1) * dim].iter_mut().zip(src) {
            *d = *d + s;
        }
    }
}

/// Parallel backward over vocabulary rows: a stable counting sort lists, for each id, its token
/// positions in ascending order; each row then sums exactly the same terms in exactly the same order
/// as [`scatter_add_in_token_order`], so both give the same bits.
fn scatter_add_by_row<T: Element>(out: &mut [T], g: &[T], ids: &[usize], vocab: usize, dim: usize) {
    let mut starts = vec![0usize; vocab + 1];
    for &id in ids {
        starts[id + 1] += 1;
    }
    for v in 0..vocab {
        starts[v + 1] += starts[v];
    }
    let mut next = starts.clone();
    let mut positions = vec![0usize; ids.len()];
    for (pos, &id) in ids.iter().enumerate() {
        positions[next[id]] = pos;
        next[id] += 1;
    }
    out.par_chunks_mut(dim).enumerate().for_each(|(v, row)| {
        for &pos in &positions[starts[v]..starts[v + 1]] {
            for (d, &s) in row.iter_mut().zip(&g[pos * dim..(pos + 1) * dim]) {
                *d = *d + s;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::shape::gradcheck::{assert_gradient, random_array};
    use ndarray::{arr2, Array, Array1, ArrayD};
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    fn ids_array<I: Clone>(shape: &[usize], v: Vec<I>) -> ArrayD<I> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn lookup_matches_rows_for_u32_and_usize() {
        let table = Array::from_shape_fn((5, 3), |(i, j)| (10 * i + j) as f64);
        let ids32 = ids_array(&[2, 3], vec![4u32, 0, 0, 1, 3, 2]);
        let out = embedding(table.view(), ids32.view()).unwrap();
        assert_eq!(out.shape(), &[2, 3, 3]);
        for ((i, j), &id) in ids32
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .indexed_iter()
        {
            assert_eq!(out.slice(ndarray::s![i, j, ..]), table.row(id as usize));
        }
        let ids_usize = ids32.mapv(|v| v as usize);
        assert_eq!(embedding(table.view(), ids_usize.view()).unwrap(), out);
        // Strided table: a transposed [dim, vocab] matrix viewed as [vocab, dim].
        let stored = table.t().to_owned();
        assert_eq!(embedding(stored.t(), ids32.view()).unwrap(), out);
        // 0-d ids: one row.
        let scalar = ids_array(&[], vec![2u32]);
        assert_eq!(
            embedding(table.view(), scalar.view()).unwrap(),
            table.row(2).into_dyn()
        );
    }

    #[test]
    fn out_of_range_id_is_reported() {
        let table = Array2::<f32>::zeros((4, 2));
        let ids = ids_array(&[3], vec![1u32, 9, 7]);
        match embedding(table.view(), ids.view()) {
            Err(TensorError::IndexOutOfBounds {
                op: "embedding",
                index: 9,
                len: 4,
            }) => {}
            other => panic!("expected IndexOutOfBounds, got {other:?}"),
        }
        let e = embedding(table.view(), ids.view()).unwrap_err().to_string();
        assert!(e.contains('9') && e.contains('4'), "{e}");
        let grad = ArrayD::<f32>::zeros(IxDyn(&[3, 2]));
        assert!(matches!(
            embedding_backward(grad.view(), ids.view(), 4),
            Err(TensorError::IndexOutOfBounds {
                index: 9,
                len: 4,
                ..
            })
        ));
    }

    #[test]
    fn backward_shape_errors_name_both_shapes() {
        let ids = ids_array(&[2, 3], vec![0u32; 6]);
        for bad in [&[2, 3][..], &[3, 2, 4], &[2, 3, 4, 1]] {
            let grad = ArrayD::<f32>::zeros(IxDyn(bad));
            let e = embedding_backward(grad.view(), ids.view(), 5)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("embedding_backward")
                    && e.contains(&format!("{bad:?}"))
                    && e.contains("[2, 3]"),
                "{e}"
            );
        }
    }

    #[test]
    fn empty_inputs() {
        let table = Array2::<f32>::ones((4, 3));
        let ids = ids_array::<u32>(&[2, 0], vec![]);
        let out = embedding(table.view(), ids.view()).unwrap();
        assert_eq!(out.shape(), &[2, 0, 3]);
        let d = embedding_backward(out.view(), ids.view(), 4).unwrap();
        assert_eq!(d, Array2::<f32>::zeros((4, 3)));
        // Zero-width table, and an empty vocabulary with no ids.
        let thin = Array2::<f32>::zeros((4, 0));
        let ids = ids_array(&[2], vec![3u32, 1]);
        assert_eq!(embedding(thin.view(), ids.view()).unwrap().shape(), &[2, 0]);
        let none = ids_array::<u32>(&[0], vec![]);
        assert_eq!(
            embedding(Array2::<f32>::zeros((0, 3)).view(), none.view())
                .unwrap()
                .shape(),
            &[0, 3]
        );
        assert_eq!(
            embedding_backward(ArrayD::<f32>::zeros(IxDyn(&[2, 0])).view(), ids.view(), 4)
                .unwrap()
                .dim(),
            (4, 0)
        );
    }

    #[test]
    fn backward_accumulates_repeated_ids() {
        let ids = ids_array(&[4], vec![2u32, 2, 0, 2]);
        let grad = arr2(&[[1.0, 1.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]).into_dyn();
        let d = embedding_backward(grad.view(), ids.view(), 3).unwrap();
        assert_eq!(d, arr2(&[[3.0, 30.0], [0.0, 0.0], [7.0, 61.0]]));
    }

    #[test]
    fn gradient_check() {
        let mut rng = StdRng::seed_from_u64(11);
        for (vocab, dim, ids_shape) in [
            (5, 3, vec![2, 4]),
            (1, 1, vec![3]),
            (4, 2, vec![1, 1, 5]),
            (6, 1, vec![]),
        ] {
            let n: usize = ids_shape.iter().product();
            let ids = ids_array(
                &ids_shape,
                (0..n).map(|_| rng.random_range(0..vocab as u32)).collect(),
            );
            let table = random_array(&mut rng, &[vocab, dim]);
            let mut out_shape = ids_shape.clone();
            out_shape.push(dim);
            let w = random_array(&mut rng, &out_shape);
            let d = embedding_backward(w.view(), ids.view(), vocab)
                .unwrap()
                .into_dyn();
            let forward = |t: &ArrayD<f64>| {
                embedding(
                    t.view().into_dimensionality::<ndarray::Ix2>().unwrap(),
                    ids.view(),
                )
                .unwrap()
            };
            assert_gradient("embedding", &table.into_dyn(), &w, forward, &d);
        }
    }

    #[test]
    fn backward_is_bitwise_identical_for_1_and_2_threads() {
        // Few distinct ids and many tokens, so each row sums many f32 terms whose order matters.
        let mut rng = StdRng::seed_from_u64(12);
        let (vocab, dim, tokens) = (37, 48, 2048);
        assert!(tokens * dim >= PARALLEL_MIN_ELEMENTS);
        let ids = ids_array(
            &[8, tokens / 8],
            (0..tokens)
                .map(|_| rng.random_range(0..vocab as u32))
                .collect(),
        );
        let grad = ArrayD::from_shape_fn(IxDyn(&[8, tokens / 8, dim]), |_| {
            rng.random_range(-1.0f32..1.0)
        });
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| embedding_backward(grad.view(), ids.view(), vocab).unwrap())
        };
        let one = run(1);
        let two = run(2);
        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two));
        // And both equal a plain in-order sum.
        let flat_ids: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
        let g2 = grad.view().into_shape_with_order((tokens, dim)).unwrap();
        let mut reference = Array2::<f32>::zeros((vocab, dim));
        for (t, &id) in flat_ids.iter().enumerate() {
            let mut row = reference.row_mut(id);
            row += &g2.row(t);
        }
        assert_eq!(bits(&one), bits(&reference));
        // The counting-sort path, called directly, too.
        let mut by_row = vec![0.0f32; vocab * dim];
        scatter_add_by_row(&mut by_row, g2.as_slice().unwrap(), &flat_ids, vocab, dim);
        assert_eq!(
            Array1::from(by_row)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            bits(&reference)
        );
    }

    #[test]
    fn forward_is_identical_for_1_and_2_threads() {
        let mut rng = StdRng::seed_from_u64(13);
        let table = Array::from_shape_fn((100, 64), |_| rng.random_range(-1.0f32..1.0));
        let ids = ids_array(
            &[1024],
            (0..1024).map(|_| rng.random_range(0..100u32)).collect(),
        );
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| embedding(table.view(), ids.view()).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one.slice(ndarray::s![5, ..]), table.row(ids[[5]] as usize));
    }
}
