//! Tabular data for regression: CSV to a feature matrix and targets, and feature scaling.
//!
//! [`read_csv`] parses a CSV file with a header row (RFC 4180: comma-separated, fields optionally
//! in double quotes, `""` for a quote inside one, quoted fields may span lines).
//! [`load_regression_csv`] picks feature and target columns by name and parses them as `f64`. A
//! record with the wrong number of fields, a value that is not a number, or an unclosed quote is
//! handled by the caller's [`ErrorPolicy`]: skipped and counted (with its line), or an error naming
//! the file and line.
//!
//! [`StandardScaler`] and [`MinMaxScaler`] follow scikit-learn's estimators of the same names (the
//! same formulas, the same handling of constant columns; checked against a scikit-learn fixture to
//! 1e-12): fit them on the training rows only, then transform every split with them.
//!
//! A small parser rather than the `csv` crate: numeric regression tables need only the quoting
//! rules above, and owning the loop lets every bad record carry its line under either policy.
//!
//! ```
//! use fm_data::collect::ErrorPolicy;
//! use fm_data::tabular::{parse_csv, regression_data, StandardScaler};
//!
//! let text = "name,rooms,area,price\n\"flat, small\",2,50,100\nhouse,5,120,300\nbad,row\n";
//! let table = parse_csv(text, "houses.csv", ErrorPolicy::Skip)?;
//! assert_eq!(table.skipped_lines, [4]);
//! let data = regression_data(&table, &["rooms", "area"], "price", ErrorPolicy::Stop)?;
//! assert_eq!(data.features.row(1).to_vec(), [5.0, 120.0]);
//! assert_eq!(data.targets.to_vec(), [100.0, 300.0]);
//!
//! let scaler = StandardScaler::fit(data.features.view())?;
//! let scaled = scaler.transform(data.features.view())?;
//! assert_eq!(scaled.column(0).to_vec(), [-1.0, 1.0]);
//! # Ok::<(), fm_data::DataError>(())
//! ```

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::collect::ErrorPolicy;
use crate::error::{DataError, Result};

/// A parsed CSV file: the header and the records that were kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvTable {
    /// The file the table came from (for error messages).
    pub path: PathBuf,
    /// Column names, from the first record.
    pub header: Vec<String>,
    /// Records with as many fields as the header, in file order.
    pub rows: Vec<Vec<String>>,
    /// 1-based line where each kept record starts.
    pub row_lines: Vec<usize>,
    /// Lines of the records skipped under [`ErrorPolicy::Skip`].
    pub skipped_lines: Vec<usize>,
}

impl CsvTable {
    /// Number of skipped records.
    pub fn skipped(&self) -> usize {
        self.skipped_lines.len()
    }

    /// The index of column `name`; an unknown name is an error listing the columns.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Csv {
                path: self.path.clone(),
                line: 1,
                reason: format!(
                    "no column named {name:?}; the columns are {:?}",
                    self.header
                ),
            })
    }
}

/// Reads and parses the CSV file at `path` (see [`parse_csv`]).
pub fn read_csv(path: impl AsRef<Path>, policy: ErrorPolicy) -> Result<CsvTable> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })?;
    parse_csv(&text, path, policy)
}

/// Parses CSV `text` whose first record is the header; `path` names the source in errors. Blank
/// lines are ignored. A record whose field count differs from the header's, or that is malformed
/// (text after a closing quote, a quote never closed), is skipped and its line recorded, or is an
/// error naming `path` and the line, as `policy` says. An empty text is an error (no header).
pub fn parse_csv(text: &str, path: impl AsRef<Path>, policy: ErrorPolicy) -> Result<CsvTable> {
    let path = path.as_ref().to_path_buf();
    let mut records = RecordParser {
        text: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let header = match records.next_record() {
        None => {
            return Err(DataError::Csv {
                path,
                line: 1,
                reason: "empty file: no header row".into(),
            })
        }
        Some((_, Ok(fields))) => fields,
        Some((line, Err(reason))) => {
            return Err(DataError::Csv {
                path,
                line,
                reason: format!("header: {reason}"),
            })
        }
    };
    let mut table = CsvTable {
        path,
        header,
        rows: Vec::new(),
        row_lines: Vec::new(),
        skipped_lines: Vec::new(),
    };
    while let Some((line, record)) = records.next_record() {
        let problem = match record {
            Ok(fields) if fields.len() == table.header.len() => {
                table.rows.push(fields);
                table.row_lines.push(line);
                continue;
            }
            Ok(fields) => format!(
                "{} fields, but the header has {}",
                fields.len(),
                table.header.len()
            ),
            Err(reason) => reason,
        };
        match policy {
            ErrorPolicy::Skip => table.skipped_lines.push(line),
            ErrorPolicy::Stop => {
                return Err(DataError::Csv {
                    path: table.path,
                    line,
                    reason: problem,
                })
            }
        }
    }
    Ok(table)
}

/// Splits CSV bytes into records, tracking the line each starts on.
struct RecordParser<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl RecordParser<'_> {
    /// The next non-blank record and its first line; `Err` holds why it is malformed (the parser
    /// has then moved past it: to the end of its line, or of the text for an unclosed quote).
    fn next_record(&mut self) -> Option<(usize, std::result::Result<Vec<String>, String>)> {
        // Skip blank lines.
        loop {
            match self.text.get(self.pos) {
                None => return None,
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'\r') if self.text.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                }
                Some(_) => break,
            }
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        loop {
            match self.field() {
                Ok(field) => fields.push(field),
                Err(reason) => {
                    self.skip_line();
                    return Some((start_line, Err(reason)));
                }
            }
            match self.text.get(self.pos) {
                Some(b',') => self.pos += 1,
                _ => {
                    self.end_of_line();
                    return Some((start_line, Ok(fields)));
                }
            }
        }
    }

    /// One field, leaving `pos` on the comma, line end or end of text after it.
    fn field(&mut self) -> std::result::Result<String, String> {
        if self.text.get(self.pos) != Some(&b'"') {
            let start = self.pos;
            while let Some(&b) = self.text.get(self.pos) {
                if b == b','
                    || b == b'\n'
                    || (b == b'\r' && self.text.get(self.pos + 1) == Some(&b'\n'))
                {
                    break;
                }
                if b == b'"' {
                    return Err("a quote inside an unquoted field".into());
                }
                self.pos += 1;
            }
            return Ok(self.slice(start, self.pos));
        }
        let opening_line = self.line;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.text.get(self.pos) {
                None => {
                    return Err(format!(
                        "the quote opened on line {opening_line} is never closed"
                    ))
                }
                Some(b'"') if self.text.get(self.pos + 1) == Some(&b'"') => {
                    value.push(b'"');
                    self.pos += 2;
                }
                Some(b'"') => {
                    self.pos += 1;
                    return match self.text.get(self.pos) {
                        None | Some(b',') | Some(b'\n') => Ok(into_string(value)),
                        Some(b'\r') if self.text.get(self.pos + 1) == Some(&b'\n') => {
                            Ok(into_string(value))
                        }
                        Some(_) => Err("text after a closing quote".into()),
                    };
                }
                Some(&b) => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    fn slice(&self, start: usize, end: usize) -> String {
        into_string(self.text[start..end].to_vec())
    }

    /// Consumes a line end (or nothing at the end of the text).
    fn end_of_line(&mut self) {
        match self.text.get(self.pos) {
            Some(b'\n') => self.pos += 1,
            Some(b'\r') => self.pos += 2,
            _ => return,
        }
        self.line += 1;
    }

    fn skip_line(&mut self) {
        while let Some(&b) = self.text.get(self.pos) {
            if b == b'\n' {
                break;
            }
            self.pos += 1;
        }
        self.end_of_line();
    }
}

/// The parser splits only at ASCII bytes of a `&str`, so every field is valid UTF-8.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("fields are cut at ASCII bytes of valid UTF-8")
}

/// A feature matrix and its targets.
#[derive(Clone, Debug, PartialEq)]
pub struct RegressionData {
    /// `[rows, features]`.
    pub features: Array2<f64>,
    /// One target per row.
    pub targets: Array1<f64>,
    /// The feature columns, in matrix order.
    pub feature_names: Vec<String>,
    /// The target column.
    pub target_name: String,
    /// Line of each kept row in the file.
    pub row_lines: Vec<usize>,
    /// Lines of records skipped, by the CSV parser or for values that are not numbers.
    pub skipped_lines: Vec<usize>,
}

/// Columns `features` and `target` of `table` as numbers. A value that does not parse as `f64`
/// (empty, text) skips its row (recorded in `skipped_lines`) or is an error naming the file, line
/// and column, as `policy` says. An unknown column name is an error listing the columns.
pub fn regression_data(
    table: &CsvTable,
    features: &[&str],
    target: &str,
    policy: ErrorPolicy,
) -> Result<RegressionData> {
    let feature_columns = features
        .iter()
        .map(|name| table.column(name))
        .collect::<Result<Vec<_>>>()?;
    let target_column = table.column(target)?;
    let mut values = Vec::with_capacity(table.rows.len() * features.len());
    let mut targets = Vec::with_capacity(table.rows.len());
    let mut row_lines = Vec::with_capacity(table.rows.len());
    let mut skipped_lines = table.skipped_lines.clone();
    let parse = |row: &[String], column: usize, line: usize| -> Result<f64> {
        let text = row[column].trim();
        text.parse::<f64>().map_err(|_| DataError::Csv {
            path: table.path.clone(),
            line,
            reason: format!(
                "column {:?}: {text:?} is not a number",
                table.header[column]
            ),
        })
    };
    for (row, &line) in table.rows.iter().zip(&table.row_lines) {
        let parsed: Result<(Vec<f64>, f64)> = feature_columns
            .iter()
            .map(|&c| parse(row, c, line))
            .collect::<Result<Vec<_>>>()
            .and_then(|f| Ok((f, parse(row, target_column, line)?)));
        match (parsed, policy) {
            (Ok((f, t)), _) => {
                values.extend(f);
                targets.push(t);
                row_lines.push(line);
            }
            (Err(_), ErrorPolicy::Skip) => skipped_lines.push(line),
            (Err(e), ErrorPolicy::Stop) => return Err(e),
        }
    }
    skipped_lines.sort_unstable();
    let features_matrix = Array2::from_shape_vec((targets.len(), features.len()), values)
        .expect("one value per kept row and feature");
    Ok(RegressionData {
        features: features_matrix,
        targets: Array1::from(targets),
        feature_names: features.iter().map(|s| s.to_string()).collect(),
        target_name: target.to_string(),
        row_lines,
        skipped_lines,
    })
}

/// [`read_csv`] then [`regression_data`], with one policy for both.
pub fn load_regression_csv(
    path: impl AsRef<Path>,
    features: &[&str],
    target: &str,
    policy: ErrorPolicy,
) -> Result<RegressionData> {
    let table = read_csv(path, policy)?;
    regression_data(&table, features, target, policy)
}

fn check_columns(what: &'static str, fitted: usize, x: &ArrayView2<f64>) -> Result<()> {
    if x.ncols() != fitted {
        return Err(DataError::ShapeMismatch {
            what,
            expected: format!("[rows, {fitted}] (the columns it was fitted on)"),
            found: format!("{:?}", x.shape()),
        });
    }
    Ok(())
}

fn check_fit_input(what: &'static str, x: &ArrayView2<f64>) -> Result<()> {
    if x.nrows() == 0 {
        return Err(DataError::ShapeMismatch {
            what,
            expected: "at least one row to fit on".into(),
            found: format!("{:?}", x.shape()),
        });
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(DataError::config(
            what,
            "the data to fit holds a NaN or infinite value",
        ));
    }
    Ok(())
}

/// Scale 1 where a column is (numerically) constant, as scikit-learn's `_handle_zeros_in_scale`.
fn handle_zero_scale(scale: f64) -> f64 {
    if scale < 10.0 * f64::EPSILON {
        1.0
    } else {
        scale
    }
}

/// Removes each column's mean and divides by its standard deviation (population, `ddof = 0`), as
/// scikit-learn's `StandardScaler`. A constant column keeps scale 1 (it becomes all zeros).
#[derive(Clone, Debug, PartialEq)]
pub struct StandardScaler {
    mean: Array1<f64>,
    variance: Array1<f64>,
    scale: Array1<f64>,
}

impl StandardScaler {
    /// Fits on the rows of `x` (the training split); at least one row, all values finite.
    pub fn fit(x: ArrayView2<f64>) -> Result<Self> {
        check_fit_input("StandardScaler::fit", &x)?;
        let n = x.nrows() as f64;
        let mean = x.sum_axis(Axis(0)) / n;
        // Two-pass variance with the rounding correction of scikit-learn's
        // `_incremental_mean_and_var`: (sum d^2 - (sum d)^2 / n) / n with d = x - mean.
        let mut squares = Array1::<f64>::zeros(x.ncols());
        let mut deviations = Array1::<f64>::zeros(x.ncols());
        for row in x.rows() {
            for j in 0..row.len() {
                let d = row[j] - mean[j];
                squares[j] += d * d;
                deviations[j] += d;
            }
        }
        let variance = (&squares - &(&deviations * &deviations / n)) / n;
        let scale = variance
            .iter()
            .zip(&mean)
            .map(|(&var, &mu)| {
                // scikit-learn's `_is_constant_feature`: a variance within rounding of zero.
                let eps = f64::EPSILON;
                let bound = n * eps * var + (n * mu * eps).powi(2);
                if var <= bound {
                    1.0
                } else {
                    handle_zero_scale(var.sqrt())
                }
            })
            .collect();
        Ok(StandardScaler {
            mean,
            variance,
            scale,
        })
    }

    /// `(x - mean) / scale`, column by column; `x` must have the fitted number of columns.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_columns("StandardScaler::transform", self.mean.len(), &x)?;
        Ok((&x - &self.mean) / &self.scale)
    }

    /// `x * scale + mean`: back to the original units.
    pub fn inverse_transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_columns("StandardScaler::inverse_transform", self.mean.len(), &x)?;
        Ok(&x * &self.scale + &self.mean)
    }

    /// Column means of the training rows.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }

    /// Column variances (population).
    pub fn variance(&self) -> &Array1<f64> {
        &self.variance
    }

    /// What each column is divided by: its standard deviation, or 1 for a constant column.
    pub fn scale(&self) -> &Array1<f64> {
        &self.scale
    }
}

/// Maps each column's training range onto `[low, high]` (default `[0, 1]`), as scikit-learn's
/// `MinMaxScaler` (without clipping: values outside the training range map outside the target).
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler {
    data_min: Array1<f64>,
    data_max: Array1<f64>,
    scale: Array1<f64>,
    offset: Array1<f64>,
}

impl MinMaxScaler {
    /// Fits on the rows of `x` to the range `[0, 1]`.
    pub fn fit(x: ArrayView2<f64>) -> Result<Self> {
        Self::fit_range(x, 0.0, 1.0)
    }

    /// Fits on the rows of `x` to the range `[low, high]` (`low < high`).
    pub fn fit_range(x: ArrayView2<f64>, low: f64, high: f64) -> Result<Self> {
        if low >= high || !low.is_finite() || !high.is_finite() {
            return Err(DataError::config(
                "MinMaxScaler::fit_range",
                format!("the range must have low < high, got [{low}, {high}]"),
            ));
        }
        check_fit_input("MinMaxScaler::fit", &x)?;
        let data_min = x.fold_axis(Axis(0), f64::INFINITY, |&m, &v| m.min(v));
        let data_max = x.fold_axis(Axis(0), f64::NEG_INFINITY, |&m, &v| m.max(v));
        // scikit-learn: scale = (high - low) / range (1 for a constant column),
        // offset = low - min * scale; transform x * scale + offset.
        let scale: Array1<f64> = data_min
            .iter()
            .zip(&data_max)
            .map(|(&lo, &hi)| (high - low) / handle_zero_scale(hi - lo))
            .collect();
        let offset = low - &data_min * &scale;
        Ok(MinMaxScaler {
            data_min,
            data_max,
            scale,
            offset,
        })
    }

    /// `x * scale + offset`, column by column.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_columns("MinMaxScaler::transform", self.scale.len(), &x)?;
        Ok(&x * &self.scale + &self.offset)
    }

    /// `(x - offset) / scale`: back to the original units.
    pub fn inverse_transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_columns("MinMaxScaler::inverse_transform", self.scale.len(), &x)?;
        Ok((&x - &self.offset) / &self.scale)
    }

    /// Column minima of the training rows.
    pub fn data_min(&self) -> &Array1<f64> {
        &self.data_min
    }

    /// Column maxima of the training rows.
    pub fn data_max(&self) -> &Array1<f64> {
        &self.data_max
    }

    /// Per-column factor (scikit-learn's `scale_`).
    pub fn scale(&self) -> &Array1<f64> {
        &self.scale
    }

    /// Per-column offset added after scaling (scikit-learn's `min_`).
    pub fn offset(&self) -> &Array1<f64> {
        &self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn parse(text: &str, policy: ErrorPolicy) -> Result<CsvTable> {
        parse_csv(text, "t.csv", policy)
    }

    #[test]
    fn quoted_fields_with_commas_quotes_and_newlines() {
        let t = parse(
            "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n1,,3\n",
            ErrorPolicy::Stop,
        )
        .unwrap();
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!(t.rows[0], ["x, y", "say \"hi\"", "two\nlines"]);
        assert_eq!(t.rows[1], ["1", "", "3"]);
        // The quoted newline moves the next record to line 5 (line 4 is blank).
        assert_eq!(t.row_lines, [2, 5]);
        assert_eq!(t.skipped(), 0);
    }

    #[test]
    fn wrong_field_counts_are_skipped_and_counted_or_stop_with_file_and_line() {
        let text = "a,b\n1,2\n1,2,3\n4\n5,6";
        let t = parse(text, ErrorPolicy::Skip).unwrap();
        assert_eq!(t.rows, [["1", "2"], ["5", "6"]]);
        assert_eq!(t.skipped_lines, [3, 4]);
        let err = parse(text, ErrorPolicy::Stop).unwrap_err();
        assert_eq!(err.to_string(), "t.csv:3: 3 fields, but the header has 2");
    }

    #[test]
    fn malformed_quotes_are_bad_records() {
        let t = parse("a,b\n\"x\"y,1\n2,3\nq\"q,4\n", ErrorPolicy::Skip).unwrap();
        assert_eq!(t.rows, [["2", "3"]]);
        assert_eq!(t.skipped_lines, [2, 4]);
        let err = parse("a,b\n1,2\n\"open,3\n4,5\n", ErrorPolicy::Stop).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.csv:3: the quote opened on line 3 is never closed"),
            "{err}"
        );
        let err = parse("", ErrorPolicy::Skip).unwrap_err();
        assert!(err.to_string().contains("no header"), "{err}");
    }

    #[test]
    fn columns_by_name_and_values_that_are_not_numbers() {
        let text = "id,x,y\n1,0.5,2\n2,abc,3\n3,1.5,\n4,2.5,6\n";
        let t = parse(text, ErrorPolicy::Stop).unwrap();
        let d = regression_data(&t, &["x"], "y", ErrorPolicy::Skip).unwrap();
        assert_eq!(d.features, array![[0.5], [2.5]]);
        assert_eq!(d.targets, array![2.0, 6.0]);
        assert_eq!(d.row_lines, [2, 5]);
        assert_eq!(d.skipped_lines, [3, 4]);
        let err = regression_data(&t, &["x"], "y", ErrorPolicy::Stop).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv:3: column \"x\": \"abc\" is not a number"
        );
        let err = regression_data(&t, &["x", "z"], "y", ErrorPolicy::Stop).unwrap_err();
        assert!(err.to_string().contains("no column named \"z\""), "{err}");
    }

    #[test]
    fn missing_file_and_invalid_utf8_name_the_file() {
        let err = read_csv("/nonexistent/data.csv", ErrorPolicy::Skip).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/data.csv"),
            "{err}"
        );
        let path = std::env::temp_dir().join(format!("fm-tabular-{}.csv", std::process::id()));
        std::fs::write(&path, b"a\n1\n\xff\n").unwrap();
        let err = read_csv(&path, ErrorPolicy::Skip).unwrap_err();
        assert!(err.to_string().ends_with(":3: invalid UTF-8"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn scalers_round_trip_and_handle_constant_columns() {
        let train = array![[1.0, 5.0, -2.0], [3.0, 5.0, 0.0], [8.0, 5.0, 4.0]];
        let test = array![[0.0, 6.0, 1.0]];
        let s = StandardScaler::fit(train.view()).unwrap();
        let z = s.transform(train.view()).unwrap();
        for j in [0, 2] {
            let col = z.column(j);
            assert!(col.sum().abs() < 1e-12);
            assert!((col.mapv(|v| v * v).sum() / 3.0 - 1.0).abs() < 1e-12);
        }
        assert_eq!(s.scale()[1], 1.0);
        assert_eq!(z.column(1).to_vec(), [0.0, 0.0, 0.0]);
        let back = s
            .inverse_transform(s.transform(test.view()).unwrap().view())
            .unwrap();
        assert!((&back - &test).iter().all(|d| d.abs() < 1e-12));

        let m = MinMaxScaler::fit_range(train.view(), -1.0, 1.0).unwrap();
        let y = m.transform(train.view()).unwrap();
        // x * scale + offset as scikit-learn computes it: exact only to rounding.
        let expected = [-1.0, -1.0 + 2.0 * 2.0 / 7.0, 1.0];
        assert!(y
            .column(0)
            .iter()
            .zip(expected)
            .all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(y.column(1).to_vec(), [-1.0, -1.0, -1.0]);
        let back = m
            .inverse_transform(m.transform(test.view()).unwrap().view())
            .unwrap();
        assert!((&back - &test).iter().all(|d| d.abs() < 1e-12));
    }

    #[test]
    fn scalers_refuse_bad_input_naming_shapes() {
        let train = array![[1.0, 2.0], [3.0, 4.0]];
        let s = StandardScaler::fit(train.view()).unwrap();
        let err = s.transform(array![[1.0, 2.0, 3.0]].view()).unwrap_err();
        assert!(
            err.to_string().contains("[rows, 2]") && err.to_string().contains("[1, 3]"),
            "{err}"
        );
        let empty = Array2::<f64>::zeros((0, 2));
        assert!(StandardScaler::fit(empty.view()).is_err());
        assert!(MinMaxScaler::fit(empty.view()).is_err());
        assert!(StandardScaler::fit(array![[f64::NAN]].view()).is_err());
        assert!(MinMaxScaler::fit_range(train.view(), 1.0, 1.0).is_err());
        let m = MinMaxScaler::fit(train.view()).unwrap();
        assert!(m.transform(array![[1.0]].view()).is_err());
    }
}
