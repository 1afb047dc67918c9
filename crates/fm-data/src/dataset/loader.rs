//! Batches in sampler order, prepared ahead on rayon, resumable.
//!
//! A [`DataLoader`] cuts the sampler's order for an epoch into batches of `batch_size` indices,
//! reads the items and hands them to a [`Collate`]. Up to `prefetch` batches are prepared ahead by
//! tasks on the current rayon pool while the caller trains on the current one; batches come out in
//! order. A batch depends only on its indices — which depend only on the sampler's seed and the
//! epoch — so the loader gives the same batches for any number of threads and any prefetch depth.
//!
//! Where a run stopped is a [`LoaderPosition`] (epoch, batch), serialisable with serde; a loader
//! resumed from it gives the batches that were still to come.
//!
//! The caller never waits on a batch that no thread has started: if its task is still queued (a
//! busy or one-thread pool), the caller builds the batch itself, so a loader used inside a rayon
//! pool cannot deadlock it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};

use super::collate::Collate;
use super::sampler::Sampler;
use super::Dataset;
use crate::error::{DataError, Result};

/// Where a loader is: the epoch, and the index of the next batch within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoaderPosition {
    /// The epoch.
    pub epoch: u64,
    /// Index of the next batch of that epoch.
    pub batch: usize,
}

/// Batches of a [`Dataset`] in [`Sampler`] order (see the module docs).
pub struct DataLoader<D, S, C> {
    dataset: Arc<D>,
    sampler: S,
    collate: Arc<C>,
    batch_size: usize,
    drop_last: bool,
    prefetch: usize,
}

impl<D, S, C> DataLoader<D, S, C>
where
    D: Dataset + 'static,
    S: Sampler,
    C: Collate<D::Item> + 'static,
    C::Batch: 'static,
{
    /// Batches of `batch_size` (at least 1) items of `dataset` in `sampler`'s order. The last,
    /// shorter batch of an epoch is kept and two batches are prepared ahead; see
    /// [`drop_last`](Self::drop_last) and [`prefetch`](Self::prefetch).
    pub fn new(dataset: Arc<D>, sampler: S, collate: C, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::config(
                "DataLoader",
                "batch_size must be at least 1",
            ));
        }
        Ok(DataLoader {
            dataset,
            sampler,
            collate: Arc::new(collate),
            batch_size,
            drop_last: false,
            prefetch: 2,
        })
    }

    /// Whether an epoch's last batch, when shorter than `batch_size`, is left out.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// How many batches are prepared ahead of the one being consumed (0: each batch is built
    /// when asked for, on the caller's thread).
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Number of batches in an epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.sampler.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The batches of `epoch`, from the first.
    pub fn epoch(&self, epoch: u64) -> EpochBatches<D, C> {
        self.resume(LoaderPosition { epoch, batch: 0 })
    }

    /// The batches from `position` on, to the end of its epoch. A position at or past the end of
    /// its epoch gives no batch (its [`EpochBatches::position`] is then the next epoch's start).
    pub fn resume(&self, position: LoaderPosition) -> EpochBatches<D, C> {
        let mut indices = self.sampler.epoch_indices(position.epoch);
        if self.drop_last {
            indices.truncate(indices.len() - indices.len() % self.batch_size);
        }
        let batches = indices.len().div_ceil(self.batch_size);
        EpochBatches {
            dataset: self.dataset.clone(),
            collate: self.collate.clone(),
            indices: Arc::new(indices),
            batch_size: self.batch_size,
            epoch: position.epoch,
            next_batch: position.batch.min(batches),
            next_spawn: position.batch.min(batches),
            batches,
            prefetch: self.prefetch,
            in_flight: VecDeque::new(),
            failed: false,
        }
    }
}

/// One batch being prepared: whoever claims it first (a pool task or the consumer) builds it.
struct Slot<B> {
    claimed: AtomicBool,
    result: Mutex<Option<Result<B>>>,
    ready: Condvar,
}

impl<B> Slot<B> {
    fn new() -> Self {
        Slot {
            claimed: AtomicBool::new(false),
            result: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    fn fill(&self, result: Result<B>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<B> {
        let mut guard = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = guard.take() {
                return result;
            }
            guard = self.ready.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The batches of one epoch, in order; an iterator of `Result<batch>`. After an error it ends.
pub struct EpochBatches<D: Dataset, C: Collate<D::Item>> {
    dataset: Arc<D>,
    collate: Arc<C>,
    indices: Arc<Vec<usize>>,
    batch_size: usize,
    epoch: u64,
    next_batch: usize,
    next_spawn: usize,
    batches: usize,
    prefetch: usize,
    in_flight: VecDeque<(usize, Arc<Slot<C::Batch>>)>,
    failed: bool,
}

fn build_batch<D: Dataset, C: Collate<D::Item>>(
    dataset: &D,
    collate: &C,
    indices: &[usize],
) -> Result<C::Batch> {
    let items = indices
        .iter()
        .map(|&i| dataset.get(i))
        .collect::<Result<Vec<_>>>()?;
    collate.collate(items)
}

impl<D, C> EpochBatches<D, C>
where
    D: Dataset + 'static,
    C: Collate<D::Item> + 'static,
    C::Batch: 'static,
{
    /// The position of the next batch this iterator would give; once the epoch is done, the start
    /// of the next epoch. Save it to resume with [`DataLoader::resume`].
    pub fn position(&self) -> LoaderPosition {
        if self.next_batch >= self.batches {
            LoaderPosition {
                epoch: self.epoch + 1,
                batch: 0,
            }
        } else {
            LoaderPosition {
                epoch: self.epoch,
                batch: self.next_batch,
            }
        }
    }

    /// Number of batches left in this epoch.
    pub fn remaining(&self) -> usize {
        if self.failed {
            0
        } else {
            self.batches - self.next_batch
        }
    }

    fn batch_range(&self, batch: usize) -> std::ops::Range<usize> {
        let start = batch * self.batch_size;
        start..(start + self.batch_size).min(self.indices.len())
    }

    /// Starts tasks for the batches up to `prefetch` ahead of the next one.
    fn top_up(&mut self) {
        while self.next_spawn < self.batches && self.next_spawn <= self.next_batch + self.prefetch {
            let batch = self.next_spawn;
            self.next_spawn += 1;
            let slot = Arc::new(Slot::new());
            self.in_flight.push_back((batch, slot.clone()));
            if batch == self.next_batch {
                // The one asked for now is built by the caller; only later ones go to the pool.
                continue;
            }
            let (dataset, collate, indices) = (
                self.dataset.clone(),
                self.collate.clone(),
                self.indices.clone(),
            );
            let range = self.batch_range(batch);
            rayon::spawn(move || {
                if slot.claim() {
                    slot.fill(build_batch(&*dataset, &*collate, &indices[range]));
                }
            });
        }
    }
}

impl<D, C> Iterator for EpochBatches<D, C>
where
    D: Dataset + 'static,
    C: Collate<D::Item> + 'static,
    C::Batch: 'static,
{
    type Item = Result<C::Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next_batch >= self.batches {
            return None;
        }
        self.top_up();
        let (batch, slot) = self
            .in_flight
            .pop_front()
            .expect("top_up queues the next batch");
        debug_assert_eq!(batch, self.next_batch);
        let result = if slot.claim() {
            build_batch(
                &*self.dataset,
                &*self.collate,
                &self.indices[self.batch_range(batch)],
            )
        } else {
            slot.wait()
        };
        self.next_batch += 1;
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::collate::PadCollate;
    use crate::dataset::sampler::{SequentialSampler, ShuffledSampler};
    use crate::dataset::InMemoryDataset;

    fn sequences(n: usize) -> Arc<InMemoryDataset<Vec<u32>>> {
        Arc::new(InMemoryDataset::new(
            (0..n)
                .map(|i| {
                    (0..(i % 7) as u32 + 1)
                        .map(|t| t + 100 * i as u32)
                        .collect()
                })
                .collect(),
        ))
    }

    fn loader(
        n: usize,
        batch: usize,
        seed: u64,
    ) -> DataLoader<InMemoryDataset<Vec<u32>>, ShuffledSampler, PadCollate> {
        DataLoader::new(
            sequences(n),
            ShuffledSampler::new(n, seed),
            PadCollate::new(0),
            batch,
        )
        .unwrap()
    }

    #[test]
    fn batches_follow_the_sampler_and_keep_or_drop_the_short_last_one() {
        let data = sequences(10);
        let l = DataLoader::new(
            data.clone(),
            SequentialSampler::new(10),
            PadCollate::new(0),
            4,
        )
        .unwrap();
        assert_eq!(l.batches_per_epoch(), 3);
        let batches: Vec<_> = l.epoch(0).map(Result::unwrap).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[2].ids.nrows(), 2);
        assert_eq!(
            batches[0].ids.row(1).to_vec()[..2],
            data.get(1).unwrap()[..]
        );
        let l = l.drop_last(true);
        assert_eq!(l.batches_per_epoch(), 2);
        assert_eq!(l.epoch(0).count(), 2);
    }

    #[test]
    fn same_seed_and_epoch_same_batches_for_any_thread_count_and_prefetch() {
        let reference: Vec<_> = loader(53, 5, 9)
            .prefetch(0)
            .epoch(3)
            .map(Result::unwrap)
            .collect();
        for threads in [1, 2, 4] {
            for prefetch in [0, 1, 3, 16] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got: Vec<_> = pool.install(|| {
                    loader(53, 5, 9)
                        .prefetch(prefetch)
                        .epoch(3)
                        .map(Result::unwrap)
                        .collect()
                });
                assert_eq!(got, reference, "threads {threads} prefetch {prefetch}");
            }
        }
        let other_epoch: Vec<_> = loader(53, 5, 9).epoch(4).map(Result::unwrap).collect();
        assert_ne!(other_epoch, reference);
    }

    #[test]
    fn every_item_once_per_epoch() {
        let l = loader(23, 4, 1);
        let mut firsts: Vec<u32> = l
            .epoch(0)
            .flat_map(|b| b.unwrap().ids.column(0).to_vec())
            .collect();
        firsts.sort_unstable();
        assert_eq!(firsts, (0..23).map(|i| 100 * i).collect::<Vec<_>>());
    }

    #[test]
    fn resuming_from_a_saved_position_gives_the_remaining_batches() {
        let l = loader(40, 3, 2);
        let all: Vec<_> = l.epoch(1).map(Result::unwrap).collect();
        let mut it = l.epoch(1);
        for _ in 0..5 {
            it.next().unwrap().unwrap();
        }
        let saved = serde_json::to_string(&it.position()).unwrap();
        assert_eq!(saved, r#"{"epoch":1,"batch":5}"#);
        let position: LoaderPosition = serde_json::from_str(&saved).unwrap();
        let rest: Vec<_> = l.resume(position).map(Result::unwrap).collect();
        assert_eq!(rest, all[5..]);

        let mut it = l.epoch(1);
        it.by_ref().for_each(drop);
        assert_eq!(it.position(), LoaderPosition { epoch: 2, batch: 0 });
        assert_eq!(
            l.resume(LoaderPosition {
                epoch: 1,
                batch: 99
            })
            .count(),
            0
        );
    }

    #[test]
    fn an_item_error_is_returned_and_ends_the_epoch() {
        // The sampler asks for indices past the dataset's end.
        let l = DataLoader::new(
            sequences(5),
            SequentialSampler::new(9),
            PadCollate::new(0),
            2,
        )
        .unwrap();
        let results: Vec<_> = l.epoch(0).collect();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[1].is_ok());
        let err = results[2].as_ref().unwrap_err();
        assert!(err.to_string().contains("length 5"), "{err}");
    }

    #[test]
    fn zero_batch_size_is_refused() {
        let r = DataLoader::new(
            sequences(3),
            SequentialSampler::new(3),
            PadCollate::new(0),
            0,
        );
        assert!(r.is_err());
    }
}
