//! A character-level tokenizer: one token per Unicode scalar value, for tiny demos and tests.
//!
//! The vocabulary is the special tokens (ids `0..k`), then the distinct characters of a text in code
//! point order. A character outside the vocabulary is an error, or the unknown token if one is set
//! (then decoding is lossy for such characters).

use std::collections::HashMap;

use super::added_tokens::{AddedToken, AddedTokenMatcher, Segment};
use super::Tokenizer;
use crate::error::{DataError, Result};

/// One token per character (see the module docs).
///
/// ```
/// use fm_data::tokenizer::{CharTokenizer, Tokenizer};
///
/// let tok = CharTokenizer::from_text("hello world", ["<eot>"])?;
/// assert_eq!(tok.vocab_size(), 1 + 8); // <eot>, then ' ', d, e, h, l, o, r, w
/// let ids = tok.encode("hold<eot>")?;
/// assert_eq!(ids, [4, 6, 5, 2, 0]);
/// assert_eq!(tok.decode(&ids)?, "hold<eot>");
/// assert!(tok.encode("help!").is_err()); // 'p' and '!' were never seen
/// # Ok::<(), fm_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CharTokenizer {
    /// Text of each id: a special token or one character.
    tokens: Vec<String>,
    chars: HashMap<char, u32>,
    specials: Vec<AddedToken>,
    matcher: AddedTokenMatcher,
    unk: Option<u32>,
}

impl CharTokenizer {
    /// Special tokens (ids `0..k`, duplicates kept once) followed by the distinct characters of
    /// `text` in code point order.
    pub fn from_text<I, S>(text: &str, special_tokens: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::new(chars, special_tokens)
    }

    /// Special tokens (ids `0..k`) followed by `chars` in the order given (duplicates are an error).
    pub fn new<I, S>(chars: impl IntoIterator<Item = char>, special_tokens: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut tokens: Vec<String> = Vec::new();
        let mut specials = Vec::new();
        for s in special_tokens {
            let s: String = s.into();
            if tokens.contains(&s) {
                continue;
            }
            specials.push(AddedToken::special(s.clone(), tokens.len() as u32));
            tokens.push(s);
        }
        let matcher = AddedTokenMatcher::new(&specials)?;
        let mut map = HashMap::new();
        for c in chars {
            if map.insert(c, tokens.len() as u32).is_some() {
                return Err(DataError::config(
                    "CharTokenizer",
                    format!("character {c:?} is listed twice"),
                ));
            }
            tokens.push(c.to_string());
        }
        Ok(CharTokenizer {
            tokens,
            chars: map,
            specials,
            matcher,
            unk: None,
        })
    }

    /// Encode unknown characters as the special token `unk` (which must be one of the special
    /// tokens) instead of failing.
    pub fn with_unknown_token(mut self, unk: &str) -> Result<Self> {
        let id = self
            .specials
            .iter()
            .find(|t| t.content == unk)
            .map(|t| t.id)
            .ok_or_else(|| {
                DataError::config(
                    "CharTokenizer",
                    format!("unknown token {unk:?} is not one of the special tokens"),
                )
            })?;
        self.unk = Some(id);
        Ok(self)
    }

    fn encode_chars(&self, text: &str, offset: usize, out: &mut Vec<u32>) -> Result<()> {
        for (i, c) in text.char_indices() {
            match (self.chars.get(&c), self.unk) {
                (Some(&id), _) | (None, Some(id)) => out.push(id),
                (None, None) => {
                    return Err(DataError::UnknownCharacter {
                        ch: c,
                        position: offset + i,
                    })
                }
            }
        }
        Ok(())
    }

    fn decode_filtered(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut out = String::with_capacity(ids.len());
        for &id in ids {
            let token = self
                .tokens
                .get(id as usize)
                .ok_or(DataError::UnknownTokenId {
                    id,
                    vocab_size: self.tokens.len(),
                })?;
            if !(skip_special && (id as usize) < self.specials.len()) {
                out.push_str(token);
            }
        }
        Ok(out)
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len());
        let base = text.as_ptr() as usize;
        let mut result = Ok(());
        self.matcher.split(text, |segment| {
            if result.is_err() {
                return;
            }
            match segment {
                Segment::Text(t) => {
                    result = self.encode_chars(t, t.as_ptr() as usize - base, &mut out)
                }
                Segment::Added(id) => out.push(id),
            }
        });
        result.map(|()| out)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_filtered(ids, false)
    }

    fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        self.decode_filtered(ids, true)
    }

    fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        let mut it = token.chars();
        if let (Some(c), None) = (it.next(), it.next()) {
            if let Some(&id) = self.chars.get(&c) {
                return Some(id);
            }
        }
        self.specials
            .iter()
            .find(|t| t.content == token)
            .map(|t| t.id)
    }

    fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    fn special_tokens(&self) -> Vec<AddedToken> {
        self.specials.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_unknown_characters() {
        let tok = CharTokenizer::from_text("abc αβγ 日本", ["<s>", "</s>"]).unwrap();
        let text = "<s>cab γα 本日</s>";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids.len(), 11);
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(tok.decode_skip_special(&ids).unwrap(), "cab γα 本日");
        match tok.encode("ab<s>αz") {
            Err(DataError::UnknownCharacter { ch, position }) => {
                assert_eq!((ch, position), ('z', 7))
            }
            other => panic!("expected UnknownCharacter, got {other:?}"),
        }
        assert!(matches!(
            tok.decode(&[0, 99]),
            Err(DataError::UnknownTokenId { id: 99, .. })
        ));
    }

    #[test]
    fn unknown_token_replaces_unseen_characters() {
        let tok = CharTokenizer::from_text("ab", ["<unk>"])
            .unwrap()
            .with_unknown_token("<unk>")
            .unwrap();
        assert_eq!(tok.encode("azb").unwrap(), [1, 0, 2]);
        assert!(CharTokenizer::from_text("ab", ["<s>"])
            .unwrap()
            .with_unknown_token("<unk>")
            .is_err());
    }

    #[test]
    fn lookups_and_duplicates() {
        let tok = CharTokenizer::new(['x', 'y'], ["<pad>"]).unwrap();
        assert_eq!(tok.token_to_id("y"), Some(2));
        assert_eq!(tok.token_to_id("<pad>"), Some(0));
        assert_eq!(tok.token_to_id("xy"), None);
        assert_eq!(tok.id_to_token(1), Some("x"));
        assert_eq!(tok.id_to_token(3), None);
        assert!(CharTokenizer::new(['x', 'x'], Vec::<String>::new()).is_err());
    }
}
