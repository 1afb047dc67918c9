//! HTML to text: the readable content of a page, without scripts, styles and site chrome.
//!
//! Parsing is html5ever's (through `scraper`): the same tree a browser builds, with character
//! references decoded, so malformed pages and entities need no special cases here. The walk then
//! drops whole subtrees that are not content — `script`, `style`, `nav`, `header`, `footer`,
//! forms and the like, anything `hidden` or with a navigation/search role, and elements whose id
//! or class names site furniture (sidebars, search bars, menus, toolbars, theme pickers: the
//! rustdoc and mdBook chrome of the Rust documentation) — and writes what is left as text:
//! headings, paragraphs and list items as their own blocks (list items prefixed by `- `), `pre`
//! blocks verbatim, inline text with HTML's whitespace collapsing.

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

/// Builds the text: blocks separated by blank lines, inline whitespace collapsed.
struct TextWriter {
    out: String,
    /// A space is owed before the next inline text.
    pending_space: bool,
    /// Depth of `pre` elements we are inside.
    pre_depth: usize,
}

impl TextWriter {
    fn break_block(&mut self) {
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
/// assert_eq!(text, "Title\n\nFish & chips, twice.\n\n- one\n- two\n\nfn main() {\n    x();\n}");
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
                            while w.out.ends_with([' ', '\n', '\t']) {
                                w.out.pop();
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
    fn code_blocks_keep_their_layout() {
        let (t, _) = html_to_text(
            "<p>Before</p><pre><code><span>let</span> x = 1;\n    <span>if</span> y {}\n</code></pre><p>After</p>",
        );
        assert_eq!(t, "Before\n\nlet x = 1;\n    if y {}\n\nAfter");
    }

    #[test]
    fn malformed_html_does_not_panic() {
        let (t, _) = html_to_text("<p>open <b>bold <i>both</p> tail</b> &bogus; &amp");
        assert!(t.contains("open bold both"), "{t}");
        assert!(t.contains("&bogus;"), "{t}");
    }
}
