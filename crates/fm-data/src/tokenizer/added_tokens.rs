//! Added tokens (special tokens such as `<|endoftext|>`): finding them in text before the model sees
//! it.
//!
//! Like Hugging Face `tokenizers`, a text is first cut at every occurrence of an added token; only
//! the stretches between them go through pre-tokenization and BPE, and each occurrence becomes its
//! token id. Where several added tokens match, the one starting first wins, and among those the
//! longest (leftmost-longest). Tokens marked `normalized` are looked for in a second pass over the
//! stretches the first pass left, as HF does (with no normalizer both passes see the same text).

use crate::error::{DataError, Result};

/// A token added on top of a model's vocabulary, matched in raw text before tokenization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedToken {
    /// The token's text, matched literally.
    pub content: String,
    /// Its id.
    pub id: u32,
    /// Whether it is a special token (control token such as end-of-text, padding), as opposed to a
    /// plain added word. Decoding can skip special tokens.
    pub special: bool,
    /// Hugging Face's `normalized` flag: matched in the second pass (see the module docs).
    pub normalized: bool,
}

impl AddedToken {
    /// A special token: matched in the first pass, skipped by `decode_skip_special`.
    pub fn special(content: impl Into<String>, id: u32) -> Self {
        AddedToken {
            content: content.into(),
            id,
            special: true,
            normalized: false,
        }
    }
}

/// A stretch of text between added tokens, or one added token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Plain text (never empty).
    Text(&'a str),
    /// An occurrence of the added token with this id.
    Added(u32),
}

/// Leftmost-longest matcher over one set of added tokens.
#[derive(Clone, Debug, Default)]
struct Pass {
    /// (content, id), longest first so the first match at a position is the longest.
    tokens: Vec<(String, u32)>,
}

impl Pass {
    fn split<'a>(&self, text: &'a str, emit: &mut impl FnMut(Segment<'a>)) {
        if self.tokens.is_empty() {
            if !text.is_empty() {
                emit(Segment::Text(text));
            }
            return;
        }
        // Next occurrence of each token at or after `pos`; searched again only once `pos` has passed
        // it, so each token's search walks the text once.
        let mut next: Vec<Option<usize>> = self
            .tokens
            .iter()
            .map(|(content, _)| text.find(content.as_str()))
            .collect();
        let mut pos = 0;
        loop {
            let mut best: Option<(usize, usize)> = None; // (start, token index)
            for (k, (content, _)) in self.tokens.iter().enumerate() {
                if next[k].is_some_and(|at| at < pos) {
                    next[k] = text[pos..].find(content.as_str()).map(|i| i + pos);
                }
                if let Some(at) = next[k] {
                    // Strictly earlier wins; at equal starts the earlier (longer) token stays.
                    if best.is_none_or(|(b, _)| at < b) {
                        best = Some((at, k));
                    }
                }
            }
            let Some((start, k)) = best else { break };
            if start > pos {
                emit(Segment::Text(&text[pos..start]));
            }
            emit(Segment::Added(self.tokens[k].1));
            pos = start + self.tokens[k].0.len();
        }
        if pos < text.len() {
            emit(Segment::Text(&text[pos..]));
        }
    }
}

/// Finds added tokens in text: the first pass matches tokens that are not `normalized`, the second
/// the others within what the first pass left.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddedTokenMatcher {
    raw: Pass,
    normalized: Pass,
}

impl AddedTokenMatcher {
    /// A matcher for `tokens`; an empty content is refused (it would match everywhere).
    pub(crate) fn new(tokens: &[AddedToken]) -> Result<Self> {
        let mut raw = Vec::new();
        let mut normalized = Vec::new();
        for t in tokens {
            if t.content.is_empty() {
                return Err(DataError::config(
                    "added tokens",
                    format!("added token with id {} has empty content", t.id),
                ));
            }
            let pass = if t.normalized {
                &mut normalized
            } else {
                &mut raw
            };
            pass.push((t.content.clone(), t.id));
        }
        for pass in [&mut raw, &mut normalized] {
            pass.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            pass.dedup_by(|a, b| a.0 == b.0);
        }
        Ok(AddedTokenMatcher {
            raw: Pass { tokens: raw },
            normalized: Pass { tokens: normalized },
        })
    }

    /// Whether there is nothing to match (the text goes to the model whole).
    pub(crate) fn is_empty(&self) -> bool {
        self.raw.tokens.is_empty() && self.normalized.tokens.is_empty()
    }

    /// Calls `emit` with the segments of `text`, in order.
    pub(crate) fn split<'a>(&self, text: &'a str, mut emit: impl FnMut(Segment<'a>)) {
        if self.normalized.tokens.is_empty() {
            self.raw.split(text, &mut emit);
            return;
        }
        let normalized = &self.normalized;
        self.raw.split(text, &mut |segment| match segment {
            Segment::Text(t) => normalized.split(t, &mut emit),
            added => emit(added),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments<'a>(m: &AddedTokenMatcher, text: &'a str) -> Vec<Segment<'a>> {
        let mut out = Vec::new();
        m.split(text, |s| out.push(s));
        out
    }

    #[test]
    fn leftmost_then_longest() {
        let m = AddedTokenMatcher::new(&[
            AddedToken::special("<a>", 1),
            AddedToken::special("<a><b>", 2),
            AddedToken::special("b", 3),
        ])
        .unwrap();
        use Segment::*;
        assert_eq!(
            segments(&m, "x<a><b>yb<a>"),
            [Text("x"), Added(2), Text("y"), Added(3), Added(1)]
        );
        assert_eq!(segments(&m, "<a"), [Text("<a")]);
        assert_eq!(segments(&m, ""), []);
        assert_eq!(segments(&m, "bb"), [Added(3), Added(3)]);
    }

    #[test]
    fn normalized_tokens_match_in_the_second_pass() {
        let mut word = AddedToken::special("ab", 7);
        word.normalized = true;
        word.special = false;
        let m = AddedTokenMatcher::new(&[word, AddedToken::special("b<s>", 8)]).unwrap();
        use Segment::*;
        // "ab<s>": the raw pass takes "b<s>" first, so "ab" never forms.
        assert_eq!(segments(&m, "ab<s>ab"), [Text("a"), Added(8), Added(7)]);
    }

    #[test]
    fn empty_content_is_refused() {
        assert!(AddedTokenMatcher::new(&[AddedToken::special("", 0)]).is_err());
    }
}
