//! Labelled data: labelled JSON Lines, (text, label) datasets, a label vocabulary, class counts and seeded
//! stratified splits.
//!
//! Labelled documents from any source (JSONL label field, CSV label column) as a dataset:
//!
//! ```
//! use std::{path::Path, sync::Arc};
//! use fm_data::collect::Document;
//! use fm_data::dataset::Dataset;
//! use fm_data::labels::LabelledDataset;
//!
//! let path: Arc<Path> = Arc::from(Path::new("reviews.jsonl"));
//! let docs: Vec<Document> = [("great", "pos"), ("awful", "neg"), ("fine", "pos")]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, (t, l))| Document::new(t.to_string(), path.clone(), i + 1, 0).with_label(Some(l.to_string())))
//!     .collect();
//! let data = LabelledDataset::from_documents(docs)?;
//! assert_eq!(data.vocab().labels(), ["neg", "pos"]);
//! assert_eq!(data.get(0)?, ("great".to_string(), 1));
//! assert_eq!(data.class_counts(), [1, 2]);
//! let (train, test) = data.stratified_split(0.5, 7)?;
//! assert_eq!(train.len() + test.len(), 3);
//! # Ok::<(), fm_data::DataError>(())
//! ```
//!
//! A labelled JSON Lines file read strictly (empty texts and labels are errors), with class ids
//! from its labels:
//!
//! ```
//! use fm_data::collect::JsonlFields;
//! use fm_data::labels::{read_labelled_jsonl_from, LabelVocab};
//!
//! let file = "{\"text\": \"not bad\", \"label\": \"positive\"}\n\
//!             {\"text\": \"not good\", \"label\": \"negative\"}\n";
//! let fields = JsonlFields::new("text").with_label("label");
//! let examples = read_labelled_jsonl_from(file.as_bytes(), "reviews.jsonl", &fields)?;
//! let classes = LabelVocab::from_labels(examples.iter().map(|e| e.label.as_str()));
//! assert_eq!(classes.labels(), ["negative", "positive"]);
//! assert_eq!(classes.id(&examples[0].label), Some(1));
//! # Ok::<(), fm_data::DataError>(())
//! ```

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use crate::collect::{Document, ErrorPolicy, JsonlFields, JsonlReader};
use crate::dataset::Dataset;
use crate::DataError;

/// The labels of a dataset and their ids: distinct labels in sorted order, the id of a label its
/// position, so the same label set always gives the same ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelVocab {
    labels: Vec<String>,
}

impl LabelVocab {
    /// The vocabulary of `labels` (duplicates and order do not matter).
    pub fn from_labels<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> Self {
        let mut labels: Vec<String> = labels.into_iter().map(|l| l.as_ref().to_string()).collect();
        labels.sort_unstable();
        labels.dedup();
        Self { labels }
    }

    /// Labels, in id order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The id of `label`, if it is in the vocabulary.
    pub fn id(&self, label: &str) -> Option<u32> {
        self.labels
            .binary_search_by(|l| l.as_str().cmp(label))
            .ok()
            .map(|i| i as u32)
    }

    /// The label of `id`, if there is one.
    pub fn label(&self, id: u32) -> Option<&str> {
        self.labels.get(id as usize).map(String::as_str)
    }
}

/// (text, label id) examples with their label vocabulary; a [`Dataset`] of `(String, u32)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledDataset {
    texts: Vec<String>,
    labels: Vec<u32>,
    vocab: LabelVocab,
}

impl LabelledDataset {
    /// The labelled documents of a source (a JSONL label field, a CSV label column), with the
    /// vocabulary of their labels. A document without a label is an error naming its file and
    /// line.
    pub fn from_documents(docs: Vec<Document>) -> Result<Self, DataError> {
        let names: Vec<&str> = docs.iter().map(|d| label_of(d)).collect::<Result<_, _>>()?;
        let vocab = LabelVocab::from_labels(&names);
        Self::with_vocab(docs, vocab)
    }

    /// The labelled documents with a given vocabulary (a validation or test set read with the
    /// training set's vocabulary). A document without a label, or with one outside `vocab`, is an
    /// error naming its file and line.
    pub fn with_vocab(docs: Vec<Document>, vocab: LabelVocab) -> Result<Self, DataError> {
        let mut texts = Vec::with_capacity(docs.len());
        let mut labels = Vec::with_capacity(docs.len());
        for d in docs {
            let name = label_of(&d)?;
            let id = vocab.id(name).ok_or_else(|| DataError::MalformedRecord {
                path: d.path.to_path_buf(),
                line: d.line,
                reason: format!(
                    "label {name:?} is not in the vocabulary of {} labels",
                    vocab.len()
                ),
            })?;
            labels.push(id);
            texts.push(d.text);
        }
        Ok(Self {
            texts,
            labels,
            vocab,
        })
    }

    /// The label vocabulary.
    pub fn vocab(&self) -> &LabelVocab {
        &self.vocab
    }

    /// The label ids, in item order.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Items per label id (`vocab().len()` counts).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.vocab.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// A seeded split keeping each class's share ([`stratified_split`]): sorted (train, test)
    /// index lists, for [`Subset`](crate::dataset::Subset)s of this dataset.
    pub fn stratified_split(
        &self,
        test_fraction: f64,
        seed: u64,
    ) -> Result<(Vec<usize>, Vec<usize>), DataError> {
        stratified_split(&self.labels_as_keys(), test_fraction, seed)
    }

    fn labels_as_keys(&self) -> Vec<&str> {
        self.labels
            .iter()
            .map(|&l| self.vocab.labels[l as usize].as_str())
            .collect()
    }
}

fn label_of(d: &Document) -> Result<&str, DataError> {
    d.label
        .as_deref()
        .ok_or_else(|| DataError::MalformedRecord {
            path: d.path.to_path_buf(),
            line: d.line,
            reason: "document has no label".to_string(),
        })
}

impl Dataset for LabelledDataset {
    type Item = (String, u32);

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn get(&self, index: usize) -> crate::Result<Self::Item> {
        match (self.texts.get(index), self.labels.get(index)) {
            (Some(t), Some(&l)) => Ok((t.clone(), l)),
            _ => Err(crate::dataset::index_out_of_range(
                "LabelledDataset",
                index,
                self.texts.len(),
            )),
        }
    }
}

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

    fn doc(text: &str, label: Option<&str>, line: usize) -> Document {
        let path: std::sync::Arc<std::path::Path> =
            std::sync::Arc::from(std::path::Path::new("data.csv"));
        Document::new(text.to_string(), path, line, 0).with_label(label.map(str::to_string))
    }

    #[test]
    fn labelled_dataset_ids_counts_splits_and_errors() {
        let docs: Vec<Document> = (0..20)
            .map(|i| {
                doc(
                    &format!("text {i}"),
                    Some(["spam", "ham", "eggs"][i % 3]),
                    i + 2,
                )
            })
            .collect();
        let data = LabelledDataset::from_documents(docs.clone()).unwrap();
        assert_eq!(data.vocab().labels(), ["eggs", "ham", "spam"]);
        assert_eq!(data.vocab().id("spam"), Some(2));
        assert_eq!(data.vocab().label(1), Some("ham"));
        assert_eq!(
            (data.vocab().id("bacon"), data.vocab().label(3)),
            (None, None)
        );
        assert_eq!(data.get(4).unwrap(), ("text 4".to_string(), 1));
        assert!(data.get(20).is_err());
        assert_eq!(data.class_counts(), [6, 7, 7]);
        let (train, test) = data.stratified_split(0.5, 3).unwrap();
        assert_eq!((train.len(), test.len()), (9, 11)); // round(3) + round(3.5) + round(3.5)
        assert_eq!(data.stratified_split(0.5, 3).unwrap().1, test);
        // A vocabulary serialises and reads another set with the same ids.
        let json = serde_json::to_string(data.vocab()).unwrap();
        let vocab: LabelVocab = serde_json::from_str(&json).unwrap();
        let other = LabelledDataset::with_vocab(docs[..3].to_vec(), vocab.clone()).unwrap();
        assert_eq!(other.labels(), [2, 1, 0]);
        // Unknown and missing labels name the file and line.
        let err = LabelledDataset::with_vocab(vec![doc("x", Some("bacon"), 9)], vocab)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "data.csv:9: label \"bacon\" is not in the vocabulary of 3 labels"
        );
        let err = LabelledDataset::from_documents(vec![doc("x", None, 4)])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "data.csv:4: document has no label");
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
    fn label_vocab_is_sorted_and_maps_both_ways() {
        let vocab = LabelVocab::from_labels(["pos", "neg", "pos", "neutral"]);
        assert_eq!(vocab.labels(), ["neg", "neutral", "pos"]);
        assert_eq!(vocab.len(), 3);
        assert_eq!(vocab.id("pos"), Some(2));
        assert_eq!(vocab.id("other"), None);
        assert_eq!(vocab.label(0), Some("neg"));
        assert_eq!(vocab.label(3), None);
        assert!(LabelVocab::from_labels(Vec::<String>::new()).is_empty());
    }
}
