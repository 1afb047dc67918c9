//! The Rust documentation installed with the toolchain as a text corpus, for the fm-data benches.
//!
//! The books under `$(rustc --print sysroot)/share/doc/rust/html` (the Book, the Reference, the
//! Rustonomicon, Rust by Example, the Edition Guide), one document per HTML page, with text taken
//! out crudely: `<script>` and `<style>` bodies dropped, tags removed, the common entities decoded,
//! and white space outside `<pre>` collapsed as a browser would (a run with a line break becomes one
//! line break, any other run one space), so the HTML source's indentation does not count as text.
//! Good enough to measure tokenizers on real prose and code; not a cleaning step (fm-data's own
//! HTML-to-text lives with its collection code).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The books the corpus is made of, as directories under the HTML root.
pub const BOOKS: &[&str] = &[
    "book",
    "reference",
    "nomicon",
    "rust-by-example",
    "edition-guide",
];

/// `$(rustc --print sysroot)/share/doc/rust/html`, if rustc runs and the directory exists.
pub fn html_root() -> Option<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let root = Path::new(sysroot.trim()).join("share/doc/rust/html");
    root.is_dir().then_some(root)
}

/// The text of every HTML page of [`BOOKS`] under `root`, in path order.
pub fn load_documents(root: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    for book in BOOKS {
        collect_html(&root.join(book), &mut files)?;
    }
    files.sort();
    files
        .iter()
        .map(|f| Ok(html_to_text(&String::from_utf8_lossy(&fs::read(f)?))))
        .collect()
}

fn collect_html(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_html(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    Ok(())
}

/// Crude HTML to text: drops `<script>`/`<style>` bodies and every tag, decodes entities, and
/// collapses white space outside `<pre>` (see the module docs).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut in_pre = 0usize;
    let mut i = 0;
    while let Some(off) = html[i..].find(['<', '&']) {
        push_text(&mut out, &html[i..i + off], in_pre > 0);
        i += off;
        if html.as_bytes()[i] == b'&' {
            let (text, len) = decode_entity(&html[i..]);
            out.push_str(&text);
            i += len;
            continue;
        }
        let rest = &lower[i..];
        if rest.starts_with("<pre") {
            in_pre += 1;
        } else if rest.starts_with("</pre") {
            in_pre = in_pre.saturating_sub(1);
        }
        let skip_to = ["script", "style"].iter().find_map(|tag| {
            let open = format!("<{tag}");
            rest.starts_with(&open)
                .then(|| rest.find(&format!("</{tag}>")).map(|e| e + tag.len() + 3))
                .flatten()
        });
        i += match skip_to {
            Some(len) => len,
            None => rest.find('>').map_or(rest.len(), |e| e + 1),
        };
    }
    push_text(&mut out, &html[i..], in_pre > 0);
    out
}

/// Appends text, verbatim inside `<pre>`, else with white-space runs collapsed.
fn push_text(out: &mut String, text: &str, verbatim: bool) {
    if verbatim {
        out.push_str(text);
        return;
    }
    let mut run: Option<bool> = None; // Some(has line break) while in a white-space run
    for c in text.chars() {
        if c.is_whitespace() {
            let newline = c == '\n';
            run = Some(run.unwrap_or(false) || newline);
            continue;
        }
        if let Some(newline) = run.take() {
            push_separator(out, newline);
        }
        out.push(c);
    }
    if let Some(newline) = run {
        push_separator(out, newline);
    }
}

/// One space or line break, not doubled across tags (`</p>\n<p>` gives one line break).
fn push_separator(out: &mut String, newline: bool) {
    match out.chars().last() {
        None => {}
        Some('\n') => {}
        Some(' ') if newline => {
            out.pop();
            out.push('\n');
        }
        Some(' ') => {}
        Some(_) => out.push(if newline { '\n' } else { ' ' }),
    }
}

/// The text of the entity at the start of `s` and its length; a lone `&` stays itself.
fn decode_entity(s: &str) -> (String, usize) {
    let Some(end) = s.bytes().take(12).position(|b| b == b';') else {
        return ("&".into(), 1);
    };
    let name = &s[1..end];
    let text = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    match text {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".into(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_scripts_and_decodes_entities() {
        let html = "<p>a &lt;b&gt; &amp; &#39;c&#x27; &bogus; &</p>&”<script>x<y</script><STYLE>p{}</STYLE>d";
        assert_eq!(html_to_text(html), "a <b> & 'c' &bogus; &&”d");
        let html = "<div>\n    <p>one   two\n  three</p>\n\n    <pre><code>fn f() {\n    x\n}</code></pre>\n</div>";
        assert_eq!(html_to_text(html), "one two\nthree\nfn f() {\n    x\n}\n");
    }
}
