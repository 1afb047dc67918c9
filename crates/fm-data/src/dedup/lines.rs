//! Boilerplate lines: prose lines that recur in many documents (navigation text, footers,
//! "Basic usage:", the blurbs of generated pages) are dropped from every document, the first
//! occurrence included.
//!
//! This is a grain of its own, beside the paragraph grain ([`dedup_paragraphs`](super::dedup_paragraphs)):
//! paragraph dedup keeps the first copy of each repeated paragraph and compares whole
//! paragraphs, so a footer line inside a paragraph of its own page survives it, and its first
//! copy always does. Here a line is judged by its **document frequency**, the number of
//! documents it appears in, against [`LineDedupConfig::min_document_frequency`].
//!
//! It runs in two passes, so it streams and merges: [`LineFrequencies`] counts (8-byte FNV-1a
//! hashes of the whitespace-normalised lines, each document counted once per line; one
//! `u64 → u32` map entry per distinct line), tables built over parts of a corpus — batches, files, machines —
//! add up with [`LineFrequencies::merge`], and [`LineFrequencies::remove_boilerplate`] then
//! filters each document on its own. Counts are sums, so the result is the same for any split of
//! the corpus and any thread count.
//!
//! Only prose lines are counted and dropped: lines of code blocks (see
//! [`blocks`](crate::clean::blocks)) are left alone, since `}` or `use std::io;` recur
//! everywhere and are not boilerplate. Lines shorter than
//! [`LineDedupConfig::min_line_bytes`] are never dropped.

use std::collections::HashMap;

use rayon::prelude::*;

use super::fnv1a64;
use crate::clean::blocks::{lines, LineKind};
use crate::DataError;

/// Settings of boilerplate-line removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineDedupConfig {
    /// A prose line found in at least this many documents is boilerplate (at least 2).
    pub min_document_frequency: usize,
    /// Lines shorter than this (bytes, whitespace-normalised) are never dropped.
    pub min_line_bytes: usize,
}

impl Default for LineDedupConfig {
    /// Boilerplate when a line is in 100 or more documents and has at least 10 bytes.
    fn default() -> Self {
        Self {
            min_document_frequency: 100,
            min_line_bytes: 10,
        }
    }
}

impl LineDedupConfig {
    fn validate(&self) -> Result<(), DataError> {
        if self.min_document_frequency < 2 {
            return Err(DataError::config(
                "LineDedupConfig",
                format!(
                    "min_document_frequency must be at least 2 (a line in one document is no repeat), got {}",
                    self.min_document_frequency
                ),
            ));
        }
        Ok(())
    }
}

/// Counts from boilerplate-line removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineDedupCounts {
    /// Prose lines seen (non-blank, outside code).
    pub lines: usize,
    /// Line occurrences dropped.
    pub dropped: usize,
    /// Distinct lines at or above the document frequency (the boilerplate found).
    pub boilerplate_distinct: usize,
    /// Bytes of the lines dropped (as written, without their newline).
    pub bytes_dropped: u64,
    /// Documents that lost at least one line.
    pub documents_changed: usize,
}

impl LineDedupCounts {
    /// Adds another part's counts (`boilerplate_distinct` is a property of the table: kept).
    pub fn merge(&mut self, o: &LineDedupCounts) {
        self.lines += o.lines;
        self.dropped += o.dropped;
        self.bytes_dropped += o.bytes_dropped;
        self.documents_changed += o.documents_changed;
    }
}

/// Document frequencies of prose lines, by hash: the first pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineFrequencies {
    counts: HashMap<u64, u32>,
    documents: usize,
}

/// Hash of a line with its whitespace collapsed, and that normalised length.
fn line_key(line: &str, norm: &mut String) -> (u64, usize) {
    norm.clear();
    for (i, w) in line.split_whitespace().enumerate() {
        if i > 0 {
            norm.push(' ');
        }
        norm.push_str(w);
    }
    (fnv1a64(norm.as_bytes()), norm.len())
}

/// Distinct hashes of the prose lines of `text`.
fn distinct_prose_lines(text: &str) -> Vec<u64> {
    let mut norm = String::new();
    let mut hashes: Vec<u64> = lines(text)
        .iter()
        .filter(|l| l.kind == LineKind::Prose)
        .map(|l| line_key(l.text, &mut norm).0)
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

impl LineFrequencies {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one document (streaming).
    pub fn add_document(&mut self, text: &str) {
        self.documents += 1;
        for h in distinct_prose_lines(text) {
            let c = self.counts.entry(h).or_insert(0);
            *c = c.saturating_add(1);
        }
    }

    /// Adds the counts of a table built over other documents.
    pub fn merge(&mut self, other: LineFrequencies) {
        let (mut big, small) = if other.counts.len() > self.counts.len() {
            (other.counts, std::mem::take(&mut self.counts))
        } else {
            (std::mem::take(&mut self.counts), other.counts)
        };
        for (h, c) in small {
            let e = big.entry(h).or_insert(0);
            *e = e.saturating_add(c);
        }
        self.counts = big;
        self.documents += other.documents;
    }

    /// The table of `docs`, counted in parallel on the current rayon pool.
    pub fn from_documents<S: AsRef<str> + Sync>(docs: &[S]) -> Self {
        docs.par_iter()
            .fold(LineFrequencies::new, |mut t, d| {
                t.add_document(d.as_ref());
                t
            })
            .reduce(LineFrequencies::new, |mut a, b| {
                a.merge(b);
                a
            })
    }

    /// Documents counted.
    pub fn documents(&self) -> usize {
        self.documents
    }

    /// Distinct prose lines counted.
    pub fn distinct_lines(&self) -> usize {
        self.counts.len()
    }

    /// In how many counted documents `line` appears (whitespace-insensitive).
    pub fn document_frequency(&self, line: &str) -> usize {
        let h = line_key(line, &mut String::new()).0;
        self.counts.get(&h).map_or(0, |&c| c as usize)
    }

    /// Distinct lines at or above `min_document_frequency`.
    pub fn boilerplate_distinct(&self, min_document_frequency: usize) -> usize {
        self.counts
            .values()
            .filter(|&&c| c as usize >= min_document_frequency)
            .count()
    }

    /// The second pass, one document: `text` without its boilerplate prose lines (code and
    /// other lines as written; blank lines left in a row by a removal collapse to one, and
    /// blank lines at either end go), and what was dropped. A document that was all
    /// boilerplate comes back empty.
    pub fn remove_boilerplate(
        &self,
        text: &str,
        config: &LineDedupConfig,
    ) -> Result<(String, LineDedupCounts), DataError> {
        config.validate()?;
        Ok(self.remove_one(text, config))
    }

    fn remove_one(&self, text: &str, config: &LineDedupConfig) -> (String, LineDedupCounts) {
        let mut counts = LineDedupCounts::default();
        let mut norm = String::new();
        let mut kept: Vec<(&str, LineKind)> = Vec::new();
        for line in lines(text) {
            if line.kind == LineKind::Prose {
                counts.lines += 1;
                let (h, len) = line_key(line.text, &mut norm);
                let df = self.counts.get(&h).map_or(0, |&c| c as usize);
                if len >= config.min_line_bytes && df >= config.min_document_frequency {
                    counts.dropped += 1;
                    counts.bytes_dropped += line.text.len() as u64;
                    continue;
                }
            }
            kept.push((line.text, line.kind));
        }
        if counts.dropped == 0 {
            return (text.to_string(), counts);
        }
        counts.documents_changed = 1;
        let mut out = String::with_capacity(text.len());
        let mut blank_before = false;
        for (l, kind) in kept {
            if kind == LineKind::Blank {
                blank_before = !out.is_empty();
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
                if blank_before {
                    out.push('\n');
                }
            }
            blank_before = false;
            out.push_str(l);
        }
        (out, counts)
    }
}

/// Both passes over `docs`: counts document frequencies, then drops the boilerplate lines of
/// every document (module docs). Parallel per document; the output is the same for any thread
/// count.
///
/// ```
/// use fm_data::dedup::lines::{dedup_lines, LineDedupConfig};
///
/// let footer = "Copyright the authors. All rights reserved.";
/// let docs: Vec<String> = (0..4)
///     .map(|i| format!("Page {i} has its own text.\n{footer}\n\n```\n}}\n```"))
///     .collect();
/// let config = LineDedupConfig { min_document_frequency: 3, ..LineDedupConfig::default() };
/// let (out, counts) = dedup_lines(&docs, &config)?;
/// assert_eq!(out[0], "Page 0 has its own text.\n\n```\n}\n```");
/// assert_eq!((counts.dropped, counts.boilerplate_distinct), (4, 1));
/// # Ok::<(), fm_data::DataError>(())
/// ```
pub fn dedup_lines<S: AsRef<str> + Sync>(
    docs: &[S],
    config: &LineDedupConfig,
) -> Result<(Vec<String>, LineDedupCounts), DataError> {
    config.validate()?;
    let table = LineFrequencies::from_documents(docs);
    let results: Vec<(String, LineDedupCounts)> = docs
        .par_iter()
        .map(|d| table.remove_one(d.as_ref(), config))
        .collect();
    let mut counts = LineDedupCounts {
        boilerplate_distinct: table.boilerplate_distinct(config.min_document_frequency),
        ..LineDedupCounts::default()
    };
    let out = results
        .into_iter()
        .map(|(t, c)| {
            counts.merge(&c);
            t
        })
        .collect();
    Ok((out, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..6)
            .map(|i| {
                let nav = if i < 5 { "Previous chapter  |  Next chapter\n" } else { "" };
                format!(
                    "{nav}Chapter {i} talks about topic {i}.\nBasic usage:\n\n```\nfn main() {{\n    let x = {i};\n}}\n```\n\nCopyright the authors, all rights reserved."
                )
            })
            .collect()
    }

    #[test]
    fn lines_in_enough_documents_go_everywhere_and_code_stays() {
        let docs = corpus();
        let cfg = LineDedupConfig {
            min_document_frequency: 5,
            min_line_bytes: 10,
        };
        let (out, c) = dedup_lines(&docs, &cfg).unwrap();
        // The nav line is in 5 documents and the footer in 6: both go, from every document.
        // "Basic usage:" is in 6 too; `}` and `fn main() {` are code and stay.
        assert_eq!(
            out[0],
            "Chapter 0 talks about topic 0.\n\n```\nfn main() {\n    let x = 0;\n}\n```"
        );
        assert_eq!(out[5], out[0].replace('0', "5"));
        assert_eq!(
            c,
            LineDedupCounts {
                lines: 6 * 3 + 5,
                dropped: 6 * 2 + 5,
                boilerplate_distinct: 3,
                bytes_dropped: 5 * 33 + 6 * (12 + 43),
                documents_changed: 6,
            }
        );
        // A higher frequency keeps the nav line (5 documents), still drops the rest.
        let (out, _) = dedup_lines(
            &docs,
            &LineDedupConfig {
                min_document_frequency: 6,
                ..cfg
            },
        )
        .unwrap();
        assert!(out[0].starts_with("Previous chapter  |  Next chapter\nChapter 0"));
        // Short lines are never dropped.
        let (out, _) = dedup_lines(
            &docs,
            &LineDedupConfig {
                min_document_frequency: 5,
                min_line_bytes: 13,
            },
        )
        .unwrap();
        assert!(out[0].contains("Basic usage:"));
    }

    #[test]
    fn a_line_counts_once_per_document_and_tables_merge_like_one_pass() {
        let docs = corpus();
        let mut twice = LineFrequencies::new();
        twice.add_document("same line here\nsame line here\nsame   line here");
        assert_eq!(twice.document_frequency("same line here"), 1);

        let whole = LineFrequencies::from_documents(&docs);
        let mut a = LineFrequencies::new();
        for d in &docs[..2] {
            a.add_document(d);
        }
        let b = LineFrequencies::from_documents(&docs[2..]);
        a.merge(b);
        assert_eq!(a, whole);
        assert_eq!(whole.documents(), 6);
        assert_eq!(
            whole.document_frequency("Previous chapter | Next chapter"),
            5
        );
        assert_eq!(
            whole.document_frequency("}"),
            0,
            "code lines are not counted"
        );
        // Streaming second pass equals the one-call form, document by document.
        let cfg = LineDedupConfig {
            min_document_frequency: 5,
            ..LineDedupConfig::default()
        };
        let (batch, _) = dedup_lines(&docs, &cfg).unwrap();
        for (d, expected) in docs.iter().zip(&batch) {
            assert_eq!(&a.remove_boilerplate(d, &cfg).unwrap().0, expected);
        }
    }

    #[test]
    fn same_output_for_any_thread_count_and_bad_settings_are_errors() {
        let docs: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "Header line of the site\nBody {i} of {}\nFooter: site {}",
                    i % 7,
                    i % 3
                )
            })
            .collect();
        let cfg = LineDedupConfig {
            min_document_frequency: 60,
            ..LineDedupConfig::default()
        };
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| dedup_lines(&docs, &cfg).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(3));
        // Header (200 docs) and the three footers (66 or 67 each) go; bodies stay.
        assert_eq!(one.1.boilerplate_distinct, 4);
        assert_eq!(one.0[10], "Body 10 of 3");
        let bad = LineDedupConfig {
            min_document_frequency: 1,
            ..cfg
        };
        let err = dedup_lines(&docs, &bad).unwrap_err().to_string();
        assert!(err.contains("min_document_frequency"), "{err}");
    }
}
