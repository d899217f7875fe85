//! The reflector loop, generic over [`Platform`]: receive a batch, decide and rewrite
//! each frame in place, send the reflected ones, release the rest, publish counters.
//!
//! Per frame ([`Pipeline::process`]): classify, apply the [`crate::safety`] policy,
//! count the frame in its stream, answer STAMP packets, swap addresses. Clocks are read
//! per batch, not per frame: when the batch arrives (the receive time of frames the
//! platform did not stamp itself, see [`Platform::received_at`]), just before sending
//! if the batch holds STAMP answers (their transmit time T3), and after sending (the
//! end of each frame's dwell time). About once a second the worker expires idle
//! streams and publishes its [`Telemetry`].

use crate::classify::classify;
use crate::filter::{Broadcasts, Filter};
use crate::histogram::Histogram;
use crate::parse::Layout;
use crate::platform::{Flow, Platform};
use crate::reflect::{reflect, Mode};
use crate::reject::Reject;
use crate::safety::{AllowList, RateLimiter, Safety};
use crate::signature::Signature;
use crate::stamp::{self, NtpTimestamp, StampMode, UNSYNCHRONISED_ERROR_ESTIMATE};
use crate::stats::Counters;
use crate::streams::{StreamKey, StreamLimits, StreamTable};
use crate::telemetry::{Telemetry, WorkerShared};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker expires idle state and publishes its telemetry.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Everything that decides what a worker reflects and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerConfig {
    pub filter: Filter,
    pub mode: Mode,
    pub stamp: StampConfig,
    pub streams: StreamLimits,
    pub safety: Safety,
}

impl WorkerConfig {
    /// `filter` and `mode` with the default STAMP, stream and safety settings.
    pub fn new(filter: Filter, mode: Mode) -> Self {
        WorkerConfig {
            filter,
            mode,
            ..WorkerConfig::default()
        }
    }
}

/// How STAMP test packets are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampConfig {
    pub mode: StampMode,
    /// The Error Estimate field of every answer (RFC 4656 section 4.1.2).
    pub error_estimate: u16,
}

impl Default for StampConfig {
    fn default() -> Self {
        StampConfig {
            mode: StampMode::Stateless,
            error_estimate: UNSYNCHRONISED_ERROR_ESTIMATE,
        }
    }
}

/// When a frame was received.
#[derive(Clone, Copy, Debug)]
pub struct BatchTime {
    /// Monotonic nanoseconds since the worker started, read when the batch arrived
    /// (rate limit, loop timeout).
    pub monotonic: u64,
    /// Wall-clock nanoseconds since the Unix epoch: the platform's stamp of this
    /// frame, or the batch's arrival (STAMP T2, stream first/last seen).
    pub wall: u64,
}

/// What to do with a processed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Send,
    /// Send after writing the transmit time into this STAMP answer.
    SendStampAnswer(Layout),
    Drop,
}

/// The per-frame decisions and the state they keep; everything a worker does to a
/// frame's bytes, without the platform.
#[derive(Debug)]
pub struct Pipeline {
    filter: Filter,
    mode: Mode,
    stamp: StampConfig,
    allow: AllowList,
    limiter: Option<RateLimiter>,
    /// Cleared when the loop timeout passes.
    reflecting: bool,
    pub counters: Counters,
    pub streams: StreamTable,
}

impl Pipeline {
    pub fn new(config: &WorkerConfig) -> Self {
        Pipeline {
            filter: config.filter,
            mode: config.mode,
            stamp: config.stamp,
            allow: AllowList::new(&config.safety.allow),
            limiter: config.safety.rate_limit.map(RateLimiter::new),
            reflecting: true,
            counters: Counters::default(),
            streams: StreamTable::new(config.streams),
        }
    }

    /// Decide on one frame and, if it is to be sent, rewrite it in place.
    #[inline]
    pub fn process(&mut self, frame: &mut [u8], at: BatchTime) -> Outcome {
        self.counters.received += 1;
        self.counters.rx_bytes += frame.len() as u64;
        let accepted = match classify(frame, &self.filter) {
            Ok(accepted) => accepted,
            Err(reason) => return self.refuse(reason),
        };
        let layout = accepted.layout;
        if let Err(reason) = self.check_policy(frame, &layout, at.monotonic) {
            return self.refuse(reason);
        }
        let is_stamp = accepted.signature == Signature::Stamp;
        let sender = is_stamp.then(|| stamp::sender_numbering(frame, &layout));
        // Reading the key costs a few nanoseconds; skip it when tracking is off.
        let stream = if self.streams.is_enabled() {
            let key = StreamKey::of(frame, &accepted);
            self.streams.record(
                key,
                frame.len(),
                at.wall,
                sender.map(|(seq, sent)| (seq, sent.0)),
            )
        } else {
            None
        };
        self.counters.reflected += 1;
        self.counters.tx_bytes += frame.len() as u64;
        self.counters.per_signature[accepted.signature.index()] += 1;
        let Some((sender_sequence, _)) = sender else {
            reflect(frame, &layout, self.mode);
            return Outcome::Send;
        };
        // Stateful numbering needs the session's own count; an untracked stream (table
        // full) is answered statelessly rather than not at all.
        let session = stream.map(|session| {
            session.answered = session.answered.wrapping_add(1);
            *session
        });
        let sequence = match (self.stamp.mode, session) {
            (StampMode::Stateful, Some(session)) => session.answered.wrapping_sub(1),
            _ => sender_sequence,
        };
        let answer = stamp::Answer {
            sequence,
            receive_time: NtpTimestamp::from_unix_nanos(at.wall),
            error_estimate: self.stamp.error_estimate,
            session,
        };
        if !stamp::answer(frame, &layout, &answer) {
            self.counters.stamp_bad_checksum += 1;
        }
        // An answer goes back to the sender's socket whatever the ITO mode says.
        reflect(frame, &layout, Mode::All);
        Outcome::SendStampAnswer(layout)
    }

    #[inline(always)]
    fn check_policy(&mut self, frame: &[u8], layout: &Layout, now: u64) -> Result<(), Reject> {
        if !self.reflecting {
            return Err(Reject::LoopTimeout);
        }
        if !self.allow.admits(frame, layout) {
            return Err(Reject::SourceNotAllowed);
        }
        let limited = match &mut self.limiter {
            Some(limiter) => !limiter.admits(frame, layout, now),
            None => false,
        };
        if limited {
            return Err(Reject::RateLimited);
        }
        Ok(())
    }

    /// Refuse frames from or to these directed broadcasts from now on.
    pub fn set_broadcasts(&mut self, list: Broadcasts) {
        self.filter.broadcasts = list;
    }

    /// Frames the platform received but could not hold ([`Platform::take_too_large`]).
    fn count_too_large(&mut self, frames: u64) {
        self.counters.received += frames;
        self.counters.per_reject[Reject::TooLarge.index()] += frames;
    }

    #[inline]
    fn refuse(&mut self, reason: Reject) -> Outcome {
        self.counters.per_reject[reason.index()] += 1;
        Outcome::Drop
    }
}

/// One reflector worker, owning one platform queue.
pub struct Worker<P: Platform> {
    platform: P,
    pipeline: Pipeline,
    shared: Arc<WorkerShared>,
    started: Instant,
    /// Monotonic time (as in [`BatchTime`]) when reflection stops, if ever.
    deadline: Option<u64>,
    dwell: Histogram,
    /// Frames whose receive time came from the platform, not the batch clock.
    platform_stamped: u64,
    next_publish: u64,
    /// The version of `shared.broadcasts` the pipeline's filter holds.
    broadcasts_seen: u64,
    received: Vec<P::Frame>,
    to_send: Vec<P::Frame>,
    /// Byte length of each frame in `to_send`, to uncount the ones TX refuses.
    to_send_lens: Vec<usize>,
    /// Receive time (wall clock, ns) of each frame in `to_send`, for its dwell time.
    to_send_received: Vec<u64>,
    /// STAMP answers in `to_send` (by index) that still need their transmit time.
    stamp_answers: Vec<(usize, Layout)>,
    to_release: Vec<P::Frame>,
}

impl<P: Platform> Worker<P> {
    pub fn new(platform: P, config: &WorkerConfig, shared: Arc<WorkerShared>) -> Self {
        let batch = platform.batch_size();
        Worker {
            platform,
            pipeline: Pipeline::new(config),
            shared,
            started: Instant::now(),
            deadline: config.safety.loop_timeout.map(|t| t.as_nanos() as u64),
            dwell: Histogram::default(),
            platform_stamped: 0,
            next_publish: 0,
            broadcasts_seen: 0,
            received: Vec::with_capacity(batch),
            to_send: Vec::with_capacity(batch),
            to_send_lens: Vec::with_capacity(batch),
            to_send_received: Vec::with_capacity(batch),
            stamp_answers: Vec::with_capacity(batch),
            to_release: Vec::with_capacity(batch),
        }
    }

    /// Process batches until `stop` is set or the platform is exhausted, then publish
    /// the final telemetry.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), P::Error> {
        while !stop.load(Ordering::Relaxed) {
            if self.poll()? == Flow::Exhausted {
                break;
            }
        }
        self.pipeline.counters.kernel = self.platform.kernel_drops();
        self.shared.counters.publish(&self.pipeline.counters);
        self.publish_telemetry();
        Ok(())
    }

    /// Receive and process one batch.
    pub fn poll(&mut self) -> Result<Flow, P::Error> {
        let flow = self.platform.recv_batch(&mut self.received)?;
        if let Some(list) = self
            .shared
            .broadcasts
            .changed_since(&mut self.broadcasts_seen)
        {
            self.pipeline.set_broadcasts(list);
        }
        let too_large = self.platform.take_too_large();
        if too_large > 0 {
            self.pipeline.count_too_large(too_large);
        }
        let at = self.now();
        if self
            .deadline
            .is_some_and(|deadline| at.monotonic >= deadline)
        {
            self.pipeline.reflecting = false;
        }
        for mut frame in self.received.drain(..) {
            let stamped = self.platform.received_at(&mut frame);
            self.platform_stamped += u64::from(stamped.is_some());
            let received = stamped.unwrap_or(at.wall);
            let frame_at = BatchTime {
                wall: received,
                ..at
            };
            let pipeline = &mut self.pipeline;
            let (outcome, len) = self.platform.with_frame(&mut frame, |bytes| {
                (pipeline.process(bytes, frame_at), bytes.len())
            });
            match outcome {
                Outcome::Drop => {
                    self.to_release.push(frame);
                    continue;
                }
                Outcome::SendStampAnswer(layout) => {
                    self.stamp_answers.push((self.to_send.len(), layout));
                }
                Outcome::Send => {}
            }
            self.to_send.push(frame);
            self.to_send_lens.push(len);
            self.to_send_received.push(received);
        }
        if !self.stamp_answers.is_empty() {
            let transmit_time = NtpTimestamp::from_unix_nanos(wall_clock_nanos());
            for (index, layout) in self.stamp_answers.drain(..) {
                self.platform.with_frame(&mut self.to_send[index], |bytes| {
                    stamp::write_transmit_time(bytes, &layout, transmit_time)
                });
            }
        }
        if !self.to_send.is_empty() {
            self.send()?;
        }
        if !self.to_release.is_empty() {
            self.platform.release_batch(&mut self.to_release);
        }
        let publish_telemetry = at.monotonic >= self.next_publish;
        if publish_telemetry {
            // A system call, so once a second rather than per batch.
            self.pipeline.counters.kernel = self.platform.kernel_drops();
        }
        self.shared.counters.publish(&self.pipeline.counters);
        if publish_telemetry && self.publish_telemetry() {
            self.next_publish = at.monotonic + PUBLISH_EVERY.as_nanos() as u64;
        }
        Ok(flow)
    }

    fn send(&mut self) -> Result<(), P::Error> {
        let queued = self.to_send.len();
        let sent = self.platform.send_batch(&mut self.to_send)?;
        let handed_over = wall_clock_nanos();
        for received in self.to_send_received.drain(..).take(sent) {
            self.dwell.record(handed_over.saturating_sub(received));
        }
        self.to_send_received.clear();
        // `reflected` counts frames handed to the transmitter; the ones it refused
        // are tx errors instead.
        let counters = &mut self.pipeline.counters;
        let unsent = (queued - sent) as u64;
        counters.tx_errors += unsent;
        counters.reflected -= unsent;
        counters.tx_bytes -= self.to_send_lens[sent..].iter().sum::<usize>() as u64;
        self.to_send_lens.clear();
        Ok(())
    }

    /// Expire idle streams and sources, then publish telemetry unless a reader holds
    /// the lock (then the next batch tries again). Returns whether it published.
    pub fn publish_telemetry(&mut self) -> bool {
        let at = self.now();
        let pipeline = &mut self.pipeline;
        pipeline.streams.expire(at.wall);
        if let Some(limiter) = &mut pipeline.limiter {
            limiter.expire(at.monotonic);
        }
        let (dwell, platform_stamped) = (&self.dwell, self.platform_stamped);
        self.shared.try_publish(|slot: &mut Telemetry| {
            slot.dwell.clone_from(dwell);
            slot.platform_stamped_frames = platform_stamped;
            slot.streams.clear();
            slot.streams.extend(pipeline.streams.report());
            slot.untracked_frames = pipeline.streams.untracked_frames;
            slot.loop_timed_out = !pipeline.reflecting;
        })
    }

    fn monotonic_nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn now(&self) -> BatchTime {
        BatchTime {
            monotonic: self.monotonic_nanos(),
            wall: wall_clock_nanos(),
        }
    }

    /// This worker's totals so far.
    pub fn counters(&self) -> &Counters {
        &self.pipeline.counters
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn into_platform(self) -> P {
        self.platform
    }
}

/// Wall-clock nanoseconds since the Unix epoch (0 if the clock is before 1970).
fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
