//! Unicode normalisation (NFC or NFKC) with the `unicode-normalization` crate.
//!
//! NFC composes characters (`e` + combining acute → `é`) so one text has one byte form; NFKC also
//! folds compatibility characters (ligatures, full-width forms, superscripts) into their plain
//! forms, which is what web-text pipelines usually want before hashing for deduplication.

use unicode_normalization::{is_nfc_quick, is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Which normal form [`normalize_unicode`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NormalForm {
    /// Canonical composition.
    Nfc,
    /// Compatibility composition.
    Nfkc,
    /// Leave the text as it is.
    Unchanged,
}

/// The text in `form`, and whether that changed it. Already-normalised text (the common case,
/// checked with the quick test) is returned without re-encoding.
///
/// ```
/// use fm_data::clean::unicode::{normalize_unicode, NormalForm};
///
/// assert_eq!(normalize_unicode("cafe\u{301}", NormalForm::Nfc), ("café".to_string(), true));
/// assert_eq!(normalize_unicode("ﬁne ２", NormalForm::Nfkc), ("fine 2".to_string(), true));
/// assert_eq!(normalize_unicode("ﬁne", NormalForm::Nfc), ("ﬁne".to_string(), false));
/// ```
pub fn normalize_unicode(text: &str, form: NormalForm) -> (String, bool) {
    let quick = match form {
        NormalForm::Unchanged => return (text.to_string(), false),
        NormalForm::Nfc => is_nfc_quick(text.chars()),
        NormalForm::Nfkc => is_nfkc_quick(text.chars()),
    };
    if quick == IsNormalized::Yes {
        return (text.to_string(), false);
    }
    let out: String = match form {
        NormalForm::Nfc => text.nfc().collect(),
        _ => text.nfkc().collect(),
    };
    let changed = out != text;
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_differ_on_compatibility_characters() {
        let s = "x\u{00B2} \u{FF21}\u{0041}\u{030A}";
        assert_eq!(
            normalize_unicode(s, NormalForm::Nfc).0,
            "x\u{00B2} \u{FF21}\u{00C5}"
        );
        assert_eq!(normalize_unicode(s, NormalForm::Nfkc).0, "x2 A\u{00C5}");
        assert_eq!(
            normalize_unicode(s, NormalForm::Unchanged),
            (s.to_string(), false)
        );
        // Normalisation is idempotent.
        let once = normalize_unicode(s, NormalForm::Nfkc).0;
        assert_eq!(
            normalize_unicode(&once, NormalForm::Nfkc),
            (once.clone(), false)
        );
    }
}
