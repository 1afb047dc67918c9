//! Parameter groups: sets of parameters with their own learning rate, weight decay and penalties.
//!
//! Every optimizer has a default group (index 0) holding every parameter not named by another group;
//! its values come from the optimizer's configuration. Added groups override any of those values for
//! the parameters they name — the usual use is no weight decay for biases and norm gains:
//!
//! ```
//! use fm_optim::{AdamConfig, AdamW, ParamGroup};
//!
//! let mut opt = AdamW::<f32>::new(AdamConfig::adamw().lr(3e-4).build()?);
//! let no_decay = opt.add_param_group(ParamGroup::new(["ln.gain", "proj.bias"]).weight_decay(0.0))?;
//! assert_eq!(no_decay, 1);
//! # Ok::<(), fm_optim::OptimError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, Result};
use crate::rule::GroupDefaults;

/// A set of parameters (by name) and the hyper-parameters they override.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParamGroup {
    /// The names of the group's parameters (empty for the default group).
    pub params: Vec<String>,
    /// Base learning rate (the schedule scales it); `None` keeps the configuration's.
    pub lr: Option<f64>,
    /// Decoupled weight decay; `None` keeps the configuration's.
    pub weight_decay: Option<f64>,
    /// L1 penalty; `None` keeps the configuration's.
    pub l1: Option<f64>,
    /// L2 penalty; `None` keeps the configuration's.
    pub l2: Option<f64>,
}

impl ParamGroup {
    /// A group of the named parameters, overriding nothing yet.
    pub fn new<S: Into<String>>(params: impl IntoIterator<Item = S>) -> Self {
        ParamGroup {
            params: params.into_iter().map(Into::into).collect(),
            ..ParamGroup::default()
        }
    }

    /// Overrides the base learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// Overrides the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Overrides the L1 penalty.
    pub fn l1(mut self, l1: f64) -> Self {
        self.l1 = Some(l1);
        self
    }

    /// Overrides the L2 penalty.
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = Some(l2);
        self
    }

    /// Checks the overrides.
    pub fn validate(&self) -> Result<()> {
        const W: &str = "ParamGroup";
        for (field, v) in [
            ("lr", self.lr),
            ("weight_decay", self.weight_decay),
            ("l1", self.l1),
            ("l2", self.l2),
        ] {
            if let Some(v) = v {
                check_non_negative(W, field, v)?;
            }
        }
        Ok(())
    }

    /// The group's values, falling back on `defaults`.
    pub(crate) fn resolve(&self, defaults: GroupDefaults) -> GroupDefaults {
        GroupDefaults {
            lr: self.lr.unwrap_or(defaults.lr),
            weight_decay: self.weight_decay.unwrap_or(defaults.weight_decay),
            l1: self.l1.unwrap_or(defaults.l1),
            l2: self.l2.unwrap_or(defaults.l2),
        }
    }
}
