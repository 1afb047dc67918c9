//! Parameters live outside the tape, in a [`ParamStore`].
//!
//! A training step binds each parameter to a fresh [`Tape`](crate::autograd::Tape) with
//! [`Tape::param`](crate::autograd::Tape::param) (no copy: the tape shares the store's buffer), runs
//! the forward pass, and calls `backward`. The resulting [`Gradients`](crate::autograd::Gradients) are
//! added to the store's gradient buffers with [`ParamStore::accumulate`], so several micro-batches
//! accumulate before one optimizer step. An optimizer then walks [`ParamStore::pairs_mut`], a
//! (value, gradient) pair per parameter as plain ndarray arrays.
//!
//! ```
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use ndarray::array;
//!
//! let mut store = ParamStore::<f32>::new();
//! let w = store.add("w", array![2.0f32, -1.0])?;
//! for _micro_batch in 0..2 {
//!     let tape = Tape::new();
//!     let wv = tape.param(&store, w)?;
//!     let loss = wv.sum()?; // d loss / d w = [1, 1]
//!     store.accumulate(&tape.backward(loss)?)?;
//! }
//! assert_eq!(store.grad(w).unwrap().as_slice().unwrap(), &[2.0, 2.0]);
//! for (_name, value, grad) in store.pairs_mut() {
//!     value.zip_mut_with(grad, |v, g| *v -= 0.1 * g); // a plain SGD step
//! }
//! store.zero_grad();
//! assert_eq!(store.value(w).as_slice().unwrap(), &[1.8, -1.2]);
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use std::collections::HashMap;

use ndarray::ArrayD;

use crate::autograd::Gradients;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// Identifies a parameter within its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// Position of the parameter in its store (insertion order).
    pub fn index(self) -> usize {
        self.0
    }
}

/// One named parameter: its value, its accumulated gradient, and whether it trains.
#[derive(Debug)]
pub struct Parameter<T: Element> {
    name: String,
    value: Tensor<T>,
    grad: Option<ArrayD<T>>,
    trainable: bool,
}

impl<T: Element> Parameter<T> {
    /// The name given when the parameter was added.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The current value.
    pub fn value(&self) -> &ArrayD<T> {
        self.value.array()
    }
    /// The accumulated gradient, or `None` if nothing was accumulated since the last `zero_grad`.
    pub fn grad(&self) -> Option<&ArrayD<T>> {
        self.grad.as_ref()
    }
    /// Whether the parameter gets gradients when bound to a tape.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }
}

/// Named parameters with gradient buffers, in insertion order.
#[derive(Debug)]
pub struct ParamStore<T: Element = f32> {
    params: Vec<Parameter<T>>,
    by_name: HashMap<String, ParamId>,
}

impl<T: Element> Default for ParamStore<T> {
    fn default() -> Self {
        ParamStore {
            params: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T: Element> ParamStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trainable parameter; names must be unique.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<Tensor<T>>) -> Result<ParamId> {
        let name = name.into();
        if self.by_name.contains_key(&name) {
            return Err(TensorError::invalid_argument(
                "ParamStore::add",
                format!("a parameter named {name:?} already exists"),
            ));
        }
        let id = ParamId(self.params.len());
        self.params.push(Parameter {
            name: name.clone(),
            value: value.into(),
            grad: None,
            trainable: true,
        });
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Looks a parameter up by name.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.by_name.get(name).copied()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total number of scalar values over all parameters.
    pub fn num_elements(&self) -> usize {
        self.params.iter().map(|p| p.value.len()).sum()
    }

    /// The parameter with this id.
    ///
    /// # Panics
    /// If `id` came from another store with more parameters (ids are only meaningful in their store).
    pub fn get(&self, id: ParamId) -> &Parameter<T> {
        &self.params[id.0]
    }

    /// The parameter's value.
    pub fn value(&self, id: ParamId) -> &ArrayD<T> {
        self.params[id.0].value.array()
    }

    /// Mutable access to a value (copies first if a live tape still shares it).
    pub fn value_mut(&mut self, id: ParamId) -> &mut ArrayD<T> {
        self.params[id.0].value.array_mut()
    }

    /// Replaces a value; the new value must have the same shape.
    pub fn set_value(&mut self, id: ParamId, value: impl Into<Tensor<T>>) -> Result<()> {
        let value = value.into();
        let param = self.params.get_mut(id.0).ok_or_else(|| unknown_param(id))?;
        if param.value.shape() != value.shape() {
            return Err(TensorError::shape_mismatch(
                "ParamStore::set_value",
                param.value.shape(),
                value.shape(),
                format!("parameter {:?} keeps its shape", param.name),
            ));
        }
        param.value = value;
        Ok(())
    }

    /// The accumulated gradient, if any.
    pub fn grad(&self, id: ParamId) -> Option<&ArrayD<T>> {
        self.params[id.0].grad.as_ref()
    }

    /// Freezes (`false`) or unfreezes a parameter: a frozen one binds to tapes as a constant.
    pub fn set_trainable(&mut self, id: ParamId, trainable: bool) {
        self.params[id.0].trainable = trainable;
    }

    /// All parameters with their ids, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Parameter<T>)> {
        self.params.iter().enumerate().map(|(i, p)| (ParamId(i), p))
    }

    /// `(name, value, gradient)` for every trainable parameter that has a gradient: what an optimizer
    /// steps over. Values are updated in place, unless a live tape still shares them: then each is
    /// copied first (the tape keeps the values its backward pass used). Drop the tape before the
    /// optimizer step to avoid the copy.
    pub fn pairs_mut(&mut self) -> impl Iterator<Item = (&str, &mut ArrayD<T>, &ArrayD<T>)> {
        self.params
            .iter_mut()
            .filter(|p| p.trainable)
            .filter_map(|p| {
                let grad = p.grad.as_ref()?;
                Some((p.name.as_str(), p.value.array_mut(), grad))
            })
    }

    /// Adds a backward pass's parameter gradients into the store's buffers (gradient accumulation).
    pub fn accumulate(&mut self, grads: &Gradients<T>) -> Result<()> {
        for (id, grad) in grads.params() {
            let param = self.params.get_mut(id.0).ok_or_else(|| unknown_param(id))?;
            if param.value.shape() != grad.shape() {
                return Err(TensorError::shape_mismatch(
                    "ParamStore::accumulate",
                    param.value.shape(),
                    grad.shape(),
                    format!(
                        "gradient for {:?} (was it computed with another store?)",
                        param.name
                    ),
                ));
            }
            match &mut param.grad {
                Some(acc) => crate::ops::elementwise::add_assign(acc, &grad.view()),
                slot @ None => {
                    let mut copy = crate::buffers::array_for_overwrite(grad.raw_dim());
                    copy.assign(grad);
                    *slot = Some(copy);
                }
            }
        }
        Ok(())
    }

    /// Forgets every accumulated gradient.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            if let Some(grad) = p.grad.take() {
                crate::buffers::recycle(grad);
            }
        }
    }

    /// Multiplies every accumulated gradient by `factor` (e.g. 1/steps after accumulation).
    pub fn scale_grads(&mut self, factor: T) {
        for grad in self.params.iter_mut().filter_map(|p| p.grad.as_mut()) {
            grad.mapv_inplace(|g| g * factor);
        }
    }

    pub(crate) fn tensor(&self, id: ParamId) -> Result<&Tensor<T>> {
        self.params
            .get(id.0)
            .map(|p| &p.value)
            .ok_or_else(|| unknown_param(id))
    }
}

fn unknown_param(id: ParamId) -> TensorError {
    TensorError::Autograd(format!(
        "parameter id {} does not belong to this store",
        id.0
    ))
}
