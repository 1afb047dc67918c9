//! How the kernels in [`ops`](super) share work between threads without changing a single bit.
//!
//! Every kernel splits its output into chunks whose values do not depend on each other (elements,
//! rows, column blocks), and computes each chunk with the same sequential code whether it runs on one
//! thread or many. A reduction axis is never split between threads. The chunk boundaries, where they
//! matter to a result at all, are fixed constants, never derived from the thread count, so results
//! are bitwise identical for any rayon pool.

use rayon::prelude::*;

/// Below this much work (elements touched) a kernel stays on the calling thread: a rayon fork-join
/// costs a few microseconds, about what 64K cheap f32 operations take on one core.
pub(crate) const PAR_MIN_WORK: usize = 1 << 16;

/// Chunk length of elementwise loops: large enough to amortise rayon's per-task cost, small enough
/// (64 KiB of f32) that the chunks of a large array balance over the threads.
pub(crate) const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// Whether `work` elements are worth spreading over the current pool.
pub(crate) fn worth_parallel(work: usize) -> bool {
    work >= PAR_MIN_WORK && rayon::current_num_threads() > 1
}

/// Calls `body(index, chunk)` for each `chunk_len`-long chunk of `data` (the last may be shorter),
/// in parallel when `parallel` is set. The chunks are disjoint, so the result cannot depend on the
/// schedule.
pub(crate) fn for_each_chunk_mut<T, F>(data: &mut [T], chunk_len: usize, parallel: bool, body: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    if parallel {
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| body(i, chunk));
    } else {
        data.chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| body(i, chunk));
    }
}

/// Like [`for_each_chunk_mut`] over two equally long slices at once: `body(index, chunk_a, chunk_b)`
/// gets the chunks with the same index.
pub(crate) fn for_each_chunk_pair_mut<T, F>(
    a: &mut [T],
    b: &mut [T],
    chunk_len: usize,
    parallel: bool,
    body: F,
) where
    T: Send,
    F: Fn(usize, &mut [T], &mut [T]) + Sync + Send,
{
    assert_eq!(a.len(), b.len(), "paired chunks need equally long slices");
    let chunk_len = chunk_len.max(1);
    if parallel {
        a.par_chunks_mut(chunk_len)
            .zip(b.par_chunks_mut(chunk_len))
            .enumerate()
            .for_each(|(i, (ca, cb))| body(i, ca, cb));
    } else {
        a.chunks_mut(chunk_len)
            .zip(b.chunks_mut(chunk_len))
            .enumerate()
            .for_each(|(i, (ca, cb))| body(i, ca, cb));
    }
}

/// Calls `body(index, chunk)` on each `chunk_len`-long chunk of `data` like [`for_each_chunk_mut`]
/// and returns the bodies' results in chunk order (so combining them afterwards is deterministic).
pub(crate) fn map_chunks_mut<T, R, F>(
    data: &mut [T],
    chunk_len: usize,
    parallel: bool,
    body: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, &mut [T]) -> R + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    if parallel {
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .map(|(i, chunk)| body(i, chunk))
            .collect()
    } else {
        data.chunks_mut(chunk_len)
            .enumerate()
            .map(|(i, chunk)| body(i, chunk))
            .collect()
    }
}

/// Maps `produce(index)` over `0..count`, in parallel when `parallel` is set, returning the results
/// in index order (so combining them afterwards is deterministic).
pub(crate) fn map_indices<R, F>(count: usize, parallel: bool, produce: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync + Send,
{
    if parallel {
        (0..count).into_par_iter().map(produce).collect()
    } else {
        (0..count).map(produce).collect()
    }
}

/// How many consecutive rows of `row_len` elements make a task of at least [`PAR_MIN_WORK`] / 4
/// elements (at least one row), so row-parallel kernels do not spawn a task per tiny row.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    ((PAR_MIN_WORK / 4) / row_len.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_everything_once_in_both_modes() {
        for parallel in [false, true] {
            let mut data = vec![0usize; 1000];
            for_each_chunk_mut(&mut data, 64, parallel, |i, chunk| {
                for (j, v) in chunk.iter_mut().enumerate() {
                    *v += i * 64 + j;
                }
            });
            assert!(data.iter().enumerate().all(|(k, &v)| v == k));
        }
    }

    #[test]
    fn map_indices_keeps_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let v = pool.install(|| map_indices(100, true, |i| i * 3));
        assert_eq!(v, (0..100).map(|i| i * 3).collect::<Vec<_>>());
    }

    #[test]
    fn rows_per_task_is_at_least_one() {
        assert_eq!(rows_per_task(usize::MAX), 1);
        assert_eq!(rows_per_task(0), PAR_MIN_WORK / 4);
        assert_eq!(rows_per_task(1024), 16);
    }
}
