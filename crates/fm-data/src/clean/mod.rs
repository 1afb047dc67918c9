//! Text cleaning steps that report what they changed, as counts: HTML to text ([`html`]),
//! Unicode normalisation ([`unicode`]), whitespace and control characters
//! ([`normalize_whitespace`]), PII masking ([`pii`]) and heuristic quality filters ([`quality`]).
//! [`blocks`] tells prose from code (Markdown fenced and indented code blocks), so that the
//! whitespace rules and the deduplication grains leave code its lines and indentation.

pub mod blocks;
pub mod html;
pub mod pii;
pub mod quality;
pub mod unicode;

use blocks::LineKind;

/// Counts of what [`normalize_whitespace`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhitespaceCounts {
    /// Control characters (other than `\n` and `\t`) removed.
    pub control_removed: usize,
    /// Runs of spaces/tabs in prose collapsed to a single space.
    pub runs_collapsed: usize,
    /// Blank lines dropped beyond one consecutive blank line (outside code).
    pub blank_lines_dropped: usize,
    /// Code blocks (fenced or indented) whose lines were kept as written, trailing whitespace
    /// aside.
    #[serde(default)]
    pub code_blocks_kept: usize,
}

impl WhitespaceCounts {
    /// Adds another document's counts.
    pub fn merge(&mut self, o: &WhitespaceCounts) {
        self.control_removed += o.control_removed;
        self.runs_collapsed += o.runs_collapsed;
        self.blank_lines_dropped += o.blank_lines_dropped;
        self.code_blocks_kept += o.code_blocks_kept;
    }
}

/// A prose line: control characters removed, runs of whitespace collapsed to one space, both
/// ends trimmed.
fn normalize_prose_line(raw: &str, counts: &mut WhitespaceCounts) -> String {
    let mut line = String::with_capacity(raw.len());
    let mut run = 0usize;
    for c in raw.chars() {
        if c == ' ' || c == '\t' || (c.is_whitespace() && !c.is_control()) {
            run += 1;
            continue;
        }
        if c.is_control() {
            // `\r` (of a lone CR) and other controls; a whitespace control such as a form
            // feed still separates words.
            counts.control_removed += 1;
            if c.is_whitespace() {
                run += 1;
            }
            continue;
        }
        if run > 0 && !line.is_empty() {
            line.push(' ');
            if run > 1 {
                counts.runs_collapsed += 1;
            }
        }
        run = 0;
        line.push(c);
    }
    line
}

/// A code line: control characters other than tab removed, trailing whitespace trimmed;
/// indentation (tabs or spaces) and inner spacing kept.
fn normalize_code_line(raw: &str, counts: &mut WhitespaceCounts) -> String {
    let mut line: String = raw
        .chars()
        .filter(|&c| {
            let drop = c.is_control() && c != '\t';
            counts.control_removed += usize::from(drop);
            !drop
        })
        .collect();
    line.truncate(line.trim_end().len());
    line
}

/// Normalises whitespace and removes control characters; returns the text and the counts of
/// changes.
///
/// Prose lines: control characters removed, runs of horizontal whitespace collapsed to one
/// space, both ends trimmed; at most one blank line in a row. Code (Markdown fenced or indented
/// code blocks, see [`blocks`]; `<pre>` blocks of HTML come out of
/// [`html_to_text`](html::html_to_text) fenced): every line and blank line kept, indentation and
/// inner spacing as written (tabs stay tabs), control characters other than tab removed,
/// trailing whitespace trimmed. Leading blank lines and trailing whitespace of the text go.
///
/// ```
/// use fm_data::clean::normalize_whitespace;
///
/// let text = "Some   prose\twith  runs.\n\n\n\n```rust\nfn main() {\n\tlet  x = 1;  \n\n    y();\n}\n```";
/// let (clean, counts) = normalize_whitespace(text);
/// assert_eq!(clean, "Some prose with runs.\n\n```rust\nfn main() {\n\tlet  x = 1;\n\n    y();\n}\n```");
/// assert_eq!((counts.runs_collapsed, counts.blank_lines_dropped, counts.code_blocks_kept), (2, 2, 1));
/// ```
pub fn normalize_whitespace(input: &str) -> (String, WhitespaceCounts) {
    let mut counts = WhitespaceCounts::default();
    let crlf;
    let text = if input.contains("\r\n") {
        crlf = input.replace("\r\n", "\n");
        crlf.as_str()
    } else {
        input
    };
    let mut out = String::with_capacity(text.len());
    let mut blanks = 0usize;
    let mut last_code_block = usize::MAX;
    for line in blocks::lines(text) {
        let normalized = match line.kind {
            LineKind::Code => {
                if line.block != last_code_block {
                    counts.code_blocks_kept += 1;
                    last_code_block = line.block;
                }
                blanks = 0;
                normalize_code_line(line.text, &mut counts)
            }
            _ => {
                let l = normalize_prose_line(line.text, &mut counts);
                if l.is_empty() {
                    blanks += 1;
                    if blanks > 1 || out.is_empty() {
                        // Leading blank lines are dropped without being counted, as trimming.
                        counts.blank_lines_dropped += usize::from(!out.is_empty());
                        continue;
                    }
                } else {
                    blanks = 0;
                }
                l
            }
        };
        if !out.is_empty() {
            out.push('\n');
        } else if normalized.is_empty() {
            continue;
        }
        out.push_str(&normalized);
    }
    out.truncate(out.trim_end().len());
    (out, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_counts() {
        let (t, c) = normalize_whitespace("  hello   world\u{0}\r\n\n\n\nnext\tline  ");
        assert_eq!(t, "hello world\n\nnext line");
        assert_eq!(c.control_removed, 1);
        assert_eq!(c.runs_collapsed, 1);
        assert_eq!(c.blank_lines_dropped, 2);
    }

    #[test]
    fn clean_text_is_unchanged() {
        let (t, c) = normalize_whitespace("plain text\nsecond line");
        assert_eq!(t, "plain text\nsecond line");
        assert_eq!(c, WhitespaceCounts::default());
    }
}
