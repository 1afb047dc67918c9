//! Near-duplicate documents: MinHash signatures, LSH banding, verification, clusters.
//!
//! Signatures ([`MinHasher`]) are cut into `bands` bands of `rows` values; two documents that
//! agree on a whole band share a bucket and become a candidate pair. With `rows` chosen so that a
//! pair at the threshold is a candidate with probability ≥ 0.999 (see [`NearDupConfig::bands`]),
//! the banding itself loses almost no true pairs. A candidate pair is then accepted when its
//! estimated Jaccard similarity is at least `threshold − 3σ`, with `σ = √(t(1−t)/num_perm)` the
//! estimate's standard error at the threshold: a pair at the threshold fails this with
//! probability ≈ 0.0013, while pairs well below it are refused. Accepted pairs are joined
//! (union-find) into clusters; each cluster keeps its first document in input order.
//!
//! Signatures and bands run on the current rayon pool; the pairs of each band are joined in band
//! order, so clusters are the same for any thread count.

use rayon::prelude::*;

use super::minhash::{estimated_jaccard, MinHashConfig, MinHasher};
use crate::DataError;

/// Settings of [`near_dedup`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NearDupConfig {
    /// Signatures and shingles.
    pub minhash: MinHashConfig,
    /// Jaccard similarity at or above which two documents are duplicates.
    pub threshold: f64,
    /// Number of LSH bands; `None` picks it from the threshold (see [`NearDupConfig::bands`]).
    pub bands: Option<usize>,
}

impl Default for NearDupConfig {
    fn default() -> Self {
        Self {
            minhash: MinHashConfig::default(),
            threshold: 0.8,
            bands: None,
        }
    }
}

impl NearDupConfig {
    /// (bands, rows): the given band count with `rows = num_perm / bands`, or else the largest
    /// `rows` for which a pair at the threshold shares at least one band with probability
    /// `1 − (1 − t^rows)^bands ≥ 0.999`.
    pub fn bands(&self) -> Result<(usize, usize), DataError> {
        let p = self.minhash.num_perm;
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(DataError::config(
                "NearDupConfig",
                format!("threshold must be in (0, 1], got {}", self.threshold),
            ));
        }
        if let Some(b) = self.bands {
            if b == 0 || b > p {
                return Err(DataError::config(
                    "NearDupConfig",
                    format!("bands must be in 1..={p}, got {b}"),
                ));
            }
            return Ok((b, p / b));
        }
        let mut best = (p, 1);
        for rows in 1..=p {
            let bands = p / rows;
            let hit = 1.0 - (1.0 - self.threshold.powi(rows as i32)).powi(bands as i32);
            if hit >= 0.999 {
                best = (bands, rows);
            }
        }
        Ok(best)
    }

    /// The estimated similarity a candidate pair needs: `threshold − 3σ` (module docs).
    pub fn accept_threshold(&self) -> f64 {
        let t = self.threshold;
        let sigma = (t * (1.0 - t) / self.minhash.num_perm as f64).sqrt();
        t - 3.0 * sigma
    }
}

/// One cluster of near-duplicate documents (input indices).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NearDupCluster {
    /// The document kept: the first of the cluster in input order.
    pub kept: usize,
    /// The others, ascending.
    pub removed: Vec<usize>,
}

/// Result of [`near_dedup`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NearDupReport {
    /// Indices of the documents kept, ascending.
    pub kept: Vec<usize>,
    /// Clusters of two or more documents, ordered by their kept document.
    pub clusters: Vec<NearDupCluster>,
    /// Candidate pairs checked, summed over bands (a pair sharing several bands counts in each).
    pub candidate_pairs: usize,
    /// Candidate pairs accepted, summed over bands.
    pub accepted_pairs: usize,
    /// (bands, rows) used.
    pub bands_rows: (usize, usize),
}

struct UnionFind(Vec<u32>);

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let parent = self.0[x as usize];
            self.0[x as usize] = self.0[parent as usize];
            x = parent;
        }
        x
    }

    /// Joins the sets of `a` and `b`; the smaller index becomes the root.
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi as usize] = lo;
        }
    }
}

/// Members of one bucket compared all-against-all up to this size; larger buckets compare each
/// member with the first and with its predecessor (a chain still joins a true cluster).
const ALL_PAIRS_BUCKET: usize = 32;

/// Pairs of one band that pass verification, in bucket order.
fn band_pairs(
    sigs: &[u32],
    p: usize,
    band: usize,
    rows: usize,
    accept: f64,
) -> (Vec<(u32, u32)>, usize) {
    let n = sigs.len() / p;
    let mut keys: Vec<(u64, u32)> = (0..n)
        .map(|d| {
            let vals = &sigs[d * p + band * rows..d * p + (band + 1) * rows];
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ band as u64;
            for &v in vals {
                h = (h ^ u64::from(v)).wrapping_mul(0x0000_0100_0000_01b3);
                h ^= h >> 29;
            }
            (h, d as u32)
        })
        .collect();
    keys.sort_unstable();
    let sig = |d: u32| &sigs[d as usize * p..(d as usize + 1) * p];
    let mut pairs = Vec::new();
    let mut checked = 0;
    let mut start = 0;
    while start < keys.len() {
        let mut end = start + 1;
        while end < keys.len() && keys[end].0 == keys[start].0 {
            end += 1;
        }
        let members: Vec<u32> = keys[start..end].iter().map(|k| k.1).collect();
        let mut check = |a: u32, b: u32| {
            checked += 1;
            if estimated_jaccard(sig(a), sig(b)) >= accept {
                pairs.push((a, b));
            }
        };
        if members.len() <= ALL_PAIRS_BUCKET {
            for i in 0..members.len() {
                for j in i + 1..members.len() {
                    check(members[i], members[j]);
                }
            }
        } else {
            for i in 1..members.len() {
                check(members[0], members[i]);
                if i > 1 {
                    check(members[i - 1], members[i]);
                }
            }
        }
        start = end;
    }
    (pairs, checked)
}

/// Clusters near-duplicate documents given their signatures (row-major, `num_perm` per row).
pub fn cluster_signatures(
    sigs: &[u32],
    config: &NearDupConfig,
) -> Result<NearDupReport, DataError> {
    let (bands, rows) = config.bands()?;
    let p = config.minhash.num_perm;
    if p == 0 || !sigs.len().is_multiple_of(p) {
        return Err(DataError::config(
            "cluster_signatures",
            format!("{} values are not whole signatures of {p}", sigs.len()),
        ));
    }
    let n = sigs.len() / p;
    let accept = config.accept_threshold();
    let per_band: Vec<(Vec<(u32, u32)>, usize)> = (0..bands)
        .into_par_iter()
        .map(|b| band_pairs(sigs, p, b, rows, accept))
        .collect();
    let mut uf = UnionFind((0..n as u32).collect());
    let mut report = NearDupReport {
        bands_rows: (bands, rows),
        ..NearDupReport::default()
    };
    for (pairs, checked) in &per_band {
        report.candidate_pairs += checked;
        report.accepted_pairs += pairs.len();
        for &(a, b) in pairs {
            uf.union(a, b);
        }
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for d in 0..n {
        let root = uf.find(d as u32) as usize;
        members[root].push(d);
    }
    for (root, m) in members.into_iter().enumerate() {
        if m.is_empty() {
            continue;
        }
        report.kept.push(root);
        if m.len() > 1 {
            report.clusters.push(NearDupCluster {
                kept: root,
                removed: m[1..].to_vec(),
            });
        }
    }
    Ok(report)
}

/// Finds clusters of near-duplicate texts (MinHash + LSH; module docs) and what each keeps.
///
/// ```
/// use fm_data::dedup::near::{near_dedup, NearDupConfig};
///
/// let base = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat";
/// let texts = [base.to_string(), format!("{base} today"), "something else entirely".into()];
/// let report = near_dedup(&texts, &NearDupConfig::default())?;
/// assert_eq!(report.kept, [0, 2]);
/// assert_eq!(report.clusters[0].removed, [1]);
/// # Ok::<(), fm_data::DataError>(())
/// ```
pub fn near_dedup<S: AsRef<str> + Sync>(
    texts: &[S],
    config: &NearDupConfig,
) -> Result<NearDupReport, DataError> {
    config.bands()?;
    let hasher = MinHasher::new(&config.minhash)?;
    let sigs = hasher.signatures(texts);
    cluster_signatures(&sigs, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_choice_meets_recall_target() {
        let cfg = NearDupConfig::default();
        let (b, r) = cfg.bands().unwrap();
        assert_eq!((b, r), (25, 5));
        let hit = 1.0 - (1.0 - 0.8f64.powi(r as i32)).powi(b as i32);
        assert!(hit >= 0.999);
        assert!((cfg.accept_threshold() - 0.6939).abs() < 1e-3);
        let bad = NearDupConfig {
            threshold: 1.5,
            ..cfg
        };
        assert!(bad.bands().is_err());
    }

    #[test]
    fn signatures_of_wrong_length_are_an_error() {
        assert!(cluster_signatures(&[1, 2, 3], &NearDupConfig::default()).is_err());
    }
}
