//! The progress display: loss, throughput and time left, one line per report.
//!
//! On a terminal (stderr, checked with [`std::io::IsTerminal`]) the line is redrawn in place; when
//! stderr is a file or a pipe (CI logs, `nohup`), each report is a plain line of its own, so logs stay
//! readable. The estimate of time left assumes the remaining steps take as long as this call's steps
//! so far took on average.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Prints progress reports to stderr.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    terminal: bool,
    started: Instant,
    first_step: u64,
    total_steps: Option<u64>,
    drew_line: bool,
}

/// The figures of one report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressReport {
    /// Steps done.
    pub step: u64,
    /// Mean loss since the previous report.
    pub loss: f64,
    /// The learning rate.
    pub lr: f64,
    /// Tokens (or examples) per second since the previous report.
    pub tokens_per_sec: f64,
}

impl Progress {
    /// A display for a run at `first_step` that ends at `total_steps` (if bounded by steps);
    /// `enabled = false` prints nothing.
    pub fn new(enabled: bool, first_step: u64, total_steps: Option<u64>) -> Self {
        Progress {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            first_step,
            total_steps,
            drew_line: false,
        }
    }

    /// Shows one report.
    pub fn report(&mut self, report: &ProgressReport) {
        if !self.enabled {
            return;
        }
        let line = format_line(
            report,
            self.total_steps,
            self.eta(report.step),
            self.started.elapsed(),
        );
        let mut err = std::io::stderr().lock();
        // A failed write to stderr is not worth ending a training run for.
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
            self.drew_line = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    /// Ends the redrawn line (on a terminal) so later output starts on a fresh line.
    pub fn finish(&mut self) {
        if self.enabled && self.terminal && self.drew_line {
            let _ = writeln!(std::io::stderr());
            self.drew_line = false;
        }
    }

    fn eta(&self, step: u64) -> Option<Duration> {
        let total = self.total_steps?;
        let done = step.checked_sub(self.first_step).filter(|&d| d > 0)?;
        let per_step = self.started.elapsed().as_secs_f64() / done as f64;
        Some(Duration::from_secs_f64(
            per_step * total.saturating_sub(step) as f64,
        ))
    }
}

/// `step 120/1000 (12.0%) | loss 2.3456 | lr 3.00e-4 | 1234 tok/s | 0:41 elapsed | ETA 5:02`.
pub fn format_line(
    report: &ProgressReport,
    total_steps: Option<u64>,
    eta: Option<Duration>,
    elapsed: Duration,
) -> String {
    let steps = match total_steps {
        Some(total) if total > 0 => format!(
            "step {}/{total} ({:.1}%)",
            report.step,
            100.0 * report.step as f64 / total as f64
        ),
        _ => format!("step {}", report.step),
    };
    let mut line = format!(
        "{steps} | loss {:.4} | lr {:.2e} | {:.0} tok/s | {} elapsed",
        report.loss,
        report.lr,
        report.tokens_per_sec,
        clock(elapsed)
    );
    if let Some(eta) = eta {
        line.push_str(&format!(" | ETA {}", clock(eta)));
    }
    line
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_loss_throughput_and_eta() {
        let report = ProgressReport {
            step: 120,
            loss: 2.34567,
            lr: 3e-4,
            tokens_per_sec: 1234.4,
        };
        let line = format_line(
            &report,
            Some(1000),
            Some(Duration::from_secs(302)),
            Duration::from_secs(41),
        );
        assert_eq!(
            line,
            "step 120/1000 (12.0%) | loss 2.3457 | lr 3.00e-4 | 1234 tok/s | 0:41 elapsed | ETA 5:02"
        );
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        let unbounded = format_line(&report, None, None, Duration::ZERO);
        assert!(unbounded.starts_with("step 120 | loss"));
    }
}
