//! Evaluation reports as serde JSON, and the comparison of two reports.
//!
//! An [`EvalReport`] records what was evaluated (model and dataset identifiers the caller gives),
//! every metric value with the direction that counts as better, metrics that were undefined and why,
//! counts, timing and the thread count. [`EvalReport::compare`] lines a candidate up against a
//! baseline and flags every metric that got worse by more than a [`Tolerance`]: the check to run
//! after each optimisation ("evaluate, then optimise").
//!
//! JSON has no NaN or infinity; such metric values are written as the strings `"NaN"`, `"inf"` and
//! `"-inf"` and read back as the same floats.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metric::{Direction, MetricValue};

/// The outcome of one evaluation run, serialisable to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The model identifier given by the caller.
    pub model: String,
    /// The dataset identifier given by the caller.
    pub dataset: String,
    /// Metric values by name.
    pub metrics: BTreeMap<String, MetricValue>,
    /// Metrics that could not be computed, with the reason.
    #[serde(default)]
    pub undefined: BTreeMap<String, String>,
    /// Counts: `batches`, `examples` (predictions seen by the metrics), and any a metric records.
    pub counts: BTreeMap<String, u64>,
    /// Where the time went.
    pub timing: Timing,
    /// Threads in the rayon pool that ran the evaluation.
    pub threads: usize,
    /// Version of fm-eval that wrote the report.
    pub fm_eval_version: String,
}

/// Time spent in an evaluation run, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Wall-clock time of the whole run.
    pub wall_seconds: f64,
    /// Time inside the model, summed over batches (and so over threads).
    pub model_seconds: f64,
    /// Time updating metrics, summed over batches, plus merging and computing them.
    pub metric_seconds: f64,
    /// Predictions seen by the metrics per wall-clock second.
    pub examples_per_second: f64,
}

/// How much worse a metric may get before a comparison flags it: worse by more than
/// `absolute + relative * |baseline|`. Per-metric overrides take precedence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Allowed absolute change.
    pub absolute: f64,
    /// Allowed change relative to the baseline's magnitude.
    pub relative: f64,
    /// `(absolute, relative)` for named metrics.
    #[serde(default)]
    pub per_metric: BTreeMap<String, (f64, f64)>,
}

impl Default for Tolerance {
    /// No absolute slack and a relative slack of 1e-9: only exact reproductions pass as unchanged,
    /// up to the last bits of printing and parsing.
    fn default() -> Self {
        Self {
            absolute: 0.0,
            relative: 1e-9,
            per_metric: BTreeMap::new(),
        }
    }
}

impl Tolerance {
    /// A tolerance of `absolute + relative * |baseline|` for every metric.
    pub fn new(absolute: f64, relative: f64) -> Self {
        Self {
            absolute,
            relative,
            per_metric: BTreeMap::new(),
        }
    }

    /// Sets a specific tolerance for the metric `name`.
    pub fn with_metric(mut self, name: impl Into<String>, absolute: f64, relative: f64) -> Self {
        self.per_metric.insert(name.into(), (absolute, relative));
        self
    }

    fn allowed(&self, name: &str, baseline: f64) -> f64 {
        let (absolute, relative) = self
            .per_metric
            .get(name)
            .copied()
            .unwrap_or((self.absolute, self.relative));
        absolute + relative * baseline.abs()
    }
}

/// What happened to one metric between two reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Better by more than the tolerance.
    Improved,
    /// Within the tolerance either way.
    Unchanged,
    /// Worse by more than the tolerance: a regression.
    Regressed,
    /// In the baseline but missing or undefined in the candidate: a regression.
    Missing,
    /// New in the candidate.
    Added,
    /// A NaN on one side only, or a change of direction: cannot be ranked, counted as a regression.
    Incomparable,
}

/// One metric of a [`Comparison`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    /// The metric's name.
    pub name: String,
    /// Its value in the baseline.
    #[serde(with = "json_opt_f64")]
    pub baseline: Option<f64>,
    /// Its value in the candidate.
    #[serde(with = "json_opt_f64")]
    pub candidate: Option<f64>,
    /// `candidate - baseline`, when both exist.
    #[serde(with = "json_opt_f64")]
    pub delta: Option<f64>,
    /// The verdict.
    pub status: ChangeStatus,
}

/// A candidate report lined up against a baseline, metric by metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's model identifier.
    pub baseline_model: String,
    /// The candidate's model identifier.
    pub candidate_model: String,
    /// Whether both reports were made on the same dataset identifier; a comparison across datasets
    /// is rarely what was meant.
    pub same_dataset: bool,
    /// Every metric in either report, by name.
    pub changes: Vec<MetricChange>,
}

impl Comparison {
    /// The changes that count as regressions: [`Regressed`](ChangeStatus::Regressed),
    /// [`Missing`](ChangeStatus::Missing) and [`Incomparable`](ChangeStatus::Incomparable).
    pub fn regressions(&self) -> Vec<&MetricChange> {
        self.changes
            .iter()
            .filter(|c| {
                matches!(
                    c.status,
                    ChangeStatus::Regressed | ChangeStatus::Missing | ChangeStatus::Incomparable
                )
            })
            .collect()
    }

    /// True when any metric regressed.
    pub fn has_regressions(&self) -> bool {
        !self.regressions().is_empty()
    }
}

impl fmt::Display for Comparison {
    /// A plain-text table: name, baseline, candidate, delta, status.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} -> {}", self.baseline_model, self.candidate_model)?;
        if !self.same_dataset {
            writeln!(f, "warning: the reports were made on different datasets")?;
        }
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
        for c in &self.changes {
            writeln!(
                f,
                "{:<32} {:>14} {:>14} {:>14}  {:?}",
                c.name,
                show(c.baseline),
                show(c.candidate),
                show(c.delta),
                c.status
            )?;
        }
        Ok(())
    }
}

impl EvalReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a report written by [`to_json`](Self::to_json).
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }

    /// The value of metric `name`, if defined.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).map(|m| m.value)
    }

    /// Compares `candidate` against this report (the baseline), flagging every metric worse by more
    /// than `tolerance` in its own direction.
    ///
    /// ```
    /// use fm_eval::{EvalReport, Tolerance};
    ///
    /// let baseline = r#"{"model": "v1", "dataset": "val", "threads": 1, "fm_eval_version": "0.1.0",
    ///   "metrics": {"accuracy": {"value": 0.90, "direction": "higher_is_better"},
    ///               "log_loss": {"value": 0.30, "direction": "lower_is_better"}},
    ///   "counts": {}, "timing": {"wall_seconds": 1.0, "model_seconds": 0.9,
    ///                            "metric_seconds": 0.1, "examples_per_second": 1000.0}}"#;
    /// let baseline = EvalReport::from_json(baseline)?;
    /// let mut candidate = baseline.clone();
    /// candidate.model = "v2".into();
    /// candidate.metrics.get_mut("accuracy").unwrap().value = 0.899;  // within 0.005
    /// candidate.metrics.get_mut("log_loss").unwrap().value = 0.35;   // worse
    /// let cmp = baseline.compare(&candidate, &Tolerance::new(0.005, 0.0));
    /// let flagged: Vec<&str> = cmp.regressions().iter().map(|c| c.name.as_str()).collect();
    /// assert_eq!(flagged, ["log_loss"]);
    /// # Ok::<(), fm_eval::EvalError>(())
    /// ```
    pub fn compare(&self, candidate: &EvalReport, tolerance: &Tolerance) -> Comparison {
        let mut names: Vec<&String> = self
            .metrics
            .keys()
            .chain(candidate.metrics.keys())
            .collect();
        names.sort();
        names.dedup();
        let changes = names
            .into_iter()
            .map(|name| {
                let base = self.metrics.get(name);
                let cand = candidate.metrics.get(name);
                let status = match (base, cand) {
                    (Some(_), None) => ChangeStatus::Missing,
                    (None, _) => ChangeStatus::Added,
                    (Some(b), Some(c)) => judge(name, b, c, tolerance),
                };
                let (baseline, candidate) = (base.map(|m| m.value), cand.map(|m| m.value));
                let delta = baseline.zip(candidate).map(|(b, c)| c - b);
                MetricChange {
                    name: name.clone(),
                    baseline,
                    candidate,
                    delta,
                    status,
                }
            })
            .collect();
        Comparison {
            baseline_model: self.model.clone(),
            candidate_model: candidate.model.clone(),
            same_dataset: self.dataset == candidate.dataset,
            changes,
        }
    }
}

fn judge(
    name: &str,
    base: &MetricValue,
    cand: &MetricValue,
    tolerance: &Tolerance,
) -> ChangeStatus {
    let (b, c) = (base.value, cand.value);
    if base.direction != cand.direction {
        return ChangeStatus::Incomparable;
    }
    if b.is_nan() || c.is_nan() {
        return if b.is_nan() && c.is_nan() {
            ChangeStatus::Unchanged
        } else {
            ChangeStatus::Incomparable
        };
    }
    if b == c {
        // Also covers equal infinities, whose difference would be NaN.
        return ChangeStatus::Unchanged;
    }
    let gain = match base.direction {
        Direction::HigherIsBetter => c - b,
        Direction::LowerIsBetter => b - c,
    };
    let allowed = tolerance.allowed(name, b);
    if gain < -allowed {
        ChangeStatus::Regressed
    } else if gain > allowed {
        ChangeStatus::Improved
    } else {
        ChangeStatus::Unchanged
    }
}

/// Serde for an `f64` that may be non-finite: finite values as numbers, others as `"NaN"`, `"inf"`,
/// `"-inf"`.
pub(crate) mod json_f64 {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrName {
        Number(f64),
        Name(String),
    }

    pub(crate) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match NumberOrName::deserialize(deserializer)? {
            NumberOrName::Number(x) => Ok(x),
            NumberOrName::Name(name) => match name.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(D::Error::custom(format!(
                    "expected a number, \"NaN\", \"inf\" or \"-inf\", got {other:?}"
                ))),
            },
        }
    }
}

/// [`json_f64`] for an optional value (`null` when absent).
pub(crate) mod json_opt_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::json_f64")] f64);

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::json_f64::serialize(v, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(model: &str, values: &[(&str, f64, Direction)]) -> EvalReport {
        EvalReport {
            model: model.into(),
            dataset: "d".into(),
            metrics: values
                .iter()
                .map(|&(n, value, direction)| (n.to_string(), MetricValue { value, direction }))
                .collect(),
            undefined: BTreeMap::new(),
            counts: BTreeMap::new(),
            timing: Timing::default(),
            threads: 1,
            fm_eval_version: "test".into(),
        }
    }

    #[test]
    fn non_finite_values_round_trip_through_json() {
        let r = report(
            "m",
            &[
                ("a", f64::NAN, Direction::HigherIsBetter),
                ("b", f64::INFINITY, Direction::LowerIsBetter),
                ("c", 0.1, Direction::LowerIsBetter),
            ],
        );
        let json = r.to_json().unwrap();
        assert!(
            json.contains("\"NaN\"") && json.contains("\"inf\""),
            "{json}"
        );
        let back = EvalReport::from_json(&json).unwrap();
        assert!(back.metric("a").unwrap().is_nan());
        assert_eq!(back.metric("b"), Some(f64::INFINITY));
        assert_eq!(back.metric("c"), Some(0.1));
        assert!(EvalReport::from_json("{").is_err());
    }

    #[test]
    fn comparison_flags_by_direction_and_tolerance() {
        use Direction::*;
        let base = report(
            "a",
            &[
                ("acc", 0.9, HigherIsBetter),
                ("loss", 0.3, LowerIsBetter),
                ("gone", 1.0, HigherIsBetter),
            ],
        );
        let cand = report(
            "b",
            &[
                ("acc", 0.95, HigherIsBetter),
                ("loss", 0.31, LowerIsBetter),
                ("new", 1.0, HigherIsBetter),
            ],
        );
        let cmp = base.compare(&cand, &Tolerance::new(0.0, 0.01));
        let status: BTreeMap<&str, ChangeStatus> = cmp
            .changes
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        assert_eq!(status["acc"], ChangeStatus::Improved);
        assert_eq!(status["loss"], ChangeStatus::Regressed);
        assert_eq!(status["gone"], ChangeStatus::Missing);
        assert_eq!(status["new"], ChangeStatus::Added);
        let loose = Tolerance::new(0.0, 0.01).with_metric("loss", 0.02, 0.0);
        let cmp = base.compare(&cand, &loose);
        assert_eq!(cmp.regressions().len(), 1);
        assert!(cmp.to_string().contains("Missing"));
        let json = serde_json::to_string(&cmp).unwrap();
        assert_eq!(serde_json::from_str::<Comparison>(&json).unwrap(), cmp);
    }
}
