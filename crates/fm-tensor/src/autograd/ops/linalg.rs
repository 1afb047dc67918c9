//! Matrix products on the tape: forward and backward both go through [`crate::gemm`], with
//! transposes passed as strided views (no copies).

use ndarray::{ArrayD, ArrayViewD, Ix2};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::gemm::{batched_matmul, gemm, matmul};
use crate::ops::broadcast::sum_to_shape;

/// `C = A·B` for 2-D operands.
struct MatMul;

fn as_matrix<'a, T: Element>(
    op: &'static str,
    x: &ArrayViewD<'a, T>,
) -> Result<ndarray::ArrayView2<'a, T>> {
    x.clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| TensorError::invalid_shape(op, x.shape(), "expected a 2-D matrix"))
}

impl<T: Element> CustomOp<T> for MatMul {
    fn name(&self) -> &str {
        "matmul"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        let a = as_matrix("matmul", &inputs[0])?;
        let b = as_matrix("matmul", &inputs[1])?;
        Ok(matmul(a, b)?.into_dyn())
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let a = as_matrix("matmul", &ctx.inputs[0])?;
        let b = as_matrix("matmul", &ctx.inputs[1])?;
        let dc = as_matrix("matmul", &ctx.grad_output)?;
        let da = if ctx.needs_grad[0] {
            // dA = dC · Bᵀ
            let mut da = ndarray::Array2::zeros(a.raw_dim());
            gemm(T::one(), dc, b.t(), T::zero(), da.view_mut())?;
            Some(da.into_dyn())
        } else {
            None
        };
        let db = if ctx.needs_grad[1] {
            // dB = Aᵀ · dC
            let mut db = ndarray::Array2::zeros(b.raw_dim());
            gemm(T::one(), a.t(), dc, T::zero(), db.view_mut())?;
            Some(db.into_dyn())
        } else {
            None
        };
        Ok(vec![da, db])
    }
}

/// Batched `C = A·B` over the last two axes, batch axes broadcast (PyTorch `matmul` rules, rank ≥ 2).
struct BatchedMatMul;

/// The view with its last two axes swapped (a transpose without copying).
fn swap_last_two<'a, T>(x: &ArrayViewD<'a, T>) -> ArrayViewD<'a, T> {
    let mut t = x.clone();
    let n = t.ndim();
    t.swap_axes(n - 1, n - 2);
    t
}

impl<T: Element> CustomOp<T> for BatchedMatMul {
    fn name(&self) -> &str {
        "matmul"
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        batched_matmul(inputs[0].clone(), inputs[1].clone())
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let (a, b, dc) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad_output.clone());
        // Products at the broadcast batch shape, then summed over the axes each operand was broadcast on.
        let da = if ctx.needs_grad[0] {
            Some(sum_to_shape(
                batched_matmul(dc.clone(), swap_last_two(b))?.view(),
                a.shape(),
            )?)
        } else {
            None
        };
        let db = if ctx.needs_grad[1] {
            Some(sum_to_shape(
                batched_matmul(swap_last_two(a), dc)?.view(),
                b.shape(),
            )?)
        } else {
            None
        };
        Ok(vec![da, db])
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Matrix product. Two 2-D variables: `[m, k] · [k, n] → [m, n]`. Higher ranks: a batched product
    /// over the last two axes with the batch axes broadcast, e.g. `[4, 1, m, k] · [3, k, n] → [4, 3, m, n]`.
    pub fn matmul(self, rhs: Var<'t, T>) -> Result<Var<'t, T>> {
        let (lhs_rank, rhs_rank) = (self.shape().len(), rhs.shape().len());
        if lhs_rank == 2 && rhs_rank == 2 {
            self.tape().apply(MatMul, &[self, rhs])
        } else {
            self.tape().apply(BatchedMatMul, &[self, rhs])
        }
    }
}
