//! Heuristic quality filters for web-like text (length, word length, symbols, repeats, letters).

/// Thresholds; a document passes when every measure is within bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityConfig {
    /// Minimum number of words.
    pub min_words: usize,
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
            mean_word_len: (3.0, 10.0),
            max_symbol_ratio: 0.1,
            max_dup_line_frac: 0.3,
            min_alpha_word_frac: 0.8,
        }
    }
}

/// Why a document failed, first failing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityFail {
    /// Too few words.
    TooShort,
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
pub fn check(text: &str, cfg: &QualityConfig) -> Result<(), QualityFail> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < cfg.min_words || words.is_empty() {
        return Err(QualityFail::TooShort);
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
    let mut seen = std::collections::HashSet::new();
    let dups = lines.iter().filter(|l| !seen.insert(**l)).count();
    if !lines.is_empty() && dups as f64 / lines.len() as f64 > cfg.max_dup_line_frac {
        return Err(QualityFail::DuplicateLines);
    }
    let alpha = words
        .iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    if (alpha as f64) / n < cfg.min_alpha_word_frac {
        return Err(QualityFail::Alphabetic);
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
            ..QualityConfig::default()
        };
        assert_eq!(check("the quick brown fox jumps", &cfg), Ok(()));
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
    }
}
