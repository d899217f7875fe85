//! `reflector probe` on Linux: a sender thread paces stamped frames out of an AF_PACKET
//! socket while the calling thread collects the reflections.

use super::{report, ProbeArgs, ProbeFrames, Progress, RunInfo, SequenceTracker, PUBLISH_EVERY};
use anyhow::{bail, Context, Result};
use dataplane::frame::FCS_LEN;
use dataplane::histogram::Histogram;
use platform_linux::iface;
use platform_linux::packet::{PacketSocket, BATCH, SLOT_LEN};
use settings::events::ProbeReport;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send times are kept for this many most recent sequence numbers (a power of two):
/// a reflection older than that many frames gets no RTT sample, but still counts.
const SEND_TIME_SLOTS: usize = 1 << 20;
/// Frames a run without --count may send at most (its sequence bitmap is 16 MiB).
const CONTINUOUS_LIMIT: u32 = 1 << 27;

/// Send, collect, report. Runs until the count is sent (or `progress` is stopped) and
/// the `--wait` time for late reflections has passed.
pub fn run(args: &ProbeArgs, progress: &Progress) -> Result<ProbeReport> {
    let src_mac = match args.src_mac {
        Some(mac) => mac,
        None => iface::mac_address(&args.interface)?,
    };
    let frames = ProbeFrames::new(args, src_mac)?;
    let count = planned_count(args)?;
    let describe = args.describe(&src_mac, frames.len());
    tracing::info!("{describe}");
    progress.begin(RunInfo {
        describe,
        wire_bytes: frames.len() + FCS_LEN,
    });
    let socket = Arc::new(PacketSocket::open(&args.interface)?);
    let stop = Arc::clone(progress.stop_flag());
    let send_times: Arc<Vec<AtomicU64>> =
        Arc::new((0..SEND_TIME_SLOTS).map(|_| AtomicU64::new(0)).collect());
    let sent = Arc::new(AtomicU64::new(0));
    let sending_done = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();

    let frames = Arc::new(frames);
    let sender = {
        let (socket, frames, stop, send_times, sent, done) = (
            Arc::clone(&socket),
            Arc::clone(&frames),
            Arc::clone(&stop),
            Arc::clone(&send_times),
            Arc::clone(&sent),
            Arc::clone(&sending_done),
        );
        let rate = args.rate;
        std::thread::Builder::new()
            .name("probe-send".into())
            .spawn(move || {
                let outcome = send_paced(
                    &socket,
                    &frames,
                    count,
                    rate,
                    epoch,
                    &stop,
                    &send_times,
                    &sent,
                );
                done.store(true, Ordering::Release);
                outcome
            })
            .context("starting the sender thread")?
    };

    let mut tracker = SequenceTracker::new(count);
    let mut rtt = Histogram::default();
    let mut malformed = 0u64;
    let mut slots = vec![0u8; BATCH * SLOT_LEN];
    let mut lens = [0usize; BATCH];
    let mut scratch = Vec::with_capacity(frames.len());
    let wait = Duration::from_secs_f64(args.wait.max(0.0));
    let mut deadline: Option<Instant> = None;
    let mut published = epoch;
    loop {
        if published.elapsed() >= PUBLISH_EVERY {
            published = Instant::now();
            progress.publish(report(
                sent.load(Ordering::Acquire),
                &tracker,
                malformed,
                &rtt,
                epoch.elapsed().as_secs_f64(),
            ));
        }
        if deadline.is_none() && sending_done.load(Ordering::Acquire) {
            deadline = Some(Instant::now() + wait);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if !socket.wait_readable(10)? {
            continue;
        }
        let n = socket.recv_many(&mut slots, &mut lens)?;
        let now = epoch.elapsed().as_nanos() as u64;
        for (i, &len) in lens[..n].iter().enumerate() {
            let frame = &slots[i * SLOT_LEN..i * SLOT_LEN + len];
            match frames.check_reflection(frame, &mut scratch) {
                Some(Ok(seq)) if tracker.record(seq) => {
                    let sent_at =
                        send_times[seq as usize & (SEND_TIME_SLOTS - 1)].load(Ordering::Acquire);
                    if sent_at != 0 && now >= sent_at {
                        rtt.record(now - sent_at);
                    }
                }
                Some(Ok(_)) | None => {}
                Some(Err(())) => malformed += 1,
            }
        }
    }
    let send_seconds = sender
        .join()
        .map_err(|_| anyhow::anyhow!("the sender thread panicked"))??;
    Ok(report(
        sent.load(Ordering::Acquire),
        &tracker,
        malformed,
        &rtt,
        send_seconds,
    ))
}

pub(super) fn planned_count(args: &ProbeArgs) -> Result<u32> {
    if let Some(count) = args.count {
        return Ok(count);
    }
    if args.duration <= 0.0 {
        // Until interrupted.
        return Ok(CONTINUOUS_LIMIT);
    }
    if args.rate == 0 {
        bail!("--rate 0 (as fast as possible) needs --count");
    }
    let count = (args.rate as f64 * args.duration).round();
    if count > f64::from(CONTINUOUS_LIMIT) {
        bail!("--rate x --duration is more than {CONTINUOUS_LIMIT} frames; lower one of them");
    }
    Ok(count as u32)
}

/// Send `count` frames at `rate` per second (0: as fast as the socket takes them), in
/// batches. Returns the seconds spent sending.
#[allow(clippy::too_many_arguments)]
fn send_paced(
    socket: &PacketSocket,
    frames: &ProbeFrames,
    count: u32,
    rate: u64,
    epoch: Instant,
    stop: &AtomicBool,
    send_times: &[AtomicU64],
    sent: &AtomicU64,
) -> Result<f64> {
    let mut batch: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| Vec::with_capacity(frames.len()))
        .collect();
    // At low rates a batch would add latency and burstiness: send one frame at a time
    // until the rate needs more than one frame per 100 µs.
    let per_batch = if rate == 0 || rate > 10_000 { BATCH } else { 1 };
    let start = Instant::now();
    let mut seq: u32 = 0;
    while seq < count && !stop.load(Ordering::Relaxed) {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(f64::from(seq) / rate as f64);
            let now = Instant::now();
            if due > now {
                let ahead = due - now;
                // Sleep for the bulk, spin the last stretch: sleep overshoots by ~50 µs.
                if ahead > Duration::from_micros(200) {
                    std::thread::sleep(ahead - Duration::from_micros(100));
                }
                continue;
            }
        }
        let n = (per_batch as u32).min(count - seq) as usize;
        for (i, frame) in batch[..n].iter_mut().enumerate() {
            frames.stamp(frame, seq + i as u32);
        }
        let at = epoch.elapsed().as_nanos() as u64;
        for i in 0..n {
            send_times[(seq as usize + i) & (SEND_TIME_SLOTS - 1)].store(at, Ordering::Release);
        }
        let taken = socket.send_many(batch[..n].iter().map(Vec::as_slice))?;
        if taken == 0 {
            // Device queue full: give it a moment, then resend the same numbers.
            std::thread::yield_now();
            continue;
        }
        seq += taken as u32;
        sent.store(u64::from(seq), Ordering::Release);
    }
    Ok(start.elapsed().as_secs_f64())
}
