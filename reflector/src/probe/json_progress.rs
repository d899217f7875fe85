//! `--json --interval`: the report so far as one JSON line per interval, read from
//! the [`Progress`] the engine publishes, so a program driving the probe (the control
//! plane) sees loss and round trips while the run goes on.

use super::{ProbeArgs, Progress};
use anyhow::Result;
use settings::events::ProbeReport;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Run the probe, printing its report so far every `every` seconds on stdout.
pub fn run_printing(args: &ProbeArgs, every: f64) -> Result<ProbeReport> {
    let progress = Progress::new()?;
    let done = AtomicBool::new(false);
    let every = Duration::from_secs_f64(every);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut due = Instant::now() + every;
            while !done.load(Ordering::Relaxed) {
                // Short naps, so the final report is not held back by a long interval.
                std::thread::sleep(Duration::from_millis(50).min(every));
                if Instant::now() < due {
                    continue;
                }
                due += every;
                if let Some(report) = progress.latest() {
                    print_line(&report);
                }
            }
        });
        let report = super::run(args, &progress);
        done.store(true, Ordering::Relaxed);
        report
    })
}

fn print_line(report: &ProbeReport) {
    if let Ok(line) = serde_json::to_string(report) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (the reader went away) must not stop the run.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
