//! Counting kernels for the confusion matrix: a batch of `(true, predicted)` label pairs becomes
//! per-cell counts, every label checked, at close to the speed the labels can be read.
//!
//! Counting is a scatter of increments, one read-modify-write per prediction, and on an x86 core
//! those cost more than the loads that feed them. Two kernels cut that cost:
//!
//! - [`count_pairs`], for k ≤ [`MAX_PAIR_CLASSES`], counts two predictions per increment: element
//!   `i` of a chunk is paired with element `i + n/2`, the pair `(c1, c2)` of cell indices is one cell
//!   of a k⁴-cell table, and a fold adds each pair count to both `c1` and `c2`. That halves the
//!   increments. The check and the indices come from one pass per chunk that vectorises (baseline
//!   SSE2 included): labels are narrowed to `i16` with saturation, one OR-reduction catches anything
//!   at or above 2^15 (negative labels arrive as `u32::MAX`), one max-reduction catches `k..2^15`,
//!   and the indices are 16-bit multiply-adds. The pair table holds `u32` counters, is sized to a
//!   power of two so `index & mask` needs no bounds check, and is folded into `u64` totals at least
//!   every [`FOLD_EVERY`] labels, before a counter could fill. It never touches the caller's matrix:
//!   it returns the start of the first chunk with a bad label, and the caller turns that into the
//!   error.
//! - [`count_deferring_misses`], for large k, where the matrix is far bigger than the caches, counts
//!   correct predictions (the diagonal, usually most of them) in a k-cell table and collects the cell
//!   indices of the others in a buffer that is applied to the matrix in bursts: a dense run of
//!   independent random increments keeps many cache misses in flight, where scattering them among
//!   the diagonal counts did not. On a bad label it undoes the bursts it applied.
//!
//! Between those (17 to 511 classes) the matrix counts in place (`ConfusionMatrix::count_in_place`):
//! a 16-bit-index scratch-table kernel, a diagonal-compacting variant and eight lane tables were
//! measured no faster there. Counts are integers, so every path gives exactly the same table (unit
//! tests below compare each against a plain counting loop).

use crate::input::ClassLabel;

/// Labels are checked and indexed in chunks this long: the chunk's 16-bit pair indices (2 KB) stay
/// in L1 between the pass that reads the labels and the pass that counts them.
const CHUNK: usize = 2048;
/// Scratch `u32` counters are folded into `u64` totals after at most this many labels, long before a
/// cell could overflow (a cell gains at most one count per label).
pub(super) const FOLD_EVERY: usize = 1 << 31;
/// Largest class count for pair counting: the pair table has `k⁴ ≤ 2^16` cells.
pub(super) const MAX_PAIR_CLASSES: usize = 16;

/// From this many classes the matrix (k² `u64`, 2 MB at 512) outgrows the L2 cache and
/// [`count_deferring_misses`] pays off (measured at 400 classes: slower; at 1,000: about twice as
/// fast as counting in place; not tuned in between).
pub(super) const MIN_DEFERRED_CLASSES: usize = 512;
/// Largest class count for [`count_deferring_misses`]: cell indices must fit in `u32`.
pub(super) const MAX_DEFERRED_CLASSES: usize = 65_535;
/// Off-diagonal cell indices are applied to the matrix when this many have been collected (4 MB).
pub(super) const DEFERRED_MISSES: usize = 1 << 20;

/// The label narrowed to `i16`, saturating: exact for valid labels (below 2^15); anything larger is
/// caught by the OR-reduction on the unnarrowed value, so saturation only has to keep the lanes
/// 16 bits wide.
#[inline(always)]
fn narrow(label: u32) -> i16 {
    (label as i32).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The running check of one chunk: every label so far is in `0..k` iff `or < 2^15` and `max < k`.
#[derive(Clone, Copy)]
struct Check {
    or: u32,
    max: i16,
}

impl Check {
    #[inline(always)]
    fn new() -> Self {
        Self { or: 0, max: 0 }
    }

    #[inline(always)]
    fn passes(self, k: usize) -> bool {
        self.or < (1 << 15) && (self.max as usize) < k
    }
}

/// Cell index of one pair in 16-bit arithmetic (exact for checked labels with k ≤ 256; garbage,
/// never counted, otherwise). Updates the check.
#[inline(always)]
fn cell16(check: &mut Check, k: u16, a: u32, b: u32) -> u16 {
    check.or |= a | b;
    let (a, b) = (narrow(a), narrow(b));
    check.max = check.max.max(a.max(b));
    (a as u16).wrapping_mul(k).wrapping_add(b as u16)
}

/// A zeroed scratch table of at least `cells` `u32` counters, its length a power of two.
fn scratch(cells: usize) -> Vec<u32> {
    vec![0; cells.next_power_of_two()]
}

/// Counts every pair into `totals` (length k², zero or not: counts are added), two predictions per
/// increment, through a `u32` pair table folded every `fold_every` labels. Requires
/// k ≤ [`MAX_PAIR_CLASSES`] (two classes have a faster path of their own, but any such k works).
/// Returns `Err(start)` if a label outside `0..k` occurs at or after `start` (and none before);
/// `totals` is then partly updated, so callers pass a fresh buffer.
pub(super) fn count_pairs<L: ClassLabel>(
    k: usize,
    y_true: &[L],
    y_pred: &[L],
    fold_every: usize,
    totals: &mut [u64],
) -> Result<(), usize> {
    let cells = k * k;
    debug_assert!(k <= MAX_PAIR_CLASSES && totals.len() == cells);
    let (k16, cells16) = (k as u16, cells as u16);
    let mut pairs = scratch(cells * cells);
    let mask = pairs.len() - 1;
    let mut index = [0u16; CHUNK / 2];
    let fold_every = fold_every.max(CHUNK) / CHUNK * CHUNK;
    for (block_start, (tb, pb)) in (0..)
        .step_by(fold_every)
        .zip(y_true.chunks(fold_every).zip(y_pred.chunks(fold_every)))
    {
        for (chunk_start, (t, p)) in (block_start..)
            .step_by(CHUNK)
            .zip(tb.chunks(CHUNK).zip(pb.chunks(CHUNK)))
        {
            // Element i pairs with element i + half: four contiguous streams, so the pass vectorises.
            let half = t.len() / 2;
            let (t1, t2) = t.split_at(half);
            let (p1, p2) = p.split_at(half);
            let index = &mut index[..half];
            let mut check = Check::new();
            for ((((slot, &a), &b), &c), &d) in index.iter_mut().zip(t1).zip(p1).zip(t2).zip(p2) {
                let first = cell16(&mut check, k16, a.to_u32_or_max(), b.to_u32_or_max());
                let second = cell16(&mut check, k16, c.to_u32_or_max(), d.to_u32_or_max());
                *slot = first.wrapping_mul(cells16).wrapping_add(second);
            }
            // An odd chunk leaves its last label unpaired.
            let odd = (t.len() % 2 == 1).then(|| {
                let last = t.len() - 1;
                cell16(
                    &mut check,
                    k16,
                    t[last].to_u32_or_max(),
                    p[last].to_u32_or_max(),
                )
            });
            if !check.passes(k) {
                return Err(chunk_start);
            }
            for &pair in index.iter() {
                pairs[usize::from(pair) & mask] += 1;
            }
            if let Some(cell) = odd {
                totals[usize::from(cell)] += 1;
            }
        }
        fold_pairs(&mut pairs[..cells * cells], cells, totals);
    }
    Ok(())
}

/// Adds each pair count `(c1, c2)` to cells `c1` and `c2`, and zeroes the pair table.
fn fold_pairs(pairs: &mut [u32], cells: usize, totals: &mut [u64]) {
    for (first, row) in pairs.chunks_exact_mut(cells).enumerate() {
        let mut row_total = 0u64;
        for (total, count) in totals.iter_mut().zip(row.iter_mut()) {
            row_total += u64::from(*count);
            *total += u64::from(*count);
            *count = 0;
        }
        totals[first] += row_total;
    }
}

/// Counts every pair straight into `counts` (the k×k matrix), correct predictions through a k-cell
/// table and the others through a buffer of cell indices applied every `burst` misses. On a label
/// outside `0..k`, undoes what it added to `counts` and returns `Err(start)` as the other kernels.
/// Requires k ≤ [`MAX_DEFERRED_CLASSES`].
pub(super) fn count_deferring_misses<L: ClassLabel>(
    k: usize,
    y_true: &[L],
    y_pred: &[L],
    burst: usize,
    counts: &mut [u64],
) -> Result<(), usize> {
    debug_assert!(k <= MAX_DEFERRED_CLASSES && counts.len() == k * k);
    let k32 = k as u32;
    // Slot k takes the misses, so the diagonal update needs no branch.
    let mut diagonal = vec![0u64; k + 1];
    let burst = burst.max(1).min(y_true.len().max(1));
    let mut misses = vec![0u32; burst + CHUNK];
    let mut pending = 0;
    // Labels before `applied` have had their misses added to `counts`.
    let mut applied = 0;
    for (chunk_start, (t, p)) in (0..)
        .step_by(CHUNK)
        .zip(y_true.chunks(CHUNK).zip(y_pred.chunks(CHUNK)))
    {
        let largest = t.iter().zip(p).fold(0, |m: u32, (&a, &b)| {
            m.max(a.to_u32_or_max().max(b.to_u32_or_max()))
        });
        if largest >= k32 {
            undo_misses(k, &y_true[..applied], &y_pred[..applied], counts);
            return Err(chunk_start);
        }
        let out = &mut misses[pending..pending + t.len()];
        let mut added = 0;
        for (&a, &b) in t.iter().zip(p) {
            let (a, b) = (a.to_u32_or_max(), b.to_u32_or_max());
            let hit = a == b;
            diagonal[if hit { a as usize } else { k }] += 1;
            // Written every time, kept (by advancing) only for a miss.
            out[added] = a * k32 + b;
            added += usize::from(!hit);
        }
        pending += added;
        if pending >= burst {
            apply_misses(&misses[..pending], counts);
            pending = 0;
            applied = chunk_start + t.len();
        }
    }
    apply_misses(&misses[..pending], counts);
    for (class, &count) in diagonal[..k].iter().enumerate() {
        counts[class * k + class] += count;
    }
    Ok(())
}

fn apply_misses(misses: &[u32], counts: &mut [u64]) {
    for &cell in misses {
        counts[cell as usize] += 1;
    }
}

/// Subtracts the off-diagonal pairs of already-checked labels from `counts`.
fn undo_misses<L: ClassLabel>(k: usize, y_true: &[L], y_pred: &[L], counts: &mut [u64]) {
    for (&a, &b) in y_true.iter().zip(y_pred) {
        let (a, b) = (a.to_index(), b.to_index());
        if a != b {
            counts[a * k + b] -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(k: usize, t: &[u32], p: &[u32]) -> Vec<u64> {
        let mut counts = vec![0u64; k * k];
        for (&a, &b) in t.iter().zip(p) {
            counts[a as usize * k + b as usize] += 1;
        }
        counts
    }

    /// Labels in `0..k`, about 70% on the diagonal, the rest spread by a hash.
    fn labels(k: usize, n: usize, seed: usize) -> (Vec<u32>, Vec<u32>) {
        let hash = |i: usize| (i.wrapping_mul(2_654_435_761) ^ seed).wrapping_mul(40_503) >> 7;
        let t: Vec<u32> = (0..n).map(|i| (hash(i) % k) as u32).collect();
        let p = (0..n)
            .map(|i| {
                if hash(i + n) % 10 < 7 {
                    t[i]
                } else {
                    (hash(i + 2 * n) % k) as u32
                }
            })
            .collect();
        (t, p)
    }

    #[test]
    fn pair_counting_matches_a_plain_loop_at_any_length_and_fold_interval() {
        // Lengths around the chunk size (odd, even, one short, one over), and fold intervals of one
        // and two chunks so batches straddle several folds.
        for k in [1usize, 2, 3, 4, 10, 16] {
            for n in [1usize, 2, 3, 2047, 2048, 2049, 4095, 6145, 10_001] {
                let (t, p) = labels(k, n, k * 7 + n);
                let expected = naive(k, &t, &p);
                for fold_every in [CHUNK, 2 * CHUNK, FOLD_EVERY] {
                    let mut pairs = vec![0u64; k * k];
                    count_pairs(k, &t, &p, fold_every, &mut pairs).unwrap();
                    assert_eq!(
                        pairs, expected,
                        "pairs: k = {k}, n = {n}, fold {fold_every}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_largest_labels_are_counted_and_the_next_rejected() {
        // k = 16 puts the last pair at 65535, the top of the 16-bit range.
        for k in [1usize, 3, 16] {
            let top = (k - 1) as u32;
            let t = vec![top; 3001];
            let mut pairs = vec![0u64; k * k];
            count_pairs(k, &t, &t, CHUNK, &mut pairs).unwrap();
            assert_eq!(pairs[k * k - 1], 3001);
        }
        // Out of range in every way the narrowing could hide: k itself, just under and at 2^15,
        // 2^16 + a valid label, 2^31, u32::MAX; in y_true and in y_pred; in either half of the
        // second chunk.
        for k in [1usize, 3, 16] {
            for bad in [k as u32, 32_767, 32_768, 65_536 + 1, 1 << 31, u32::MAX] {
                for in_pred in [false, true] {
                    for position in [2_500, 3_500] {
                        let (mut t, mut p) = labels(k, 5_000, 1);
                        let target = if in_pred { &mut p } else { &mut t };
                        target[position] = bad;
                        let mut pairs = vec![0u64; k * k];
                        assert_eq!(count_pairs(k, &t, &p, CHUNK, &mut pairs), Err(2048));
                    }
                }
            }
        }
    }

    #[test]
    fn deferring_misses_matches_a_plain_loop_and_undoes_a_failed_batch() {
        for k in [1usize, 3, 10, 600] {
            for n in [1usize, 2047, 2049, 9_001] {
                let (t, p) = labels(k, n, k + 3 * n);
                // Bursts of one miss, of about one chunk, and never before the end.
                for burst in [1usize, 700, DEFERRED_MISSES] {
                    let mut counts = vec![5u64; k * k];
                    count_deferring_misses(k, &t, &p, burst, &mut counts).unwrap();
                    let expected: Vec<u64> = naive(k, &t, &p).iter().map(|c| c + 5).collect();
                    assert_eq!(counts, expected, "k = {k}, n = {n}, burst {burst}");
                }
            }
            let (mut t, p) = labels(k, 9_001, 11);
            t[7_000] = u32::MAX;
            for burst in [1usize, 700, DEFERRED_MISSES] {
                let mut counts = vec![5u64; k * k];
                let result = count_deferring_misses(k, &t, &p, burst, &mut counts);
                assert_eq!(result, Err(6_144), "k = {k}, burst {burst}");
                assert!(counts.iter().all(|&c| c == 5), "k = {k}, burst {burst}");
            }
        }
    }

    #[test]
    fn the_unpaired_last_label_is_checked() {
        let (mut t, p) = labels(10, 2049, 3);
        t[2048] = 10;
        let mut pairs = vec![0u64; 100];
        assert_eq!(count_pairs(10, &t, &p, CHUNK, &mut pairs), Err(2048));
    }
}
