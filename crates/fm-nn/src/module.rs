//! What every layer and model shares: named parameters, train/eval mode, and binding to a tape.
//!
//! Layers hold no values. They hold [`ParamRef`]s — a parameter's full hierarchical name (such as
//! `blocks.0.attn.qkv_proj.weight`), its id in a [`ParamStore`] and its shape — and record their
//! forward pass onto a [`Tape`] through a [`ForwardContext`], which binds each parameter once per
//! tape. This keeps the three layers of the design apart: values in the store (what an optimizer
//! steps), structure in the modules, the graph on a short-lived tape.
//!
//! - [`ParamBuilder`] registers parameters under a name prefix, each drawn from its initializer with
//!   a seed derived from the base seed and the parameter's full name, so a parameter's initial value
//!   does not depend on the order the model was built in.
//! - [`ForwardContext::bind`] lets a caller supply a parameter's variable itself (gradient checks
//!   differentiate with respect to every parameter this way).

use std::cell::RefCell;
use std::collections::HashMap;

use fm_tensor::autograd::{ParamId, ParamStore, Tape, Var};
use fm_tensor::init::Initializer;
use fm_tensor::Element;

use crate::error::{NnError, Result};

/// A parameter as a module sees it: full name, id in the store, shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef {
    /// Hierarchical name, `.`-separated (`blocks.0.mlp.fc_in.weight`).
    pub name: String,
    /// Where its value lives in the model's [`ParamStore`].
    pub id: ParamId,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl ParamRef {
    /// Number of scalars in the parameter.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A layer or model: named parameters and a train/eval switch.
///
/// Forward passes differ in their inputs (token ids, hidden states, masks, caches), so they are
/// inherent methods of each module rather than part of this trait.
pub trait Module {
    /// Every parameter, in a fixed order, with its full name.
    fn parameters(&self) -> Vec<ParamRef>;

    /// Switches training behaviour (dropout) on or off, for this module and all below it.
    fn set_training(&mut self, training: bool);

    /// Whether the module is in training mode.
    fn is_training(&self) -> bool;

    /// Training mode: dropout active.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode: dropout is the identity.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Total number of scalars in the parameters.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(ParamRef::numel).sum()
    }
}

/// Registers parameters in a [`ParamStore`] under a name prefix, with seeded initial values.
///
/// ```
/// use fm_nn::ParamBuilder;
/// use fm_tensor::{autograd::ParamStore, init::Initializer};
///
/// let mut store = ParamStore::<f32>::new();
/// let mut builder = ParamBuilder::new(&mut store, 42);
/// let mut attn = builder.scope("blocks.0.attn");
/// let w = attn.add("weight", &[4, 4], Initializer::Normal { mean: 0.0, std: 0.02 })?;
/// assert_eq!(w.name, "blocks.0.attn.weight");
/// # Ok::<(), fm_nn::NnError>(())
/// ```
pub struct ParamBuilder<'a, T: Element> {
    store: &'a mut ParamStore<T>,
    prefix: String,
    seed: u64,
}

impl<'a, T: Element> ParamBuilder<'a, T> {
    /// A builder at the root of the name hierarchy; `seed` determines every initial value.
    pub fn new(store: &'a mut ParamStore<T>, seed: u64) -> Self {
        ParamBuilder {
            store,
            prefix: String::new(),
            seed,
        }
    }

    /// A builder for a child module: names get `name.` in front.
    pub fn scope(&mut self, name: &str) -> ParamBuilder<'_, T> {
        let prefix = self.full_name(name);
        ParamBuilder {
            store: self.store,
            prefix,
            seed: self.seed,
        }
    }

    /// The full name `name` gets under this builder.
    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The seed derived for something named `name` under this builder (used for dropout streams).
    pub fn seed_for(&self, name: &str) -> u64 {
        mix_seed(self.seed, name_hash(&self.full_name(name)))
    }

    /// Adds a parameter drawn from `init`, seeded by the base seed and its full name.
    pub fn add(&mut self, name: &str, shape: &[usize], init: Initializer) -> Result<ParamRef> {
        let full = self.full_name(name);
        let seed = mix_seed(self.seed, name_hash(&full));
        let value = init.init::<T>(shape, seed)?;
        if self.store.id(&full).is_some() {
            return Err(NnError::InvalidConfig(format!(
                "parameter `{full}` is registered twice"
            )));
        }
        let id = self.store.add(full.clone(), value)?;
        Ok(ParamRef {
            name: full,
            id,
            shape: shape.to_vec(),
        })
    }
}

/// FNV-1a of a name: stable across runs and platforms.
pub(crate) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser of `a ⊕ rotated b`: combines two seeds into a well-mixed one.
pub(crate) fn mix_seed(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One forward pass's view of the parameters: binds each parameter onto the tape at most once.
///
/// Binding once matters for tied weights (the token embedding used again as the output projection):
/// both uses share one variable, so the tape sums their gradients into one parameter gradient.
pub struct ForwardContext<'t, 's, T: Element> {
    tape: &'t Tape<T>,
    store: &'s ParamStore<T>,
    bound: RefCell<HashMap<ParamId, Var<'t, T>>>,
    dropout_seed: u64,
}

impl<'t, 's, T: Element> ForwardContext<'t, 's, T> {
    /// A context recording onto `tape` with parameters from `store`.
    pub fn new(tape: &'t Tape<T>, store: &'s ParamStore<T>) -> Self {
        ForwardContext {
            tape,
            store,
            bound: RefCell::new(HashMap::new()),
            dropout_seed: 0,
        }
    }

    /// Sets the seed of this pass's dropout masks (use a fresh one per training step, e.g. the step
    /// number); each dropout layer mixes in its own name, so layers draw different masks.
    pub fn with_dropout_seed(mut self, seed: u64) -> Self {
        self.dropout_seed = seed;
        self
    }

    /// The dropout seed of this pass.
    pub fn dropout_seed(&self) -> u64 {
        self.dropout_seed
    }

    /// The tape being recorded.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The parameter store.
    pub fn store(&self) -> &'s ParamStore<T> {
        self.store
    }

    /// Uses `var` for parameter `id` in this pass instead of binding the stored value.
    pub fn bind(&self, id: ParamId, var: Var<'t, T>) {
        self.bound.borrow_mut().insert(id, var);
    }

    /// The variable of a parameter, bound on first use.
    pub fn param(&self, param: &ParamRef) -> Result<Var<'t, T>> {
        if let Some(var) = self.bound.borrow().get(&param.id) {
            return Ok(*var);
        }
        let var = self.tape.param(self.store, param.id)?;
        if var.shape() != param.shape {
            return Err(NnError::ShapeMismatch {
                what: format!("parameter `{}` in the store", param.name),
                expected: param.shape.clone(),
                got: var.shape(),
            });
        }
        self.bound.borrow_mut().insert(param.id, var);
        Ok(var)
    }
}
