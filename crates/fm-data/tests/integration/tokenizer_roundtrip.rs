//! Property tests over arbitrary Unicode, from a small seeded generator (no dependency, same
//! strings on every run): decode(encode(s)) == s for byte-level BPE and the character tokenizer,
//! the pre-tokenizer agrees with a direct reading of the GPT-2 pattern, batch encoding equals
//! one-by-one encoding for any thread count.

use std::path::Path;

use fm_data::tokenizer::byte_level::{char_class, split_gpt2, CharClass};
use fm_data::tokenizer::{BpeTokenizer, BpeTrainer, CharTokenizer, Tokenizer};

/// xorshift64* — enough to spread strings over the cases below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Any Unicode scalar value, uniformly.
    fn any_char(&mut self) -> char {
        loop {
            if let Some(c) = char::from_u32((self.next() % 0x11_0000) as u32) {
                return c;
            }
        }
    }

    /// A string mixing the cases the pattern distinguishes with arbitrary scalar values.
    fn text(&mut self, max_parts: usize) -> String {
        const PARTS: &[&str] = &[
            "a",
            "Z",
            "word",
            " the",
            "é",
            "ß",
            "日本",
            "한",
            "Ω",
            "ǅ",
            "0",
            "42",
            "٣",
            "½",
            "Ⅻ",
            "!",
            "...",
            "-",
            "_",
            "\"",
            "'",
            "'s",
            "'t",
            "'re",
            "'ve",
            "'m",
            "'ll",
            "'d",
            "'S",
            "''",
            " ",
            "  ",
            "   ",
            "\t",
            "\n",
            "\r\n",
            "\u{a0}",
            "\u{2003}",
            "\u{3000}",
            "\u{85}",
            "\u{2028}",
            "\u{b}",
            "\u{0}",
            "\u{7f}",
            "\u{301}",
            "\u{200d}",
            "🎉",
            "👨\u{200d}👩\u{200d}👧",
            "🇫🇷",
            "\u{feff}",
            "\u{fffd}",
            "𝔸",
            "𝟙",
            "\u{10ffff}",
            "<|endoftext|>",
            "<|endoftext|",
            "<pad>",
            "<mask>",
        ];
        let n = self.below(max_parts) + 1;
        let mut s = String::new();
        for _ in 0..n {
            match self.below(10) {
                0..=1 => s.push(self.any_char()),
                2 => {
                    let k = self.below(5) + 1;
                    for _ in 0..k {
                        s.push(self.any_char());
                    }
                }
                _ => s.push_str(self.pick(PARTS)),
            }
        }
        s
    }
}

fn fixture_tokenizer() -> BpeTokenizer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer/fm_trained.tokenizer.json");
    BpeTokenizer::from_file(path).unwrap()
}

#[test]
fn bpe_decode_of_encode_is_identity_on_arbitrary_unicode() {
    let tok = fixture_tokenizer();
    // A second tokenizer trained on the generator's own strings, so long merges apply to them.
    let mut rng = Rng(0x5eed_0001);
    let corpus: Vec<String> = (0..300).map(|_| rng.text(30)).collect();
    let own = BpeTrainer::builder()
        .vocab_size(1500)
        .special_tokens(["<pad>"])
        .build()
        .unwrap()
        .train(&corpus)
        .unwrap();
    let mut rng = Rng(0x5eed_0002);
    for k in 0..3000 {
        let s = rng.text(if k % 100 == 0 { 400 } else { 40 });
        for t in [&tok, &own] {
            let ids = t.encode(&s).unwrap();
            assert_eq!(t.decode(&ids).unwrap(), s, "ids {ids:?}");
            let plain = t.encode_ordinary(&s);
            assert_eq!(t.decode_bytes(&plain).unwrap(), s.as_bytes());
        }
    }
}

#[test]
fn long_runs_take_the_heap_path_and_still_round_trip() {
    let tok = fixture_tokenizer();
    // (text, whether the fixture's merges shorten it: none covers the bytes of U+3000 or é).
    for (s, shortened) in [
        (" ".repeat(5000), true),
        ("-".repeat(3000), true),
        (format!("x{}y", "\u{3000}".repeat(700)), false),
        ("ab".repeat(2000), true),
        ("é".repeat(1000), false),
    ] {
        let ids = tok.encode(&s).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), s);
        assert_eq!(ids.len() < s.len(), shortened, "{:?}...", s.chars().next());
    }
}

#[test]
fn char_tokenizer_round_trips_its_own_alphabet() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..300 {
        let s = rng.text(60);
        let tok = CharTokenizer::from_text(&s, ["<|endoftext|>"]).unwrap();
        let ids = tok.encode(&s).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), s);
    }
}

/// The GPT-2 pattern read literally: try each alternative in order at each position, with the
/// greedy-then-backtrack meaning of `\s+(?!\S)`. Slow and obviously faithful.
fn reference_split(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let class = |i: usize| char_class(chars[i]);
    let run = |from: usize, pred: &dyn Fn(CharClass) -> bool| {
        let mut k = from;
        while k < n && pred(class(k)) {
            k += 1;
        }
        k
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let rest: String = chars[i..].iter().take(3).collect();
        let contraction = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
            .iter()
            .find(|c| rest.starts_with(*c))
            .map(|c| c.len());
        let optional_space_run = |pred: &dyn Fn(CharClass) -> bool| {
            if chars[i] == ' ' && i + 1 < n && pred(class(i + 1)) {
                return Some(run(i + 1, pred) - i);
            }
            (pred(class(i))).then(|| run(i, pred) - i)
        };
        let len = contraction
            .or_else(|| optional_space_run(&|c| c == CharClass::Letter))
            .or_else(|| optional_space_run(&|c| c == CharClass::Number))
            .or_else(|| optional_space_run(&|c| c == CharClass::Other))
            .or_else(|| {
                let end = run(i, &|c| c == CharClass::Whitespace);
                (i + 1..=end)
                    .rev()
                    .find(|&e| e == n || class(e) == CharClass::Whitespace)
                    .map(|e| e - i)
            })
            .or_else(|| Some(run(i, &|c| c == CharClass::Whitespace) - i))
            .unwrap();
        assert!(len > 0);
        out.push(chars[i..i + len].iter().collect());
        i += len;
    }
    out
}

#[test]
fn scanner_matches_a_literal_reading_of_the_pattern() {
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..5000 {
        let s = rng.text(30);
        let got: Vec<&str> = split_gpt2(&s).collect();
        assert_eq!(got, reference_split(&s), "pieces of {s:?}");
    }
}

#[test]
fn batch_encoding_is_ordered_and_thread_count_independent() {
    let tok = fixture_tokenizer();
    let mut rng = Rng(0x5eed_0005);
    let texts: Vec<String> = (0..500).map(|_| rng.text(50)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let one_by_one: Vec<Vec<u32>> = refs.iter().map(|t| tok.encode(t).unwrap()).collect();
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let batch = pool.install(|| tok.encode_batch(&refs).unwrap());
        assert_eq!(batch, one_by_one, "{threads} threads");
    }
}
