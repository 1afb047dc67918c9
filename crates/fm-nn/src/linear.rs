//! [`Linear`]: `y = x·Wᵀ + b`, with the weight stored `[out, in]` as PyTorch stores it.
//!
//! The product runs as one fused op ([`LinearOp`]) on fm-tensor's GEMM, reading `W` transposed in
//! place: no copy of the weight per call, and the backward pass is three GEMM-shaped products
//! (`∂x = ∂y·W`, `∂W = ∂yᵀ·x`, `∂b = Σ ∂y`) over the flattened leading axes.

use fm_tensor::autograd::{BackwardContext, CustomOp, Var};
use fm_tensor::init::Initializer;
use fm_tensor::{buffers, gemm, Element, TensorError};
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, Ix1, Ix2, IxDyn};

use crate::error::Result;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// A fully connected layer.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: ParamRef,
    bias: Option<ParamRef>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// Registers `weight` `[out, in]` and, if `bias`, `bias` `[out]` (zeros) under `builder`.
    ///
    /// The weight is drawn from `init` (GPT-2 style models use `Normal { std: 0.02 }`).
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        in_features: usize,
        out_features: usize,
        bias: bool,
        init: Initializer,
    ) -> Result<Self> {
        let weight = builder.add("weight", &[out_features, in_features], init)?;
        let bias = if bias {
            Some(builder.add("bias", &[out_features], Initializer::Zeros)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weight parameter.
    pub fn weight(&self) -> &ParamRef {
        &self.weight
    }

    /// `x·Wᵀ + b` over the last axis of `x` (`[..., in] → [..., out]`).
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        let weight = ctx.param(&self.weight)?;
        match &self.bias {
            Some(bias) => linear(x, weight, Some(ctx.param(bias)?)),
            None => linear(x, weight, None),
        }
    }
}

impl Module for Linear {
    fn parameters(&self) -> Vec<ParamRef> {
        std::iter::once(self.weight.clone())
            .chain(self.bias.clone())
            .collect()
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

/// Records `x·Wᵀ + b` (`x` `[..., in]`, `weight` `[out, in]`, `bias` `[out]`) as one op.
pub fn linear<'t, T: Element>(
    x: Var<'t, T>,
    weight: Var<'t, T>,
    bias: Option<Var<'t, T>>,
) -> Result<Var<'t, T>> {
    let inputs: Vec<Var<'t, T>> = [x, weight].into_iter().chain(bias).collect();
    Ok(x.tape().apply(LinearOp, &inputs)?)
}

/// The fused `x·Wᵀ + b` op; inputs `[x, weight]` or `[x, weight, bias]`.
#[derive(Debug, Clone, Copy)]
pub struct LinearOp;

/// Adds the bias `b` to every row of `y`, over blocks of rows in parallel when `y` is large
/// (every element on its own: the same bits for any number of threads).
fn add_to_rows<T: Element>(y: &mut Array2<T>, b: ArrayViewD<'_, T>) {
    /// Below this many elements the rows are added on the calling thread.
    const PARALLEL_MIN: usize = 1 << 16;
    // One row's shape, checked once (forward checked the bias is `[out]`), not per row.
    let b = b
        .into_dimensionality::<Ix1>()
        .expect("bias checked to be [out]");
    let add_rows = |mut rows: ArrayViewMut2<'_, T>| {
        for mut row in rows.rows_mut() {
            row.zip_mut_with(&b, |y, &b| *y = *y + b);
        }
    };
    if y.len() < PARALLEL_MIN {
        add_rows(y.view_mut());
        return;
    }
    // Blocks of about 16K elements: a few per thread, each long enough to amortise its task.
    let rows_per_block = ((1 << 14) / y.ncols().max(1)).max(1);
    y.axis_chunks_iter_mut(Axis(0), rows_per_block)
        .into_par_iter()
        .for_each(add_rows);
}

/// Runs `f` on `x` viewed as `[rows, cols]` where `cols` is its last axis (a view when `x` is
/// contiguous, else on a contiguous copy).
fn with_matrix<T: Element, R>(
    x: &ArrayViewD<'_, T>,
    f: impl FnOnce(ArrayView2<'_, T>) -> Result<R, TensorError>,
) -> Result<R, TensorError> {
    let cols = *x.shape().last().unwrap_or(&1);
    let rows = x.len().checked_div(cols).unwrap_or(0);
    fn reshape<T: Element>(
        v: ArrayViewD<'_, T>,
        rows: usize,
        cols: usize,
    ) -> Result<ArrayView2<'_, T>, TensorError> {
        v.into_shape_with_order((rows, cols))
            .map_err(|e| TensorError::invalid_argument("linear", e.to_string()))
    }
    if x.is_standard_layout() {
        f(reshape(x.view(), rows, cols)?)
    } else {
        let owned = x.as_standard_layout().into_owned();
        f(reshape(owned.view(), rows, cols)?)
    }
}

impl<T: Element> CustomOp<T> for LinearOp {
    fn name(&self) -> &str {
        "linear"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>, TensorError> {
        let (x, w) = (&inputs[0], &inputs[1]);
        if w.ndim() != 2 || x.ndim() == 0 || x.shape()[x.ndim() - 1] != w.shape()[1] {
            return Err(TensorError::shape_mismatch(
                "linear",
                x.shape(),
                w.shape(),
                "expected x [..., in] and weight [out, in]",
            ));
        }
        let out = w.shape()[0];
        if let Some(b) = inputs.get(2) {
            if b.shape() != [out] {
                return Err(TensorError::shape_mismatch(
                    "linear",
                    w.shape(),
                    b.shape(),
                    "bias must be [out]",
                ));
            }
        }
        let w2 = w.view().into_dimensionality::<Ix2>().expect("checked rank");
        let mut y = with_matrix(x, |x2| {
            let mut y = buffers::array_for_overwrite((x2.nrows(), out));
            gemm(T::one(), x2, w2.t(), T::zero(), y.view_mut())?;
            Ok(y)
        })?;
        if let Some(b) = inputs.get(2) {
            add_to_rows(&mut y, b.view());
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank ≥ 1") = out;
        Ok(y.into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements"))
    }

    fn backward(
        &self,
        ctx: &BackwardContext<'_, T>,
    ) -> Result<Vec<Option<ArrayD<T>>>, TensorError> {
        let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
        let w2 = w.view().into_dimensionality::<Ix2>().expect("checked rank");
        let grad_x = if ctx.needs_grad[0] {
            let gx = with_matrix(&ctx.grad_output, |g2| {
                let mut gx = buffers::array_for_overwrite((g2.nrows(), w2.ncols()));
                gemm(T::one(), g2, w2, T::zero(), gx.view_mut())?;
                Ok(gx)
            })?;
            Some(
                gx.into_shape_with_order(IxDyn(x.shape()))
                    .expect("same number of elements"),
            )
        } else {
            None
        };
        let grad_w = if ctx.needs_grad[1] {
            let gw = with_matrix(&ctx.grad_output, |g2| {
                with_matrix(x, |x2| {
                    let mut gw = buffers::array_for_overwrite((w2.nrows(), w2.ncols()));
                    gemm(T::one(), g2.t(), x2, T::zero(), gw.view_mut())?;
                    Ok(gw)
                })
            })?;
            Some(gw.into_dyn())
        } else {
            None
        };
        let mut grads = vec![grad_x, grad_w];
        if ctx.inputs.len() == 3 {
            grads.push(if ctx.needs_grad[2] {
                // fm-tensor's column sum: parallel over column blocks, each column summed in row
                // order (ndarray's `sum_axis` runs on one thread).
                Some(with_matrix(&ctx.grad_output, |g2| {
                    fm_tensor::ops::reduce::sum(g2.into_dyn(), &[0], false)
                })?)
            } else {
                None
            });
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::Compute;

    /// The bias reaches every element, on the parallel path (more than 2^16 elements, rows not a
    /// multiple of the block) and on the serial one, with the same bits for 1 and 3 threads.
    #[test]
    fn bias_is_added_to_every_row_for_any_thread_count() {
        for (rows, cols) in [(300, 257), (5, 7)] {
            let y0 = Array2::from_shape_fn((rows, cols), |(i, j)| (i * 31 + j * 7) as f32 * 0.01);
            let b = ndarray::Array1::from_shape_fn(cols, |j| 1.0 - j as f32 * 0.003).into_dyn();
            let want = &y0 + &b.view().into_dimensionality::<ndarray::Ix1>().unwrap();
            for threads in [1, 3] {
                let mut y = y0.clone();
                Compute::with_threads(threads)
                    .unwrap()
                    .install(|| add_to_rows(&mut y, b.view()));
                assert_eq!(y, want, "{rows}x{cols}, {threads} threads");
            }
        }
    }
}
