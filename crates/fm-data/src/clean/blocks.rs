//! Which lines of a text are code: Markdown fenced code blocks (```` ``` ```` or `~~~`, as
//! [`html_to_text`](super::html::html_to_text) also writes `<pre>` blocks) and indented code
//! blocks (lines indented by four columns or a tab, after a blank line), and the text cut into
//! blocks (paragraphs and whole code blocks).
//!
//! Cleaning and deduplication need this so that code keeps its shape: whitespace is normalised
//! in prose only, paragraph deduplication never splits a code block at one of its blank lines,
//! and boilerplate-line removal never takes a `}` out of a listing.
//!
//! The rules follow CommonMark where it matters here: a fence is three or more backticks or
//! tildes indented by at most three spaces (a backtick fence's info string has no backtick); it
//! is closed by a line of the same character, at least as long, and nothing else; an unclosed
//! fence runs to the end of the text. An indented block cannot interrupt a paragraph (an indented
//! line inside a paragraph is prose), and blank lines between indented lines belong to the block.
//! List-item continuations indented by four columns are taken as code too: their whitespace is
//! kept as written, which loses nothing.

/// What a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A non-blank line outside code.
    Prose,
    /// A blank (empty or whitespace-only) line outside code.
    Blank,
    /// A line of a code block, its fences and blank lines included.
    Code,
}

/// One line of a text, without its `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's text (a `\r` before the `\n` stays, as whitespace).
    pub text: &'a str,
    /// Byte offset of the line in the text.
    pub start: usize,
    /// What it is.
    pub kind: LineKind,
    /// The block the line belongs to: blocks are numbered from 0 in text order; blank lines
    /// outside code belong to none (`usize::MAX`).
    pub block: usize,
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Columns of leading indentation (tabs to the next multiple of 4) and its byte length.
fn indentation(line: &str) -> (usize, usize) {
    let mut col = 0;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b' ' => col += 1,
            b'\t' => col += 4 - col % 4,
            _ => return (col, i),
        }
    }
    (col, line.len())
}

fn is_indented(line: &str) -> bool {
    !is_blank(line) && indentation(line).0 >= 4
}

/// A fence opening `line`: its character and length.
fn fence_open(line: &str) -> Option<(u8, usize)> {
    let (col, at) = indentation(line);
    if col > 3 || line[..at].contains('\t') {
        return None;
    }
    let rest = &line[at..];
    let ch = *rest.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = rest.bytes().take_while(|&b| b == ch).count();
    if len < 3 || (ch == b'`' && rest[len..].contains('`')) {
        return None;
    }
    Some((ch, len))
}

fn closes_fence(line: &str, ch: u8, open_len: usize) -> bool {
    let (col, at) = indentation(line);
    if col > 3 {
        return false;
    }
    let rest = &line[at..];
    let len = rest.bytes().take_while(|&b| b == ch).count();
    len >= open_len && rest[len..].trim().is_empty()
}

/// Every line of `text` (split at `\n`) with its kind and block.
///
/// ```
/// use fm_data::clean::blocks::{lines, LineKind};
///
/// let text = "Prose\n\n```rust\nfn f() {\n\n    x();\n}\n```\nMore prose";
/// let kinds: Vec<LineKind> = lines(text).iter().map(|l| l.kind).collect();
/// use LineKind::*;
/// assert_eq!(kinds, [Prose, Blank, Code, Code, Code, Code, Code, Code, Prose]);
/// ```
pub fn lines(text: &str) -> Vec<Line<'_>> {
    let mut raw: Vec<(&str, usize)> = Vec::new();
    let mut start = 0;
    for l in text.split('\n') {
        raw.push((l, start));
        start += l.len() + 1;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut block = 0usize;
    let mut i = 0;
    // Whether the previous line is prose (so an indented line continues the paragraph).
    let mut in_paragraph = false;
    while i < raw.len() {
        let (l, s) = raw[i];
        if let Some((ch, len)) = fence_open(l) {
            if in_paragraph {
                block += 1;
            }
            out.push(Line {
                text: l,
                start: s,
                kind: LineKind::Code,
                block,
            });
            i += 1;
            while i < raw.len() {
                let (l, s) = raw[i];
                out.push(Line {
                    text: l,
                    start: s,
                    kind: LineKind::Code,
                    block,
                });
                i += 1;
                if closes_fence(l, ch, len) {
                    break;
                }
            }
            block += 1;
            in_paragraph = false;
        } else if is_blank(l) {
            if in_paragraph {
                block += 1;
            }
            in_paragraph = false;
            out.push(Line {
                text: l,
                start: s,
                kind: LineKind::Blank,
                block: usize::MAX,
            });
            i += 1;
        } else if is_indented(l) && !in_paragraph {
            // An indented code block: indented lines, and blank lines followed by more of them.
            let mut end = i;
            let mut j = i;
            while j < raw.len() && (is_indented(raw[j].0) || is_blank(raw[j].0)) {
                if !is_blank(raw[j].0) {
                    end = j + 1;
                }
                j += 1;
            }
            for &(l, s) in &raw[i..end] {
                out.push(Line {
                    text: l,
                    start: s,
                    kind: LineKind::Code,
                    block,
                });
            }
            i = end;
            block += 1;
        } else {
            out.push(Line {
                text: l,
                start: s,
                kind: LineKind::Prose,
                block,
            });
            in_paragraph = true;
            i += 1;
        }
    }
    out
}

/// A block of a text: a paragraph or a whole code block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// The block's lines as they are in the text, without the surrounding blank lines.
    pub text: &'a str,
    /// Whether it is a code block (fences included).
    pub code: bool,
}

/// The paragraphs (blank-line separated prose) and code blocks of `text`, in order. A code
/// block is one block whatever blank lines it holds.
///
/// ```
/// use fm_data::clean::blocks::blocks;
///
/// let text = "One\ntwo\n\n```\na\n\nb\n```\n\nThree";
/// let b: Vec<&str> = blocks(text).iter().map(|b| b.text).collect();
/// assert_eq!(b, ["One\ntwo", "```\na\n\nb\n```", "Three"]);
/// ```
pub fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out: Vec<Block<'_>> = Vec::new();
    let ls = lines(text);
    let mut i = 0;
    while i < ls.len() {
        if ls[i].kind == LineKind::Blank {
            i += 1;
            continue;
        }
        let first = ls[i];
        let mut last = first;
        while i < ls.len() && ls[i].block == first.block {
            last = ls[i];
            i += 1;
        }
        out.push(Block {
            text: &text[first.start..last.start + last.text.len()],
            code: first.kind == LineKind::Code,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineKind::*;

    fn kinds(text: &str) -> Vec<LineKind> {
        lines(text).iter().map(|l| l.kind).collect()
    }

    #[test]
    fn fences_need_three_and_close_with_at_least_as_many() {
        assert_eq!(kinds("``\nx\n``"), [Prose, Prose, Prose]);
        // A longer fence holds a shorter one as content.
        assert_eq!(
            kinds("````md\n```\ninner\n```\n````\nafter"),
            [Code, Code, Code, Code, Code, Prose]
        );
        assert_eq!(kinds("~~~\n```\n~~~\nx"), [Code, Code, Code, Prose]);
        // Four spaces of indentation is no fence; a backtick info string with a backtick is
        // inline code, not a fence.
        assert_eq!(kinds("p\n    ```\nq"), [Prose, Prose, Prose]);
        assert_eq!(kinds("``` a`b\nx"), [Prose, Prose]);
        // Unclosed: code to the end.
        assert_eq!(kinds("x\n```\na\n\nb"), [Prose, Code, Code, Code, Code]);
    }

    #[test]
    fn indented_blocks_start_after_a_blank_line_and_span_blank_lines() {
        assert_eq!(
            kinds("Para\n    not code\n\n    code\n\n\tmore code\n\nprose"),
            [Prose, Prose, Blank, Code, Code, Code, Blank, Prose]
        );
        let b = blocks("Para\n    cont\n\n    a\n\n\tb\n\nz");
        let texts: Vec<(&str, bool)> = b.iter().map(|b| (b.text, b.code)).collect();
        assert_eq!(
            texts,
            [
                ("Para\n    cont", false),
                ("    a\n\n\tb", true),
                ("z", false)
            ]
        );
    }

    #[test]
    fn a_fence_interrupts_a_paragraph_and_adjacent_blocks_stay_apart() {
        let b = blocks("intro:\n```\nx\n```\n```\ny\n```\nend");
        let texts: Vec<&str> = b.iter().map(|b| b.text).collect();
        assert_eq!(texts, ["intro:", "```\nx\n```", "```\ny\n```", "end"]);
        assert!(blocks("").is_empty());
    }
}
