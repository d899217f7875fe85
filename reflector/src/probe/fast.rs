//! `reflector probe --engine fast`: the kernel sends and counts, user space paces.
//!
//! The frame is built once ([`ProbeFrames`]) and handed to `xdp_filter::ProbeHead`,
//! whose generator the kernel runs in live-frames `BPF_PROG_RUN` mode: it numbers each
//! frame, notes its send time and redirects it out of IFACE, a few million a second
//! per core. At full rate one generator runs on each CPU (a thread pinned there drives
//! it), since on veth each CPU's generator also carries the receive work of the frames
//! it sent. Returns are counted, checked and timed by an XDP program on IFACE and
//! dropped there, so both stamps are taken in XDP: the RTT excludes the head's socket
//! and scheduling delays.

use super::in_flight::{count_in_flight, InFlight};
use super::tracker::{report_counts, Returns};
use super::{linux::planned_count, ProbeArgs, ProbeFrames, Progress, RunInfo};
use anyhow::{bail, Context, Result};
use dataplane::frame::FCS_LEN;
use dataplane::parse::UDP_CHECKSUM;
use platform_linux::iface;
use settings::events::ProbeReport;
use settings::XdpMode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use xdp_filter::{ProbeHead, ProbeTemplate};

/// The report's `timestamps`: both stamps of a round trip are `bpf_ktime_get_ns`
/// (CLOCK_MONOTONIC) read in XDP, the send time by the generator before it redirects
/// the frame, the return time by the counter as the reflection arrives on IFACE.
const TIMESTAMPS: &str = "XDP bpf_ktime_get_ns";
/// Each `BPF_PROG_RUN` call sets up and tears down a page pool and leaves a gap in the
/// stream, so calls are sized to take about this long: few enough to keep those small,
/// short enough to notice SIGINT and the end of --duration in time.
const CALL_SECONDS: f64 = 0.5;
/// Generator runs in the first call, before the speed is known.
const FIRST_CALL_RUNS: u32 = 1 << 16;
/// Above this rate (and at full rate) the default is one generator per CPU: one
/// generator with its receive work makes about 2 Mpps on a veth rig's core.
const ONE_GENERATOR_UP_TO_PPS: u64 = 1_000_000;

/// Send, wait for late returns, report; stops early when `progress` is stopped.
pub(super) fn run_until(args: &ProbeArgs, progress: &Progress) -> Result<ProbeReport> {
    let src_mac = match args.src_mac {
        Some(mac) => mac,
        None => iface::mac_address(&args.interface)?,
    };
    let frames = ProbeFrames::new(args, src_mac)?;
    let (count, time_limit) = plan(args)?;
    let cpus = generator_cpus(args)?;
    let describe = format!(
        "{} (fast engine, generators on CPUs {cpus:?})",
        args.describe(&src_mac, frames.len())
    );
    tracing::info!("{describe}");
    progress.begin(RunInfo {
        describe,
        wire_bytes: frames.len() + FCS_LEN,
    });

    let mut first = Vec::new();
    frames.stamp(&mut first, 0);
    let ifindex = iface::ifindex(&args.interface)?;
    iface::raise_memlock_limit()?;
    let head = ProbeHead::load(
        &ProbeTemplate {
            frame: &first,
            expected_reflection: &frames.expected_reflection,
            stamp_at: frames.stamp_at,
            checksum_at: frames.layout.l4 + UDP_CHECKSUM,
        },
        ifindex,
        args.rate,
        count,
        &cpus,
    )?;
    // The counter must be on IFACE before the first frame: a veth also drops frames
    // sent to it with XDP_TX/redirect unless it runs an XDP program.
    let _counter = head
        .attach_counter(ifindex, XdpMode::Auto)
        .with_context(|| {
            format!(
                "the fast engine counts returns with an XDP program on {}: detach any other \
                 XDP program from it (ip link set dev {} xdp off)",
                args.interface, args.interface
            )
        })?;

    let wait = Duration::from_secs_f64(args.wait.max(0.0));
    generate(&head, &cpus, time_limit, wait, progress)?;
    std::thread::sleep(wait);
    measured(&head)
}

/// The report from the head's counters: the final one, and the live ones before it.
fn measured(head: &ProbeHead) -> Result<ProbeReport> {
    // Returns before sends: every frame counted back was sent before it, so a report
    // taken while frames flow never has more back than sent.
    let rtt = head.rtt()?;
    let counts = head.counts()?;
    let generated = head.generated()?;
    let returns = Returns {
        received: counts.received,
        reordered: counts.reordered,
        duplicated: counts.duplicated,
        malformed: counts.malformed,
    };
    let mut report = report_counts(
        generated.frames,
        returns,
        &rtt,
        generated.seconds,
        TIMESTAMPS.to_owned(),
    );
    // The histogram gives a bucket's lower bound; the kernel kept the exact maximum.
    report.rtt_ns.max = counts.rtt_max;
    Ok(report)
}

/// The CPUs to run generators on: the first `--generators` of those this process may
/// run on; by default, at full rate or above [`ONE_GENERATOR_UP_TO_PPS`], one per CPU
/// but no more than IFACE has queues (veth hands a frame to the peer's queue of the
/// sending CPU modulo the count: two generators sharing one queue overflow its ring
/// and lose frames the path would not), otherwise one.
fn generator_cpus(args: &ProbeArgs) -> Result<Vec<usize>> {
    let allowed = iface::allowed_cpus()?;
    let wanted = match args.generators {
        Some(n) => n as usize,
        None if args.rate == 0 || args.rate > ONE_GENERATOR_UP_TO_PPS => {
            let queues = iface::rx_queue_count(&args.interface)?;
            allowed.len().min(queues as usize).max(1)
        }
        None => 1,
    };
    if wanted > allowed.len() {
        bail!(
            "--generators {wanted}: this process may run on {} CPUs ({allowed:?}); ask for at \
             most that many (one generator per CPU)",
            allowed.len()
        );
    }
    Ok(allowed[..wanted.min(ProbeHead::MAX_GENERATORS as usize)].to_vec())
}

/// Frames to send, and for how long at most.
fn plan(args: &ProbeArgs) -> Result<(u32, Option<Duration>)> {
    let (count, limit) = if args.rate == 0 && args.count.is_none() && args.duration > 0.0 {
        (
            ProbeHead::MAX_FRAMES,
            Some(Duration::from_secs_f64(args.duration)),
        )
    } else {
        (planned_count(args)?, None)
    };
    if count > ProbeHead::MAX_FRAMES {
        bail!(
            "the fast engine sends at most {} frames a run; lower --count",
            ProbeHead::MAX_FRAMES
        );
    }
    Ok((count, limit))
}

/// Run every generator until it has sent its share, `time_limit` has passed or
/// `progress` is stopped, each from a thread pinned to its CPU. The generators pace
/// themselves; this thread publishes the report so far and logs a line a second.
fn generate(
    head: &ProbeHead,
    cpus: &[usize],
    time_limit: Option<Duration>,
    wait: Duration,
    progress: &Progress,
) -> Result<()> {
    let start = Instant::now();
    let failed = AtomicBool::new(false);
    let stop = || {
        progress.stop_flag().load(Ordering::Relaxed)
            || failed.load(Ordering::Relaxed)
            || time_limit.is_some_and(|limit| start.elapsed() >= limit)
    };
    std::thread::scope(|scope| -> Result<()> {
        let threads: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                let (stop, failed) = (&stop, &failed);
                std::thread::Builder::new()
                    .name(format!("generator-{cpu}"))
                    .spawn_scoped(scope, move || {
                        let result = drive(head, cpu, stop);
                        failed.fetch_or(result.is_err(), Ordering::Relaxed);
                        result
                    })
                    .context("start a generator thread")
            })
            .collect::<Result<_>>()?;
        let watched = watch(head, &threads, progress, wait);
        // A failed watch stops the generators too.
        failed.fetch_or(watched.is_err(), Ordering::Relaxed);
        for thread in threads {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        watched
    })
}

/// Publish the report and log the rates until every generator thread has finished.
/// The counter keeps no per-frame record, so a live report counts as lost only what
/// is missing beyond the frames sent in the last `wait` (a lower bound; the final
/// report, after `wait`, is exact).
fn watch<T>(
    head: &ProbeHead,
    threads: &[std::thread::ScopedJoinHandle<'_, T>],
    progress: &Progress,
    wait: Duration,
) -> Result<()> {
    let mut last_line = (Instant::now(), 0u64, 0u64);
    let mut in_flight = InFlight::new(wait);
    while !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(super::PUBLISH_EVERY);
        let mut live = measured(head)?;
        let now = Instant::now();
        let (offered, received) = (live.sent, live.received);
        count_in_flight(
            &mut live,
            in_flight.sent_before_wait(now, offered),
            received,
        );
        progress.publish(live);
        if now - last_line.0 >= Duration::from_secs(1) {
            let seconds = (now - last_line.0).as_secs_f64();
            tracing::info!(
                "offered {:.3} Mpps, returned {:.3} Mpps",
                (offered - last_line.1) as f64 / seconds / 1e6,
                (received - last_line.2) as f64 / seconds / 1e6
            );
            last_line = (now, offered, received);
        }
    }
    Ok(())
}

/// One generator: pin to `cpu` (the kernel runs the program, and numbers the frames, on
/// the calling CPU) and call it until its share is sent or `stop` says so.
fn drive(head: &ProbeHead, cpu: usize, stop: &(impl Fn() -> bool + Sync)) -> Result<()> {
    iface::pin_current_thread(cpu)?;
    let mut runs = FIRST_CALL_RUNS;
    loop {
        let before = head.generators()?[cpu];
        let remaining = before.limit.saturating_sub(before.sent);
        if remaining == 0 || stop() {
            return Ok(());
        }
        let call = Instant::now();
        head.run_generator(runs)?;
        let took = call.elapsed().as_secs_f64();
        let sent = head.generators()?[cpu].sent - before.sent;
        tracing::debug!(cpu, runs, sent, took, "generator call");
        // Runs per frame sent (1 at full rate, more when pacing declines runs), to stop
        // the last call close to the frame limit.
        let runs_per_frame = f64::from(runs) / sent.max(1) as f64;
        let wanted = f64::from(runs) * CALL_SECONDS / took.max(1e-3);
        let to_finish = (remaining - sent.min(remaining)) as f64 * runs_per_frame * 1.05 + 64.0;
        runs = wanted.min(to_finish).clamp(64.0, f64::from(u32::MAX)) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(extra: &[&str]) -> Result<(u32, Option<Duration>)> {
        let fast: Vec<&str> = ["--engine", "fast"].iter().chain(extra).copied().collect();
        plan(&crate::probe::tests::args(&fast))
    }

    #[test]
    fn full_rate_runs_for_the_duration_and_fixed_rates_for_rate_times_duration() {
        assert_eq!(
            plan_for(&["--rate", "0", "--duration", "2"]).unwrap(),
            (ProbeHead::MAX_FRAMES, Some(Duration::from_secs(2)))
        );
        assert_eq!(
            plan_for(&["--rate", "0", "--count", "5"]).unwrap(),
            (5, None)
        );
        assert_eq!(
            plan_for(&["--rate", "1000", "--duration", "3"]).unwrap(),
            (3000, None)
        );
        let err = plan_for(&["--count", &(ProbeHead::MAX_FRAMES as u64 + 1).to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most"), "{err}");
    }
}
