//! Running a model over batches and collecting metrics into a report.
//!
//! An [`Evaluator`] takes any iterator of batches (fm-data's loader among them), a [`Model`] (a
//! closure or a trait object from a batch to predictions), a fresh metric accumulator and a scoring
//! closure that feeds the batch's targets and the predictions into it. Batches are spread over the
//! current rayon pool: each worker folds its own copy of the accumulator and the copies are merged at
//! the end. Because every accumulator in this crate merges exactly, the metric values are bitwise the
//! same for any thread count and any order in which batches reached the workers; only the timings
//! differ. [`Evaluator::run_shards`] does the same over explicit shards (one iterator each).

use std::time::{Duration, Instant};

use rayon::iter::{IntoParallelIterator, ParallelBridge, ParallelIterator};

use crate::error::{BoxError, EvalError, Result};
use crate::metric::{Metric, MetricValues};
use crate::report::{EvalReport, Timing};

/// Anything that turns a batch into predictions: a closure `Fn(&B) -> Result<O, E>` or your own type.
/// `&dyn Model<B, Output = O>` works where a trait object is wanted.
pub trait Model<B>: Sync {
    /// The predictions for one batch.
    type Output;
    /// Runs the model on one batch.
    fn predict(&self, batch: &B) -> std::result::Result<Self::Output, BoxError>;
}

impl<B, O, E, F> Model<B> for F
where
    F: Fn(&B) -> std::result::Result<O, E> + Sync,
    E: Into<BoxError>,
{
    type Output = O;
    fn predict(&self, batch: &B) -> std::result::Result<O, BoxError> {
        self(batch).map_err(Into::into)
    }
}

/// Runs evaluations and labels their reports with a model and a dataset identifier.
///
/// ```
/// use fm_eval::{Accuracy, EvalError, Evaluator, LogLoss, Metric};
/// use ndarray::{array, Array1, Array2};
///
/// // A "model" that turns a feature into class probabilities, and batches of (features, labels).
/// struct Batch { x: Array1<f64>, y: Array1<u32> }
/// let batches = (0..10).map(|i| {
///     let x = Array1::from_iter((0..8).map(|j| ((i * 8 + j) % 5) as f64 / 4.0));
///     let y = x.mapv(|v| u32::from(v > 0.5));
///     Batch { x, y }
/// });
/// let model = |b: &Batch| -> Result<Array2<f64>, EvalError> {
///     Ok(Array2::from_shape_fn((b.x.len(), 2), |(i, c)| if c == 1 { b.x[i] } else { 1.0 - b.x[i] }))
/// };
/// let metrics = (Accuracy::new(2)?, LogLoss::new(2)?);
/// let run = Evaluator::new("threshold-model", "toy").run(
///     batches,
///     &model,
///     metrics,
///     |(acc, loss): &mut (Accuracy, LogLoss), b: &Batch, probs: &Array2<f64>| {
///         let predicted = probs.map_axis(ndarray::Axis(1), |r| u32::from(r[1] > r[0]));
///         acc.update(&b.y, &predicted)?;
///         loss.update(&b.y, probs.view())
///     },
/// )?;
/// assert_eq!(run.report.counts["examples"], 80);
/// assert_eq!(run.metrics.0.compute()?, 1.0);
/// println!("{}", run.report.to_json()?);
/// # Ok::<(), EvalError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Evaluator {
    model_id: String,
    dataset_id: String,
}

/// The accumulated metrics (for typed access) and the report made from them.
#[derive(Clone, Debug)]
pub struct Evaluation<M> {
    /// The merged accumulator.
    pub metrics: M,
    /// The JSON-ready report.
    pub report: EvalReport,
}

/// One worker's share of a run.
#[derive(Clone)]
struct Shard<M> {
    metrics: M,
    batches: u64,
    model_time: Duration,
    metric_time: Duration,
}

impl<M: Metric> Shard<M> {
    fn new(metrics: &M) -> Self {
        let mut metrics = metrics.clone();
        metrics.reset();
        Self {
            metrics,
            batches: 0,
            model_time: Duration::ZERO,
            metric_time: Duration::ZERO,
        }
    }

    fn merge(mut self, other: Self) -> Result<Self> {
        let start = Instant::now();
        self.metrics.merge(&other.metrics)?;
        self.batches += other.batches;
        self.model_time += other.model_time;
        self.metric_time += other.metric_time + start.elapsed();
        Ok(self)
    }
}

impl Evaluator {
    /// An evaluator whose reports name `model_id` and `dataset_id`.
    pub fn new(model_id: impl Into<String>, dataset_id: impl Into<String>) -> Self {
        Self {
            model_id: model_id.into(),
            dataset_id: dataset_id.into(),
        }
    }

    /// Runs `model` over every batch on the current rayon pool and scores it with `score` into copies
    /// of `metrics` (which is reset first), merged at the end. Errors with the first failure of the
    /// model ([`EvalError::Model`]), the scoring closure or a merge.
    pub fn run<I, B, Mdl, M, S>(
        &self,
        batches: I,
        model: &Mdl,
        metrics: M,
        score: S,
    ) -> Result<Evaluation<M>>
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send,
        B: Send,
        Mdl: Model<B> + ?Sized,
        M: Metric,
        S: Fn(&mut M, &B, &Mdl::Output) -> Result<()> + Sync,
    {
        let start = Instant::now();
        let total = batches
            .into_iter()
            .enumerate()
            .par_bridge()
            .try_fold(
                || Shard::new(&metrics),
                |shard, (index, batch)| step(shard, 0, index, &batch, model, &score),
            )
            .try_reduce(|| Shard::new(&metrics), Shard::merge)?;
        self.finish(total, start)
    }

    /// As [`run`](Self::run), over explicit shards: each shard's batches are evaluated in order by one
    /// rayon task, and the shard accumulators are merged.
    pub fn run_shards<Sh, I, B, Mdl, M, S>(
        &self,
        shards: Sh,
        model: &Mdl,
        metrics: M,
        score: S,
    ) -> Result<Evaluation<M>>
    where
        Sh: IntoIterator<Item = I>,
        I: IntoIterator<Item = B> + Send,
        Mdl: Model<B> + ?Sized,
        M: Metric,
        S: Fn(&mut M, &B, &Mdl::Output) -> Result<()> + Sync,
    {
        let start = Instant::now();
        let shards: Vec<I> = shards.into_iter().collect();
        let total = shards
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(shard_index, batches)| {
                batches
                    .into_iter()
                    .enumerate()
                    .try_fold(Shard::new(&metrics), |shard, (index, batch)| {
                        step(shard, shard_index, index, &batch, model, &score)
                    })
            })
            .try_reduce(|| Shard::new(&metrics), Shard::merge)?;
        self.finish(total, start)
    }

    fn finish<M: Metric>(&self, total: Shard<M>, start: Instant) -> Result<Evaluation<M>> {
        let record_start = Instant::now();
        let mut values = MetricValues::new();
        total.metrics.record(&mut values);
        let metric_time = total.metric_time + record_start.elapsed();
        let wall = start.elapsed().as_secs_f64();
        let examples = total.metrics.count();
        let mut counts = values.counts;
        counts.insert("batches".into(), total.batches);
        counts.insert("examples".into(), examples);
        let report = EvalReport {
            model: self.model_id.clone(),
            dataset: self.dataset_id.clone(),
            metrics: values.values,
            undefined: values.undefined,
            counts,
            timing: Timing {
                wall_seconds: wall,
                model_seconds: total.model_time.as_secs_f64(),
                metric_seconds: metric_time.as_secs_f64(),
                examples_per_second: if wall > 0.0 {
                    examples as f64 / wall
                } else {
                    0.0
                },
            },
            threads: rayon::current_num_threads(),
            fm_eval_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        Ok(Evaluation {
            metrics: total.metrics,
            report,
        })
    }
}

fn step<B, Mdl, M, S>(
    mut shard: Shard<M>,
    shard_index: usize,
    index: usize,
    batch: &B,
    model: &Mdl,
    score: &S,
) -> Result<Shard<M>>
where
    Mdl: Model<B> + ?Sized,
    M: Metric,
    S: Fn(&mut M, &B, &Mdl::Output) -> Result<()>,
{
    let t0 = Instant::now();
    let predictions = model.predict(batch).map_err(|source| EvalError::Model {
        shard: shard_index,
        batch: index,
        source,
    })?;
    let t1 = Instant::now();
    score(&mut shard.metrics, batch, &predictions)?;
    shard.model_time += t1 - t0;
    shard.metric_time += t1.elapsed();
    shard.batches += 1;
    Ok(shard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Accuracy;

    #[test]
    fn model_errors_name_the_batch() {
        let batches = vec![vec![0u32, 1], vec![1, 1], vec![0, 0]];
        let model = |b: &Vec<u32>| -> std::result::Result<Vec<u32>, String> {
            if b[0] == 1 {
                Err("bad batch".to_string())
            } else {
                Ok(b.clone())
            }
        };
        let err = Evaluator::new("m", "d")
            .run(batches, &model, Accuracy::new(2).unwrap(), |acc, b, p| {
                acc.update(b, p)
            })
            .unwrap_err();
        assert!(err.to_string().contains("batch 1: bad batch"), "{err}");
    }

    #[test]
    fn trait_objects_work_as_models() {
        let model: &dyn Model<Vec<u32>, Output = Vec<u32>> =
            &|b: &Vec<u32>| -> std::result::Result<Vec<u32>, BoxError> { Ok(b.clone()) };
        let shards = vec![vec![vec![0u32, 1]], vec![vec![1u32], vec![0, 0, 1]]];
        let run = Evaluator::new("m", "d")
            .run_shards(shards, model, Accuracy::new(2).unwrap(), |acc, b, p| {
                acc.update(b, p)
            })
            .unwrap();
        assert_eq!(run.report.counts["batches"], 3);
        assert_eq!(run.report.counts["examples"], 6);
        assert_eq!(run.report.metric("accuracy"), Some(1.0));
    }
}
