//! Recall of MinHash + LSH near-duplicate detection on a synthetic corpus with known pairs.
//!
//! Families of documents: a random base text and variants with a few words replaced, deleted or
//! inserted, so pair similarities spread over about 0.4..1.0. The true Jaccard similarity of
//! every pair of documents is computed exactly over the same word 5-gram shingle sets; every
//! pair at or above 0.8 must end up in one cluster.

use std::collections::HashMap;

use fm_data::dedup::near::{near_dedup, NearDupConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn corpus(seed: u64, families: usize, variants: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let word = |rng: &mut Rng| format!("w{}", rng.below(5000));
    let mut docs = Vec::new();
    for _ in 0..families {
        let len = 120 + rng.below(200);
        let base: Vec<String> = (0..len).map(|_| word(&mut rng)).collect();
        docs.push(base.join(" "));
        for _ in 0..variants {
            let mut v = base.clone();
            let edits = rng.below(len / 12 + 1);
            for _ in 0..edits {
                let at = rng.below(v.len());
                match rng.below(3) {
                    0 => v[at] = word(&mut rng),
                    1 => {
                        v.remove(at);
                    }
                    _ => v.insert(at, word(&mut rng)),
                }
            }
            docs.push(v.join(" "));
        }
    }
    docs
}

/// Sorted, distinct 5-word shingles.
fn shingles(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut s: Vec<String> = words.windows(5).map(|w| w.join(" ")).collect();
    s.sort_unstable();
    s.dedup();
    s
}

fn jaccard(a: &[String], b: &[String]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

#[test]
fn recall_of_true_pairs_at_0_8_is_at_least_0_99() {
    let docs = corpus(42, 150, 5);
    let sets: Vec<Vec<String>> = docs.iter().map(|d| shingles(d)).collect();
    let report = near_dedup(&docs, &NearDupConfig::default()).unwrap();
    let mut cluster_of: HashMap<usize, usize> = HashMap::new();
    for c in &report.clusters {
        cluster_of.insert(c.kept, c.kept);
        for &r in &c.removed {
            cluster_of.insert(r, c.kept);
        }
    }
    let same = |a: usize, b: usize| {
        cluster_of
            .get(&a)
            .is_some_and(|c| cluster_of.get(&b) == Some(c))
    };

    let (mut true_pairs, mut found_pairs, mut low_pairs_joined, mut low_pairs) = (0, 0, 0, 0);
    // Per document: has a true partner, and is clustered with at least one of them.
    let mut has_partner = vec![false; docs.len()];
    let mut found_partner = vec![false; docs.len()];
    for a in 0..docs.len() {
        for b in a + 1..docs.len() {
            let j = jaccard(&sets[a], &sets[b]);
            if j >= 0.8 {
                true_pairs += 1;
                has_partner[a] = true;
                has_partner[b] = true;
                if same(a, b) {
                    found_pairs += 1;
                    found_partner[a] = true;
                    found_partner[b] = true;
                }
            } else if j < 0.5 {
                low_pairs += 1;
                low_pairs_joined += usize::from(same(a, b));
            }
        }
    }
    let docs_with_partner = has_partner.iter().filter(|&&h| h).count();
    let docs_found = found_partner.iter().filter(|&&f| f).count();
    let doc_recall = docs_found as f64 / docs_with_partner as f64;
    let pair_recall = found_pairs as f64 / true_pairs as f64;
    println!(
        "true pairs {true_pairs}, pair recall {pair_recall:.4}, documents with a partner \
         {docs_with_partner}, document recall {doc_recall:.4}, pairs below 0.5 joined \
         {low_pairs_joined}/{low_pairs}"
    );
    // The corpus must exercise the threshold: many pairs on both sides of it.
    assert!(true_pairs > 250, "{true_pairs}");
    assert!(docs_with_partner > 300, "{docs_with_partner}");
    assert!(doc_recall >= 0.99, "document recall {doc_recall}");
    assert!(pair_recall >= 0.99, "pair recall {pair_recall}");
    // Unrelated documents (other families) are never joined.
    let family = |d: usize| d / 6;
    for c in &report.clusters {
        assert!(
            c.removed.iter().all(|&r| family(r) == family(c.kept)),
            "{c:?}"
        );
    }
    assert!(low_pairs > 1000);
}
