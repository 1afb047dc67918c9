//! The loss curve as a PNG, drawn with `plotters`' bitmap backend.
//!
//! The training loss of every metrics record is drawn in blue, evaluation losses (metrics whose
//! name ends in `loss`) in orange, over light grid lines. Tick labels are drawn with a small
//! built-in pixel font rather than plotters' text support, which needs system fonts (fontconfig)
//! that a fresh machine or a container may not have; this keeps the crate free of any font setup.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Result, TrainError};
use crate::metrics_log::LogRecord;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
const MARGIN_LEFT: u32 = 90;
const MARGIN_BOTTOM: u32 = 40;
const MARGIN: u32 = 20;
const TICKS: usize = 5;
/// Screen pixels per font pixel.
const FONT_SCALE: i32 = 2;

const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const EVAL_COLOR: RGBColor = RGBColor(255, 127, 14);
const GRID_COLOR: RGBColor = RGBColor(225, 225, 225);

/// Writes the loss curves of `records` to a PNG at `path`. Errors when no record holds a finite
/// loss, or when the file cannot be written.
pub fn plot_loss_curve(path: &Path, records: &[LogRecord]) -> Result<()> {
    let train: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.step as f64, r.loss?)))
        .filter(|(_, l)| l.is_finite())
        .collect();
    let eval: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            let (_, v) = r.eval.iter().find(|(k, _)| k.ends_with("loss"))?;
            Some((r.step as f64, *v))
        })
        .filter(|(_, l)| l.is_finite())
        .collect();
    let all = || train.iter().chain(&eval);
    if train.is_empty() && eval.is_empty() {
        return Err(TrainError::Plot {
            path: path.to_path_buf(),
            reason: "no finite loss in the metrics records".into(),
        });
    }
    let (mut x0, mut x1) = bounds(all().map(|p| p.0));
    let (mut y0, mut y1) = bounds(all().map(|p| p.1));
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if y1 <= y0 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);

    let fail = |e: &dyn std::fmt::Display| TrainError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin_left(MARGIN_LEFT)
        .margin_bottom(MARGIN_BOTTOM)
        .margin_top(MARGIN)
        .margin_right(MARGIN)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| fail(&e))?;

    let xs: Vec<f64> = (0..=TICKS)
        .map(|i| x0 + (x1 - x0) * i as f64 / TICKS as f64)
        .collect();
    let ys: Vec<f64> = (0..=TICKS)
        .map(|i| y0 + (y1 - y0) * i as f64 / TICKS as f64)
        .collect();
    for &x in &xs {
        chart
            .draw_series(LineSeries::new([(x, y0), (x, y1)], GRID_COLOR))
            .map_err(|e| fail(&e))?;
    }
    for &y in &ys {
        chart
            .draw_series(LineSeries::new([(x0, y), (x1, y)], GRID_COLOR))
            .map_err(|e| fail(&e))?;
    }
    chart
        .draw_series(LineSeries::new(
            [(x0, y1), (x0, y0), (x1, y0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(
            train.iter().copied(),
            TRAIN_COLOR.stroke_width(2),
        ))
        .map_err(|e| fail(&e))?;
    if !eval.is_empty() {
        chart
            .draw_series(LineSeries::new(
                eval.iter().copied(),
                EVAL_COLOR.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(eval.iter().map(|&p| Circle::new(p, 3, EVAL_COLOR.filled())))
            .map_err(|e| fail(&e))?;
    }

    // Tick labels in the built-in pixel font.
    let glyph_h = 5 * FONT_SCALE;
    for &x in &xs {
        let (px, py) = chart.backend_coord(&(x, y0));
        let text = format!("{}", x.round() as i64);
        let w = text_width(&text);
        draw_text(&root, &text, px - w / 2, py + 8).map_err(|e| fail(&e))?;
    }
    let decimals = decimals_for(y1 - y0);
    for &y in &ys {
        let (px, py) = chart.backend_coord(&(x0, y));
        let text = format_tick(y, decimals);
        let w = text_width(&text);
        draw_text(&root, &text, px - w - 8, py - glyph_h / 2).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Decimals that tell ticks over a range of `span` apart.
fn decimals_for(span: f64) -> usize {
    if span <= 0.0 || !span.is_finite() {
        return 2;
    }
    (2.0 - (span / TICKS as f64).log10().floor()).clamp(0.0, 6.0) as usize
}

fn format_tick(v: f64, decimals: usize) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// 3×5 glyphs, one row per entry, bit 2 the leftmost column.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        'e' => [0b000, 0b111, 0b111, 0b100, 0b111],
        _ => return None,
    })
}

/// Advance per character: three columns and one of spacing.
const ADVANCE: i32 = 4 * FONT_SCALE;

fn text_width(text: &str) -> i32 {
    text.chars().count() as i32 * ADVANCE
}

fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    x: i32,
    y: i32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let left = x + i as i32 * ADVANCE;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                let (px, py) = (left + col * FONT_SCALE, y + r as i32 * FONT_SCALE);
                area.draw(&Rectangle::new(
                    [(px, py), (px + FONT_SCALE - 1, py + FONT_SCALE - 1)],
                    BLACK.filled(),
                ))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_and_refuses_empty_input() {
        let path = std::env::temp_dir().join(format!("fm-train-plot-{}.png", std::process::id()));
        let mut records: Vec<LogRecord> = (1..=50)
            .map(|s| LogRecord::train(s, 3.0 / s as f64, 1e-3, s as f64))
            .collect();
        let mut eval = std::collections::BTreeMap::new();
        eval.insert("val/loss".to_string(), 0.4);
        records.push(LogRecord::eval(50, 50.0, eval));
        plot_loss_curve(&path, &records).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::remove_file(&path).unwrap();

        let nan = [LogRecord::train(1, f64::NAN, 1e-3, 0.0)];
        let err = plot_loss_curve(&path, &nan).unwrap_err();
        assert!(err.to_string().contains("no finite loss"), "{err}");
    }

    #[test]
    fn tick_labels_only_use_drawable_characters() {
        for v in [0.0, 1.5, -2.25, 1234.5, 3e-5, 2e7] {
            let text = format_tick(v, decimals_for(0.37));
            assert!(text.chars().all(|c| glyph(c).is_some()), "{text}");
        }
        assert_eq!(format_tick(1.23456, decimals_for(1.0)), "1.235");
    }
}
