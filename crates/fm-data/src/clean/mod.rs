//! Text cleaning steps that report what they changed, as counts: HTML to text ([`html`]),
//! Unicode normalisation ([`unicode`]), whitespace and control characters
//! ([`normalize_whitespace`]), PII masking ([`pii`]) and heuristic quality filters ([`quality`]).

pub mod html;
pub mod pii;
pub mod quality;
pub mod unicode;

/// Counts of what [`normalize_whitespace`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhitespaceCounts {
    /// Control characters (other than `\n` and `\t`) removed.
    pub control_removed: usize,
    /// Runs of spaces/tabs collapsed to a single space.
    pub runs_collapsed: usize,
    /// Blank lines dropped beyond one consecutive blank line.
    pub blank_lines_dropped: usize,
}

impl WhitespaceCounts {
    /// Adds another document's counts.
    pub fn merge(&mut self, o: &WhitespaceCounts) {
        self.control_removed += o.control_removed;
        self.runs_collapsed += o.runs_collapsed;
        self.blank_lines_dropped += o.blank_lines_dropped;
    }
}

/// Removes control characters, collapses runs of horizontal whitespace to one space, trims line
/// ends and keeps at most one blank line in a row; returns the text and the counts of changes.
pub fn normalize_whitespace(input: &str) -> (String, WhitespaceCounts) {
    let mut counts = WhitespaceCounts::default();
    let mut lines: Vec<String> = Vec::new();
    let normalized = input.replace("\r\n", "\n");
    for raw in normalized.split('\n') {
        let mut line = String::with_capacity(raw.len());
        let mut run = 0usize;
        for c in raw.chars() {
            if c == ' ' || c == '\t' || (c.is_whitespace() && !c.is_control()) {
                run += 1;
                continue;
            }
            if c.is_control() {
                counts.control_removed += 1;
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
        lines.push(line);
    }
    let mut out = String::with_capacity(input.len());
    let mut blanks = 0usize;
    let mut first = true;
    for line in &lines {
        if line.is_empty() {
            blanks += 1;
            if blanks > 1 {
                counts.blank_lines_dropped += 1;
                continue;
            }
        } else {
            blanks = 0;
        }
        if !first {
            out.push('\n');
        }
        first = false;
        out.push_str(line);
    }
    (out.trim().to_string(), counts)
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
