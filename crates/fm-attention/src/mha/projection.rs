//! The four projections of multi-head attention: `y = x·Wᵀ + b` with `W` stored `[out, in]` as
//! PyTorch's `nn.Linear` stores it, recorded as one op on the tape.
//!
//! Forward and backward are GEMM calls with the transposes passed as strided views, so the weight is
//! never copied; a decode step's single row takes fm-tensor's matrix-vector path.

use fm_tensor::autograd::{BackwardContext, CustomOp, ParamId, ParamStore, Tape, Var};
use fm_tensor::{gemm, init, Element, TensorError};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix1, Ix2, IxDyn};

use crate::error::{AttentionError, Result};

/// The parameters of one projection in a [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Projection {
    pub(crate) weight: ParamId,
    pub(crate) bias: Option<ParamId>,
    pub(crate) in_features: usize,
    pub(crate) out_features: usize,
}

/// A projection's parameters bound to a tape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoundProjection<'t, T: Element> {
    pub(crate) weight: Var<'t, T>,
    pub(crate) bias: Option<Var<'t, T>>,
}

impl Projection {
    /// Adds `"<name>.weight"` `[out, in]` and, with `bias`, `"<name>.bias"` `[out]` to `store`, drawn
    /// from U(−1/√in, 1/√in) as `nn.Linear` initialises both.
    pub(crate) fn create<T: Element>(
        store: &mut ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
        seed: u64,
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f64).sqrt();
        let weight = store.add(
            format!("{name}.weight"),
            init::uniform::<T>(&[out_features, in_features], -bound, bound, seed)?,
        )?;
        let bias = if bias {
            Some(store.add(
                format!("{name}.bias"),
                init::uniform::<T>(&[out_features], -bound, bound, seed ^ 0xb1a5)?,
            )?)
        } else {
            None
        };
        Ok(Projection {
            weight,
            bias,
            in_features,
            out_features,
        })
    }

    /// Finds `"<name>.weight"` (and `"<name>.bias"` when `bias`) in `store` and checks their shapes.
    pub(crate) fn find<T: Element>(
        store: &ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Self> {
        let lookup = |param: String, want: &[usize]| -> Result<ParamId> {
            let id = store.id(&param).ok_or_else(|| {
                AttentionError::config(
                    "multi-head attention weights",
                    format!("no parameter named {param:?} in the store"),
                )
            })?;
            let shape = store.value(id).shape();
            if shape != want {
                return Err(AttentionError::shape(
                    "multi-head attention weights",
                    format!("{param:?} is {shape:?}, the config needs {want:?}"),
                ));
            }
            Ok(id)
        };
        let weight = lookup(format!("{name}.weight"), &[out_features, in_features])?;
        let bias = if bias {
            Some(lookup(format!("{name}.bias"), &[out_features])?)
        } else {
            None
        };
        Ok(Projection {
            weight,
            bias,
            in_features,
            out_features,
        })
    }

    /// Binds the parameters to `tape`.
    pub(crate) fn bind<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        store: &ParamStore<T>,
    ) -> Result<BoundProjection<'t, T>> {
        Ok(BoundProjection {
            weight: tape.param(store, self.weight)?,
            bias: self.bias.map(|b| tape.param(store, b)).transpose()?,
        })
    }
}

impl<'t, T: Element> BoundProjection<'t, T> {
    /// `x·Wᵀ + b` for `x` `[..., in]`.
    pub(crate) fn apply(&self, x: Var<'t, T>) -> Result<Var<'t, T>> {
        let inputs: Vec<Var<'t, T>> = [x, self.weight].into_iter().chain(self.bias).collect();
        Ok(x.tape().apply(ProjectionOp, &inputs)?)
    }
}

/// `x·Wᵀ + b`; inputs `[x, weight]` or `[x, weight, bias]`.
struct ProjectionOp;

/// `x` as `[rows, last axis]` (a copy only when `x` is not contiguous).
fn as_rows<T: Element>(x: &ArrayViewD<'_, T>) -> fm_tensor::Result<Array2<T>> {
    let cols = x.shape().last().copied().unwrap_or(1);
    let rows = x.len().checked_div(cols).unwrap_or(0);
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, cols))
        .map_err(|e| TensorError::invalid_argument("projection", e.to_string()))
}

fn weight_matrix<'a, T: Element>(w: &ArrayViewD<'a, T>) -> fm_tensor::Result<ArrayView2<'a, T>> {
    w.clone().into_dimensionality::<Ix2>().map_err(|_| {
        TensorError::invalid_shape("projection", w.shape(), "weight must be [out, in]")
    })
}

impl<T: Element> CustomOp<T> for ProjectionOp {
    fn name(&self) -> &str {
        "projection"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> fm_tensor::Result<ArrayD<T>> {
        let (x, w) = (&inputs[0], weight_matrix(&inputs[1])?);
        let (out, in_features) = w.dim();
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != in_features {
            return Err(TensorError::shape_mismatch(
                "projection",
                x.shape(),
                w.shape(),
                "expected x [..., in] and weight [out, in]",
            ));
        }
        let rows = as_rows(x)?;
        let mut y = Array2::<T>::zeros((rows.nrows(), out));
        gemm(T::one(), rows.view(), w.t(), T::zero(), y.view_mut())?;
        if let Some(b) = inputs.get(2) {
            let b = b
                .view()
                .into_dimensionality::<Ix1>()
                .ok()
                .filter(|b| b.len() == out)
                .ok_or_else(|| {
                    TensorError::shape_mismatch(
                        "projection",
                        w.shape(),
                        b.shape(),
                        "bias must be [out]",
                    )
                })?;
            y.zip_mut_with(&b, |acc, &bias| *acc = *acc + bias);
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank ≥ 1") = out;
        Ok(y.into_shape_with_order(IxDyn(&shape))
            .expect("same element count"))
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> fm_tensor::Result<Vec<Option<ArrayD<T>>>> {
        let (x, w) = (&ctx.inputs[0], weight_matrix(&ctx.inputs[1])?);
        let g = as_rows(&ctx.grad_output)?;
        let dx = if ctx.needs_grad[0] {
            // dx = g · W
            let mut dx = Array2::<T>::zeros((g.nrows(), w.ncols()));
            gemm(T::one(), g.view(), w, T::zero(), dx.view_mut())?;
            Some(
                dx.into_shape_with_order(IxDyn(x.shape()))
                    .expect("same element count"),
            )
        } else {
            None
        };
        let dw = if ctx.needs_grad[1] {
            // dW = gᵀ · x
            let rows = as_rows(x)?;
            let mut dw = Array2::<T>::zeros(w.raw_dim());
            gemm(T::one(), g.t(), rows.view(), T::zero(), dw.view_mut())?;
            Some(dw.into_dyn())
        } else {
            None
        };
        let mut grads = vec![dx, dw];
        if ctx.inputs.len() == 3 {
            grads.push(ctx.needs_grad[2].then(|| g.sum_axis(Axis(0)).into_dyn()));
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::autograd::{check_gradients, GradCheckConfig};
    use ndarray::Array3;

    #[test]
    fn gradient_check_f64_with_and_without_bias() {
        let x = Array3::from_shape_fn((2, 3, 4), |(b, s, d)| {
            ((b * 12 + s * 4 + d) as f64 * 0.7).sin()
        })
        .into_dyn();
        let w = Array2::from_shape_fn((5, 4), |(o, i)| ((o * 4 + i) as f64 * 1.3).cos()).into_dyn();
        let b = ndarray::Array1::from_shape_fn(5, |o| o as f64 * 0.1).into_dyn();
        let report = check_gradients(
            |_tape, v| {
                let p = BoundProjection {
                    weight: v[1],
                    bias: Some(v[2]),
                };
                p.apply(v[0])
                    .map_err(|e| TensorError::invalid_argument("test", e.to_string()))?
                    .tanh()
            },
            &[x.clone(), w.clone(), b],
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        let report = check_gradients(
            |_tape, v| {
                let p = BoundProjection {
                    weight: v[1],
                    bias: None,
                };
                p.apply(v[0])
                    .map_err(|e| TensorError::invalid_argument("test", e.to_string()))?
                    .square()
            },
            &[x, w],
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
    }

    #[test]
    fn matches_a_plain_product() {
        let tape = Tape::<f64>::new();
        let x = Array2::from_shape_fn((3, 2), |(i, j)| (i + 2 * j) as f64);
        let w = Array2::from_shape_fn((4, 2), |(i, j)| i as f64 - j as f64);
        let p = BoundProjection {
            weight: tape.constant(w.clone()),
            bias: None,
        };
        let y = p
            .apply(tape.constant(x.clone()))
            .unwrap()
            .value()
            .into_dimensionality::<Ix2>()
            .unwrap();
        assert_eq!(y, x.dot(&w.t()));
    }
}
