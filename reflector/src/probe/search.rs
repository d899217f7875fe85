//! `reflector probe --engine fast --search`: RFC 2544 throughput, the highest rate at
//! which every frame comes back, by binary search per frame size.
//!
//! The first trial runs at full rate: if nothing is lost there, the throughput is the
//! head's own maximum (and the table says so). Otherwise the search halves the interval
//! between the highest rate known to pass and the lowest known to lose, one trial of
//! `--duration` seconds each, until it is narrower than [`PRECISION`] of the rate.

use super::fast::run_until;
use super::{Engine, ProbeArgs, Progress};
use anyhow::{bail, Result};
use serde::Serialize;
use settings::events::ProbeReport;
use std::fmt;
use std::sync::atomic::Ordering;

/// The search stops when the interval is narrower than this fraction of its top.
const PRECISION: f64 = 0.01;
/// At most this many trials per size after the full-rate one (2^-8 < 1 %).
const MAX_STEPS: u32 = 8;

/// One trial of the search.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Asked-for rate (0: full rate).
    pub rate: u64,
    pub report: ProbeReport,
}

/// The result for one frame size.
#[derive(Clone, Debug, Serialize)]
pub struct SizeResult {
    pub size: u16,
    /// Highest rate with zero loss found, as offered (the generator may fall a little
    /// short of the rate asked for), frames per second (0: none).
    pub zero_loss_pps: u64,
    /// What the head offered at full rate.
    pub max_offered_pps: u64,
    /// True when even the full-rate trial lost nothing: the head, not the path, is the
    /// limit.
    pub head_limited: bool,
    pub trials: Vec<Trial>,
}

/// The search's table.
#[derive(Clone, Debug, Serialize)]
pub struct SearchTable {
    pub search: Vec<SizeResult>,
}

/// Run the search for every size in `--sizes` (or `--size`).
pub fn search(args: &ProbeArgs) -> Result<SearchTable> {
    if args.engine != Engine::Fast {
        bail!(
            "--search needs --engine fast: the socket engine cannot offer enough to find a limit"
        );
    }
    if args.count.is_some() || args.duration <= 0.0 {
        bail!("--search runs trials of --duration seconds (e.g. --duration 1); drop --count");
    }
    let sizes = if args.sizes.is_empty() {
        vec![args.size.unwrap_or(64)]
    } else {
        args.sizes.clone()
    };
    let progress = Progress::new()?;
    let mut table = SearchTable { search: Vec::new() };
    for size in sizes {
        if progress.stop_flag().load(Ordering::Relaxed) {
            break;
        }
        table.search.push(search_size(args, size, &progress)?);
    }
    Ok(table)
}

fn search_size(args: &ProbeArgs, size: u16, progress: &Progress) -> Result<SizeResult> {
    let stop = progress.stop_flag();
    let trial = |rate: u64| -> Result<Trial> {
        let mut trial_args = args.clone();
        trial_args.size = Some(size);
        trial_args.rate = rate;
        let report = run_until(&trial_args, progress)?;
        tracing::info!(
            size,
            rate,
            sent = report.sent,
            lost = report.lost,
            "trial: {:.3} Mpps offered",
            report.tx_pps / 1e6
        );
        Ok(Trial { rate, report })
    };
    let passes = |t: &Trial| t.report.sent > 0 && t.report.lost == 0 && t.report.malformed == 0;

    let full = trial(0)?;
    let max_offered_pps = full.report.tx_pps as u64;
    let mut result = SizeResult {
        size,
        zero_loss_pps: 0,
        max_offered_pps,
        head_limited: passes(&full),
        trials: vec![full],
    };
    if result.head_limited {
        result.zero_loss_pps = max_offered_pps;
        return Ok(result);
    }
    let (mut pass, mut fail) = (0u64, max_offered_pps);
    let mut best = 0u64;
    for _ in 0..MAX_STEPS {
        if stop.load(Ordering::Relaxed) || (fail - pass) as f64 <= fail as f64 * PRECISION {
            break;
        }
        let rate = (pass + fail).div_ceil(2).max(1);
        let t = trial(rate)?;
        if passes(&t) {
            pass = rate;
            best = t.report.tx_pps as u64;
        } else {
            fail = rate;
        }
        result.trials.push(t);
    }
    result.zero_loss_pps = best;
    Ok(result)
}

impl fmt::Display for SearchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| frame size | zero-loss throughput (pps) | Mbit/s (L2, FCS incl.) | max offered (pps) | trials |"
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|")?;
        for r in &self.search {
            let mbps = r.zero_loss_pps as f64 * f64::from(r.size) * 8.0 / 1e6;
            writeln!(
                f,
                "| {} | {}{} | {:.1} | {} | {} |",
                r.size,
                r.zero_loss_pps,
                if r.head_limited {
                    " (head-limited)"
                } else {
                    ""
                },
                mbps,
                r.max_offered_pps,
                r.trials.len()
            )?;
        }
        Ok(())
    }
}
