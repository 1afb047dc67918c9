//! Labelled data: a label vocabulary, class counts and seeded stratified splits.

use std::collections::BTreeMap;

use crate::DataError;

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
}
