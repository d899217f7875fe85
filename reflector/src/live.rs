//! Running workers on a live interface, whatever the platform: one thread per queue,
//! statistics at an interval, a clean stop on SIGINT/SIGTERM with final totals.
//!
//! If a worker fails, the others are stopped and the error is returned, so the process
//! exits non-zero and a supervisor (the control plane, systemd) restarts it.

use crate::report::Reporter;
use crate::watch::InterfaceWatch;
use anyhow::{anyhow, Context, Result};
use dataplane::{
    Counters, Platform, Signature, Telemetry, TelemetryReport, Worker, WorkerConfig, WorkerShared,
};
use std::io::Write;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the reporting thread checks for a stop request or a dead worker.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Worker threads and what they publish.
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
    shared: Vec<Arc<WorkerShared>>,
}

impl Workers {
    /// Start one thread per platform. `prepare(i)` runs first on thread `i` (to pin it
    /// to a CPU); SIGINT and SIGTERM set the shared stop flag.
    pub fn spawn<P, F>(platforms: Vec<P>, config: &WorkerConfig, prepare: F) -> Result<Workers>
    where
        P: Platform + Send + 'static,
        F: Fn(usize) -> Result<()> + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("installing the signal handler")?;
        }
        let prepare = Arc::new(prepare);
        let mut workers = Workers {
            stop,
            threads: Vec::new(),
            shared: Vec::new(),
        };
        for (index, platform) in platforms.into_iter().enumerate() {
            let shared = Arc::new(WorkerShared::default());
            workers.shared.push(Arc::clone(&shared));
            let (stop, prepare, config) = (
                Arc::clone(&workers.stop),
                Arc::clone(&prepare),
                config.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("reflector-q{index}"))
                .spawn(move || {
                    prepare(index)?;
                    let mut worker = Worker::new(platform, &config, shared);
                    worker
                        .run(&stop)
                        .map_err(|e| anyhow!("worker {index}: {e}"))
                })
                .context("starting a worker thread")?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// The workers' counters, summed, and their telemetry, merged.
    pub fn snapshot(&self) -> (Counters, TelemetryReport) {
        let totals = dataplane::stats::sum(self.shared.iter().map(|s| &s.counters));
        let parts: Vec<Telemetry> = self.shared.iter().map(|s| s.telemetry()).collect();
        (totals, Telemetry::merge(&parts).report())
    }

    /// Print statistics every `interval` (never if zero) until a signal arrives or a
    /// worker ends, then stop them all and print the totals. `extra` adds counts kept
    /// outside the workers (the XDP program's rejections). Meanwhile `interface`
    /// keeps the workers' directed broadcasts those of the interface, and warns
    /// whenever its link goes down or comes back.
    pub fn report_until_stopped<W: Write>(
        mut self,
        reporter: &mut Reporter<W>,
        interval: Duration,
        mut extra: impl FnMut(&mut Counters),
        mut interface: InterfaceWatch<'_>,
    ) -> Result<Counters> {
        let mut next_tick = Instant::now() + interval;
        while !self.stop.load(Ordering::Relaxed)
            && !self.threads.iter().any(JoinHandle::is_finished)
        {
            // The dashboard's quit key stops the workers as SIGINT does.
            if reporter.wait(CHECK_EVERY)? {
                self.stop.store(true, Ordering::Relaxed);
            }
            if let Some(list) = interface.poll() {
                for shared in &self.shared {
                    shared.broadcasts.store(list);
                }
            }
            if !interval.is_zero() && Instant::now() >= next_tick {
                next_tick += interval;
                let (mut now, telemetry) = self.snapshot();
                extra(&mut now);
                reporter.tick(&now, &telemetry)?;
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut failure = None;
        for thread in std::mem::take(&mut self.threads) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a worker panicked")));
            if let Err(e) = outcome {
                failure.get_or_insert(e);
            }
        }
        let (mut totals, telemetry) = self.snapshot();
        extra(&mut totals);
        reporter.finish(&totals, &telemetry)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(totals),
        }
    }
}

/// Back ends that copy frames (AF_PACKET, /dev/bpf) leave each one to the host stack
/// as well, which answers a STAMP packet to a closed port with ICMP port-unreachable;
/// a STAMP sender's connected socket then reports "connection refused" and drops our
/// answer. An open socket on the STAMP port keeps the stack quiet. It is never read,
/// so it discards what arrives at once (see [`discard_at_once`]) rather than queueing
/// every packet until its buffer is full. Keep the returned socket alive while
/// reflecting; `None` when STAMP is off or the port cannot be bound (with a warning).
pub fn quiet_host_stack_on_stamp_port(config: &WorkerConfig) -> Option<UdpSocket> {
    if !config.filter.signatures.contains(Signature::Stamp) {
        return None;
    }
    let port = config.filter.stamp_port;
    // Dual-stack where IPv6 exists, else IPv4 only.
    match UdpSocket::bind(("::", port)).or_else(|_| UdpSocket::bind(("0.0.0.0", port))) {
        Ok(socket) => {
            if let Err(e) = discard_at_once(&socket) {
                tracing::warn!(
                    "cannot make the socket holding UDP port {port} discard what it \
                     receives ({e}): the kernel queues STAMP packets to it until its \
                     buffer is full, which costs some throughput but nothing else"
                );
            }
            Some(socket)
        }
        Err(e) => {
            tracing::warn!(
                "cannot bind UDP port {port} ({e}): if nothing else listens there, the host \
                 will answer STAMP packets with ICMP port-unreachable next to our answers; \
                 use the XDP back end, which takes the packets away from the host stack"
            );
            None
        }
    }
}

/// Linux: a drop-all socket filter, so the stack discards each packet before queueing.
#[cfg(target_os = "linux")]
fn discard_at_once(socket: &UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    platform_linux::iface::discard_all_input(socket.as_fd())
}

/// macOS has no socket filter for UDP sockets (SO_ATTACH_FILTER is Linux's; BPF
/// filters attach to /dev/bpf devices only). A one-byte receive buffer, which no
/// datagram fits, should make the stack drop each at its buffer check instead of
/// queueing it (not verified on a Mac by the test suite).
#[cfg(not(target_os = "linux"))]
fn discard_at_once(socket: &UdpSocket) -> std::io::Result<()> {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBuf, &1)?;
    Ok(())
}
