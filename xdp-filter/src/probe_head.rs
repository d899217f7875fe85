//! The fast test head's kernel side (`bpf/probe.bpf.c`): a generator run through the
//! kernel's live-frames `BPF_PROG_RUN` and a counter attached to the head's interface.
//!
//! One [`ProbeHead`] is one run: its maps (sequence bitmap, send times, counters, RTT
//! histogram) start empty when it is loaded. It may drive several generators at once,
//! one per CPU, each run by a thread pinned to that CPU.

use crate::attach::XdpLink;
use crate::skel::{self, read_u64, ProbeSkel, ProbeSkelBuilder};
use crate::{
    bpf_error, Error, Result, PROBE_BLOCK, PROBE_GENERATOR_TAIL_LEN, PROBE_HEADER_WORDS,
    PROBE_MAX_FRAMES, PROBE_MAX_GENERATORS,
};
use dataplane::histogram::{Histogram, BUCKETS};
use libbpf_rs::{libbpf_sys, MapCore, MapFlags, ProgramInput};
use settings::XdpMode;
use std::os::fd::AsFd;

/// The frame the head sends and what it expects back.
pub struct ProbeTemplate<'a> {
    /// The frame to send, stamped with sequence number 0 (without FCS).
    pub frame: &'a [u8],
    /// How a correct reflector returns it.
    pub expected_reflection: &'a [u8],
    /// Offset of the 6-byte stamp: 2 marker bytes, then the big-endian sequence number.
    pub stamp_at: usize,
    /// Offset of the UDP checksum.
    pub checksum_at: usize,
}

/// What came back, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    /// Distinct sequence numbers that came back with the expected headers.
    pub received: u64,
    pub duplicated: u64,
    /// Returns below the highest number of the same generator already seen on the same
    /// CPU.
    pub reordered: u64,
    /// Frames with our stamp whose headers differ from the expected reflection.
    pub malformed: u64,
    /// Longest round trip, in nanoseconds.
    pub rtt_max: u64,
}

/// What the generators sent, together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Generated {
    pub frames: u64,
    /// The time those frames took at the rate measured from the first frame to the last
    /// timed one (kernel clock).
    pub seconds: f64,
}

/// One CPU's generator: `struct generator` in probe.bpf.c, field by field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generator {
    /// Frames it has sent.
    pub sent: u64,
    /// Frames it may send (0: no generator on this CPU).
    pub limit: u64,
    index: u64,
    next_due: u64,
    first_ns: u64,
    last_ns: u64,
    sent_at_last: u64,
}

impl Generator {
    const FIELDS: usize = 7;

    fn from_bytes(bytes: &[u8]) -> Generator {
        let field = |i: usize| read_u64(&bytes[i * 8..]);
        debug_assert!(bytes.len() >= Self::FIELDS * 8);
        Generator {
            sent: field(0),
            limit: field(1),
            index: field(2),
            next_due: field(3),
            first_ns: field(4),
            last_ns: field(5),
            sent_at_last: field(6),
        }
    }

    fn to_bytes(self) -> Vec<u8> {
        [
            self.sent,
            self.limit,
            self.index,
            self.next_due,
            self.first_ns,
            self.last_ns,
            self.sent_at_last,
        ]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
    }
}

/// Fields of `struct counts` in probe.bpf.c before its per-generator array.
const COUNT_FIELDS: usize = 5;

/// At full rate only one frame in this many is timed (send time and RTT): the clock
/// read costs about a tenth of the generator's core on each side. A power of two, at
/// most 64.
pub const FULL_RATE_TIMED_EVERY: u32 = 16;

/// After a pause (between two BPF_PROG_RUN calls) a paced generator sends at most
/// this many late frames back to back...
const CATCH_UP_FRAMES: u64 = 64;
/// ...and no more than this much of them, so that at low rates, where a frame's RTT
/// is what is measured, frames do not queue behind each other in a burst the path
/// would never see at an even pace.
const CATCH_UP_MAX_NS: u64 = 64_000;

/// How late (ns) a generator paced at `gap_ns` may fall and still catch up, rather
/// than forget the debt: [`CATCH_UP_FRAMES`] gaps, capped at [`CATCH_UP_MAX_NS`] but
/// never below one gap.
fn catch_up_ns(gap_ns: u64) -> u64 {
    (CATCH_UP_FRAMES * gap_ns).min(CATCH_UP_MAX_NS.max(gap_ns))
}

/// The loaded generators and counter of one probe run.
pub struct ProbeHead {
    skel: ProbeSkel<'static>,
    /// What each generator run starts from: the template frame, then the generator's
    /// secret (probe.bpf.c).
    input: Vec<u8>,
}

impl ProbeHead {
    /// Load the programs for `template`, to send at most `frame_limit` frames out of
    /// `ifindex` at `rate` frames a second (0: as fast as the kernel takes them), from
    /// one generator on each CPU of `cpus`, which share the frames and the rate. Each
    /// generator runs on its CPU only: call [`ProbeHead::run_generator`] from a thread
    /// pinned there.
    pub fn load(
        template: &ProbeTemplate,
        ifindex: u32,
        rate: u64,
        frame_limit: u32,
        cpus: &[usize],
    ) -> Result<ProbeHead> {
        let generators = cpus.len() as u64;
        if generators == 0 || generators > u64::from(PROBE_MAX_GENERATORS) {
            return Err(Error::ProbeGenerators {
                asked: cpus.len(),
                max: PROBE_MAX_GENERATORS,
            });
        }
        let stamp_end = template.stamp_at + 6;
        if template.frame.len() < stamp_end
            || stamp_end > PROBE_HEADER_WORDS * 8
            || template.expected_reflection.len() != template.frame.len()
            || template.checksum_at + 2 > template.stamp_at
        {
            return Err(Error::ProbeTemplate);
        }
        let checksum = u16::from_be_bytes([
            template.frame[template.checksum_at],
            template.frame[template.checksum_at + 1],
        ]);
        let (header, header_mask) = header_words(template);
        // Whole words only, within the frame (the stamp is written after them).
        let send_words = stamp_end.div_ceil(8).min(template.frame.len() / 8);
        let mut send_header = [0u64; PROBE_HEADER_WORDS];
        for (w, word) in send_header[..send_words].iter_mut().enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&template.frame[w * 8..w * 8 + 8]);
            *word = u64::from_ne_bytes(bytes);
        }
        let secret = skel::random_secret();
        let skel = skel::load::<ProbeSkelBuilder>(|rodata| {
            rodata.generator_secret = secret;
            rodata.ifindex_out = ifindex;
            rodata.generators = generators as u32;
            // Each generator sends every `generators`-th frame of the whole rate.
            let gap_ns = (1_000_000_000u64 * generators)
                .checked_div(rate)
                .map_or(0, |gap| gap.max(1));
            rodata.gap_ns = gap_ns;
            rodata.catch_up_ns = catch_up_ns(gap_ns);
            // Pacing reads the clock for every frame anyway.
            rodata.stamp_mask = if rate == 0 {
                FULL_RATE_TIMED_EVERY - 1
            } else {
                0
            };
            rodata.stamp_at = template.stamp_at as u32;
            rodata.marker = [
                template.frame[template.stamp_at],
                template.frame[template.stamp_at + 1],
            ];
            rodata.checksum_at = template.checksum_at as u32;
            rodata.template_checksum = checksum;
            rodata.frame_len = template.frame.len() as u32;
            rodata.send_header = send_header;
            rodata.send_header_words = send_words as u32;
            rodata.header = header;
            rodata.header_mask = header_mask;
        })?;
        let input = [template.frame, &secret.to_ne_bytes()[..]].concat();
        let head = ProbeHead { skel, input };
        head.share(frame_limit, cpus)?;
        Ok(head)
    }

    /// Give generator k the CPU `cpus[k]` and its share of `frame_limit`. With blocks
    /// of B numbers, generator k's highest number is B * ((ceil(limit / B) - 1) * N +
    /// k) + B - 1, so a share of at most B * floor(MAX / B / N) keeps every number
    /// inside the bitmap.
    fn share(&self, frame_limit: u32, cpus: &[usize]) -> Result<()> {
        let n = cpus.len() as u64;
        let block = u64::from(PROBE_BLOCK);
        let cap = u64::from(PROBE_MAX_FRAMES) / block / n * block;
        let total = u64::from(frame_limit).min(cap * n);
        let possible =
            libbpf_rs::num_possible_cpus().map_err(bpf_error("count the possible CPUs"))?;
        let mut values = vec![Generator::default().to_bytes(); possible];
        for (k, &cpu) in cpus.iter().enumerate() {
            let k = k as u64;
            let slot = values
                .get_mut(cpu)
                .ok_or(Error::ProbeCpu { cpu, possible })?;
            *slot = Generator {
                limit: total / n + u64::from(k < total % n),
                index: k,
                ..Generator::default()
            }
            .to_bytes();
        }
        self.skel
            .maps
            .generator
            .update_percpu(&0u32.to_ne_bytes(), &values, MapFlags::ANY)
            .map_err(bpf_error("set up the probe's generators"))
    }

    /// Attach the counter to the head's interface (it must see the returns).
    pub fn attach_counter(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
        XdpLink::attach(self.skel.progs.probe_head.as_fd(), ifindex, mode)
    }

    /// Run the generator `runs` times: one `BPF_PROG_RUN` in live-frames mode, which
    /// the kernel carries out in batches of 64 with a redirect flush after each. Each
    /// run sends a frame if one is due and the limit is not reached. A call costs tens
    /// of microseconds beyond its runs (the kernel sets up and tears down a page pool);
    /// it would cost tens of milliseconds, and stall every other BPF_PROG_RUN of an XDP
    /// program on the machine, were the program not attached (probe.bpf.c).
    pub fn run_generator(&self, runs: u32) -> Result<()> {
        if runs == 0 {
            return Ok(());
        }
        let input = ProgramInput {
            data_in: Some(&self.input),
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            repeat: runs,
            ..ProgramInput::default()
        };
        self.skel
            .progs
            .probe_head
            .test_run(input)
            .map_err(|source| Error::LiveFrames {
                len: self.input.len() - PROBE_GENERATOR_TAIL_LEN,
                source,
            })?;
        Ok(())
    }

    /// Each CPU's generator so far, indexed by CPU.
    pub fn generators(&self) -> Result<Vec<Generator>> {
        Ok(self
            .skel
            .maps
            .generator
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_error("read the probe generators' state"))?
            .unwrap_or_default()
            .iter()
            .map(|bytes| Generator::from_bytes(bytes))
            .collect())
    }

    /// What the generators have sent so far, together.
    pub fn generated(&self) -> Result<Generated> {
        Ok(together(&self.generators()?))
    }

    /// The counters so far, summed over CPUs.
    pub fn counts(&self) -> Result<ProbeCounts> {
        let per_cpu = self
            .skel
            .maps
            .counts
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_error("read the probe's counters"))?
            .unwrap_or_default();
        let mut total = ProbeCounts::default();
        for cpu in per_cpu {
            let field = |i: usize| read_u64(&cpu[i * 8..]);
            debug_assert!(cpu.len() >= COUNT_FIELDS * 8);
            total.received += field(0);
            total.duplicated += field(1);
            total.reordered += field(2);
            total.malformed += field(3);
            total.rtt_max = total.rtt_max.max(field(4));
        }
        Ok(total)
    }

    /// The RTT samples so far (one lookup per bucket: call it at the end of a run).
    pub fn rtt(&self) -> Result<Histogram> {
        let mut histogram = Histogram::default();
        for bucket in 0..BUCKETS as u32 {
            let count = skel::per_cpu_total(&self.skel.maps.rtt, bucket, "read the RTT histogram")?;
            histogram.record_bucket(bucket as usize, count);
        }
        Ok(histogram)
    }

    /// Most frames one run may send (its sequence bitmap's size).
    pub const MAX_FRAMES: u32 = PROBE_MAX_FRAMES;
    /// Most generators one run may use.
    pub const MAX_GENERATORS: u32 = PROBE_MAX_GENERATORS;
    /// Sequence numbers per block: generator k of N numbers its frames in blocks k,
    /// k + N, k + 2N, ... of this many.
    pub const BLOCK: u32 = PROBE_BLOCK;
}

/// All generators' frames and the time they took: the span from the earliest first
/// frame to the latest timed one holds the frames each had sent by its last timed one
/// (its first frame is timed too), one gap fewer than frames; the frames sent after a
/// generator's last timed one (fewer than [`FULL_RATE_TIMED_EVERY`]) go at that rate.
fn together(generators: &[Generator]) -> Generated {
    let active: Vec<&Generator> = generators.iter().filter(|g| g.sent > 0).collect();
    let frames = active.iter().map(|g| g.sent).sum();
    let in_span: u64 = active.iter().map(|g| g.sent_at_last).sum();
    let first = active.iter().map(|g| g.first_ns).min().unwrap_or(0);
    let last = active.iter().map(|g| g.last_ns).max().unwrap_or(0);
    let seconds = if in_span > 1 && last > first {
        (last - first) as f64 * 1e-9 * frames as f64 / (in_span - 1) as f64
    } else {
        0.0
    };
    Generated { frames, seconds }
}

/// The expected reflection's headers, up to the stamp, as native-order words with a
/// mask that leaves out the UDP checksum (it changes with the sequence number).
fn header_words(t: &ProbeTemplate) -> ([u64; PROBE_HEADER_WORDS], [u64; PROBE_HEADER_WORDS]) {
    let mut words = [0u64; PROBE_HEADER_WORDS];
    let mut masks = [0u64; PROBE_HEADER_WORDS];
    for (w, (word, mask)) in words.iter_mut().zip(masks.iter_mut()).enumerate() {
        let mut bytes = [0u8; 8];
        let mut mask_bytes = [0u8; 8];
        for b in 0..8 {
            let at = w * 8 + b;
            if at < t.stamp_at && at != t.checksum_at && at != t.checksum_at + 1 {
                bytes[b] = t.expected_reflection[at];
                mask_bytes[b] = 0xff;
            }
        }
        *word = u64::from_ne_bytes(bytes);
        *mask = u64::from_ne_bytes(mask_bytes);
    }
    (words, masks)
}

/// One run of either program on a frame, outside the live path: what the generator
/// would send and what the counter decides, for agreement tests.
impl ProbeHead {
    /// The next frame the generator would send (it takes a sequence number).
    pub fn test_send(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.input.len()];
        let input = ProgramInput {
            data_in: Some(&self.input),
            data_out: Some(&mut out),
            ..ProgramInput::default()
        };
        let sent = self
            .skel
            .progs
            .probe_head
            .test_run(input)
            .map_err(bpf_error("test-run the probe generator"))?
            .data
            .map_or(0, |data| data.len());
        // The generator trimmed the secret off, so this is the frame alone.
        out.truncate(sent);
        Ok(out)
    }

    /// The counter's XDP action for `frame` (`XDP_DROP` for one of ours).
    pub fn test_count(&self, frame: &[u8]) -> Result<u32> {
        let input = ProgramInput {
            data_in: Some(frame),
            ..ProgramInput::default()
        };
        let output = self
            .skel
            .progs
            .probe_head
            .test_run(input)
            .map_err(bpf_error("test-run the probe counter"))?;
        Ok(output.return_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(sent: u64, first_ns: u64, last_ns: u64, sent_at_last: u64) -> Generator {
        Generator {
            sent,
            limit: u64::MAX,
            first_ns,
            last_ns,
            sent_at_last,
            ..Generator::default()
        }
    }

    #[test]
    fn pacing_catches_up_in_frames_at_high_rates_and_in_time_at_low_ones() {
        // 1 Mpps: 64 frames, 64 us.
        assert_eq!(catch_up_ns(1_000), 64_000);
        // 4 Mpps: 64 frames, 16 us.
        assert_eq!(catch_up_ns(250), 16_000);
        // 100 kpps: 64 us, about 6 frames.
        assert_eq!(catch_up_ns(10_000), 64_000);
        // 1 kpps: no burst, at most one frame late.
        assert_eq!(catch_up_ns(1_000_000), 1_000_000);
    }

    #[test]
    fn the_offered_span_runs_from_the_first_frame_to_the_last_timed_one() {
        // Every frame timed: 1001 frames over 1 ms is 1 Mpps, 1.001 ms of frames.
        let one = together(&[generator(1001, 5_000_000, 6_000_000, 1001)]);
        assert_eq!(one.frames, 1001);
        assert!((one.seconds - 1.001e-3).abs() < 1e-12, "{one:?}");
        // Two generators, one frame in 16 timed: 1602 + 1602 frames were sent by the
        // last timed ones, 3203 gaps in the 1.6 ms from the earlier first to the later
        // last, about 2 Mpps; the 10 frames after them count at that rate.
        let two = together(&[
            generator(1610, 1_000_000, 2_600_000, 1602),
            Generator::default(),
            generator(1610, 1_000_100, 2_600_000, 1602),
        ]);
        assert_eq!(two.frames, 3220);
        let pps = two.frames as f64 / two.seconds;
        assert!((pps - 3203.0 / 1.6e-3).abs() < 1.0, "{two:?} {pps}");
        // One frame, or none: no rate.
        assert_eq!(together(&[generator(1, 7, 7, 1)]).seconds, 0.0);
        assert_eq!(together(&[]), Generated::default());
    }
}
