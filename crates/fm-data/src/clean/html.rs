//! HTML to text: the readable content of a page, without scripts, styles and site chrome.
//!
//! Parsing is html5ever's (through `scraper`): the same tree a browser builds, with character
//! references decoded, so malformed pages and entities need no special cases here. The walk then
//! drops whole subtrees that are not content — `script`, `style`, `nav`, `header`, `footer`,
//! forms and the like, anything `hidden` or with a navigation/search role, and elements whose id
//! or class names site furniture (sidebars, search bars, menus, toolbars, theme pickers: the
//! rustdoc and mdBook chrome of the Rust documentation) — and writes what is left as text:
//! headings, paragraphs and list items as their own blocks (list items prefixed by `- `), inline
//! text with HTML's whitespace collapsing, and `pre` blocks verbatim (newlines, indentation, tabs)
//! inside a Markdown code fence, so that later steps can tell code from prose
//! ([`blocks`](super::blocks)). The fence names the language when the page does
//! (`class="language-rust"` on the `pre` or its `code`, as mdBook writes, or rustdoc's
//! `<pre class="rust">`), and is longer than any run of backticks in the code.

use scraper::{Html, Node};

/// Counts of what [`html_to_text`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HtmlCounts {
    /// Elements dropped with their subtree because they are not content.
    pub elements_dropped: usize,
    /// Bytes of HTML in.
    pub bytes_in: u64,
    /// Bytes of text out.
    pub bytes_out: u64,
}

/// Tags whose whole subtree is never content.
const DROPPED_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "button", "input", "select", "textarea", "iframe", "svg", "canvas", "head", "menu", "dialog",
];

/// Id or class words (matched as substrings, ASCII case-insensitive) that mark site furniture.
const BOILERPLATE_MARKERS: &[&str] = &[
    "sidebar",
    "search",
    "menu",
    "toolbar",
    "theme",
    "settings",
    "breadcrumb",
    "nav-chapters",
    "nav-wrapper",
    "cookie",
    "skip-link",
    // rustdoc: the "Skip to main content" link and the "Expand description" toggle label.
    "skip-main-content",
    "hideme",
    "out-of-band",
    "help-container",
    "rustdoc-modal",
    "copy-path",
];

/// Roles (ARIA) that mark navigation rather than content.
const BOILERPLATE_ROLES: &[&str] = &["navigation", "search", "banner", "contentinfo", "menu"];

const HEADINGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6"];

/// Elements that start and end a block of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "body",
    "table",
    "tr",
    "blockquote",
    "dl",
    "dt",
    "dd",
    "details",
    "summary",
    "ul",
    "ol",
    "figure",
    "figcaption",
    "hr",
    "br",
    "td",
    "th",
];

fn is_boilerplate(el: &scraper::node::Element) -> bool {
    let name = el.name();
    if DROPPED_TAGS.contains(&name) || name.starts_with("rustdoc-") || name.starts_with("mdbook-") {
        return true;
    }
    if el.attr("hidden").is_some() || el.attr("aria-hidden") == Some("true") {
        return true;
    }
    if el
        .attr("role")
        .is_some_and(|r| BOILERPLATE_ROLES.contains(&r))
    {
        return true;
    }
    // Page containers carry state classes (mdBook's `<body class="sidebar-visible">`): never
    // judge them by their names.
    if matches!(name, "html" | "body" | "main" | "article") {
        return false;
    }
    let marked = |value: &str| {
        let lower = value.to_ascii_lowercase();
        BOILERPLATE_MARKERS.iter().any(|m| lower.contains(m))
    };
    el.id().is_some_and(marked) || el.classes().any(marked)
}

/// The language of a `pre` block, from a `language-*` class on it or on a `code` element in it,
/// or rustdoc's `rust` class; only characters that are safe in a fence's info string.
fn code_language(pre: scraper::ElementRef<'_>) -> Option<String> {
    let from_classes = |el: &scraper::node::Element| {
        el.classes()
            .find_map(|c| c.strip_prefix("language-"))
            .map(str::to_string)
    };
    let lang = from_classes(pre.value())
        .or_else(|| {
            pre.descendants()
                .filter_map(scraper::ElementRef::wrap)
                .filter(|e| e.value().name() == "code")
                .find_map(|e| from_classes(e.value()))
        })
        .or_else(|| {
            pre.value()
                .has_class("rust", scraper::CaseSensitivity::CaseSensitive)
                .then(|| "rust".to_string())
        })?;
    let safe = !lang.is_empty()
        && lang
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.' | '#'));
    safe.then_some(lang)
}

/// Builds the text: blocks separated by blank lines, inline whitespace collapsed.
struct TextWriter {
    out: String,
    /// A space is owed before the next inline text.
    pending_space: bool,
    /// Depth of `pre` elements we are inside.
    pre_depth: usize,
    /// Where the outermost `pre`'s text starts in `out`, and its language.
    pre_start: usize,
    pre_language: Option<String>,
}

impl TextWriter {
    fn break_block(&mut self) {
        if self.pre_depth > 0 {
            // A block inside `pre` (a highlighter's line `div`) is a line break, not a paragraph.
            self.break_line();
            return;
        }
        self.pending_space = false;
        if self.out.is_empty() || self.out.ends_with("\n\n") {
            return;
        }
        if self.out.ends_with('\n') {
            self.out.push('\n');
        } else {
            self.out.push_str("\n\n");
        }
    }

    fn break_line(&mut self) {
        self.pending_space = false;
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    /// Wraps the text written since the outermost `pre` opened in a code fence: leading blank
    /// lines and trailing whitespace dropped, every other character kept.
    fn fence_pre(&mut self) {
        let code = self.out[self.pre_start..].trim_end();
        // Leading blank lines go, the first line's indentation stays.
        let first_text = code
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(code.len());
        let line_start = code[..first_text].rfind('\n').map_or(0, |i| i + 1);
        let code = &code[line_start..];
        if code.is_empty() {
            self.out.truncate(self.pre_start);
            return;
        }
        let longest_ticks = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat((longest_ticks + 1).max(3));
        let mut block = String::with_capacity(code.len() + 2 * fence.len() + 16);
        block.push_str(&fence);
        if let Some(lang) = &self.pre_language {
            block.push_str(lang);
        }
        block.push('\n');
        block.push_str(code);
        block.push('\n');
        block.push_str(&fence);
        self.out.truncate(self.pre_start);
        self.out.push_str(&block);
    }

    fn text(&mut self, t: &str) {
        if self.pre_depth > 0 {
            self.out.push_str(t);
            return;
        }
        if t.starts_with(|c: char| c.is_ascii_whitespace()) {
            self.pending_space = true;
        }
        let mut first = true;
        for word in t.split_ascii_whitespace() {
            let at_start = self.out.is_empty() || self.out.ends_with(['\n', ' ']);
            if (!first || self.pending_space) && !at_start {
                self.out.push(' ');
            }
            self.pending_space = false;
            first = false;
            self.out.push_str(word);
        }
        if t.ends_with(|c: char| c.is_ascii_whitespace()) {
            self.pending_space = true;
        }
    }
}

/// The readable text of an HTML document, and counts of what was removed.
///
/// ```
/// use fm_data::clean::html::html_to_text;
///
/// let page = "<html><head><title>t</title><script>var x;</script></head><body>\
///     <nav>Home | About</nav><h1>Title</h1><p>Fish &amp; chips,\n  twice.</p>\
///     <ul><li>one</li><li>two</li></ul><pre>fn main() {\n    x();\n}</pre></body></html>";
/// let (text, counts) = html_to_text(page);
/// assert_eq!(text, "Title\n\nFish & chips, twice.\n\n- one\n- two\n\n```\nfn main() {\n    x();\n}\n```");
/// assert_eq!(counts.elements_dropped, 2); // head (with script and title) and nav
/// ```
pub fn html_to_text(html: &str) -> (String, HtmlCounts) {
    let doc = Html::parse_document(html);
    let mut counts = HtmlCounts {
        bytes_in: html.len() as u64,
        ..HtmlCounts::default()
    };
    let mut w = TextWriter {
        out: String::with_capacity(html.len() / 4),
        pending_space: false,
        pre_depth: 0,
        pre_start: 0,
        pre_language: None,
    };
    // Iterative walk (pages can nest deeply): (node, children already visited).
    let mut stack = vec![(doc.tree.root(), false)];
    while let Some((node, visited)) = stack.pop() {
        match node.value() {
            Node::Text(t) if !visited => w.text(t),
            Node::Element(el) => {
                let name = el.name();
                let block = BLOCKS.contains(&name) || HEADINGS.contains(&name) || name == "pre";
                if !visited {
                    if is_boilerplate(el) {
                        counts.elements_dropped += 1;
                        continue;
                    }
                    match name {
                        "li" => {
                            w.break_line();
                            w.out.push_str("- ");
                        }
                        "br" => w.break_line(),
                        "pre" => {
                            w.break_block();
                            if w.pre_depth == 0 {
                                w.pre_start = w.out.len();
                                w.pre_language =
                                    scraper::ElementRef::wrap(node).and_then(code_language);
                            }
                            w.pre_depth += 1;
                        }
                        "td" | "th" => w.pending_space = true,
                        _ if block => w.break_block(),
                        _ => {}
                    }
                    stack.push((node, true));
                    // Children in reverse so the first child is popped first.
                    let children: Vec<_> = node.children().collect();
                    stack.extend(children.into_iter().rev().map(|c| (c, false)));
                } else {
                    match name {
                        "pre" => {
                            w.pre_depth -= 1;
                            if w.pre_depth == 0 {
                                w.fence_pre();
                            }
                            w.break_block();
                        }
                        "li" => w.break_line(),
                        "td" | "th" => w.pending_space = true,
                        _ if block => w.break_block(),
                        _ => {}
                    }
                }
            }
            Node::Document | Node::Fragment if !visited => {
                let children: Vec<_> = node.children().collect();
                stack.extend(children.into_iter().rev().map(|c| (c, false)));
            }
            _ => {}
        }
    }
    let text = w.out.trim().to_string();
    counts.bytes_out = text.len() as u64;
    (text, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_inline_whitespace() {
        let (t, _) = html_to_text("<p>a&lt;b&gt; &quot;q&quot; caf&eacute; &#x263A;\n<em>em</em>phasis <code>x</code>.</p>");
        assert_eq!(t, "a<b> \"q\" café ☺ emphasis x.");
    }

    #[test]
    fn rustdoc_and_mdbook_chrome_is_dropped() {
        let page = r#"<html><body>
            <nav class="sidebar"><a>Option</a><a>Result</a></nav>
            <rustdoc-search></rustdoc-search>
            <div id="menu-bar" class="menu-bar"><h1 class="menu-title">The Book</h1></div>
            <div class="search-form"><input placeholder="Search"></div>
            <main class="sidebar-visible"><h2>Heading</h2><p>Body text.</p>
            <span class="out-of-band">Source</span>
            <div class="nav-wrapper"><a rel="next">Next</a></div>
            <p hidden>secret</p></main>
            <footer>copyright</footer></body></html>"#;
        let (t, c) = html_to_text(page);
        assert_eq!(t, "Heading\n\nBody text.");
        assert_eq!(c.elements_dropped, 9); // the eight above and the (empty) head
        assert_eq!(c.bytes_out, t.len() as u64);
    }

    #[test]
    fn rustdoc_skip_link_and_toggle_label_are_dropped() {
        let page = r##"<body class="rustdoc struct"><a class="skip-main-content" href="#main-content">Skip to main content</a>
            <details class="toggle top-doc" open><summary class="hideme"><span>Expand description</span></summary>
            <div class="docblock"><p>A vector.</p></div></details></body>"##;
        let (t, c) = html_to_text(page);
        assert_eq!(t, "A vector.");
        assert_eq!(c.elements_dropped, 3); // head, the link, the summary
    }

    #[test]
    fn code_blocks_keep_their_layout() {
        let (t, _) = html_to_text(
            "<p>Before</p><pre><code><span>let</span> x = 1;\n    <span>if</span> y {}\n</code></pre><p>After</p>",
        );
        assert_eq!(t, "Before\n\n```\nlet x = 1;\n    if y {}\n```\n\nAfter");
    }

    #[test]
    fn code_fences_name_the_language_keep_tabs_and_outrun_backticks() {
        // mdBook: language class on the code element; tabs, blank lines and inner runs stay.
        let (t, _) = html_to_text(
            "<pre><code class=\"language-rust hljs\">\n\nfn f() {\n\tlet  a = 1;\n\n\tb();\n}\n\n</code></pre>",
        );
        assert_eq!(t, "```rust\nfn f() {\n\tlet  a = 1;\n\n\tb();\n}\n```");
        // rustdoc: class "rust" on the pre; a first line that is indented keeps its indentation.
        let (t, _) =
            html_to_text("<pre class=\"rust item-decl\"><code>    pub fn f();\n}</code></pre>");
        assert_eq!(t, "```rust\n    pub fn f();\n}\n```");
        // Markdown inside the code: the fence is longer than its longest backtick run.
        let (t, _) = html_to_text("<pre>```toml\nx = 1\n```</pre>");
        assert_eq!(t, "````\n```toml\nx = 1\n```\n````");
        // An unsafe class is no language; an empty pre is nothing.
        let (t, _) = html_to_text("<pre class=\"language-a`b\">x</pre><pre>  \n </pre><p>end</p>");
        assert_eq!(t, "```\nx\n```\n\nend");
    }

    #[test]
    fn highlighter_lines_inside_pre_are_line_breaks() {
        let (t, _) = html_to_text(
            "<pre><div class=\"line\">fn f() {</div><div class=\"line\">    x();</div><div>}</div></pre>",
        );
        assert_eq!(t, "```\nfn f() {\n    x();\n}\n```");
    }

    #[test]
    fn malformed_html_does_not_panic() {
        let (t, _) = html_to_text("<p>open <b>bold <i>both</p> tail</b> &bogus; &amp");
        assert!(t.contains("open bold both"), "{t}");
        assert!(t.contains("&bogus;"), "{t}");
    }
}
