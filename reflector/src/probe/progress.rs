//! A running probe as the caller sees it: a stop flag, and the report so far.
//!
//! The engines publish the report they would end with (the same function builds both)
//! a few times a second, from their own loop, under a lock they only *try* to take, so
//! a slow reader (the dashboard) never delays sending or receiving.

use anyhow::{Context, Result};
use settings::events::ProbeReport;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::Duration;

/// How often an engine publishes its report so far.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// What a run is, once its frame is built: for a live view's header and bit rates.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// [`super::ProbeArgs::describe`]'s line: who talks to whom, frame size, rate.
    pub describe: String,
    /// Bytes per frame on the wire (FCS included).
    pub wire_bytes: usize,
}

/// Shared between a probe run and whoever watches it.
#[derive(Debug)]
pub struct Progress {
    stop: Arc<AtomicBool>,
    info: OnceLock<RunInfo>,
    latest: Mutex<Option<ProbeReport>>,
}

impl Progress {
    /// A run that SIGINT and SIGTERM stop early.
    pub fn new() -> Result<Progress> {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("installing the signal handler")?;
        }
        Ok(Progress {
            stop,
            info: OnceLock::new(),
            latest: Mutex::new(None),
        })
    }

    /// Ask the run to stop sending (it still waits `--wait` for late reflections).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The flag the engine polls.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    pub fn info(&self) -> Option<&RunInfo> {
        self.info.get()
    }

    /// The last published report.
    pub fn latest(&self) -> Option<ProbeReport> {
        self.latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Called once by the engine when its frame is built.
    pub fn begin(&self, info: RunInfo) {
        // A second run on the same Progress (the throughput search) keeps the first.
        let _ = self.info.set(info);
    }

    /// Publish the report so far, unless a reader holds the lock right now.
    pub fn publish(&self, report: ProbeReport) {
        let mut slot = match self.latest.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        *slot = Some(report);
    }
}
