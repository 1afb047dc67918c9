//! Labelled data: reading labelled JSON Lines, a label vocabulary, class counts and seeded
//! stratified splits.
//!
//! ```
//! use fm_data::collect::JsonlFields;
//! use fm_data::labels::{read_labelled_jsonl_from, LabelSet};
//!
//! let file = "{\"text\": \"not bad\", \"label\": \"positive\"}\n\
//!             {\"text\": \"not good\", \"label\": \"negative\"}\n";
//! let fields = JsonlFields::new("text").with_label("label");
//! let examples = read_labelled_jsonl_from(file.as_bytes(), "reviews.jsonl", &fields)?;
//! let classes = LabelSet::from_labels(examples.iter().map(|e| e.label.as_str()));
//! assert_eq!(classes.names(), ["negative", "positive"]);
//! assert_eq!(classes.id(&examples[0].label), Some(1));
//! # Ok::<(), fm_data::DataError>(())
//! ```

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use crate::collect::{ErrorPolicy, JsonlFields, JsonlReader};
use crate::DataError;

/// One labelled text and the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The text.
    pub text: String,
    /// Its label, as written in the file (a number label is kept as its JSON text).
    pub label: String,
    /// 1-based line of the record in its file.
    pub line: usize,
}

/// Reads every line of the JSON Lines file `path` as a [`LabelledText`]; `fields.label` must be
/// set. Blank lines are skipped; any other bad line (malformed JSON, a missing or non-string text,
/// a missing or empty label, an empty text) is an error naming the file and the line.
pub fn read_labelled_jsonl(
    path: &Path,
    fields: &JsonlFields,
) -> Result<Vec<LabelledText>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    read_labelled_jsonl_from(std::io::BufReader::new(file), path, fields)
}

/// [`read_labelled_jsonl`] over any buffered reader; `path` names the source in errors.
pub fn read_labelled_jsonl_from<R: BufRead>(
    reader: R,
    path: impl AsRef<Path>,
    fields: &JsonlFields,
) -> Result<Vec<LabelledText>, DataError> {
    let path = path.as_ref();
    let label_field = fields.label.as_deref().ok_or_else(|| {
        DataError::config(
            "read_labelled_jsonl",
            "JsonlFields has no label field (use JsonlFields::with_label)",
        )
    })?;
    let malformed = |line: usize, reason: String| DataError::MalformedRecord {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut examples = Vec::new();
    for document in JsonlReader::new(reader, path, fields.clone(), ErrorPolicy::Stop) {
        let document = document?;
        let label = match document.label {
            Some(label) if !label.is_empty() => label,
            Some(_) => {
                return Err(malformed(
                    document.line,
                    format!("empty label {label_field:?}"),
                ))
            }
            None => {
                return Err(malformed(
                    document.line,
                    format!("no label field {label_field:?}"),
                ))
            }
        };
        if document.text.trim().is_empty() {
            return Err(malformed(
                document.line,
                format!("empty text in field {:?}", fields.text),
            ));
        }
        examples.push(LabelledText {
            text: document.text,
            label,
            line: document.line,
        });
    }
    if examples.is_empty() {
        return Err(DataError::MalformedRecord {
            path: path.to_path_buf(),
            line: 0,
            reason: "no labelled lines".into(),
        });
    }
    Ok(examples)
}

/// The classes of a labelled set: the distinct labels in sorted order, so class ids do not depend
/// on the order of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// The distinct labels of `labels`, sorted.
    pub fn from_labels<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> Self {
        let mut names: Vec<String> = labels.into_iter().map(|l| l.as_ref().to_string()).collect();
        names.sort_unstable();
        names.dedup();
        LabelSet { names }
    }

    /// The class names; the index of a name is its class id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The class id of `label`, if it is one of the classes.
    pub fn id(&self, label: &str) -> Option<u32> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(label))
            .ok()
            .map(|i| i as u32)
    }

    /// The class name of `id`.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// Label vocabulary in sorted order with the count of each class.
pub fn class_counts<S: AsRef<str>>(labels: &[S]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in labels {
        *m.entry(l.as_ref().to_string()).or_insert(0) += 1;
    }
    m
}

/// SplitMix64: a small, stable generator so splits are the same on every platform.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Splits indices into (train, test) so each class keeps about `test_fraction` of its items in
/// test (rounded), shuffled within the class by `seed`. Returned index lists are sorted.
pub fn stratified_split<S: AsRef<str>>(
    labels: &[S],
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(DataError::config(
            "stratified_split",
            format!("test_fraction must be in [0, 1], got {test_fraction}"),
        ));
    }
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_class.entry(l.as_ref()).or_default().push(i);
    }
    let mut state = seed;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for idx in by_class.values_mut() {
        for k in (1..idx.len()).rev() {
            let j = (splitmix(&mut state) % (k as u64 + 1)) as usize;
            idx.swap(k, j);
        }
        let n_test = (idx.len() as f64 * test_fraction).round() as usize;
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_keeps_class_ratio_and_is_seeded() {
        let labels: Vec<&str> = (0..40)
            .map(|i| if i % 4 == 0 { "a" } else { "b" })
            .collect();
        let (tr, te) = stratified_split(&labels, 0.25, 7).unwrap();
        assert_eq!(te.len(), 11); // round(2.5) + round(7.5)
        assert_eq!(tr.len() + te.len(), 40);
        assert_eq!(te.iter().filter(|&&i| labels[i] == "a").count(), 3); // round(10 * 0.25)
        assert_eq!(stratified_split(&labels, 0.25, 7).unwrap().1, te);
        assert_ne!(stratified_split(&labels, 0.25, 8).unwrap().1, te);
        assert!(stratified_split(&labels, 1.5, 7).is_err());
        assert_eq!(class_counts(&labels)["a"], 10);
    }

    fn fields() -> JsonlFields {
        JsonlFields::new("text").with_label("label")
    }

    fn read(input: &str) -> Result<Vec<LabelledText>, DataError> {
        read_labelled_jsonl_from(input.as_bytes(), "reviews.jsonl", &fields())
    }

    #[test]
    fn reads_texts_labels_and_lines_skipping_blank_lines() {
        let input = concat!(
            "{\"text\": \"not bad\", \"label\": \"positive\"}\n",
            "\n",
            "{\"text\": \"not good\", \"label\": \"negative\", \"extra\": 1}\n",
            "{\"text\": \"meh\", \"label\": 3}\n",
        );
        let examples = read(input).unwrap();
        let got: Vec<(&str, &str, usize)> = examples
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("not bad", "positive", 1),
                ("not good", "negative", 3),
                ("meh", "3", 4)
            ]
        );
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let cases = [
            (
                "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n",
                "reviews.jsonl:2: no label field \"label\"",
            ),
            (
                "{\"text\": \"a\", \"label\": null}\n",
                "reviews.jsonl:1: no label field",
            ),
            (
                "{\"text\": \"a\", \"label\": \"\"}\n",
                "reviews.jsonl:1: empty label",
            ),
            (
                "{\"text\": \"  \", \"label\": \"x\"}\n",
                "reviews.jsonl:1: empty text",
            ),
            ("\n{\"text\": broken}\n", "reviews.jsonl:2: malformed JSON"),
            ("{\"label\": \"x\"}\n", "reviews.jsonl:1: no field \"text\""),
            ("\n\n", "reviews.jsonl:0: no labelled lines"),
        ];
        for (input, expected) in cases {
            let message = read(input).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{input:?}: {message}");
        }
    }

    #[test]
    fn missing_label_field_setting_and_missing_file_are_errors() {
        let err = read_labelled_jsonl_from("".as_bytes(), "x.jsonl", &JsonlFields::new("text"))
            .unwrap_err();
        assert!(err.to_string().contains("with_label"), "{err}");
        let err = read_labelled_jsonl(Path::new("/no/such/file.jsonl"), &fields()).unwrap_err();
        assert!(err.to_string().starts_with("/no/such/file.jsonl"), "{err}");
    }

    #[test]
    fn label_set_is_sorted_and_maps_both_ways() {
        let set = LabelSet::from_labels(["pos", "neg", "pos", "neutral"]);
        assert_eq!(set.names(), ["neg", "neutral", "pos"]);
        assert_eq!(set.len(), 3);
        assert_eq!(set.id("pos"), Some(2));
        assert_eq!(set.id("other"), None);
        assert_eq!(set.name(0), Some("neg"));
        assert_eq!(set.name(3), None);
        assert!(LabelSet::from_labels(Vec::<String>::new()).is_empty());
    }
}
