//! Whole-file sources: one document per plain-text, Markdown or HTML file.

use std::path::Path;
use std::sync::Arc;

use super::{CollectStats, Document, ErrorPolicy};
use crate::clean::html::{html_to_text, HtmlCounts};
use crate::DataError;

/// Reads `path` as UTF-8. Invalid UTF-8 follows `policy`: `Ok(None)` and a count in `stats`
/// (Skip), or an error naming the file and the line of the first bad byte (Stop).
pub fn read_utf8_file(
    path: &Path,
    policy: ErrorPolicy,
    stats: &mut CollectStats,
) -> Result<Option<String>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    stats.files += 1;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            stats.invalid_utf8 += 1;
            if policy == ErrorPolicy::Skip {
                return Ok(None);
            }
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            Err(DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

/// One document from a whole file: HTML is converted to text (`html_counts` gets what was
/// removed), plain text and Markdown are kept as written. `Ok(None)` when the file was skipped
/// (invalid UTF-8 under [`ErrorPolicy::Skip`]) or is empty; both are counted in `stats`.
pub fn read_file_document(
    path: &Path,
    is_html: bool,
    policy: ErrorPolicy,
    stats: &mut CollectStats,
    html_counts: &mut HtmlCounts,
) -> Result<Option<Document>, DataError> {
    let Some(raw) = read_utf8_file(path, policy, stats)? else {
        return Ok(None);
    };
    let text = if is_html {
        let (text, counts) = html_to_text(&raw);
        html_counts.elements_dropped += counts.elements_dropped;
        html_counts.bytes_in += counts.bytes_in;
        html_counts.bytes_out += counts.bytes_out;
        text
    } else {
        raw
    };
    if text.trim().is_empty() {
        stats.empty += 1;
        return Ok(None);
    }
    let doc = Document::new(text, Arc::from(path), 1, 0);
    stats.count_document(&doc);
    Ok(Some(doc))
}
