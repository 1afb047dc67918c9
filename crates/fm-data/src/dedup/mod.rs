//! Deduplication at three grains: exact documents (a stable hash of the whitespace-normalised
//! text, [`exact_dedup`]), near-duplicate documents (MinHash and LSH, [`near`]), and repeated
//! parts across the corpus: paragraphs ([`dedup_paragraphs`], first occurrence kept), the
//! containment that catches whole-book pages ([`containment`]), and boilerplate lines that
//! recur in many documents ([`lines`], every occurrence dropped).
//!
//! Paragraphs are the blocks of [`clean::blocks`](crate::clean::blocks): a code block is one
//! paragraph whatever blank lines it holds, and keeps its indentation.

pub mod containment;
pub mod lines;
pub mod minhash;
pub mod near;

use std::collections::HashMap;

use rayon::prelude::*;

/// 64-bit FNV-1a: stable across runs, platforms and Rust versions (unlike `DefaultHasher`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Result of [`exact_dedup`]: indices kept (first of each cluster) and clusters of duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactDedupReport {
    /// Indices of the documents kept, in input order.
    pub kept: Vec<usize>,
    /// Each cluster of two or more identical documents, as input indices; the first is kept.
    pub clusters: Vec<Vec<usize>>,
}

/// Groups documents whose text is identical after collapsing whitespace; keeps the first of each.
/// Texts with equal hashes are compared byte for byte, so hash collisions never merge documents.
/// Normalising and hashing run in parallel (rayon); grouping is in input order, so the result is
/// the same for any thread count.
pub fn exact_dedup<S: AsRef<str> + Sync>(docs: &[S]) -> ExactDedupReport {
    let norm: Vec<(u64, String)> = docs
        .par_iter()
        .map(|d| {
            let n = d.as_ref().split_whitespace().collect::<Vec<_>>().join(" ");
            (fnv1a64(n.as_bytes()), n)
        })
        .collect();
    let mut by_hash: HashMap<u64, Vec<Vec<usize>>> = HashMap::new();
    let mut order: Vec<(u64, usize)> = Vec::new();
    for (i, (h, t)) in norm.iter().enumerate() {
        let groups = by_hash.entry(*h).or_default();
        match groups.iter_mut().position(|g| norm[g[0]].1 == *t) {
            Some(k) => groups[k].push(i),
            None => {
                order.push((*h, groups.len()));
                groups.push(vec![i]);
            }
        }
    }
    let mut report = ExactDedupReport::default();
    for (h, k) in order {
        let g = &by_hash[&h][k];
        report.kept.push(g[0]);
        if g.len() > 1 {
            report.clusters.push(g.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_whitespace_variants() {
        let docs = ["a  b", "c", "a b", "c\n", "d"];
        let r = exact_dedup(&docs);
        assert_eq!(r.kept, vec![0, 1, 4]);
        assert_eq!(r.clusters, vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn fnv_known_value() {
        // FNV-1a 64 of "a" from the published test vectors.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

/// Counts from [`dedup_paragraphs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParagraphDedupCounts {
    /// Paragraphs seen in total.
    pub paragraphs: usize,
    /// Paragraphs dropped because an identical (whitespace-normalised) one came earlier in the corpus.
    pub dropped: usize,
    /// Distinct paragraphs that occur more than once (the clusters at this grain).
    pub repeated_distinct: usize,
    /// Bytes of the paragraphs dropped.
    pub bytes_dropped: u64,
}

/// Drops every paragraph (blank-line separated block, or a whole code block: see
/// [`blocks`](crate::clean::blocks::blocks)) already seen earlier in the corpus, in input order;
/// kept paragraphs come back as written (code indentation included), joined by blank lines. A
/// document that was wholly made of earlier paragraphs (e.g. a book's print page) comes back
/// empty. Deterministic: the first occurrence always wins. Paragraphs are compared by the
/// 64-bit FNV-1a hash of their whitespace-normalised text, so memory is 8 bytes per distinct
/// paragraph (two distinct paragraphs colliding is a 2^-64 event per pair). Cutting and hashing,
/// and joining what is kept, run in parallel (rayon); only the first-seen decision is a
/// sequential pass over hashes, so the output is the same for any thread count.
pub fn dedup_paragraphs<S: AsRef<str> + Sync>(docs: &[S]) -> (Vec<String>, ParagraphDedupCounts) {
    let hashed: Vec<Vec<(u64, &str)>> = docs
        .par_iter()
        .map(|d| {
            let mut norm = String::new();
            crate::clean::blocks::blocks(d.as_ref())
                .into_iter()
                .map(|block| {
                    norm.clear();
                    for (i, w) in block.text.split_whitespace().enumerate() {
                        if i > 0 {
                            norm.push(' ');
                        }
                        norm.push_str(w);
                    }
                    (fnv1a64(norm.as_bytes()), block.text)
                })
                .collect()
        })
        .collect();
    // Hash -> seen more than once.
    let mut seen: HashMap<u64, bool> = HashMap::new();
    let mut counts = ParagraphDedupCounts::default();
    let keep: Vec<Vec<bool>> = hashed
        .iter()
        .map(|paragraphs| {
            paragraphs
                .iter()
                .map(|&(h, p)| {
                    counts.paragraphs += 1;
                    match seen.entry(h) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(false);
                            true
                        }
                        std::collections::hash_map::Entry::Occupied(mut o) => {
                            if !*o.get() {
                                counts.repeated_distinct += 1;
                                o.insert(true);
                            }
                            counts.dropped += 1;
                            counts.bytes_dropped += p.len() as u64;
                            false
                        }
                    }
                })
                .collect()
        })
        .collect();
    let out = hashed
        .par_iter()
        .zip(keep)
        .map(|(paragraphs, keep)| {
            let kept: Vec<&str> = paragraphs
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(&(_, p), _)| p.trim_end())
                .collect();
            kept.join("\n\n")
        })
        .collect();
    (out, counts)
}

#[cfg(test)]
mod paragraph_tests {
    use super::*;

    #[test]
    fn superset_document_is_emptied() {
        let docs = [
            "ch one a\n\nch one b",
            "ch two",
            "ch one  a\n\nch one b\n\nch two",
        ];
        let (out, c) = dedup_paragraphs(&docs);
        assert_eq!(out, vec!["ch one a\n\nch one b", "ch two", ""]);
        assert_eq!(
            c,
            ParagraphDedupCounts {
                paragraphs: 6,
                dropped: 3,
                repeated_distinct: 3,
                bytes_dropped: 23,
            }
        );
    }

    #[test]
    fn code_blocks_are_one_paragraph_and_keep_their_indentation() {
        let listing = "```\nfn a() {\n\tx();\n\n\ty();\n}\n```";
        let docs = [
            format!("Intro.\n\n{listing}"),
            // The same listing elsewhere goes as a whole; a listing sharing only its second
            // half stays whole (no orphan fence), and indented code keeps its indentation.
            format!("Other.\n\n{listing}\n\n```\nfn b() {{\n\n\ty();\n}}\n```\n\n    indented\n\n      more"),
        ];
        let (out, c) = dedup_paragraphs(&docs);
        assert_eq!(out[0], format!("Intro.\n\n{listing}"));
        assert_eq!(
            out[1],
            "Other.\n\n```\nfn b() {\n\n\ty();\n}\n```\n\n    indented\n\n      more"
        );
        assert_eq!((c.paragraphs, c.dropped), (6, 1));
    }

    #[test]
    fn exact_and_paragraph_dedup_do_not_depend_on_the_thread_count() {
        let docs: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    "para {}\n\nshared {}\n\n```\ncode {}\n```",
                    i % 17,
                    i % 5,
                    i % 11
                )
            })
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| (exact_dedup(&docs), dedup_paragraphs(&docs)))
        };
        let one = run(1);
        assert_eq!(one, run(3));
        // 17 * 5 * 11 > 300: documents repeat only through i % 935, so none is an exact copy
        // of another; paragraphs repeat a lot.
        assert_eq!(one.0.kept.len(), 300);
        assert_eq!(one.1 .1.paragraphs - one.1 .1.dropped, 17 + 5 + 11);
    }
}
