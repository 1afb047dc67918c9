//! Rotary position embeddings (RoPE; Su et al., 2021, "RoFormer").
//!
//! Each query and key vector is rotated in `head_dim / 2` planes by angles proportional to its
//! position, `θ_i = p · base^(−2i / head_dim)`, so the score `q_m · k_n` depends on the positions only
//! through `m − n`. Pairs follow the **rotate-half** convention of Hugging Face Llama and the PyTorch
//! references: coordinate `i` is paired with `i + head_dim / 2` (not with its neighbour `i + 1`):
//!
//! ```text
//! out[i]         = x[i] · cos θ_i − x[i + h] · sin θ_i
//! out[i + h]     = x[i + h] · cos θ_i + x[i] · sin θ_i        h = head_dim / 2
//! ```
//!
//! so weights trained with Llama-style RoPE load as they are. The backward is the exact inverse
//! rotation (a rotation's Jacobian is the rotation itself, its transpose the inverse).
//!
//! Angles, sines and cosines are computed in f64 and rounded once to the element type. (Hugging Face
//! computes them in the model's dtype, which differs from these by a few f32 ulps at large positions.)

use fm_tensor::autograd::{BackwardContext, CustomOp, Var};
use fm_tensor::{Element, TensorError};
use ndarray::{Array2, Array4, ArrayD, ArrayView2, ArrayView4, ArrayViewD, Ix4};
use rayon::prelude::*;

use crate::error::{AttentionError, Result};

/// The base of Llama 1/2 and of the RoFormer paper.
pub const DEFAULT_ROPE_BASE: f64 = 10_000.0;

/// Above this many elements the rotation splits over (batch, head) pairs on the rayon pool.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// Which positions the rows of a `[batch, heads, seq, head_dim]` input sit at.
#[derive(Debug, Clone, Copy)]
pub enum RopePositions<'a> {
    /// Every batch row at `start, start + 1, …, start + seq − 1` (training: 0; decoding: the cache
    /// length).
    Start(usize),
    /// Explicit `[batch, seq]` position ids (left-padded batches, packed sequences); a batch axis of 1
    /// is shared by all batch rows.
    Ids(ArrayView2<'a, usize>),
}

/// Owned positions, as a recorded op keeps them for its backward.
#[derive(Debug, Clone)]
enum OwnedPositions {
    Start(usize),
    Ids(Array2<usize>),
}

impl OwnedPositions {
    fn view(&self) -> RopePositions<'_> {
        match self {
            OwnedPositions::Start(start) => RopePositions::Start(*start),
            OwnedPositions::Ids(ids) => RopePositions::Ids(ids.view()),
        }
    }
}

/// Rotary embeddings for one head width and base.
///
/// ```
/// use fm_attention::positional::RotaryEmbedding;
/// use fm_tensor::autograd::Tape;
/// use ndarray::Array4;
///
/// let rope = RotaryEmbedding::new(8, 10_000.0)?;
/// let tape = Tape::<f32>::new();
/// let q = tape.variable(Array4::<f32>::ones((1, 2, 5, 8))); // [batch, heads, seq, head_dim]
/// let rotated = rope.apply(q, 0)?;                          // positions 0..5
/// assert_eq!(rotated.shape(), vec![1, 2, 5, 8]);
/// # Ok::<(), fm_attention::AttentionError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryEmbedding {
    head_dim: usize,
    base: f64,
    /// `base^(−2i / head_dim)` for `i < head_dim / 2`.
    inv_freq: Vec<f64>,
}

impl RotaryEmbedding {
    /// RoPE for heads of width `head_dim` (even, at least 2) with frequency `base` (finite, above 1;
    /// 10000 in Llama 2, 500000 in Llama 3).
    pub fn new(head_dim: usize, base: f64) -> Result<Self> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(AttentionError::config(
                "rope head_dim",
                format!(
                    "must be even and at least 2 (coordinates rotate in pairs), got {head_dim}"
                ),
            ));
        }
        if !(base.is_finite() && base > 1.0) {
            return Err(AttentionError::config(
                "rope base",
                format!("must be finite and above 1, got {base}"),
            ));
        }
        let inv_freq = (0..head_dim / 2)
            .map(|i| base.powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        Ok(RotaryEmbedding {
            head_dim,
            base,
            inv_freq,
        })
    }

    /// Width of the heads this rotates.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// The frequency base.
    pub fn base(&self) -> f64 {
        self.base
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`) for positions `start .. start + seq`, on the tape.
    pub fn apply<'t, T: Element>(&self, x: Var<'t, T>, start: usize) -> Result<Var<'t, T>> {
        self.apply_at(x, RopePositions::Start(start))
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`) for explicit `[batch, seq]` position ids.
    pub fn apply_with_ids<'t, T: Element>(
        &self,
        x: Var<'t, T>,
        ids: ArrayView2<'_, usize>,
    ) -> Result<Var<'t, T>> {
        self.apply_at(x, RopePositions::Ids(ids))
    }

    /// Rotates `x` on the tape for either kind of positions. The backward is the inverse rotation.
    pub fn apply_at<'t, T: Element>(
        &self,
        x: Var<'t, T>,
        positions: RopePositions<'_>,
    ) -> Result<Var<'t, T>> {
        self.check(&x.shape(), &positions)?;
        let positions = match positions {
            RopePositions::Start(start) => OwnedPositions::Start(start),
            RopePositions::Ids(ids) => OwnedPositions::Ids(ids.to_owned()),
        };
        let op = RopeOp {
            rope: self.clone(),
            positions,
        };
        Ok(x.tape().apply(op, &[x])?)
    }

    /// Checks an input shape and its positions; errors name both.
    fn check(&self, shape: &[usize], positions: &RopePositions<'_>) -> Result<()> {
        if shape.len() != 4 || shape[3] != self.head_dim {
            return Err(AttentionError::shape(
                "rope",
                format!(
                    "input {shape:?} must be [batch, heads, seq, {}]",
                    self.head_dim
                ),
            ));
        }
        if let RopePositions::Ids(ids) = positions {
            let (batch, seq) = (shape[0], shape[2]);
            let (id_batch, id_seq) = ids.dim();
            if id_seq != seq || (id_batch != batch && id_batch != 1) {
                return Err(AttentionError::shape(
                    "rope",
                    format!(
                        "position ids {:?} do not fit input {shape:?}: expected [{batch}, {seq}] or [1, {seq}]",
                        ids.shape()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `(cos, sin)` tables `[rows, seq, head_dim / 2]` flattened, `rows` = 1 for a start position or
    /// the ids' batch axis.
    fn tables<T: Element>(&self, seq: usize, positions: &RopePositions<'_>) -> (Vec<T>, Vec<T>) {
        let half = self.head_dim / 2;
        let position_list: Vec<usize> = match positions {
            RopePositions::Start(start) => (*start..*start + seq).collect(),
            RopePositions::Ids(ids) => ids.iter().copied().collect(),
        };
        let mut cos = Vec::with_capacity(position_list.len() * half);
        let mut sin = Vec::with_capacity(position_list.len() * half);
        for &p in &position_list {
            for &f in &self.inv_freq {
                let angle = p as f64 * f;
                cos.push(T::from_f64_lossy(angle.cos()));
                sin.push(T::from_f64_lossy(angle.sin()));
            }
        }
        (cos, sin)
    }

    /// Rotates by `+θ` (`inverse == false`) or `−θ`: the forward and its exact backward.
    fn rotate<T: Element>(
        &self,
        x: ArrayView4<'_, T>,
        positions: &RopePositions<'_>,
        inverse: bool,
    ) -> Array4<T> {
        let (batch, heads, seq, head_dim) = x.dim();
        let half = head_dim / 2;
        let (cos, sin) = self.tables::<T>(seq, positions);
        let table_rows = cos.len() / (seq * half).max(1);
        let x = x.as_standard_layout();
        let input = x.as_slice().expect("standard layout");
        let mut out = Array4::<T>::zeros((batch, heads, seq, head_dim));
        let plane = seq * head_dim;
        let rotate_plane = |bh: usize, dst: &mut [T]| {
            let b = bh / heads.max(1);
            let table = if table_rows > 1 { b * seq * half } else { 0 };
            let src = &input[bh * plane..(bh + 1) * plane];
            for s in 0..seq {
                let row_in = &src[s * head_dim..(s + 1) * head_dim];
                let row_out = &mut dst[s * head_dim..(s + 1) * head_dim];
                let (c, sn) = (
                    &cos[table + s * half..table + (s + 1) * half],
                    &sin[table + s * half..table + (s + 1) * half],
                );
                for i in 0..half {
                    let (a, b) = (row_in[i], row_in[i + half]);
                    let s_i = if inverse { -sn[i] } else { sn[i] };
                    row_out[i] = a * c[i] - b * s_i;
                    row_out[i + half] = b * c[i] + a * s_i;
                }
            }
        };
        if plane == 0 {
            return out;
        }
        let dst = out.as_slice_mut().expect("fresh array is standard layout");
        if dst.len() >= PARALLEL_MIN_ELEMENTS {
            dst.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(bh, chunk)| rotate_plane(bh, chunk));
        } else {
            dst.chunks_mut(plane)
                .enumerate()
                .for_each(|(bh, chunk)| rotate_plane(bh, chunk));
        }
        out
    }
}

/// Rotates `x` (`[batch, heads, seq, head_dim]`) on plain ndarray: the kernel behind
/// [`RotaryEmbedding::apply_at`].
pub fn rope_forward<T: Element>(
    rope: &RotaryEmbedding,
    x: ArrayView4<'_, T>,
    positions: RopePositions<'_>,
) -> Result<Array4<T>> {
    rope.check(x.shape(), &positions)?;
    Ok(rope.rotate(x, &positions, false))
}

/// The gradient of [`rope_forward`] with respect to its input: the inverse rotation of `grad_output`.
pub fn rope_backward<T: Element>(
    rope: &RotaryEmbedding,
    grad_output: ArrayView4<'_, T>,
    positions: RopePositions<'_>,
) -> Result<Array4<T>> {
    rope.check(grad_output.shape(), &positions)?;
    Ok(rope.rotate(grad_output, &positions, true))
}

/// RoPE recorded on the tape through fm-tensor's public extension point.
struct RopeOp {
    rope: RotaryEmbedding,
    positions: OwnedPositions,
}

fn as_4d<'a, T: Element>(x: &ArrayViewD<'a, T>) -> fm_tensor::Result<ArrayView4<'a, T>> {
    x.clone().into_dimensionality::<Ix4>().map_err(|_| {
        TensorError::invalid_shape("rope", x.shape(), "expected [batch, heads, seq, head_dim]")
    })
}

impl<T: Element> CustomOp<T> for RopeOp {
    fn name(&self) -> &str {
        "rope"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> fm_tensor::Result<ArrayD<T>> {
        let x = as_4d(&inputs[0])?;
        Ok(self
            .rope
            .rotate(x, &self.positions.view(), false)
            .into_dyn())
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> fm_tensor::Result<Vec<Option<ArrayD<T>>>> {
        if !ctx.needs_grad[0] {
            return Ok(vec![None]);
        }
        let g = as_4d(&ctx.grad_output)?;
        Ok(vec![Some(
            self.rope.rotate(g, &self.positions.view(), true).into_dyn(),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::autograd::{check_gradients, GradCheckConfig, Tape};
    use ndarray::{arr2, s, Array1};

    fn sample(shape: (usize, usize, usize, usize), seed: f64) -> Array4<f64> {
        Array4::from_shape_fn(shape, |(b, h, t, d)| {
            ((b * 131 + h * 31 + t * 7 + d) as f64 * 0.37 + seed).sin()
        })
    }

    /// The formula of the module doc, written out per element.
    fn rope_by_formula(
        x: &Array4<f64>,
        base: f64,
        pos: impl Fn(usize, usize) -> usize,
    ) -> Array4<f64> {
        let (_, _, _, d) = x.dim();
        let h = d / 2;
        Array4::from_shape_fn(x.dim(), |(b, hd, t, i)| {
            let j = i % h;
            let theta = pos(b, t) as f64 / base.powf(2.0 * j as f64 / d as f64);
            if i < h {
                x[[b, hd, t, i]] * theta.cos() - x[[b, hd, t, i + h]] * theta.sin()
            } else {
                x[[b, hd, t, i]] * theta.cos() + x[[b, hd, t, j]] * theta.sin()
            }
        })
    }

    #[test]
    fn matches_the_rotate_half_formula() {
        let rope = RotaryEmbedding::new(8, 500_000.0).unwrap();
        let x = sample((2, 3, 5, 8), 0.1);
        let got = rope_forward(&rope, x.view(), RopePositions::Start(4)).unwrap();
        let want = rope_by_formula(&x, 500_000.0, |_, t| 4 + t);
        assert!(got
            .iter()
            .zip(want.iter())
            .all(|(a, b)| (a - b).abs() < 1e-14));
    }

    #[test]
    fn position_ids_per_row() {
        let rope = RotaryEmbedding::new(4, 10_000.0).unwrap();
        let x = sample((2, 2, 3, 4), 0.5);
        let ids = arr2(&[[0usize, 1, 2], [7, 3, 0]]);
        let got = rope_forward(&rope, x.view(), RopePositions::Ids(ids.view())).unwrap();
        let want = rope_by_formula(&x, 10_000.0, |b, t| ids[[b, t]]);
        assert!(got
            .iter()
            .zip(want.iter())
            .all(|(a, b)| (a - b).abs() < 1e-14));
        // A shared row of ids equals a start position.
        let shared = arr2(&[[5usize, 6, 7]]);
        let a = rope_forward(&rope, x.view(), RopePositions::Ids(shared.view())).unwrap();
        let b = rope_forward(&rope, x.view(), RopePositions::Start(5)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rotation_preserves_norms_and_backward_inverts_it() {
        let rope = RotaryEmbedding::new(16, 10_000.0).unwrap();
        let x = sample((1, 2, 40, 16), 0.2);
        let y = rope_forward(&rope, x.view(), RopePositions::Start(100)).unwrap();
        for (xr, yr) in x.rows().into_iter().zip(y.rows()) {
            let (nx, ny) = (xr.dot(&xr).sqrt(), yr.dot(&yr).sqrt());
            assert!((nx - ny).abs() < 1e-13 * nx.max(1.0));
        }
        let back = rope_backward(&rope, y.view(), RopePositions::Start(100)).unwrap();
        assert!(back
            .iter()
            .zip(x.iter())
            .all(|(a, b)| (a - b).abs() < 1e-13));
    }

    #[test]
    fn scores_depend_only_on_the_relative_position() {
        let rope = RotaryEmbedding::new(8, 10_000.0).unwrap();
        let q = sample((1, 1, 1, 8), 0.3);
        let k = sample((1, 1, 1, 8), 1.7);
        let score = |m: usize, n: usize| {
            let qm = rope_forward(&rope, q.view(), RopePositions::Start(m)).unwrap();
            let kn = rope_forward(&rope, k.view(), RopePositions::Start(n)).unwrap();
            qm.iter().zip(kn.iter()).map(|(a, b)| a * b).sum::<f64>()
        };
        for (m, n) in [(0, 0), (5, 2), (2, 5), (17, 3)] {
            for shift in [1, 10, 1000] {
                let (a, b) = (score(m, n), score(m + shift, n + shift));
                assert!(
                    (a - b).abs() < 1e-12,
                    "m {m} n {n} shift {shift}: {a} vs {b}"
                );
            }
        }
        // ... and does depend on it (the test would pass for the identity otherwise).
        assert!((score(5, 2) - score(5, 3)).abs() > 1e-3);
    }

    #[test]
    fn gradient_check_f64_start_and_ids() {
        let rope = RotaryEmbedding::new(6, 100.0).unwrap();
        let x = sample((2, 2, 3, 6), 0.9).into_dyn();
        let report = check_gradients(
            |_tape, v| rope.apply(v[0], 3).map_err(to_tensor)?.tanh(),
            std::slice::from_ref(&x),
            &GradCheckConfig::default(),
        );
        let report = report.unwrap();
        assert!(report.passed(), "{report}");
        let ids = arr2(&[[4usize, 0, 9], [1, 1, 2]]);
        let report = check_gradients(
            |_tape, v| {
                let r = rope.apply_with_ids(v[0], ids.view()).map_err(to_tensor)?;
                r.mul(v[0])
            },
            &[x],
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
    }

    fn to_tensor(e: AttentionError) -> TensorError {
        TensorError::invalid_argument("rope test", e.to_string())
    }

    #[test]
    fn large_inputs_take_the_parallel_path_with_the_same_result() {
        let rope = RotaryEmbedding::new(64, 10_000.0).unwrap();
        let x = sample((2, 4, 80, 64), 0.4); // above PARALLEL_MIN_ELEMENTS
        let whole = rope_forward(&rope, x.view(), RopePositions::Start(0)).unwrap();
        let row = rope_forward(
            &rope,
            x.slice(s![1..2, 3..4, .., ..]),
            RopePositions::Start(0),
        )
        .unwrap();
        assert_eq!(whole.slice(s![1..2, 3..4, .., ..]), row);
    }

    #[test]
    fn bad_input_is_an_error_naming_shapes() {
        assert!(RotaryEmbedding::new(7, 10_000.0).is_err());
        assert!(RotaryEmbedding::new(8, 0.5).is_err());
        let rope = RotaryEmbedding::new(8, 10_000.0).unwrap();
        let x = Array4::<f32>::zeros((1, 2, 3, 6));
        let err = rope_forward(&rope, x.view(), RopePositions::Start(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[1, 2, 3, 6]"), "{err}");
        let x = Array4::<f32>::zeros((2, 2, 3, 8));
        let ids = Array1::from_iter(0..4usize)
            .into_shape_with_order((2, 2))
            .unwrap();
        let err = rope_forward(&rope, x.view(), RopePositions::Ids(ids.view()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[2, 2]") && err.contains("[2, 2, 3, 8]"),
            "{err}"
        );
        let tape = Tape::<f32>::new();
        let v = tape.variable(ndarray::Array3::<f32>::zeros((2, 3, 8)));
        assert!(rope.apply(v, 0).is_err());
    }
}
