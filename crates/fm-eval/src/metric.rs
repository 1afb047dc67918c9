//! What every accumulator has in common: the [`Metric`] trait, and how metrics write themselves into
//! a report.
//!
//! An accumulator is fed batches through its own `update` method (inputs differ: labels, scores,
//! probabilities, logits), and shares the rest of its life cycle through [`Metric`]: `merge` another
//! accumulator of the same configuration, `compute` the result, `reset`, and `record` named values
//! for an [`EvalReport`](crate::EvalReport). All accumulators in this crate merge exactly, so an
//! evaluation split over any number of shards or threads gives the bits of a single pass.
//!
//! Several metrics evaluated together are a tuple: `(Accuracy, LogLoss)` is itself a [`Metric`].
//! [`Named`] prefixes the keys of one metric so two of the same kind can share a report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A streaming, mergeable metric accumulator.
///
/// Each implementor also has an inherent `update` taking the inputs it needs. Implementors must
/// merge exactly (merging the accumulators of any split of the data equals accumulating all of it in
/// one pass) for the [`Evaluator`](crate::Evaluator) to be deterministic; the ones in this crate do,
/// by counting in integers and summing floats with [`ExactSum`](crate::ExactSum).
pub trait Metric: Clone + Send + Sync {
    /// What [`compute`](Self::compute) returns.
    type Output;

    /// The metric over everything accumulated so far. Errors when nothing was accumulated or the
    /// metric is undefined on the data seen.
    fn compute(&self) -> Result<Self::Output>;

    /// Adds everything `other` accumulated into `self`. Errors when the two were configured
    /// differently (class counts, options), leaving `self` unchanged.
    fn merge(&mut self, other: &Self) -> Result<()>;

    /// Errors when `other` could not be merged into `self` (the check `merge` starts with). Tuples
    /// check every member before merging any, so a failed merge changes nothing.
    fn check_merge(&self, other: &Self) -> Result<()> {
        let _ = other;
        Ok(())
    }

    /// Forgets everything accumulated, keeping the configuration.
    fn reset(&mut self);

    /// How many predictions (samples, or tokens for language-model metrics) were accumulated.
    fn count(&self) -> u64;

    /// Writes this metric's named values (and counts) into `out`; undefined values are recorded with
    /// their reason rather than failing the whole report.
    fn record(&self, out: &mut MetricValues);
}

/// Whether a larger value of a metric is better (accuracy) or worse (log loss). Report comparisons
/// use it to tell a regression from an improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better: accuracy, F1, ROC-AUC, R².
    HigherIsBetter,
    /// Smaller is better: losses, errors, perplexity.
    LowerIsBetter,
}

/// One metric value in a report.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// The value. Non-finite values are written to JSON as the strings `"NaN"`, `"inf"`, `"-inf"`.
    #[serde(with = "crate::report::json_f64")]
    pub value: f64,
    /// Which way is better.
    pub direction: Direction,
}

/// The named values metrics record into a report: defined values, undefined ones with the reason,
/// and counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricValues {
    /// Metric values by name (`"accuracy"`, `"f1_macro"`, ...).
    pub values: BTreeMap<String, MetricValue>,
    /// Metrics that could not be computed, with the reason (`"roc_auc": "only one class ..."`).
    pub undefined: BTreeMap<String, String>,
    /// Counts by name (`"accuracy.samples"`, `"lm.tokens"`, ...).
    pub counts: BTreeMap<String, u64>,
    #[serde(skip)]
    prefix: String,
}

impl MetricValues {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `name` = `value` (or, for an error, records the reason under `undefined`).
    pub fn insert(&mut self, name: &str, value: Result<f64>, direction: Direction) {
        let key = format!("{}{name}", self.prefix);
        match value {
            Ok(value) => {
                self.undefined.remove(&key);
                self.values.insert(key, MetricValue { value, direction });
            }
            Err(e) => {
                self.values.remove(&key);
                self.undefined.insert(key, e.to_string());
            }
        }
    }

    /// Records a count.
    pub fn count(&mut self, name: &str, n: u64) {
        self.counts.insert(format!("{}{name}", self.prefix), n);
    }

    /// The value recorded under `name`, if it was defined.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).map(|v| v.value)
    }
}

/// A metric whose recorded keys carry a prefix, so two metrics of one kind can share a report:
/// `Named::new("val/", Accuracy::new(10)?)` records `val/accuracy`.
#[derive(Clone, Debug)]
pub struct Named<M> {
    /// The prefix put before every key the inner metric records.
    pub prefix: String,
    /// The wrapped metric.
    pub inner: M,
}

impl<M> Named<M> {
    /// Wraps `inner`, prefixing its keys with `prefix`.
    pub fn new(prefix: impl Into<String>, inner: M) -> Self {
        Self {
            prefix: prefix.into(),
            inner,
        }
    }
}

impl<M: Metric> Metric for Named<M> {
    type Output = M::Output;
    fn compute(&self) -> Result<M::Output> {
        self.inner.compute()
    }
    fn merge(&mut self, other: &Self) -> Result<()> {
        self.inner.merge(&other.inner)
    }
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.inner.check_merge(&other.inner)
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn count(&self) -> u64 {
        self.inner.count()
    }
    fn record(&self, out: &mut MetricValues) {
        let outer = std::mem::take(&mut out.prefix);
        out.prefix = format!("{outer}{}", self.prefix);
        self.inner.record(out);
        out.prefix = outer;
    }
}

macro_rules! tuple_metric {
    ($($name:ident $idx:tt),+) => {
        /// Several metrics evaluated together; `count` is the first one's.
        impl<$($name: Metric),+> Metric for ($($name,)+) {
            type Output = ($($name::Output,)+);
            fn compute(&self) -> Result<Self::Output> {
                Ok(($(self.$idx.compute()?,)+))
            }
            fn merge(&mut self, other: &Self) -> Result<()> {
                self.check_merge(other)?;
                $(self.$idx.merge(&other.$idx)?;)+
                Ok(())
            }
            fn check_merge(&self, other: &Self) -> Result<()> {
                $(self.$idx.check_merge(&other.$idx)?;)+
                Ok(())
            }
            fn reset(&mut self) {
                $(self.$idx.reset();)+
            }
            fn count(&self) -> u64 {
                self.0.count()
            }
            fn record(&self, out: &mut MetricValues) {
                $(self.$idx.record(out);)+
            }
        }
    };
}

tuple_metric!(A 0);
tuple_metric!(A 0, B 1);
tuple_metric!(A 0, B 1, C 2);
tuple_metric!(A 0, B 1, C 2, D 3);
tuple_metric!(A 0, B 1, C 2, D 3, E 4);
tuple_metric!(A 0, B 1, C 2, D 3, E 4, F 5);
