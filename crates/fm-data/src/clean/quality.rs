//! Heuristic quality filters for web-like text, after the published rules of DeepMind's Gopher
//! (MassiveText) and C4: document length in words, mean word length, symbol-to-word ratio,
//! bullet and ellipsis lines, repeated lines (by count and by characters), the fraction of words
//! with a letter, and a minimum of common English stop words. Every threshold is a field of
//! [`QualityConfig`]; [`QualityConfig::default`] holds the published values,
//! [`QualityConfig::technical`] relaxes those that reject documentation and code.

/// Thresholds; a document passes when every measure is within bounds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityConfig {
    /// Minimum number of words.
    pub min_words: usize,
    /// Maximum number of words.
    pub max_words: usize,
    /// Maximum fraction of lines starting with a bullet (`•`, `-`, `*`, `·`).
    pub max_bullet_line_frac: f64,
    /// Maximum fraction of lines ending with an ellipsis (`...` or `…`).
    pub max_ellipsis_line_frac: f64,
    /// Maximum fraction of characters in lines that repeat an earlier line.
    pub max_dup_line_char_frac: f64,
    /// Minimum number of distinct English stop words (`the`, `be`, `to`, `of`, `and`, `that`,
    /// `have`, `with`) present; 0 disables the rule.
    pub min_stop_words: usize,
    /// Allowed mean word length, in characters (inclusive).
    pub mean_word_len: (f64, f64),
    /// Maximum ratio of `#` and `...` symbols to words.
    pub max_symbol_ratio: f64,
    /// Maximum fraction of non-empty lines that repeat an earlier line.
    pub max_dup_line_frac: f64,
    /// Minimum fraction of words containing at least one alphabetic character.
    pub min_alpha_word_frac: f64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_words: 50,
            max_words: 100_000,
            mean_word_len: (3.0, 10.0),
            max_symbol_ratio: 0.1,
            max_bullet_line_frac: 0.9,
            max_ellipsis_line_frac: 0.3,
            max_dup_line_frac: 0.3,
            max_dup_line_char_frac: 0.2,
            min_alpha_word_frac: 0.8,
            min_stop_words: 2,
        }
    }
}

impl QualityConfig {
    /// Thresholds for technical documentation: code lines (`}`, `let x = 1;`) lower the
    /// alphabetic fraction and repeat (a whole book on one page repeats many listings), so the
    /// alphabetic rule is relaxed and the repeated-line rules are off (deduplication handles
    /// repeats); short pages are kept.
    pub fn technical() -> Self {
        Self {
            min_words: 20,
            max_words: 1_000_000,
            mean_word_len: (2.0, 15.0),
            max_symbol_ratio: 0.2,
            max_bullet_line_frac: 0.95,
            max_ellipsis_line_frac: 0.5,
            max_dup_line_frac: 1.0,
            max_dup_line_char_frac: 1.0,
            min_alpha_word_frac: 0.5,
            min_stop_words: 0,
        }
    }
}

/// How many documents each rule rejected (the first failing rule counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QualityCounts {
    /// Documents that passed.
    pub passed: usize,
    /// Too few words.
    pub too_short: usize,
    /// Too many words.
    pub too_long: usize,
    /// Mean word length out of range.
    pub word_length: usize,
    /// Too many symbols per word.
    pub symbols: usize,
    /// Too many bullet lines.
    pub bullet_lines: usize,
    /// Too many ellipsis lines.
    pub ellipsis_lines: usize,
    /// Too many repeated lines (by count or by characters).
    pub duplicate_lines: usize,
    /// Too few words with letters.
    pub alphabetic: usize,
    /// Too few stop words.
    pub stop_words: usize,
}

impl QualityCounts {
    /// Counts one verdict.
    pub fn add(&mut self, verdict: Result<(), QualityFail>) {
        match verdict {
            Ok(()) => self.passed += 1,
            Err(QualityFail::TooShort) => self.too_short += 1,
            Err(QualityFail::TooLong) => self.too_long += 1,
            Err(QualityFail::WordLength) => self.word_length += 1,
            Err(QualityFail::Symbols) => self.symbols += 1,
            Err(QualityFail::BulletLines) => self.bullet_lines += 1,
            Err(QualityFail::EllipsisLines) => self.ellipsis_lines += 1,
            Err(QualityFail::DuplicateLines) => self.duplicate_lines += 1,
            Err(QualityFail::Alphabetic) => self.alphabetic += 1,
            Err(QualityFail::StopWords) => self.stop_words += 1,
        }
    }

    /// Documents rejected by any rule.
    pub fn rejected(&self) -> usize {
        self.too_short
            + self.too_long
            + self.word_length
            + self.symbols
            + self.bullet_lines
            + self.ellipsis_lines
            + self.duplicate_lines
            + self.alphabetic
            + self.stop_words
    }
}

/// Why a document failed, first failing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityFail {
    /// Too few words.
    TooShort,
    /// Too many words.
    TooLong,
    /// Too many bullet lines.
    BulletLines,
    /// Too many ellipsis lines.
    EllipsisLines,
    /// Too few stop words.
    StopWords,
    /// Mean word length out of range.
    WordLength,
    /// Too many symbols per word.
    Symbols,
    /// Too many repeated lines.
    DuplicateLines,
    /// Too few words with letters.
    Alphabetic,
}

/// Checks `text` against `cfg`.
///
/// Code-fence markers (```` ``` ````, ```` ```rust ````, `~~~`) are not words: a fenced block adds
/// its code's words, not two more.
pub fn check(text: &str, cfg: &QualityConfig) -> Result<(), QualityFail> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !(w.starts_with("```") || w.starts_with("~~~")))
        .collect();
    if words.len() < cfg.min_words || words.is_empty() {
        return Err(QualityFail::TooShort);
    }
    if words.len() > cfg.max_words {
        return Err(QualityFail::TooLong);
    }
    let n = words.len() as f64;
    let mean = words.iter().map(|w| w.chars().count()).sum::<usize>() as f64 / n;
    if mean < cfg.mean_word_len.0 || mean > cfg.mean_word_len.1 {
        return Err(QualityFail::WordLength);
    }
    let symbols =
        text.matches('#').count() + text.matches("...").count() + text.matches('…').count();
    if symbols as f64 / n > cfg.max_symbol_ratio {
        return Err(QualityFail::Symbols);
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !lines.is_empty() {
        let nl = lines.len() as f64;
        let bullets = lines
            .iter()
            .filter(|l| l.starts_with(['•', '-', '*', '·']))
            .count();
        if bullets as f64 / nl > cfg.max_bullet_line_frac {
            return Err(QualityFail::BulletLines);
        }
        let ellipses = lines
            .iter()
            .filter(|l| l.ends_with("...") || l.ends_with('…'))
            .count();
        if ellipses as f64 / nl > cfg.max_ellipsis_line_frac {
            return Err(QualityFail::EllipsisLines);
        }
        let mut seen = std::collections::HashSet::new();
        let (mut dups, mut dup_chars, mut chars) = (0usize, 0usize, 0usize);
        for l in &lines {
            chars += l.len();
            if !seen.insert(*l) {
                dups += 1;
                dup_chars += l.len();
            }
        }
        if dups as f64 / nl > cfg.max_dup_line_frac
            || dup_chars as f64 / chars.max(1) as f64 > cfg.max_dup_line_char_frac
        {
            return Err(QualityFail::DuplicateLines);
        }
    }
    let alpha = words
        .iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    if (alpha as f64) / n < cfg.min_alpha_word_frac {
        return Err(QualityFail::Alphabetic);
    }
    if cfg.min_stop_words > 0 {
        const STOP: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];
        let mut present = [false; 8];
        for w in &words {
            if let Some(k) = STOP.iter().position(|s| s.eq_ignore_ascii_case(w)) {
                present[k] = true;
            }
        }
        if present.iter().filter(|&&p| p).count() < cfg.min_stop_words {
            return Err(QualityFail::StopWords);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_fires() {
        let cfg = QualityConfig {
            min_words: 4,
            min_stop_words: 0,
            ..QualityConfig::default()
        };
        assert_eq!(check("the quick brown fox jumps", &cfg), Ok(()));
        let few = QualityConfig {
            max_words: 4,
            ..cfg
        };
        assert_eq!(
            check("the quick brown fox jumps", &few),
            Err(QualityFail::TooLong)
        );
        assert_eq!(
            check(
                "-item first\n-item second\n-item third\nlastline",
                &QualityConfig {
                    max_bullet_line_frac: 0.5,
                    ..cfg
                }
            ),
            Err(QualityFail::BulletLines)
        );
        assert_eq!(
            check(
                "and then...\nso more...\nand stop",
                &QualityConfig {
                    max_symbol_ratio: 1.0,
                    ..cfg
                }
            ),
            Err(QualityFail::EllipsisLines)
        );
        let stop = QualityConfig {
            min_stop_words: 2,
            ..cfg
        };
        assert_eq!(
            check("quick brown fox jumps", &stop),
            Err(QualityFail::StopWords)
        );
        assert_eq!(check("the fox and the dog", &stop), Ok(()));
        let mut counts = QualityCounts::default();
        counts.add(check("too short", &cfg));
        counts.add(check("the fox and the dog", &cfg));
        assert_eq!(
            (counts.passed, counts.too_short, counts.rejected()),
            (1, 1, 1)
        );
        assert_eq!(check("too short", &cfg), Err(QualityFail::TooShort));
        assert_eq!(check("a b c d e", &cfg), Err(QualityFail::WordLength));
        assert_eq!(
            check("## ## title here now", &cfg),
            Err(QualityFail::Symbols)
        );
        assert_eq!(
            check("same line\nsame line\nother text", &cfg),
            Err(QualityFail::DuplicateLines)
        );
        assert_eq!(
            check("1234 5678 9012 word", &cfg),
            Err(QualityFail::Alphabetic)
        );
        // Fence markers are not words.
        assert_eq!(
            check("```rust\nfn f()\n```", &cfg),
            Err(QualityFail::TooShort)
        );
        assert_eq!(check("```text\nthe quick brown fox\n```", &cfg), Ok(()));
    }
}
