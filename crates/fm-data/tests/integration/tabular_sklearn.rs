//! fm-data's CSV loading and scalers against scikit-learn (fixture made by
//! `tests/fixtures/tabular/make_sklearn_fixture.py`): same rows, same fitted attributes, same
//! transformed values to 1e-12.

use fm_data::collect::ErrorPolicy;
use fm_data::tabular::{load_regression_csv, MinMaxScaler, StandardScaler};
use ndarray::{s, Array1, Array2};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tabular");

fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/sklearn_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vector(v: &Value) -> Array1<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Array1<f64>> = v.as_array().unwrap().iter().map(vector).collect();
    let cols = rows[0].len();
    Array2::from_shape_fn((rows.len(), cols), |(i, j)| rows[i][j])
}

fn assert_close<D: ndarray::Dimension>(
    what: &str,
    got: &ndarray::Array<f64, D>,
    want: &ndarray::Array<f64, D>,
) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12, "{what}: {g} vs scikit-learn {w}");
    }
}

fn features() -> Vec<&'static str> {
    vec!["x1", "x2", "const", "x4"]
}

#[test]
fn csv_rows_match_and_bad_records_are_skipped_with_their_lines() {
    let e = expected();
    let data = load_regression_csv(
        format!("{DIR}/regression.csv"),
        &features(),
        "price",
        ErrorPolicy::Skip,
    )
    .unwrap();
    // Both files hold repr() text; serde_json's default float parser may be one ulp off the
    // correctly rounded value that `str::parse` gives, hence the tolerance.
    assert_close("features", &data.features, &matrix(&e["features_all"]));
    assert_close("targets", &data.targets, &vector(&e["targets_all"]));
    let bad = &e["bad_lines"];
    assert_eq!(
        data.skipped_lines,
        [
            bad["wrong_count"].as_u64().unwrap() as usize,
            bad["not_a_number"].as_u64().unwrap() as usize
        ]
    );
}

#[test]
fn stop_policy_names_the_file_and_line_of_the_first_bad_record() {
    let err = load_regression_csv(
        format!("{DIR}/regression.csv"),
        &features(),
        "price",
        ErrorPolicy::Stop,
    )
    .unwrap_err();
    let line = expected()["bad_lines"]["wrong_count"].as_u64().unwrap();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "regression.csv:{line}: 3 fields, but the header has 6"
        )),
        "{text}"
    );
}

#[test]
fn scalers_fitted_on_train_match_scikit_learn_on_every_split() {
    let e = expected();
    let x = matrix(&e["features_all"]);
    let n_train = e["train_rows"].as_u64().unwrap() as usize;
    let (train, rest) = (x.slice(s![..n_train, ..]), x.slice(s![n_train.., ..]));

    let std = StandardScaler::fit(train).unwrap();
    let es = &e["standard"];
    assert_close("mean", std.mean(), &vector(&es["mean"]));
    assert_close("var", std.variance(), &vector(&es["var"]));
    assert_close("scale", std.scale(), &vector(&es["scale"]));
    assert_eq!(std.scale()[2], 1.0, "constant column keeps scale 1");
    assert_close(
        "standard train",
        &std.transform(train).unwrap(),
        &matrix(&es["train"]),
    );
    assert_close(
        "standard rest",
        &std.transform(rest).unwrap(),
        &matrix(&es["rest"]),
    );

    let em = &e["minmax"];
    let mm = MinMaxScaler::fit_range(train, -1.0, 2.0).unwrap();
    assert_close("data_min", mm.data_min(), &vector(&em["data_min"]));
    assert_close("data_max", mm.data_max(), &vector(&em["data_max"]));
    assert_close("minmax scale", mm.scale(), &vector(&em["scale"]));
    assert_close("minmax min", mm.offset(), &vector(&em["min"]));
    assert_close(
        "minmax train",
        &mm.transform(train).unwrap(),
        &matrix(&em["train"]),
    );
    assert_close(
        "minmax rest",
        &mm.transform(rest).unwrap(),
        &matrix(&em["rest"]),
    );
}
