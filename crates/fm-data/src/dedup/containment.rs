//! Containment: documents that are made of other documents, such as a book's `print.html`
//! (every chapter on one page).
//!
//! Jaccard similarity misses these: a whole book and one of its chapters share few shingles
//! relative to the book's size. Containment looks at paragraphs instead. Each document is cut
//! into paragraphs (blank-line separated, a code block whole as in
//! [`blocks`](crate::clean::blocks::blocks); whitespace-normalised, hashed with 64-bit FNV-1a;
//! paragraphs shorter than `min_paragraph_bytes` and boilerplate paragraphs found in more than
//! `max_paragraph_docs` documents are ignored). Document A is *contained* in a larger document B
//! when at least `min_coverage` of A's paragraph bytes also appear in B. B is a *container* when
//! it contains at least `min_contained` documents and those documents together cover at least
//! `min_coverage` of B's own paragraph bytes. Containers are removed; the parts are kept.

use std::collections::HashMap;

use super::fnv1a64;

/// Settings of [`find_containers`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainmentConfig {
    /// Fraction of a document's paragraph bytes that must appear in the other (both directions,
    /// see the module docs).
    pub min_coverage: f64,
    /// A container holds at least this many documents.
    pub min_contained: usize,
    /// Paragraphs in more documents than this are boilerplate and ignored.
    pub max_paragraph_docs: usize,
    /// Paragraphs shorter than this (bytes, normalised) are ignored.
    pub min_paragraph_bytes: usize,
}

impl Default for ContainmentConfig {
    fn default() -> Self {
        Self {
            min_coverage: 0.8,
            min_contained: 2,
            max_paragraph_docs: 64,
            min_paragraph_bytes: 32,
        }
    }
}

/// A document made of others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    /// The container (input index), removed.
    pub container: usize,
    /// The documents it contains (input indices, ascending), kept.
    pub contained: Vec<usize>,
    /// Fraction of the container's paragraph bytes covered by them, in per mille.
    pub coverage_per_mille: u32,
}

/// Result of [`find_containers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainmentReport {
    /// Containers found, ascending by index.
    pub containers: Vec<Container>,
    /// Indices kept (every document that is not a container), ascending.
    pub kept: Vec<usize>,
}

/// Distinct (hash, bytes) of a text's paragraphs.
fn paragraphs(text: &str, min_bytes: usize) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut norm = String::new();
    for block in crate::clean::blocks::blocks(text) {
        let p = block.text;
        norm.clear();
        for (i, w) in p.split_whitespace().enumerate() {
            if i > 0 {
                norm.push(' ');
            }
            norm.push_str(w);
        }
        if norm.len() >= min_bytes {
            out.push((fnv1a64(norm.as_bytes()), norm.len() as u64));
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|p| p.0);
    out
}

/// Finds containers (module docs).
///
/// ```
/// use fm_data::dedup::containment::{find_containers, ContainmentConfig};
///
/// let ch1 = "Chapter one explains ownership in some detail.\n\nIt has two paragraphs of text.";
/// let ch2 = "Chapter two explains borrowing and references.";
/// let book = format!("{ch1}\n\n{ch2}");
/// let report = find_containers(&[ch1.to_string(), ch2.to_string(), book], &ContainmentConfig::default());
/// assert_eq!(report.containers[0].container, 2);
/// assert_eq!(report.containers[0].contained, [0, 1]);
/// assert_eq!(report.kept, [0, 1]);
/// ```
pub fn find_containers<S: AsRef<str> + Sync>(
    texts: &[S],
    config: &ContainmentConfig,
) -> ContainmentReport {
    use rayon::prelude::*;
    let paras: Vec<Vec<(u64, u64)>> = texts
        .par_iter()
        .map(|t| paragraphs(t.as_ref(), config.min_paragraph_bytes))
        .collect();
    let mut docs_of: HashMap<u64, Vec<u32>> = HashMap::new();
    for (d, ps) in paras.iter().enumerate() {
        for &(h, _) in ps {
            docs_of.entry(h).or_default().push(d as u32);
        }
    }
    let useful = |h: &u64| {
        let n = docs_of[h].len();
        n <= config.max_paragraph_docs
    };
    let total: Vec<u64> = paras
        .iter()
        .map(|ps| ps.iter().filter(|(h, _)| useful(h)).map(|p| p.1).sum())
        .collect();
    // Shared bytes of each ordered pair (a, b), a's paragraphs found in b.
    let mut shared: HashMap<(u32, u32), u64> = HashMap::new();
    for (d, ps) in paras.iter().enumerate() {
        for (h, bytes) in ps {
            let holders = &docs_of[h];
            if holders.len() < 2 || holders.len() > config.max_paragraph_docs {
                continue;
            }
            for &other in holders {
                if other as usize != d {
                    *shared.entry((d as u32, other)).or_default() += bytes;
                }
            }
        }
    }
    let mut contained_in: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&(a, b), &bytes) in &shared {
        let (ta, tb) = (total[a as usize], total[b as usize]);
        if ta > 0 && ta < tb && bytes as f64 >= config.min_coverage * ta as f64 {
            contained_in.entry(b).or_default().push(a);
        }
    }
    let mut report = ContainmentReport::default();
    let mut is_container = vec![false; texts.len()];
    let mut candidates: Vec<_> = contained_in.into_iter().collect();
    candidates.sort_unstable();
    for (b, mut parts) in candidates {
        if parts.len() < config.min_contained || total[b as usize] == 0 {
            continue;
        }
        parts.sort_unstable();
        let covered: u64 = paras[b as usize]
            .iter()
            .filter(|(h, _)| useful(h) && docs_of[h].iter().any(|d| parts.binary_search(d).is_ok()))
            .map(|p| p.1)
            .sum();
        let coverage = covered as f64 / total[b as usize] as f64;
        if coverage >= config.min_coverage {
            is_container[b as usize] = true;
            report.containers.push(Container {
                container: b as usize,
                contained: parts.iter().map(|&p| p as usize).collect(),
                coverage_per_mille: (coverage * 1000.0).round() as u32,
            });
        }
    }
    report.kept = (0..texts.len()).filter(|&d| !is_container[d]).collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(i: usize) -> String {
        format!("Paragraph number {i} says something long enough to count here.")
    }

    #[test]
    fn book_of_chapters_is_a_container_and_index_pages_are_not() {
        let ch: Vec<String> = (0..3)
            .map(|c| {
                (0..4)
                    .map(|p| para(c * 10 + p))
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .collect();
        let book = ch.join("\n\n");
        // An overview quoting one paragraph of each chapter beside much text of its own.
        let overview = format!(
            "{}\n\n{}\n\n{}",
            para(0),
            para(10),
            (100..120).map(para).collect::<Vec<_>>().join("\n\n")
        );
        let texts = [ch[0].clone(), ch[1].clone(), ch[2].clone(), book, overview];
        let r = find_containers(&texts, &ContainmentConfig::default());
        assert_eq!(r.containers.len(), 1, "{r:?}");
        assert_eq!(r.containers[0].container, 3);
        assert_eq!(r.containers[0].contained, [0, 1, 2]);
        assert_eq!(r.containers[0].coverage_per_mille, 1000);
        assert_eq!(r.kept, [0, 1, 2, 4]);
    }

    #[test]
    fn boilerplate_paragraphs_do_not_make_containers() {
        let footer = "This documentation is generated by a tool and shared by every page.";
        let cfg = ContainmentConfig {
            max_paragraph_docs: 3,
            ..ContainmentConfig::default()
        };
        let texts: Vec<String> = (0..6)
            .map(|i| format!("{footer}\n\n{}", para(i)))
            .chain(std::iter::once(footer.to_string()))
            .collect();
        let r = find_containers(&texts, &cfg);
        assert!(r.containers.is_empty(), "{r:?}");
    }
}
