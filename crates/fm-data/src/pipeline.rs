//! The corpus pipeline: collect a directory, clean, deduplicate, and report what each step did.
//!
//! Steps, in order (each can be switched off in [`CorpusConfig`]):
//! 1. collection ([`DirectorySource`], batches of files converted in parallel, HTML to text);
//! 2. cleaning per document, in parallel: Unicode normalisation, whitespace and control
//!    characters, PII masking, then the quality filter;
//! 3. exact deduplication (hash of the whitespace-normalised text);
//! 4. near-duplicate deduplication (MinHash + LSH);
//! 5. containment (documents made of other documents, such as a book's `print.html`);
//! 6. boilerplate lines: prose lines found in at least `min_document_frequency` documents are
//!    dropped from all of them ([`crate::dedup::lines`]; documents left empty go);
//! 7. repeated paragraphs across the corpus (first occurrence kept; documents left empty go).
//!
//! Code keeps its shape throughout: HTML `<pre>` blocks come out of collection as Markdown code
//! fences, and whitespace cleaning, line and paragraph deduplication leave the lines and
//! indentation of fenced and indented code blocks as written ([`crate::clean::blocks`]).
//!
//! The result is the surviving documents (with their provenance) and a [`CorpusReport`] that
//! serialises to JSON. The same input and configuration give the same output for any number of
//! threads.

use rayon::prelude::*;

use crate::clean::html::HtmlCounts;
use crate::clean::pii::{mask_pii, PiiCounts};
use crate::clean::quality::{check, QualityConfig, QualityCounts};
use crate::clean::unicode::{normalize_unicode, NormalForm};
use crate::clean::{normalize_whitespace, WhitespaceCounts};
use crate::collect::{CollectStats, DirectorySource, Document, ErrorPolicy};
use crate::dedup::containment::{find_containers, ContainmentConfig};
use crate::dedup::lines::{dedup_lines, LineDedupConfig, LineDedupCounts};
use crate::dedup::near::{near_dedup, NearDupConfig};
use crate::dedup::{dedup_paragraphs, exact_dedup, ParagraphDedupCounts};
use crate::DataError;

/// What the pipeline does; [`Default`] runs every step with the published thresholds except the
/// quality filter, which uses [`QualityConfig::technical`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CorpusConfig {
    /// Bad records: skip and count, or stop.
    pub policy: ErrorPolicy,
    /// Files read and converted in parallel per batch (bounds memory during collection).
    pub files_per_batch: usize,
    /// Unicode normal form.
    pub normal_form: NormalForm,
    /// Mask e-mail, IP addresses and phone numbers.
    pub mask_pii: bool,
    /// Quality filter, if any.
    pub quality: Option<QualityConfig>,
    /// Exact-duplicate removal.
    pub exact: bool,
    /// Near-duplicate removal, if any.
    pub near: Option<NearDupConfig>,
    /// Container removal, if any.
    pub containment: Option<ContainmentConfig>,
    /// Boilerplate-line removal, if any.
    #[serde(default = "default_lines")]
    pub lines: Option<LineDedupConfig>,
    /// Repeated-paragraph removal.
    pub paragraphs: bool,
    /// Clusters listed by path in the report, per grain.
    pub examples: usize,
}

fn default_lines() -> Option<LineDedupConfig> {
    Some(LineDedupConfig::default())
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self {
            policy: ErrorPolicy::Skip,
            files_per_batch: 256,
            normal_form: NormalForm::Nfkc,
            mask_pii: true,
            quality: Some(QualityConfig::technical()),
            exact: true,
            near: Some(NearDupConfig::default()),
            containment: Some(ContainmentConfig::default()),
            lines: default_lines(),
            paragraphs: true,
            examples: 10,
        }
    }
}

/// What the cleaning step changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CleaningCounts {
    /// Documents changed by Unicode normalisation.
    pub unicode_changed: usize,
    /// Whitespace and control characters.
    pub whitespace: WhitespaceCounts,
    /// PII masked.
    pub pii: PiiCounts,
    /// Bytes before and after cleaning.
    pub bytes_in: u64,
    /// Bytes after cleaning (before the quality filter).
    pub bytes_out: u64,
}

/// A duplicate cluster by path: what was kept and what was removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterExample {
    /// Path of the document kept.
    pub kept: String,
    /// Paths of the documents removed (or, for containment, the parts kept).
    pub others: Vec<String>,
}

/// Counts and examples of one deduplication grain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrainReport {
    /// Clusters of two or more documents (containers, for containment).
    pub clusters: usize,
    /// Documents removed.
    pub removed: usize,
    /// Bytes removed.
    pub bytes_removed: u64,
    /// The largest clusters, by path.
    pub examples: Vec<ClusterExample>,
}

/// What the pipeline did, step by step.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CorpusReport {
    /// Collection counts (files, documents, bytes, skipped records by reason).
    pub collect: CollectStats,
    /// HTML conversion.
    pub html: HtmlCounts,
    /// Cleaning.
    pub cleaning: CleaningCounts,
    /// Documents emptied by cleaning.
    pub emptied: usize,
    /// Quality filter verdicts.
    pub quality: QualityCounts,
    /// Exact duplicates.
    pub exact: GrainReport,
    /// Near duplicates.
    pub near: GrainReport,
    /// Containers.
    pub containment: GrainReport,
    /// Boilerplate lines.
    #[serde(default)]
    pub lines: LineDedupCounts,
    /// Documents emptied by boilerplate-line removal.
    #[serde(default)]
    pub line_emptied: usize,
    /// Repeated paragraphs.
    pub paragraphs: ParagraphDedupCounts,
    /// Documents emptied by paragraph deduplication.
    pub paragraph_emptied: usize,
    /// Documents out.
    pub documents_out: usize,
    /// Bytes out.
    pub bytes_out: u64,
}

/// Per-document cleaning; `None` when the document is empty afterwards.
fn clean_one(
    doc: Document,
    config: &CorpusConfig,
) -> (
    Option<Document>,
    CleaningCounts,
    Option<Result<(), crate::clean::quality::QualityFail>>,
) {
    let mut counts = CleaningCounts {
        bytes_in: doc.text.len() as u64,
        ..CleaningCounts::default()
    };
    let (text, changed) = normalize_unicode(&doc.text, config.normal_form);
    counts.unicode_changed = usize::from(changed);
    let (text, ws) = normalize_whitespace(&text);
    counts.whitespace = ws;
    let text = if config.mask_pii {
        let (t, pii) = mask_pii(&text);
        counts.pii = pii;
        t
    } else {
        text
    };
    counts.bytes_out = text.len() as u64;
    if text.is_empty() {
        return (None, counts, None);
    }
    let verdict = config.quality.as_ref().map(|q| check(&text, q));
    let doc = Document { text, ..doc };
    match verdict {
        Some(Err(_)) => (None, counts, verdict),
        _ => (Some(doc), counts, verdict),
    }
}

fn example(docs: &[Document], kept: usize, others: &[usize]) -> ClusterExample {
    ClusterExample {
        kept: docs[kept].path.display().to_string(),
        others: others
            .iter()
            .map(|&o| docs[o].path.display().to_string())
            .collect(),
    }
}

/// Keeps `docs[i]` for the ascending indices `kept`.
fn retain_indices(docs: Vec<Document>, kept: &[usize]) -> Vec<Document> {
    let mut keep = vec![false; docs.len()];
    for &k in kept {
        keep[k] = true;
    }
    docs.into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect()
}

/// Runs the pipeline on a directory.
///
/// ```no_run
/// use fm_data::collect::DirectorySource;
/// use fm_data::pipeline::{run_directory, CorpusConfig};
///
/// let source = DirectorySource::new("corpus").include(["**/*.html", "**/*.md"])?;
/// let (docs, report) = run_directory(&source, &CorpusConfig::default())?;
/// println!("{} documents\n{}", docs.len(), serde_json::to_string_pretty(&report).unwrap());
/// # Ok::<(), fm_data::DataError>(())
/// ```
pub fn run_directory(
    source: &DirectorySource,
    config: &CorpusConfig,
) -> Result<(Vec<Document>, CorpusReport), DataError> {
    let mut report = CorpusReport::default();
    let mut batches = source.batches(config.policy, config.files_per_batch)?;
    let mut docs = Vec::new();
    for batch in batches.by_ref() {
        let cleaned = clean_batch(batch?, config, &mut report);
        docs.extend(cleaned);
    }
    report.collect = *batches.stats();
    report.html = *batches.html_counts();
    dedup_all(docs, config, report)
}

/// Runs the cleaning and deduplication steps on documents already collected.
pub fn run_documents(
    docs: Vec<Document>,
    config: &CorpusConfig,
) -> Result<(Vec<Document>, CorpusReport), DataError> {
    let mut report = CorpusReport::default();
    report.collect.documents = docs.len();
    report.collect.text_bytes = docs.iter().map(|d| d.text.len() as u64).sum();
    let docs = clean_batch(docs, config, &mut report);
    dedup_all(docs, config, report)
}

/// Runs only the deduplication steps (exact, near, containment, lines, paragraphs) of `config` on
/// documents already cleaned; the report's collection and cleaning parts stay zero.
pub fn deduplicate(
    docs: Vec<Document>,
    config: &CorpusConfig,
) -> Result<(Vec<Document>, CorpusReport), DataError> {
    dedup_all(docs, config, CorpusReport::default())
}

fn clean_batch(
    batch: Vec<Document>,
    config: &CorpusConfig,
    report: &mut CorpusReport,
) -> Vec<Document> {
    let results: Vec<_> = batch
        .into_par_iter()
        .map(|d| clean_one(d, config))
        .collect();
    let mut out = Vec::with_capacity(results.len());
    for (doc, counts, verdict) in results {
        let c = &mut report.cleaning;
        c.unicode_changed += counts.unicode_changed;
        c.whitespace.merge(&counts.whitespace);
        c.pii.merge(&counts.pii);
        c.bytes_in += counts.bytes_in;
        c.bytes_out += counts.bytes_out;
        match verdict {
            None if doc.is_none() => report.emptied += 1,
            Some(v) => report.quality.add(v),
            None => {}
        }
        out.extend(doc);
    }
    out
}

fn dedup_all(
    mut docs: Vec<Document>,
    config: &CorpusConfig,
    mut report: CorpusReport,
) -> Result<(Vec<Document>, CorpusReport), DataError> {
    if config.exact {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let r = exact_dedup(&texts);
        let mut clusters = r.clusters.clone();
        clusters.sort_by_key(|c| std::cmp::Reverse(c.len()));
        report.exact = GrainReport {
            clusters: r.clusters.len(),
            removed: docs.len() - r.kept.len(),
            bytes_removed: r
                .clusters
                .iter()
                .flat_map(|c| &c[1..])
                .map(|&i| docs[i].text.len() as u64)
                .sum(),
            examples: clusters
                .iter()
                .take(config.examples)
                .map(|c| example(&docs, c[0], &c[1..]))
                .collect(),
        };
        docs = retain_indices(docs, &r.kept);
    }
    if let Some(near) = &config.near {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let r = near_dedup(&texts, near)?;
        let mut clusters = r.clusters.clone();
        clusters.sort_by_key(|c| std::cmp::Reverse(c.removed.len()));
        report.near = GrainReport {
            clusters: r.clusters.len(),
            removed: docs.len() - r.kept.len(),
            bytes_removed: r
                .clusters
                .iter()
                .flat_map(|c| &c.removed)
                .map(|&i| docs[i].text.len() as u64)
                .sum(),
            examples: clusters
                .iter()
                .take(config.examples)
                .map(|c| example(&docs, c.kept, &c.removed))
                .collect(),
        };
        docs = retain_indices(docs, &r.kept);
    }
    if let Some(cc) = &config.containment {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let r = find_containers(&texts, cc);
        let mut containers = r.containers.clone();
        containers.sort_by_key(|c| std::cmp::Reverse(c.contained.len()));
        report.containment = GrainReport {
            clusters: r.containers.len(),
            removed: r.containers.len(),
            bytes_removed: r
                .containers
                .iter()
                .map(|c| docs[c.container].text.len() as u64)
                .sum(),
            examples: containers
                .iter()
                .take(config.examples)
                .map(|c| example(&docs, c.container, &c.contained))
                .collect(),
        };
        docs = retain_indices(docs, &r.kept);
    }
    if let Some(lc) = &config.lines {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let (new_texts, counts) = dedup_lines(&texts, lc)?;
        report.lines = counts;
        (docs, report.line_emptied) = replace_texts_dropping_empty(docs, new_texts);
    }
    if config.paragraphs {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let (new_texts, counts) = dedup_paragraphs(&texts);
        report.paragraphs = counts;
        (docs, report.paragraph_emptied) = replace_texts_dropping_empty(docs, new_texts);
    }
    report.documents_out = docs.len();
    report.bytes_out = docs.iter().map(|d| d.text.len() as u64).sum();
    Ok((docs, report))
}

/// The documents with their texts replaced by `new_texts` (same order), those left empty dropped,
/// and how many were dropped.
fn replace_texts_dropping_empty(
    docs: Vec<Document>,
    new_texts: Vec<String>,
) -> (Vec<Document>, usize) {
    let before = docs.len();
    let kept: Vec<Document> = docs
        .into_iter()
        .zip(new_texts)
        .filter(|(_, t)| !t.is_empty())
        .map(|(d, text)| Document { text, ..d })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_to_deduplicated_documents() {
        let dir = std::env::temp_dir().join(format!("fm-data-pipeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("book")).unwrap();
        // Paragraphs of distinct words, so chapters share no shingles by accident.
        let para = |i: usize| {
            (0..30)
                .map(|k| format!("word{}x{k}", i * 7919 + k * 31))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let chapter = |c: usize| {
            (0..3)
                .map(|p| para(c * 10 + p))
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        let html = |body: &str| {
            format!(
                "<html><body><nav class=\"sidebar\">Menu</nav><main>{}</main></body></html>",
                body.split("\n\n")
                    .map(|p| format!("<p>{p}</p>"))
                    .collect::<String>()
            )
        };
        std::fs::write(dir.join("book/ch1.html"), html(&chapter(1))).unwrap();
        std::fs::write(dir.join("book/ch2.html"), html(&chapter(2))).unwrap();
        std::fs::write(dir.join("book/copy-of-ch1.html"), html(&chapter(1))).unwrap();
        let near = format!(
            "{}\n\nAlso contact admin@example.com today for more.",
            chapter(2)
        );
        std::fs::write(dir.join("book/ch2-edited.html"), html(&near)).unwrap();
        std::fs::write(
            dir.join("book/print.html"),
            html(&format!("{}\n\n{}", chapter(1), chapter(2))),
        )
        .unwrap();
        std::fs::write(dir.join("short.txt"), "too short").unwrap();
        std::fs::write(dir.join("bad.txt"), b"\xff\xfe").unwrap();

        let source = DirectorySource::new(&dir);
        let (docs, report) = run_directory(&source, &CorpusConfig::default()).unwrap();
        let names: Vec<String> = docs
            .iter()
            .map(|d| d.path.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["book/ch1.html", "book/ch2-edited.html"],
            "{report:#?}"
        );
        assert_eq!(report.collect.invalid_utf8, 1);
        assert_eq!(report.quality.too_short, 1);
        assert_eq!(report.cleaning.pii.emails, 1);
        assert_eq!(
            (report.exact.clusters, report.exact.removed),
            (1, 1),
            "{report:#?}"
        );
        assert_eq!(
            (report.near.clusters, report.near.removed),
            (1, 1),
            "{:#?}",
            report.near
        );
        assert_eq!(
            (report.containment.clusters, report.containment.removed),
            (1, 1)
        );
        assert!(report.containment.examples[0].kept.ends_with("print.html"));
        assert!(report.html.elements_dropped >= 5);
        assert_eq!(report.documents_out, 2);
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"containment\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn boilerplate_lines_are_a_pipeline_step_with_a_serde_default() {
        let path: std::sync::Arc<std::path::Path> =
            std::sync::Arc::from(std::path::Path::new("mem"));
        let docs: Vec<Document> = (0..5)
            .map(|i| {
                let text = format!(
                    "Page {i} explains topic number {i} at length.\nGenerated by the site tool, all rights reserved.\n\n```\n}}\n```"
                );
                Document::new(text, path.clone(), i + 1, 0)
            })
            .collect();
        let config = CorpusConfig {
            quality: None,
            near: None,
            lines: Some(LineDedupConfig {
                min_document_frequency: 3,
                ..LineDedupConfig::default()
            }),
            ..CorpusConfig::default()
        };
        let (out, report) = run_documents(docs, &config).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(
            (report.lines.dropped, report.lines.boilerplate_distinct),
            (5, 1)
        );
        // The footer line is gone from every page; the code block `}` repeats in every
        // document, so paragraph dedup (after the line step) keeps only its first copy.
        assert_eq!(
            out[0].text,
            "Page 0 explains topic number 0 at length.\n\n```\n}\n```"
        );
        assert_eq!(out[2].text, "Page 2 explains topic number 2 at length.");
        assert_eq!(report.paragraphs.dropped, 4);
        // A configuration saved before the step existed reads with the step on, by default.
        let mut json = serde_json::to_value(CorpusConfig::default()).unwrap();
        json.as_object_mut().unwrap().remove("lines");
        let old: CorpusConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.lines, Some(LineDedupConfig::default()));
    }
}
