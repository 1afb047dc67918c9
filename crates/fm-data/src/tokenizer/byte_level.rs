//! The byte level of GPT-2 style tokenizers: the pre-tokenizer that cuts text into words, and the
//! byte ↔ character map that lets a vocabulary of strings hold arbitrary bytes.
//!
//! **Pre-tokenization.** Text is first cut into pieces by the GPT-2 pattern
//! ```text
//! 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//! ```
//! and BPE merges never cross a piece boundary. The `regex` crate has no look-ahead, so instead of a
//! regex engine this module has a hand-written scanner, [`split_gpt2`], that implements exactly the
//! leftmost-first semantics of that pattern (tested against Hugging Face's Oniguruma regex on edge
//! cases and random Unicode). It walks bytes with an ASCII fast path and looks up the Unicode classes
//! of other characters in tables generated from Hugging Face `tokenizers` itself
//! (`unicode_classes.rs`), so both split every string alike.
//!
//! **Byte ↔ character map.** Byte-level BPE works on bytes, but `tokenizer.json` stores tokens as
//! strings. GPT-2 maps each of the 256 bytes to a printable character: the printable Latin-1 bytes to
//! themselves and the rest (controls, space, ...) to U+0100 and up, in byte order; so a space becomes
//! `Ġ` and a newline `Ċ`. [`bytes_to_token_string`] and [`token_string_to_bytes`] convert.

use std::sync::OnceLock;

use super::unicode_classes::{LETTER_RANGES, NUMBER_RANGES, WHITESPACE_RANGES};

/// The GPT-2 pre-tokenizer pattern that [`split_gpt2`] implements, as Hugging Face and tiktoken
/// write it.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The character that stands for `byte` in a byte-level vocabulary (GPT-2's `bytes_to_unicode`).
pub const fn byte_to_char(byte: u8) -> char {
    BYTE_TO_CHAR[byte as usize]
}

/// The byte a byte-level vocabulary character stands for, or `None` for a character outside the map.
pub fn char_to_byte(c: char) -> Option<u8> {
    let code = c as usize;
    match CHAR_TO_BYTE.get(code) {
        Some(&b) if b != NOT_A_BYTE => Some(b as u8),
        _ => None,
    }
}

/// The vocabulary string of a token made of `bytes` (each byte mapped by [`byte_to_char`]).
pub fn bytes_to_token_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// The bytes of a byte-level vocabulary string, or `None` if a character is outside the byte map
/// (which a byte-level token never has, but an added token such as `<pad>` written with a space may).
pub fn token_string_to_bytes(token: &str) -> Option<Vec<u8>> {
    token.chars().map(char_to_byte).collect()
}

const fn build_byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_unprintable = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        let code = if printable {
            b as u32
        } else {
            next_unprintable += 1;
            255 + next_unprintable
        };
        table[b] = match char::from_u32(code) {
            Some(c) => c,
            None => panic!("byte map builds only valid chars"),
        };
        b += 1;
    }
    table
}

/// Highest code point in the byte map: 256 + the 68 unprintable bytes - 1.
const MAX_MAPPED: usize = 0x143;
const NOT_A_BYTE: u16 = u16::MAX;

const fn build_char_to_byte() -> [u16; MAX_MAPPED + 1] {
    let mut table = [NOT_A_BYTE; MAX_MAPPED + 1];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_TO_CHAR[b] as usize] = b as u16;
        b += 1;
    }
    table
}

static BYTE_TO_CHAR: [char; 256] = build_byte_to_char();
static CHAR_TO_BYTE: [u16; MAX_MAPPED + 1] = build_char_to_byte();

/// The Unicode class of a character as the GPT-2 pattern sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CharClass {
    /// `\p{L}`.
    Letter = 0,
    /// `\p{N}`.
    Number = 1,
    /// `\s`.
    Whitespace = 2,
    /// Everything else: `[^\s\p{L}\p{N}]`.
    Other = 3,
}

impl CharClass {
    const fn from_u8(v: u8) -> Self {
        match v {
            0 => CharClass::Letter,
            1 => CharClass::Number,
            2 => CharClass::Whitespace,
            _ => CharClass::Other,
        }
    }
}

/// The class of `c` for the GPT-2 pattern (the same tables [`split_gpt2`] uses).
pub fn char_class(c: char) -> CharClass {
    Classes::get().class(c as u32)
}

const fn build_ascii_classes() -> [CharClass; 128] {
    let mut t = [CharClass::Other; 128];
    let mut c = 0usize;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            CharClass::Letter
        } else if b.is_ascii_digit() {
            CharClass::Number
        } else if (b >= 9 && b <= 13) || b == b' ' {
            CharClass::Whitespace
        } else {
            CharClass::Other
        };
        c += 1;
    }
    t
}

static ASCII_CLASSES: [CharClass; 128] = build_ascii_classes();

/// Class lookup: a flat table for the Basic Multilingual Plane (one byte per code point, 64 KiB,
/// built once on first use) and a binary search over ranges above it.
struct Classes {
    bmp: Box<[u8]>,
    /// Sorted, disjoint (start, end inclusive, class) ranges of every class but `Other`.
    ranges: Vec<(u32, u32, CharClass)>,
}

impl Classes {
    fn get() -> &'static Classes {
        static CLASSES: OnceLock<Classes> = OnceLock::new();
        CLASSES.get_or_init(|| {
            let mut ranges: Vec<(u32, u32, CharClass)> = Vec::new();
            for (table, class) in [
                (LETTER_RANGES, CharClass::Letter),
                (NUMBER_RANGES, CharClass::Number),
                (WHITESPACE_RANGES, CharClass::Whitespace),
            ] {
                ranges.extend(table.iter().map(|&(a, b)| (a, b, class)));
            }
            ranges.sort_unstable_by_key(|r| r.0);
            let mut bmp = vec![CharClass::Other as u8; 0x1_0000].into_boxed_slice();
            for &(a, b, class) in &ranges {
                for c in a..=b.min(0xFFFF) {
                    bmp[c as usize] = class as u8;
                }
            }
            Classes { bmp, ranges }
        })
    }

    #[inline]
    fn class(&self, c: u32) -> CharClass {
        if c < 0x1_0000 {
            CharClass::from_u8(self.bmp[c as usize])
        } else {
            // The last range starting at or before `c`, if it reaches `c`.
            let i = self.ranges.partition_point(|r| r.0 <= c);
            match i.checked_sub(1).map(|i| self.ranges[i]) {
                Some((_, end, class)) if c <= end => class,
                _ => CharClass::Other,
            }
        }
    }
}

/// Decodes the char starting at byte `i` of valid UTF-8: (code point, length in bytes).
#[inline]
fn decode_at(b: &[u8], i: usize) -> (u32, usize) {
    let b0 = b[i] as u32;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | (b[i + 1] as u32 & 0x3F), 2)
    } else if b0 < 0xF0 {
        let c = ((b0 & 0x0F) << 12) | ((b[i + 1] as u32 & 0x3F) << 6) | (b[i + 2] as u32 & 0x3F);
        (c, 3)
    } else {
        let c = ((b0 & 0x07) << 18)
            | ((b[i + 1] as u32 & 0x3F) << 12)
            | ((b[i + 2] as u32 & 0x3F) << 6)
            | (b[i + 3] as u32 & 0x3F);
        (c, 4)
    }
}

/// The scanner behind [`split_gpt2`]: finds where the piece starting at a position ends.
#[derive(Clone, Copy)]
pub(crate) struct Gpt2Scanner {
    classes: &'static Classes,
}

impl Gpt2Scanner {
    pub(crate) fn new() -> Self {
        Gpt2Scanner {
            classes: Classes::get(),
        }
    }

    /// Class and byte length of the char at byte `i`.
    #[inline]
    fn class_at(&self, b: &[u8], i: usize) -> (CharClass, usize) {
        let byte = b[i];
        if byte < 0x80 {
            (ASCII_CLASSES[byte as usize], 1)
        } else {
            let (c, len) = decode_at(b, i);
            (self.classes.class(c), len)
        }
    }

    /// End of the run of `class` characters starting at byte `i`.
    #[inline]
    fn run_end(&self, b: &[u8], mut i: usize, class: CharClass) -> usize {
        while i < b.len() {
            let byte = b[i];
            if byte < 0x80 {
                if ASCII_CLASSES[byte as usize] != class {
                    break;
                }
                i += 1;
            } else {
                let (c, len) = self.class_at(b, i);
                if c != class {
                    break;
                }
                i += len;
            }
        }
        i
    }

    /// End (exclusive byte offset) of the piece of `text` that starts at byte `start` (< len).
    ///
    /// The alternatives are tried in the pattern's order and the first that matches wins, as in a
    /// backtracking engine.
    #[inline]
    pub(crate) fn piece_end(&self, text: &str, start: usize) -> usize {
        let b = text.as_bytes();
        let n = b.len();
        let first = b[start];
        // 's 't 're 've 'm 'll 'd (lower case only, as in GPT-2).
        if first == b'\'' && start + 1 < n {
            match b[start + 1] {
                b's' | b't' | b'm' | b'd' => return start + 2,
                b'r' | b'v' if start + 2 < n && b[start + 2] == b'e' => return start + 3,
                b'l' if start + 2 < n && b[start + 2] == b'l' => return start + 3,
                _ => {}
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` with the optional leading space.
        if first == b' ' && start + 1 < n {
            let (class, len) = self.class_at(b, start + 1);
            if class != CharClass::Whitespace {
                return self.run_end(b, start + 1 + len, class);
            }
        }
        let (class, len) = self.class_at(b, start);
        if class != CharClass::Whitespace {
            return self.run_end(b, start + len, class);
        }
        // `\s+(?!\S)`: the white-space run, less its last char when a non-space follows (that char
        // then starts the next piece, e.g. as the space of " word"); `\s+` when the run is one char.
        let mut last_start = start;
        let mut i = start + len;
        while i < n {
            let (class, len) = self.class_at(b, i);
            if class != CharClass::Whitespace {
                return if last_start > start { last_start } else { i };
            }
            last_start = i;
            i += len;
        }
        n
    }
}

/// Iterator over the pieces of a text under the GPT-2 pattern; made by [`split_gpt2`].
#[derive(Clone)]
pub struct Gpt2Pieces<'a> {
    text: &'a str,
    pos: usize,
    scanner: Gpt2Scanner,
}

impl<'a> Iterator for Gpt2Pieces<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        self.pos = self.scanner.piece_end(self.text, start);
        Some(&self.text[start..self.pos])
    }
}

/// Cuts `text` into the pieces the GPT-2 pattern ([`GPT2_PATTERN`]) matches, in order. The pieces
/// concatenate to `text`; byte-level BPE encodes each one on its own.
///
/// ```
/// use fm_data::tokenizer::byte_level::split_gpt2;
///
/// let pieces: Vec<&str> = split_gpt2("It's 42 o'clock!  Go").collect();
/// assert_eq!(pieces, ["It", "'s", " 42", " o", "'", "clock", "!", " ", " Go"]);
/// ```
pub fn split_gpt2(text: &str) -> Gpt2Pieces<'_> {
    Gpt2Pieces {
        text,
        pos: 0,
        scanner: Gpt2Scanner::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection_with_gpt2_anchors() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0), '\u{100}');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = byte_to_char(b);
            assert!(seen.insert(c), "byte {b} maps to a char already used");
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(char_to_byte('<'), Some(b'<'));
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(char_to_byte(' '), None);
        assert_eq!(char_to_byte('日'), None);
    }

    #[test]
    fn token_strings_round_trip_bytes() {
        let bytes = "héllo wörld\n\u{0}".as_bytes();
        let s = bytes_to_token_string(bytes);
        assert!(s.starts_with('h') && s.contains('Ġ'));
        assert_eq!(token_string_to_bytes(&s).unwrap(), bytes);
        assert_eq!(token_string_to_bytes("a b"), None);
    }

    #[test]
    fn classes_follow_unicode_categories() {
        assert_eq!(char_class('a'), CharClass::Letter);
        assert_eq!(char_class('é'), CharClass::Letter);
        assert_eq!(char_class('日'), CharClass::Letter);
        assert_eq!(char_class('7'), CharClass::Number);
        assert_eq!(char_class('½'), CharClass::Number);
        assert_eq!(char_class('Ⅻ'), CharClass::Number);
        assert_eq!(char_class('\u{3000}'), CharClass::Whitespace);
        assert_eq!(char_class('\u{a0}'), CharClass::Whitespace);
        assert_eq!(char_class('\u{301}'), CharClass::Other); // combining acute accent (Mn)
        assert_eq!(char_class('!'), CharClass::Other);
        assert_eq!(char_class('🎉'), CharClass::Other);
        assert_eq!(char_class('𝔸'), CharClass::Letter); // above the BMP
        assert_eq!(char_class('𝟙'), CharClass::Number);
        assert_eq!(char_class('\u{10FFFF}'), CharClass::Other);
    }

    fn pieces(s: &str) -> Vec<&str> {
        split_gpt2(s).collect()
    }

    #[test]
    fn contractions_are_lower_case_and_greedy_left() {
        assert_eq!(pieces("don't"), ["don", "'t"]);
        assert_eq!(pieces("we'll've"), ["we", "'ll", "'ve"]);
        assert_eq!(pieces("DON'T"), ["DON", "'", "T"]);
        assert_eq!(pieces("'sam"), ["'s", "am"]);
        assert_eq!(pieces("''s"), ["''", "s"]);
        assert_eq!(pieces(" 's"), [" '", "s"]);
        assert_eq!(pieces("'"), ["'"]);
        assert_eq!(pieces("'r"), ["'", "r"]);
    }

    #[test]
    fn white_space_leaves_its_last_char_to_the_next_word() {
        assert_eq!(pieces("a  b"), ["a", " ", " b"]);
        assert_eq!(pieces("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(pieces("a \tb"), ["a", " ", "\t", "b"]);
        assert_eq!(pieces("a   "), ["a", "   "]);
        assert_eq!(pieces("   "), ["   "]);
        assert_eq!(pieces(" "), [" "]);
        assert_eq!(pieces("\nx"), ["\n", "x"]);
        assert_eq!(pieces("  !"), [" ", " !"]);
        assert_eq!(pieces(" \u{3000}x"), [" ", "\u{3000}", "x"]);
    }

    #[test]
    fn runs_of_one_class_with_an_optional_space() {
        assert_eq!(pieces("abc123def"), ["abc", "123", "def"]);
        assert_eq!(pieces("x += 1;"), ["x", " +=", " 1", ";"]);
        assert_eq!(pieces("é\u{301}e"), ["é", "\u{301}", "e"]);
        assert_eq!(pieces("日本語 テスト"), ["日本語", " テスト"]);
        assert_eq!(pieces(""), Vec::<&str>::new());
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        let text = "fn main() {\n    println!(\"héllo 🌍\");\r\n}\n\n  \u{a0}end ";
        assert_eq!(pieces(text).concat(), text);
    }
}
