//! `reflector probe` on Linux: a sender thread paces stamped frames out of an AF_PACKET
//! socket while the calling thread collects the reflections.
//!
//! Round trips are timed with the kernel's software stamps where it gives them
//! ([`platform_linux::timestamps`]): the receive stamp of each reflection, and the
//! transmit stamp of each frame, keyed with its sequence number as it is sent, which
//! the receiving thread takes from the socket's error queue after every batch. A
//! frame's transmit stamp is queued before the frame reaches the wire, so it is always
//! there by the time its reflection is. Otherwise the user clock is read: before each
//! send, after each receive batch. Both are CLOCK_REALTIME, so either pair subtracts.

use super::in_flight::{count_in_flight, InFlight};
use super::{report, ProbeArgs, ProbeFrames, Progress, RunInfo, SequenceTracker, PUBLISH_EVERY};
use anyhow::{bail, Context, Result};
use dataplane::frame::FCS_LEN;
use dataplane::histogram::{Histogram, Percentiles};
use platform_linux::clock::nanos;
use platform_linux::iface;
use platform_linux::packet::{PacketSocket, BATCH, SLOT_LEN};
use platform_linux::timestamps::{Granted, Stamp};
use settings::events::ProbeReport;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send times are kept for this many most recent sequence numbers (a power of two):
/// a reflection older than that many frames gets no RTT sample, but still counts.
const SEND_TIME_SLOTS: usize = 1 << 20;
/// How long the kernel takes to start stamping received frames, generously.
const STAMPING_STARTS: Duration = Duration::from_millis(50);
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
    let granted = socket.enable_timestamps();
    if granted.receive {
        // The kernel switches receive stamping on from a work queue: give it the moment
        // it needs, so the first reflections are stamped too.
        std::thread::sleep(STAMPING_STARTS);
    } else {
        tracing::info!(
            "the kernel refused software timestamps (SO_TIMESTAMPING) on {}: round trips are \
             timed with the user clock",
            args.interface
        );
    }
    let mut clocks = Clocks::new(granted);
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
        let keyed = granted.send;
        std::thread::Builder::new()
            .name("probe-send".into())
            .spawn(move || {
                let outcome = send_paced(
                    &socket,
                    &frames,
                    count,
                    rate,
                    keyed,
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
    // The same round trips by the user clock alone: the head's own share, stated at
    // the end when kernel stamps were used.
    let mut user_rtt = Histogram::default();
    let mut malformed = 0u64;
    let mut slots = vec![0u8; BATCH * SLOT_LEN];
    let mut lens = [0usize; BATCH];
    let mut scratch = Vec::with_capacity(frames.len());
    let mut rx_stamps = [Stamp::default(); BATCH];
    let mut sent_stamps = SentStamps::new(granted.send);
    let wait = Duration::from_secs_f64(args.wait.max(0.0));
    let mut deadline: Option<Instant> = None;
    let mut published = epoch;
    let mut in_flight = InFlight::new(wait);
    loop {
        if published.elapsed() >= PUBLISH_EVERY {
            published = Instant::now();
            let sent_now = sent.load(Ordering::Acquire);
            let mut live = report(
                sent_now,
                &tracker,
                malformed,
                &rtt,
                epoch.elapsed().as_secs_f64(),
                clocks.describe(),
            );
            // Frames are numbered in send order, so those sent `wait` ago are 0..settled.
            let settled = in_flight.sent_before_wait(published, sent_now);
            let settled_seq = u32::try_from(settled).unwrap_or(u32::MAX);
            count_in_flight(&mut live, settled, tracker.received_below(settled_seq));
            progress.publish(live);
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
        let n = socket.recv_stamped(&mut slots, &mut lens, &mut rx_stamps)?;
        let now = nanos(libc::CLOCK_REALTIME);
        // After the batch, so the transmit stamps of every frame in it are in.
        sent_stamps.drain(&socket)?;
        for (i, &len) in lens[..n].iter().enumerate() {
            let frame = &slots[i * SLOT_LEN..i * SLOT_LEN + len];
            match frames.check_reflection(frame, &mut scratch) {
                Some(Ok(seq)) if tracker.record(seq) => {
                    let user_sent =
                        send_times[seq as usize & (SEND_TIME_SLOTS - 1)].load(Ordering::Acquire);
                    let received = clocks.receive.pick(rx_stamps[i].ns, now);
                    let sent_at = clocks.send.pick(sent_stamps.get(seq, now), user_sent);
                    match (sent_at, received) {
                        (Some(sent_at), Some(received)) if sent_at != 0 && received >= sent_at => {
                            rtt.record(received - sent_at)
                        }
                        _ => clocks.unstamped += 1,
                    }
                    if user_sent != 0 && now >= user_sent {
                        user_rtt.record(now - user_sent);
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
    clocks.log_head_share(&rtt, &user_rtt);
    Ok(report(
        sent.load(Ordering::Acquire),
        &tracker,
        malformed,
        &rtt,
        send_seconds,
        clocks.describe(),
    ))
}

/// Where one end of the round trips is timed: the kernel if it offers stamps, until
/// [`SETTLE_AFTER`] reflections in a row show it gives none (a driver that never calls
/// `skb_tx_timestamp`); the user clock otherwise. Settled once, so one run's samples
/// never mix the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// Offered, and this many reflections so far came without a stamp.
    Offered(u32),
    Kernel,
    User,
}

/// Reflections without a kernel stamp, from the first, that settle a clock on the
/// user's. The kernel starts stamping received frames a moment after the option is
/// set (it enables that from a work queue), so the first few may have none.
const SETTLE_AFTER: u32 = 64;

impl Clock {
    fn new(offered: bool) -> Clock {
        if offered {
            Clock::Offered(0)
        } else {
            Clock::User
        }
    }

    /// The time to use, given the kernel's stamp (0: none) and the user clock's.
    /// `None`: no sample for this frame (no kernel stamp on a kernel clock).
    fn pick(&mut self, kernel: u64, user: u64) -> Option<u64> {
        match *self {
            Clock::User => return Some(user),
            Clock::Offered(misses) if kernel == 0 => {
                *self = if misses + 1 >= SETTLE_AFTER {
                    Clock::User
                } else {
                    Clock::Offered(misses + 1)
                };
            }
            Clock::Offered(_) => *self = Clock::Kernel,
            Clock::Kernel => {}
        }
        (kernel != 0).then_some(kernel)
    }

    /// What timed this end's samples. An end still `Offered` has had no kernel stamp
    /// and has not fallen back to the user clock, so it timed none.
    fn name(self) -> &'static str {
        match self {
            Clock::Offered(_) => "no kernel software",
            Clock::Kernel => "kernel software",
            Clock::User => "user clock",
        }
    }
}

/// The clocks of both ends, and the reflections they could not time.
struct Clocks {
    receive: Clock,
    send: Clock,
    unstamped: u64,
}

impl Clocks {
    fn new(granted: Granted) -> Clocks {
        Clocks {
            receive: Clock::new(granted.receive),
            send: Clock::new(granted.send),
            unstamped: 0,
        }
    }

    /// The report's `timestamps`: one name when both ends were timed alike, else each
    /// end's.
    fn describe(&self) -> String {
        let (receive, send) = (self.receive.name(), self.send.name());
        if receive == send {
            receive.to_owned()
        } else {
            format!("{receive} receive, {send} send")
        }
    }

    /// Ends the kernel offered stamps for that never got one: they timed no frame, so
    /// the run has no round-trip sample.
    fn unsettled(&self) -> Option<&'static str> {
        match (self.receive, self.send) {
            (Clock::Offered(_), Clock::Offered(_)) => Some("receive and send"),
            (Clock::Offered(_), _) => Some("receive"),
            (_, Clock::Offered(_)) => Some("send"),
            _ => None,
        }
    }

    /// Say (info) what the user clock made of the same round trips, where the kernel's
    /// stamps timed them, and (warn) how many had no stamp.
    fn log_head_share(&self, rtt: &Histogram, user_rtt: &Histogram) {
        let kernel = [self.receive, self.send].contains(&Clock::Kernel);
        if kernel && self.unsettled().is_none() {
            let us = |p: Percentiles| {
                let us = |ns: u64| ns as f64 / 1000.0;
                format!(
                    "p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1} us",
                    us(p.p50),
                    us(p.p99),
                    us(p.p999),
                    us(p.max)
                )
            };
            tracing::info!(
                "round trips by {} timestamps: {}; by the user clock: {} (the difference \
                 is the head's own share)",
                self.describe(),
                us(rtt.percentiles()),
                us(user_rtt.percentiles())
            );
        }
        match (self.unstamped, self.unsettled()) {
            (0, _) => {}
            (unstamped, Some(ends)) => tracing::warn!(
                "{unstamped} reflections had no round-trip sample: the kernel offered {ends} \
                 timestamps but gave none before the run ended, and {SETTLE_AFTER} reflections \
                 without one are needed to fall back to the user clock; send more frames"
            ),
            (unstamped, None) => tracing::warn!(
                "{unstamped} reflections had no {} timestamp and no round-trip sample",
                self.describe()
            ),
        }
    }
}

/// Kernel transmit stamps by sequence number, taken from the socket's error queue.
struct SentStamps {
    /// Per slot, the sequence number's bits above the slot index ([`TAG_SHIFT`] up),
    /// so an old frame's stamp is never taken for a newer one's, over the stamp's low
    /// bits: 8 bytes a slot, half of a (u32, u64). Empty when the kernel gives none.
    by_seq: Vec<u64>,
    /// The kernel puts no frame here (TSONLY), but the receive call wants room.
    slots: Vec<u8>,
    lens: [usize; BATCH],
    stamps: [Stamp; BATCH],
}

impl SentStamps {
    fn new(granted: bool) -> SentStamps {
        let (table, slots) = if granted {
            (SEND_TIME_SLOTS, BATCH * SLOT_LEN)
        } else {
            (0, 0)
        };
        SentStamps {
            by_seq: vec![0; table],
            slots: vec![0; slots],
            lens: [0; BATCH],
            stamps: [Stamp::default(); BATCH],
        }
    }

    /// Take every transmit stamp waiting on `socket`'s error queue.
    fn drain(&mut self, socket: &PacketSocket) -> Result<()> {
        if self.by_seq.is_empty() {
            return Ok(());
        }
        loop {
            let n = socket
                .recv_sent_stamps(&mut self.slots, &mut self.lens, &mut self.stamps)
                .context("reading transmit timestamps from the error queue")?;
            // Copied (one batch, 1 KiB), so `put` may borrow all of `self`.
            let stamps = self.stamps;
            for stamp in &stamps[..n] {
                if let (Some(seq), ns @ 1..) = (stamp.key, stamp.ns) {
                    self.put(seq, ns);
                }
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }

    fn put(&mut self, seq: u32, ns: u64) {
        self.by_seq[seq as usize & (SEND_TIME_SLOTS - 1)] =
            u64::from(seq >> SLOT_BITS) << TAG_SHIFT | (ns & LOW_BITS);
    }

    /// Frame `seq`'s kernel transmit stamp, or 0: the latest time at or before `now`
    /// (the same clock, read after its reflection came) with the stored low bits.
    fn get(&self, seq: u32, now: u64) -> u64 {
        match self.by_seq.get(seq as usize & (SEND_TIME_SLOTS - 1)) {
            Some(&slot) if slot >> TAG_SHIFT == u64::from(seq >> SLOT_BITS) => {
                match slot & LOW_BITS {
                    // None yet (a stamp with these bits all 0 is lost: 1 ns in 52 days).
                    0 => 0,
                    low => now.wrapping_sub(now.wrapping_sub(low) & LOW_BITS),
                }
            }
            _ => 0,
        }
    }
}

/// Bits of a sequence number that index [`SEND_TIME_SLOTS`].
const SLOT_BITS: u32 = SEND_TIME_SLOTS.trailing_zeros();
/// Where a [`SentStamps`] slot's tag starts: a stamp keeps its low 52 bits, which
/// span 52 days, so it is recovered from any later reading of the clock within them.
const TAG_SHIFT: u32 = 32 + SLOT_BITS;
const LOW_BITS: u64 = (1 << TAG_SHIFT) - 1;

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
/// batches, each `keyed` with its sequence number for its kernel transmit stamp.
/// Returns the seconds spent sending.
#[allow(clippy::too_many_arguments)]
fn send_paced(
    socket: &PacketSocket,
    frames: &ProbeFrames,
    count: u32,
    rate: u64,
    mut keyed: bool,
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
        let at = nanos(libc::CLOCK_REALTIME);
        for i in 0..n {
            send_times[(seq as usize + i) & (SEND_TIME_SLOTS - 1)].store(at, Ordering::Release);
        }
        let out = batch[..n].iter().map(Vec::as_slice);
        let taken = if keyed {
            match socket.send_many_keyed(out, seq) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // A kernel before 6.13: unkeyed stamps could not be matched to
                    // frames, so none are taken; the receiver then uses the user clock.
                    tracing::info!(
                        "the kernel cannot key transmit timestamps (SCM_TS_OPT_ID, Linux \
                         6.13+): send times are read from the user clock"
                    );
                    socket
                        .receive_timestamps_only()
                        .context("switching off transmit timestamps")?;
                    keyed = false;
                    continue;
                }
                taken => taken?,
            }
        } else {
            socket.send_many(out)?
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stamp_settles_a_clock_on_the_kernel() {
        let mut kernel = Clock::new(true);
        // Stamping may start a moment late: those frames get no sample.
        assert_eq!(kernel.pick(0, 9), None);
        assert_eq!(kernel.pick(5, 9), Some(5));
        assert_eq!(kernel, Clock::Kernel);
        // Later frames without a kernel stamp get none either: never the user clock's.
        assert_eq!(kernel.pick(0, 9), None);
        assert_eq!(kernel, Clock::Kernel);
    }

    #[test]
    fn a_kernel_that_never_stamps_settles_on_the_user_clock() {
        let mut silent = Clock::new(true);
        for _ in 0..SETTLE_AFTER {
            assert_eq!(silent.pick(0, 9), None);
        }
        assert_eq!(silent, Clock::User);
        assert_eq!(silent.pick(5, 9), Some(9));
        let mut refused = Clock::new(false);
        assert_eq!(refused.pick(5, 9), Some(9));
    }

    #[test]
    fn the_report_names_the_clocks_used() {
        let offered = Clock::Offered(3);
        let cases = [
            ((Clock::Kernel, Clock::Kernel), "kernel software"),
            ((Clock::User, Clock::User), "user clock"),
            ((offered, offered), "no kernel software"),
            (
                (Clock::Kernel, Clock::User),
                "kernel software receive, user clock send",
            ),
            (
                (Clock::User, Clock::Kernel),
                "user clock receive, kernel software send",
            ),
            (
                (offered, Clock::Kernel),
                "no kernel software receive, kernel software send",
            ),
            (
                (Clock::Kernel, offered),
                "kernel software receive, no kernel software send",
            ),
            (
                (offered, Clock::User),
                "no kernel software receive, user clock send",
            ),
            (
                (Clock::User, offered),
                "user clock receive, no kernel software send",
            ),
        ];
        for ((receive, send), name) in cases {
            let clocks = Clocks {
                receive,
                send,
                unstamped: 0,
            };
            assert_eq!(clocks.describe(), name, "{receive:?} {send:?}");
        }
    }

    #[test]
    fn a_transmit_stamp_is_found_by_its_own_sequence_number_only() {
        let mut stamps = SentStamps::new(true);
        let sent = 1_764_550_000_123_456_789; // December 2025, in ns
        let seq = 3 << SLOT_BITS | 7;
        assert_eq!(stamps.get(seq, sent), 0, "nothing stored yet");
        stamps.put(seq, sent);
        // Recovered whole from a later reading, however much later within the span.
        for later in [0, 25_000, 5_000_000_000, LOW_BITS] {
            assert_eq!(stamps.get(seq, sent + later), sent, "{later} ns later");
        }
        // The same slot's older and newer frames have no stamp there.
        assert_eq!(stamps.get(seq - (1 << SLOT_BITS), sent), 0);
        assert_eq!(stamps.get(seq + (1 << SLOT_BITS), sent), 0);
        // The highest sequence numbers keep their tag whole.
        stamps.put(u32::MAX, sent);
        assert_eq!(stamps.get(u32::MAX, sent + 1), sent);
        assert_eq!(stamps.get(u32::MAX >> 1, sent + 1), 0);
        assert!(SentStamps::new(false).by_seq.is_empty());
    }

    /// A run shorter than the kernel's first stamp and than SETTLE_AFTER reflections
    /// timed nothing: its report must not claim kernel stamps.
    #[test]
    fn a_run_that_ends_before_any_kernel_stamp_says_none_timed_it() {
        let mut clocks = Clocks::new(Granted {
            receive: true,
            send: true,
        });
        for _ in 0..SETTLE_AFTER - 1 {
            assert_eq!(clocks.receive.pick(0, 9), None);
            assert_eq!(clocks.send.pick(0, 8), None);
        }
        assert_eq!(clocks.unsettled(), Some("receive and send"));
        let report = report(
            1,
            &SequenceTracker::new(1),
            0,
            &Histogram::default(),
            1.0,
            clocks.describe(),
        );
        assert_eq!(report.timestamps.as_deref(), Some("no kernel software"));
        // One stamp on each end settles both on the kernel.
        clocks.receive.pick(5, 9);
        clocks.send.pick(4, 8);
        assert_eq!(clocks.unsettled(), None);
        assert_eq!(clocks.describe(), "kernel software");
        // A refused send end reads the user clock from the start.
        let refused = Clocks::new(Granted {
            receive: true,
            send: false,
        });
        assert_eq!(refused.unsettled(), Some("receive"));
        assert_eq!(
            refused.describe(),
            "no kernel software receive, user clock send"
        );
    }
}
