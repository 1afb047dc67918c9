//! The tape: records ops as they run, then replays their backward passes in reverse.
//!
//! A [`Tape`] is a short-lived object: make one per step, bind parameters and inputs to it, run the
//! forward pass through [`Var`] methods (or [`Tape::apply`] for custom ops), call
//! [`Tape::backward`], and drop it. Dropping the tape frees every intermediate value; parameters live
//! in a [`ParamStore`](crate::autograd::ParamStore) and are untouched.
//!
//! Values on the tape are [`Tensor`]s (shared, not copied, between the tape and the op that keeps an
//! input for its backward). A tape made with [`Tape::no_grad`] records no backward information at all:
//! use it for evaluation and generation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, ArrayViewD};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::params::{ParamId, ParamStore};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// Records a computation for reverse-mode differentiation.
pub struct Tape<T: Element = f32> {
    id: u64,
    grad_enabled: bool,
    nodes: RefCell<Vec<Node<T>>>,
}

struct Node<T: Element> {
    value: Tensor<T>,
    requires_grad: bool,
    kind: NodeKind<T>,
}

enum NodeKind<T: Element> {
    /// A value without a gradient (constant input, or output of an op nothing differentiable feeds).
    Constant,
    /// A leaf whose gradient is reported: a bound parameter or a [`Tape::variable`].
    Leaf { param: Option<ParamId> },
    /// The output of a recorded op.
    Op {
        op: Box<dyn CustomOp<T>>,
        inputs: Vec<usize>,
    },
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Tape::new()
    }
}

fn next_tape_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<T: Element> Tape<T> {
    /// A tape that records gradients.
    pub fn new() -> Self {
        Tape {
            id: next_tape_id(),
            grad_enabled: true,
            nodes: RefCell::new(Vec::new()),
        }
    }

    /// A tape for evaluation: ops compute their outputs, nothing is kept for a backward pass, and
    /// [`backward`](Self::backward) reports an error.
    pub fn no_grad() -> Self {
        Tape {
            id: next_tape_id(),
            grad_enabled: false,
            nodes: RefCell::new(Vec::new()),
        }
    }

    /// Whether this tape records gradients.
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// Number of values recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, value: Tensor<T>, requires_grad: bool, kind: NodeKind<T>) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            value,
            requires_grad,
            kind,
        });
        Var::new(self, nodes.len() - 1)
    }

    /// A value that gets no gradient (data, targets, masks).
    pub fn constant(&self, value: impl Into<Tensor<T>>) -> Var<'_, T> {
        self.push(value.into(), false, NodeKind::Constant)
    }

    /// A leaf whose gradient [`Gradients::of`] reports (on a no-grad tape it is a constant).
    pub fn variable(&self, value: impl Into<Tensor<T>>) -> Var<'_, T> {
        if self.grad_enabled {
            self.push(value.into(), true, NodeKind::Leaf { param: None })
        } else {
            self.constant(value)
        }
    }

    /// Binds a parameter from `store` (no copy). Its gradient is reported under its [`ParamId`];
    /// frozen parameters and no-grad tapes bind it as a constant.
    pub fn param(&self, store: &ParamStore<T>, id: ParamId) -> Result<Var<'_, T>> {
        let value = store.tensor(id)?.clone();
        if self.grad_enabled && store.get(id).is_trainable() {
            Ok(self.push(value, true, NodeKind::Leaf { param: Some(id) }))
        } else {
            Ok(self.push(value, false, NodeKind::Constant))
        }
    }

    /// The same value as `var`, cut from the graph: no gradient flows through it.
    pub fn detach<'t>(&'t self, var: Var<'t, T>) -> Result<Var<'t, T>> {
        let value = self.value(var)?;
        Ok(self.constant(value))
    }

    /// Runs `op` on `inputs` and records it for the backward pass.
    ///
    /// This is the extension point: built-in ops, fm-attention's and fm-loss's fused kernels and a
    /// user's own ops are all recorded through it.
    pub fn apply<'t>(&'t self, op: impl CustomOp<T>, inputs: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        self.apply_boxed(Box::new(op), inputs)
    }

    /// [`apply`](Self::apply) for an op that is already boxed.
    pub fn apply_boxed<'t>(
        &'t self,
        mut op: Box<dyn CustomOp<T>>,
        inputs: &[Var<'t, T>],
    ) -> Result<Var<'t, T>> {
        for var in inputs {
            self.check_owns(*var, op.name())?;
        }
        // The op computes on views of the recorded values while the node list is borrowed; it cannot
        // reach the tape, so the borrow cannot conflict.
        let (output, requires_grad) = {
            let nodes = self.nodes.borrow();
            let views: Vec<ArrayViewD<'_, T>> = inputs
                .iter()
                .map(|v| nodes[v.index()].value.view())
                .collect();
            let requires_grad = inputs.iter().any(|v| nodes[v.index()].requires_grad);
            (Tensor::from(op.forward(&views)?), requires_grad)
        };
        if requires_grad && self.grad_enabled {
            let inputs = inputs.iter().map(|v| v.index()).collect();
            Ok(self.push(output, true, NodeKind::Op { op, inputs }))
        } else {
            Ok(self.push(output, false, NodeKind::Constant))
        }
    }

    /// The value of a variable (a shared handle, no copy).
    pub fn value(&self, var: Var<'_, T>) -> Result<Tensor<T>> {
        self.check_owns(var, "value")?;
        Ok(self.nodes.borrow()[var.index()].value.clone())
    }

    /// The shape of a variable's value.
    pub fn shape(&self, var: Var<'_, T>) -> Result<Vec<usize>> {
        self.check_owns(var, "shape")?;
        Ok(self.nodes.borrow()[var.index()].value.shape().to_vec())
    }

    /// Whether gradients flow to `var` from some leaf.
    pub fn requires_grad(&self, var: Var<'_, T>) -> bool {
        self.nodes
            .borrow()
            .get(var.index())
            .is_some_and(|n| n.requires_grad)
    }

    fn check_owns(&self, var: Var<'_, T>, op: &str) -> Result<()> {
        if !std::ptr::eq(var.tape(), self) {
            return Err(TensorError::Autograd(format!(
                "{op}: the variable belongs to another tape"
            )));
        }
        Ok(())
    }

    /// Gradients of a scalar `loss` (one element) with respect to every leaf and bound parameter.
    pub fn backward(&self, loss: Var<'_, T>) -> Result<Gradients<T>> {
        let shape = self.shape(loss)?;
        if shape.iter().product::<usize>() != 1 {
            return Err(TensorError::Autograd(format!(
                "backward needs a loss with one element, got shape {shape:?} (reduce it first, or use backward_with)"
            )));
        }
        self.backward_with(loss, ArrayD::from_elem(ndarray::IxDyn(&shape), T::one()))
    }

    /// Vector-Jacobian product: gradients of `Σ output · grad_output` for a given ∂loss/∂output.
    pub fn backward_with(
        &self,
        output: Var<'_, T>,
        grad_output: ArrayD<T>,
    ) -> Result<Gradients<T>> {
        if !self.grad_enabled {
            return Err(TensorError::Autograd("backward on a no-grad tape".into()));
        }
        self.check_owns(output, "backward")?;
        let nodes = self.nodes.borrow();
        let root = output.index();
        if nodes[root].value.shape() != grad_output.shape() {
            return Err(TensorError::shape_mismatch(
                "backward",
                nodes[root].value.shape(),
                grad_output.shape(),
                "grad_output must have the output's shape",
            ));
        }
        let mut gradients = Gradients {
            tape_id: self.id,
            leaves: HashMap::new(),
            params: HashMap::new(),
        };
        if !nodes[root].requires_grad {
            return Ok(gradients);
        }
        let mut grads: Vec<Option<ArrayD<T>>> = Vec::new();
        grads.resize_with(root + 1, || None);
        grads[root] = Some(grad_output);

        for index in (0..=root).rev() {
            let Some(grad) = grads[index].take() else {
                continue;
            };
            let node = &nodes[index];
            match &node.kind {
                NodeKind::Constant => {}
                NodeKind::Leaf { param } => match param {
                    Some(id) => add_into(&mut gradients.params, *id, grad),
                    None => {
                        gradients.leaves.insert(index, grad);
                    }
                },
                NodeKind::Op { op, inputs } => {
                    let views: Vec<ArrayViewD<'_, T>> =
                        inputs.iter().map(|&i| nodes[i].value.view()).collect();
                    let needs_grad: Vec<bool> =
                        inputs.iter().map(|&i| nodes[i].requires_grad).collect();
                    let ctx = BackwardContext {
                        inputs: &views,
                        output: node.value.view(),
                        grad_output: grad.view(),
                        needs_grad: &needs_grad,
                    };
                    let input_grads = op.backward(&ctx)?;
                    if input_grads.len() != inputs.len() {
                        return Err(TensorError::Autograd(format!(
                            "{}: backward returned {} gradients for {} inputs",
                            op.name(),
                            input_grads.len(),
                            inputs.len()
                        )));
                    }
                    for ((&input, input_grad), view) in inputs.iter().zip(input_grads).zip(&views) {
                        let Some(input_grad) = input_grad else {
                            continue;
                        };
                        if !nodes[input].requires_grad {
                            continue;
                        }
                        if input_grad.shape() != view.shape() {
                            return Err(TensorError::Autograd(format!(
                                "{}: backward returned a gradient of shape {:?} for an input of shape {:?}",
                                op.name(),
                                input_grad.shape(),
                                view.shape()
                            )));
                        }
                        match &mut grads[input] {
                            Some(acc) => {
                                crate::ops::elementwise::add_assign(acc, &input_grad.view());
                                crate::buffers::recycle(input_grad);
                            }
                            slot @ None => *slot = Some(input_grad),
                        }
                    }
                    // This node's gradient is spent: its memory serves the next op's output.
                    crate::buffers::recycle(grad);
                }
            }
        }
        Ok(gradients)
    }
}

fn add_into<T: Element>(map: &mut HashMap<ParamId, ArrayD<T>>, id: ParamId, grad: ArrayD<T>) {
    match map.get_mut(&id) {
        // A parameter bound twice (tied weights) gets the sum of both uses.
        Some(acc) => {
            crate::ops::elementwise::add_assign(acc, &grad.view());
            crate::buffers::recycle(grad);
        }
        None => {
            map.insert(id, grad);
        }
    }
}

/// The result of a backward pass: a gradient per bound parameter and per [`Tape::variable`].
#[derive(Debug)]
pub struct Gradients<T: Element = f32> {
    tape_id: u64,
    leaves: HashMap<usize, ArrayD<T>>,
    params: HashMap<ParamId, ArrayD<T>>,
}

impl<T: Element> Gradients<T> {
    /// The gradient of a leaf made with [`Tape::variable`] (or a bound parameter's leaf), if the loss
    /// depends on it.
    pub fn of(&self, var: Var<'_, T>) -> Option<&ArrayD<T>> {
        if var.tape().id != self.tape_id {
            return None;
        }
        self.leaves.get(&var.index()).or_else(|| {
            let nodes = var.tape().nodes.borrow();
            match nodes.get(var.index()).map(|n| &n.kind) {
                Some(NodeKind::Leaf { param: Some(id) }) => self.params.get(id),
                _ => None,
            }
        })
    }

    /// The gradient of a parameter, if the loss depends on it.
    pub fn param(&self, id: ParamId) -> Option<&ArrayD<T>> {
        self.params.get(&id)
    }

    /// Every parameter gradient, in parameter order.
    pub fn params(&self) -> impl Iterator<Item = (ParamId, &ArrayD<T>)> {
        let mut ids: Vec<_> = self.params.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().map(move |id| (id, &self.params[&id]))
    }

    /// Takes a parameter's gradient out.
    pub fn take_param(&mut self, id: ParamId) -> Option<ArrayD<T>> {
        self.params.remove(&id)
    }
}

impl<T: Element> Drop for Gradients<T> {
    fn drop(&mut self) {
        // Gradients are as large as the activations: their memory serves the next pass.
        for grad in self
            .leaves
            .drain()
            .map(|(_, g)| g)
            .chain(self.params.drain().map(|(_, g)| g))
        {
            crate::buffers::recycle(grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::{check_gradients, GradCheckConfig};
    use ndarray::{array, ArrayD, ArrayViewD};

    /// y = 2x, as a user would write it.
    struct Double;
    impl CustomOp<f64> for Double {
        fn name(&self) -> &str {
            "double"
        }
        fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            Ok(inputs[0].mapv(|x| 2.0 * x))
        }
        fn backward(&self, ctx: &BackwardContext<'_, f64>) -> Result<Vec<Option<ArrayD<f64>>>> {
            Ok(vec![Some(ctx.grad_output.mapv(|g| 2.0 * g))])
        }
    }

    /// Returns a gradient of the wrong shape: the tape must catch it.
    struct WrongShapedGrad;
    impl CustomOp<f64> for WrongShapedGrad {
        fn name(&self) -> &str {
            "wrong"
        }
        fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            Ok(inputs[0].to_owned())
        }
        fn backward(&self, _ctx: &BackwardContext<'_, f64>) -> Result<Vec<Option<ArrayD<f64>>>> {
            Ok(vec![Some(ArrayD::zeros(ndarray::IxDyn(&[7])))])
        }
    }

    #[test]
    fn matmul_gradients_match_finite_differences() {
        let a = array![[0.3, -1.2, 0.5], [2.0, 0.1, -0.7]].into_dyn();
        let b = array![[1.5, 0.2], [-0.5, 0.9], [0.25, -1.1]].into_dyn();
        let report = check_gradients(
            |_, x| x[0].matmul(x[1]),
            &[a, b],
            &GradCheckConfig::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.checked, 12);
    }

    #[test]
    fn gradient_of_a_var_used_twice_is_summed() {
        let tape = Tape::<f64>::new();
        let x = tape.variable(array![[2.0]]);
        let y = x.matmul(x).unwrap(); // x², dy/dx = 2x = 4
        let g = tape.backward(y).unwrap();
        assert_eq!(g.of(x).unwrap()[[0, 0]], 4.0);
    }

    #[test]
    fn tied_parameter_bound_twice_gets_both_contributions() {
        let mut store = ParamStore::<f64>::new();
        let w = store.add("w", array![[3.0]]).unwrap();
        let tape = Tape::new();
        let a = tape.param(&store, w).unwrap();
        let b = tape.param(&store, w).unwrap();
        let y = a.matmul(b).unwrap();
        let g = tape.backward(y).unwrap();
        assert_eq!(g.param(w).unwrap()[[0, 0]], 6.0);
    }

    #[test]
    fn custom_op_chain() {
        let tape = Tape::<f64>::new();
        let x = tape.variable(array![1.0, -2.0]);
        let y = tape.apply(Double, &[x]).unwrap();
        let z = tape.apply(Double, &[y]).unwrap();
        let g = tape.backward_with(z, array![1.0, 0.5].into_dyn()).unwrap();
        assert_eq!(g.of(x).unwrap().as_slice().unwrap(), &[4.0, 2.0]);
        assert!(g.of(y).is_none(), "intermediate values report no gradient");
    }

    #[test]
    fn wrong_gradient_shape_is_reported_not_accumulated() {
        let tape = Tape::<f64>::new();
        let x = tape.variable(array![1.0, 2.0]);
        let y = tape.apply(WrongShapedGrad, &[x]).unwrap();
        let err = tape
            .backward_with(y, array![1.0, 1.0].into_dyn())
            .unwrap_err();
        assert!(
            err.to_string().contains("wrong") && err.to_string().contains("[7]"),
            "{err}"
        );
    }

    #[test]
    fn backward_needs_scalar_loss_and_a_grad_tape() {
        let tape = Tape::<f64>::new();
        let x = tape.variable(array![1.0, 2.0]);
        assert!(tape
            .backward(x)
            .unwrap_err()
            .to_string()
            .contains("one element"));
        let eval = Tape::<f64>::no_grad();
        let x = eval.variable(array![1.0]);
        let y = eval.apply(Double, &[x]).unwrap();
        assert_eq!(y.value().view()[[0]], 2.0);
        assert!(!eval.requires_grad(y));
        assert!(eval.backward(y).is_err());
    }

    #[test]
    fn vars_from_another_tape_are_rejected() {
        let t1 = Tape::<f64>::new();
        let t2 = Tape::<f64>::new();
        let a = t1.variable(array![[1.0]]);
        let b = t2.variable(array![[1.0]]);
        let err = a.matmul(b).unwrap_err();
        assert!(err.to_string().contains("another tape"), "{err}");
    }

    #[test]
    fn constants_and_frozen_params_get_no_gradient() {
        let mut store = ParamStore::<f64>::new();
        let w = store.add("w", array![[3.0]]).unwrap();
        store.set_trainable(w, false);
        let tape = Tape::new();
        let wv = tape.param(&store, w).unwrap();
        let c = tape.constant(array![[2.0]]);
        let y = wv.matmul(c).unwrap();
        let g = tape.backward(y).unwrap();
        assert!(g.param(w).is_none());
        assert!(g.of(c).is_none());
    }

    #[test]
    fn binding_a_param_shares_its_buffer() {
        let mut store = ParamStore::<f32>::new();
        let w = store.add("w", array![1.0f32, 2.0]).unwrap();
        let tape = Tape::new();
        let v = tape.param(&store, w).unwrap();
        assert!(v.value().shares_storage_with(store.tensor(w).unwrap()));
    }

    #[test]
    fn accumulate_adds_and_checks_shapes() {
        let mut store = ParamStore::<f64>::new();
        let w = store.add("w", array![[1.0, 2.0]]).unwrap();
        assert!(
            store.add("w", array![1.0]).is_err(),
            "duplicate names are rejected"
        );
        for _ in 0..3 {
            let tape = Tape::new();
            let wv = tape.param(&store, w).unwrap();
            let x = tape.constant(array![[1.0], [10.0]]);
            let y = wv.matmul(x).unwrap();
            store.accumulate(&tape.backward(y).unwrap()).unwrap();
        }
        assert_eq!(store.grad(w).unwrap(), &array![[3.0, 30.0]].into_dyn());
        store.scale_grads(1.0 / 3.0);
        assert_eq!(store.grad(w).unwrap(), &array![[1.0, 10.0]].into_dyn());
        store.zero_grad();
        assert!(store.grad(w).is_none());
        assert_eq!(store.pairs_mut().count(), 0);
    }
}
