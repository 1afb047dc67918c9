//! Saving and restoring an optimizer, so that a resumed run continues bit-exactly.
//!
//! [`Optimizer::state`](crate::Optimizer::state) returns an [`OptimizerState`]: a serde-serialisable
//! [`StateMeta`] (algorithm, hyper-parameters, groups, schedule, clipping, step counters, and each
//! parameter's name, group, step and shape) plus one named tensor per parameter and state slot
//! (`"{parameter}/{slot}"`, e.g. `"layer1.weight/exp_avg"`). Floats in the JSON part are written
//! and read back exactly (serde_json's `float_roundtrip`), and tensors keep their bits, so
//! [`Optimizer::load_state`](crate::Optimizer::load_state) restores an optimizer that takes exactly
//! the steps the original would have taken.
//!
//! With the default `fm-tensor` feature, [`OptimizerState::save`] writes everything to one
//! safetensors file (the JSON in its metadata under `"fm_optim"`), which Python's `safetensors`
//! opens too; without it, store the two parts however you like.
//!
//! ```
//! use fm_optim::{Adam, AdamConfig, NamedParam, Optimizer};
//! use ndarray::array;
//!
//! let mut w = array![1.0f32, -2.0].into_dyn();
//! let mut g = array![0.1f32, 0.3].into_dyn();
//! let mut adam = Adam::new(AdamConfig::builder().lr(0.01).build()?);
//! adam.step(&mut [NamedParam::new("w", w.view_mut(), g.view_mut())])?;
//! let saved = adam.state();
//!
//! let mut resumed = Adam::new(AdamConfig::builder().build()?);
//! resumed.load_state(&saved)?;
//! let mut w2 = w.clone();
//! adam.step(&mut [NamedParam::new("w", w.view_mut(), g.view_mut())])?;
//! resumed.step(&mut [NamedParam::new("w", w2.view_mut(), g.view_mut())])?;
//! assert_eq!(w, w2);
//! # Ok::<(), fm_optim::OptimError>(())
//! ```

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::clip::{GradClip, NonFinitePolicy};
use crate::error::{OptimError, Result};
use crate::group::ParamGroup;
use crate::optim::{Optim, ParamState};
use crate::rule::Rule;
use crate::scalar::Scalar;
use crate::schedule::LrSchedule;

/// Version of the state layout written by this crate.
pub const STATE_FORMAT: u32 = 1;

/// The metadata key under which [`OptimizerState::save`] stores the JSON part.
pub const METADATA_KEY: &str = "fm_optim";

/// Everything about an optimizer except its state tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMeta {
    /// Layout version ([`STATE_FORMAT`]).
    pub format: u32,
    /// The algorithm ("sgd", "adam", "rmsprop", "adagrad").
    pub kind: String,
    /// The parameters' element type ("f32" or "f64").
    pub dtype: String,
    /// The algorithm's hyper-parameters.
    pub config: serde_json::Value,
    /// Parameter groups (index 0 is the default group).
    pub groups: Vec<ParamGroup>,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// Gradient clipping.
    pub clip: GradClip,
    /// Non-finite gradient policy.
    pub non_finite: NonFinitePolicy,
    /// Steps taken.
    pub steps: u64,
    /// One entry per parameter with state, sorted by name.
    pub params: Vec<ParamMeta>,
}

/// One parameter's entry in [`StateMeta`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamMeta {
    /// The parameter's name.
    pub name: String,
    /// Its group.
    pub group: usize,
    /// How many times it was updated.
    pub step: u64,
    /// Its shape (and that of each of its state tensors).
    pub shape: Vec<usize>,
}

/// A snapshot of an optimizer: [`StateMeta`] plus named state tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState<T> {
    /// Hyper-parameters, groups, schedule, counters.
    pub meta: StateMeta,
    /// `("{parameter}/{slot}", tensor)` for every parameter and state slot, sorted by name.
    pub tensors: Vec<(String, ArrayD<T>)>,
}

/// The name of a parameter's state tensor for one slot. Slot names contain no `/`, so the text after
/// the last `/` is always the slot and names cannot collide.
pub fn tensor_name(param: &str, slot: &str) -> String {
    format!("{param}/{slot}")
}

fn dtype_name<T: Scalar>() -> &'static str {
    if std::mem::size_of::<T>() == 4 {
        "f32"
    } else {
        "f64"
    }
}

pub(crate) fn snapshot<T: Scalar, C: Rule>(opt: &Optim<T, C>) -> OptimizerState<T> {
    let mut names: Vec<&String> = opt.states.keys().collect();
    names.sort();
    let slot_names = opt.config.slots();
    let mut params = Vec::with_capacity(names.len());
    let mut tensors = Vec::with_capacity(names.len() * slot_names.len());
    for name in names {
        let state = &opt.states[name];
        params.push(ParamMeta {
            name: name.clone(),
            group: state.group,
            step: state.step,
            shape: state.shape.clone(),
        });
        for (slot, data) in slot_names.iter().zip(&state.slots) {
            let array = ArrayD::from_shape_vec(IxDyn(&state.shape), data.clone())
                .expect("state slots have their parameter's size");
            tensors.push((tensor_name(name, slot), array));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    OptimizerState {
        meta: StateMeta {
            format: STATE_FORMAT,
            kind: C::KIND.to_string(),
            dtype: dtype_name::<T>().to_string(),
            config: serde_json::to_value(&opt.config).expect("configs serialise"),
            groups: opt.groups.clone(),
            schedule: opt.schedule.clone(),
            clip: opt.clip,
            non_finite: opt.non_finite,
            steps: opt.steps,
            params,
        },
        tensors,
    }
}

pub(crate) fn restore<T: Scalar, C: Rule>(state: &OptimizerState<T>) -> Result<Optim<T, C>> {
    let meta = &state.meta;
    if meta.format != STATE_FORMAT {
        return Err(OptimError::State(format!(
            "layout version {} is not the supported {STATE_FORMAT}",
            meta.format
        )));
    }
    if meta.kind != C::KIND {
        return Err(OptimError::State(format!(
            "saved by a {:?} optimizer, restored into a {:?} one",
            meta.kind,
            C::KIND
        )));
    }
    if meta.dtype != dtype_name::<T>() {
        return Err(OptimError::State(format!(
            "saved for {} parameters, restored for {}",
            meta.dtype,
            dtype_name::<T>()
        )));
    }
    let config: C = serde_json::from_value(meta.config.clone())?;
    config.validate()?;
    if meta.groups.is_empty() {
        return Err(OptimError::State("no default parameter group".into()));
    }
    for g in &meta.groups {
        g.validate()?;
    }
    meta.schedule.validate()?;
    meta.clip.validate()?;

    let mut by_name: HashMap<&str, &ArrayD<T>> = HashMap::with_capacity(state.tensors.len());
    for (name, tensor) in &state.tensors {
        if by_name.insert(name.as_str(), tensor).is_some() {
            return Err(OptimError::State(format!("tensor {name:?} appears twice")));
        }
    }
    let slot_names = config.slots();
    let mut states = HashMap::with_capacity(meta.params.len());
    let mut used = 0;
    for p in &meta.params {
        if p.group >= meta.groups.len() {
            return Err(OptimError::State(format!(
                "parameter {:?} is in group {} of {}",
                p.name,
                p.group,
                meta.groups.len()
            )));
        }
        let mut slots = Vec::with_capacity(slot_names.len());
        for slot in slot_names {
            let name = tensor_name(&p.name, slot);
            let tensor = by_name
                .get(name.as_str())
                .ok_or_else(|| OptimError::State(format!("missing tensor {name:?}")))?;
            if tensor.shape() != p.shape.as_slice() {
                return Err(OptimError::ShapeMismatch {
                    param: p.name.clone(),
                    expected: p.shape.clone(),
                    got: tensor.shape().to_vec(),
                    detail: "saved parameter shape vs its state tensor",
                });
            }
            slots.push(tensor.iter().copied().collect());
            used += 1;
        }
        if states
            .insert(
                p.name.clone(),
                ParamState::new(p.group, p.step, p.shape.clone(), slots),
            )
            .is_some()
        {
            return Err(OptimError::State(format!(
                "parameter {:?} listed twice",
                p.name
            )));
        }
    }
    if used != state.tensors.len() {
        return Err(OptimError::State(format!(
            "{} tensors do not belong to any listed parameter and slot",
            state.tensors.len() - used
        )));
    }
    Ok(Optim::from_parts(
        config,
        meta.groups.clone(),
        meta.schedule.clone(),
        meta.clip,
        meta.non_finite,
        meta.steps,
        states,
    ))
}

impl<T: Scalar> OptimizerState<T> {
    /// The JSON part.
    pub fn meta_json(&self) -> Result<String> {
        Ok(serde_json::to_string(&self.meta)?)
    }
}

#[cfg(feature = "fm-tensor")]
impl<T: Scalar + fm_tensor::Element> OptimizerState<T> {
    fn metadata(&self) -> Result<HashMap<String, String>> {
        Ok(HashMap::from([(
            METADATA_KEY.to_string(),
            self.meta_json()?,
        )]))
    }

    /// Writes the state to a safetensors file (atomically; see fm-tensor's `save_safetensors`).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let tensors = self.tensors.iter().map(|(n, a)| (n.as_str(), a.view()));
        fm_tensor::save_safetensors(path, tensors, Some(&self.metadata()?))?;
        Ok(())
    }

    /// The bytes [`save`](Self::save) would write.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let tensors = self.tensors.iter().map(|(n, a)| (n.as_str(), a.view()));
        Ok(fm_tensor::safetensors::save_safetensors_to_bytes(
            tensors,
            Some(&self.metadata()?),
        )?)
    }

    /// Reads a state written by [`save`](Self::save).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::from_file(fm_tensor::SafeTensorsFile::open(path)?)
    }

    /// Reads a state from bytes made by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_file(fm_tensor::SafeTensorsFile::from_bytes(bytes)?)
    }

    fn from_file(file: fm_tensor::SafeTensorsFile) -> Result<Self> {
        let json = file
            .metadata()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                OptimError::State(format!(
                    "{}: no {METADATA_KEY:?} metadata (not an fm-optim state file)",
                    file.path().display()
                ))
            })?;
        let meta: StateMeta = serde_json::from_str(json)?;
        let expected = if std::mem::size_of::<T>() == 4 {
            "F32"
        } else {
            "F64"
        };
        let mut tensors = Vec::with_capacity(file.len());
        for name in file.names() {
            // Refuse a conversion: a resumed run must see the saved bits.
            let dtype = file.dtype(name)?;
            if dtype != expected {
                return Err(OptimError::State(format!(
                    "tensor {name:?} is {dtype}, expected {expected}"
                )));
            }
            tensors.push((name.to_string(), file.tensor::<T>(name)?));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(OptimizerState { meta, tensors })
    }
}
