//! Code keeps its shape through collection and cleaning: the committed HTML page (mdBook- and
//! rustdoc-style `<pre>` blocks with tabs, indentation, blank lines and aligned comments) and
//! Markdown notes (backtick, tilde and indented code blocks) go through the corpus pipeline;
//! prose whitespace is normalised, code lines come out as written.

use std::path::Path;

use fm_data::collect::DirectorySource;
use fm_data::pipeline::{run_directory, CorpusConfig};

const CLOSURES: &str = "Closures

A closure captures its environment. Unlike a fn, it can borrow.

```rust
fn main() {
    let  x = 4;      // aligned
\tlet add = |y| {
\t    x + y
\t};

    println!(\"{}\", add(1));
}
```

The declaration, as rustdoc shows it:

```rust
pub trait Fn<Args>: FnMut<Args> {
    // Required method
    extern \"rust-call\" fn call(&self, args: Args) -> Self::Output;
}
```";

const ITERATORS: &str = "# Notes on iterators

Iterators are lazy: nothing happens
until you consume them.

```rust
let v = vec![1, 2, 3];
for x in v.iter() {
\tif *x > 1 {
\t    println!(\"{x}\");
\t}
}
```

~~~text
column a    column b
  indented  output
~~~

An indented block:

    $ cargo run
        Finished dev profile

      Running `target/debug/app`

- a list item with runs";

#[test]
fn html_and_markdown_code_keep_lines_and_indentation_prose_is_normalised() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/code_layout");
    let config = CorpusConfig {
        quality: None,
        ..CorpusConfig::default()
    };
    let (docs, report) = run_directory(&DirectorySource::new(&dir), &config).unwrap();
    let text_of = |name: &str| {
        docs.iter()
            .find(|d| d.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {report:#?}"))
            .text
            .clone()
    };
    assert_eq!(text_of("closures.html"), CLOSURES);
    assert_eq!(text_of("iterators.md"), ITERATORS);
    // Two fenced blocks in the page; backtick, tilde and indented blocks in the notes.
    assert_eq!(report.cleaning.whitespace.code_blocks_kept, 5);
    // Prose runs of the notes (the page's inline whitespace is collapsed by HTML conversion):
    // "Notes   on   iterators" 2, "are   lazy:" 1, "until   you" 1, "item   with   runs" 2.
    assert_eq!(report.cleaning.whitespace.runs_collapsed, 6);
}
