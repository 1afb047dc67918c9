//! Directory sources: a recursive walk with glob include/exclude filters, each file read by the
//! reader for its format, in sorted path order (so runs are reproducible), file by file or in
//! batches of files converted in parallel.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use super::{
    read_file_document, CollectStats, CsvColumns, CsvReader, Document, ErrorPolicy, JsonlFields,
    JsonlReader,
};
use crate::clean::html::HtmlCounts;
use crate::DataError;

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One document per file, as written (`.txt`, `.text`).
    Text,
    /// One document per file, Markdown kept as written (`.md`, `.markdown`).
    Markdown,
    /// One document per file, converted to text (`.html`, `.htm`, `.xhtml`).
    Html,
    /// One document per line ([`JsonlReader`]; `.jsonl`, `.ndjson`).
    Jsonl,
    /// One document per row ([`CsvReader`]; `.csv`).
    Csv,
}

impl FileFormat {
    /// The format for a file name's extension (ASCII case-insensitive), if it is one of ours.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "text" => Self::Text,
            "md" | "markdown" => Self::Markdown,
            "html" | "htm" | "xhtml" => Self::Html,
            "jsonl" | "ndjson" => Self::Jsonl,
            "csv" => Self::Csv,
            _ => return None,
        })
    }
}

/// Per-format settings for a directory walk.
#[derive(Debug, Clone, Default)]
pub struct FormatOptions {
    /// Fields of JSON Lines files.
    pub jsonl: JsonlFields,
    /// Columns of CSV files.
    pub csv: CsvColumns,
}

/// A directory read recursively: files whose path (relative to the root) matches an include
/// glob and no exclude glob, and whose extension is a known [`FileFormat`].
///
/// ```no_run
/// use fm_data::collect::{DirectorySource, ErrorPolicy};
///
/// let source = DirectorySource::new("docs/html")
///     .include(["**/*.html"])?
///     .exclude(["**/print.html", "static.files/**"])?;
/// let mut docs = source.documents(ErrorPolicy::Skip)?;
/// for doc in docs.by_ref() {
///     let doc = doc?;
///     println!("{} {}", doc.path.display(), doc.text.len());
/// }
/// println!("{:?}", docs.stats());
/// # Ok::<(), fm_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DirectorySource {
    root: PathBuf,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// Per-format settings.
    pub options: FormatOptions,
}

fn glob_set<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<GlobSet, DataError> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let p = p.as_ref();
        let glob = Glob::new(p).map_err(|e| DataError::InvalidGlob {
            pattern: p.to_string(),
            reason: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| DataError::InvalidGlob {
        pattern: String::new(),
        reason: e.to_string(),
    })
}

impl DirectorySource {
    /// Every file of a known format under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            include: None,
            exclude: None,
            options: FormatOptions::default(),
        }
    }

    /// Keeps only files matching one of `patterns` (globs on the path relative to the root).
    pub fn include<S: AsRef<str>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<Self, DataError> {
        self.include = Some(glob_set(patterns)?);
        Ok(self)
    }

    /// Leaves out files matching one of `patterns` (globs on the path relative to the root).
    pub fn exclude<S: AsRef<str>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<Self, DataError> {
        self.exclude = Some(glob_set(patterns)?);
        Ok(self)
    }

    /// Sets the per-format settings.
    pub fn with_options(mut self, options: FormatOptions) -> Self {
        self.options = options;
        self
    }

    /// The selected files, sorted. Memory is one path per file, not the files' contents.
    pub fn paths(&self) -> Result<Vec<PathBuf>, DataError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| DataError::io(&dir, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| DataError::io(&path, e))?;
                if kind.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                let included = self.include.as_ref().is_none_or(|g| g.is_match(rel));
                let excluded = self.exclude.as_ref().is_some_and(|g| g.is_match(rel));
                if included && !excluded && FileFormat::from_path(&path).is_some() {
                    out.push(path);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Streams the documents of every selected file, one file in memory at a time.
    pub fn documents(&self, policy: ErrorPolicy) -> Result<DirectoryDocuments, DataError> {
        Ok(DirectoryDocuments {
            batches: self.batches(policy, 1)?,
            current: Vec::new().into_iter(),
        })
    }

    /// Streams the documents in batches of `files_per_batch` files, each batch read and
    /// converted in parallel on the current rayon pool; batches and the documents in them come
    /// in sorted path order whatever the thread count. Memory is bounded by one batch.
    pub fn batches(
        &self,
        policy: ErrorPolicy,
        files_per_batch: usize,
    ) -> Result<DirectoryBatches, DataError> {
        if files_per_batch == 0 {
            return Err(DataError::config(
                "DirectorySource::batches",
                "files_per_batch must be at least 1",
            ));
        }
        Ok(DirectoryBatches {
            paths: self.paths()?,
            next: 0,
            files_per_batch,
            options: self.options.clone(),
            policy,
            stats: CollectStats::default(),
            html: HtmlCounts::default(),
            failed: false,
        })
    }
}

/// Documents of one file, with its counts.
fn read_any(
    path: &Path,
    options: &FormatOptions,
    policy: ErrorPolicy,
) -> Result<(Vec<Document>, CollectStats, HtmlCounts), DataError> {
    let mut stats = CollectStats::default();
    let mut html = HtmlCounts::default();
    let format = FileFormat::from_path(path);
    let docs = match format {
        Some(FileFormat::Jsonl) => {
            let mut r = JsonlReader::open(path, options.jsonl.clone(), policy)?;
            let docs = r.by_ref().collect::<Result<Vec<_>, _>>()?;
            stats = *r.stats();
            docs
        }
        Some(FileFormat::Csv) => {
            let mut r = CsvReader::open(path, &options.csv, policy)?;
            let docs = r.by_ref().collect::<Result<Vec<_>, _>>()?;
            stats = *r.stats();
            docs
        }
        _ => {
            let is_html = format == Some(FileFormat::Html);
            read_file_document(path, is_html, policy, &mut stats, &mut html)?
                .into_iter()
                .collect()
        }
    };
    Ok((docs, stats, html))
}

/// Batches of documents from a [`DirectorySource`]; see [`DirectorySource::batches`].
pub struct DirectoryBatches {
    paths: Vec<PathBuf>,
    next: usize,
    files_per_batch: usize,
    options: FormatOptions,
    policy: ErrorPolicy,
    stats: CollectStats,
    html: HtmlCounts,
    failed: bool,
}

impl DirectoryBatches {
    /// What was read and skipped so far.
    pub fn stats(&self) -> &CollectStats {
        &self.stats
    }

    /// What HTML conversion removed so far.
    pub fn html_counts(&self) -> &HtmlCounts {
        &self.html
    }

    /// Number of files selected.
    pub fn file_count(&self) -> usize {
        self.paths.len()
    }
}

impl Iterator for DirectoryBatches {
    type Item = Result<Vec<Document>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.paths.len() {
            return None;
        }
        let end = (self.next + self.files_per_batch).min(self.paths.len());
        let batch = &self.paths[self.next..end];
        self.next = end;
        let results: Vec<_> = batch
            .par_iter()
            .map(|p| read_any(p, &self.options, self.policy))
            .collect();
        let mut docs = Vec::new();
        for r in results {
            match r {
                Ok((d, s, h)) => {
                    docs.extend(d);
                    self.stats.merge(&s);
                    self.html.elements_dropped += h.elements_dropped;
                    self.html.bytes_in += h.bytes_in;
                    self.html.bytes_out += h.bytes_out;
                }
                Err(e) => {
                    // The first error in path order; later files of the batch are discarded.
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(docs))
    }
}

/// Documents from a [`DirectorySource`], one file at a time; see [`DirectorySource::documents`].
pub struct DirectoryDocuments {
    batches: DirectoryBatches,
    current: std::vec::IntoIter<Document>,
}

impl DirectoryDocuments {
    /// What was read and skipped so far.
    pub fn stats(&self) -> &CollectStats {
        self.batches.stats()
    }
}

impl Iterator for DirectoryDocuments {
    type Item = Result<Document, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(d) = self.current.next() {
                return Some(Ok(d));
            }
            match self.batches.next()? {
                Ok(docs) => self.current = docs.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fm-data-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub/deep")).unwrap();
        std::fs::create_dir_all(dir.join("skip")).unwrap();
        std::fs::write(dir.join("a.txt"), "plain text").unwrap();
        std::fs::write(dir.join("b.md"), "# Title\n\nbody").unwrap();
        std::fs::write(dir.join("sub/c.html"), "<p>from <b>html</b></p>").unwrap();
        std::fs::write(
            dir.join("sub/deep/d.jsonl"),
            "{\"text\":\"j1\"}\nbad\n{\"text\":\"j2\"}\n",
        )
        .unwrap();
        std::fs::write(dir.join("sub/e.csv"), "text\nc1\nc2\n").unwrap();
        std::fs::write(dir.join("sub/bad.txt"), b"\xff\xfe").unwrap();
        std::fs::write(dir.join("skip/x.txt"), "excluded").unwrap();
        std::fs::write(dir.join("image.png"), "not a format").unwrap();
        dir
    }

    #[test]
    fn walks_filters_and_reads_every_format() {
        let dir = tree();
        let source = DirectorySource::new(&dir).exclude(["skip/**"]).unwrap();
        let mut docs = source.documents(ErrorPolicy::Skip).unwrap();
        let texts: Vec<String> = docs.by_ref().map(|d| d.unwrap().text).collect();
        assert_eq!(
            texts,
            [
                "plain text",
                "# Title\n\nbody",
                "from html",
                "j1",
                "j2",
                "c1",
                "c2"
            ]
        );
        let s = docs.stats();
        assert_eq!((s.files, s.invalid_utf8, s.malformed_json), (6, 1, 1));
        let only_html = DirectorySource::new(&dir).include(["**/*.html"]).unwrap();
        assert_eq!(only_html.paths().unwrap(), [dir.join("sub/c.html")]);
        // Parallel batches give the same documents in the same order.
        let batched: Vec<String> = source
            .batches(ErrorPolicy::Skip, 3)
            .unwrap()
            .flat_map(|b| b.unwrap())
            .map(|d| d.text)
            .collect();
        assert_eq!(batched, texts);
        // Stop: the first bad record in path order is an error naming file and line.
        let err = source
            .documents(ErrorPolicy::Stop)
            .unwrap()
            .find_map(Result::err)
            .unwrap();
        assert_eq!(
            err.to_string(),
            format!("{}:1: invalid UTF-8", dir.join("sub/bad.txt").display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_glob_is_an_error() {
        let err = DirectorySource::new(".").include(["a[b"]).err().unwrap();
        assert!(err.to_string().starts_with("glob pattern \"a[b\""), "{err}");
    }
}
