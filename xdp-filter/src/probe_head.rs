//! The fast test head's kernel side (`bpf/probe.bpf.c`): a generator run through the
//! kernel's live-frames `BPF_PROG_RUN` and a counter attached to the head's interface.
//!
//! One [`ProbeHead`] is one run: its maps (sequence bitmap, send times, counters, RTT
//! histogram) start empty when it is loaded.

use crate::attach::XdpLink;
use crate::skel::{self, read_u64, ProbeSkel, ProbeSkelBuilder};
use crate::{bpf_error, Error, Result, PROBE_HEADER_WORDS, PROBE_MAX_FRAMES};
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
    /// Returns below the highest number already seen on the same CPU.
    pub reordered: u64,
    /// Frames with our stamp whose headers differ from the expected reflection.
    pub malformed: u64,
    /// Longest round trip, in nanoseconds.
    pub rtt_max: u64,
}

/// What the generator sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Generated {
    pub frames: u64,
    /// From the first frame to the last, plus one gap (kernel clock).
    pub seconds: f64,
}

/// Fields of `struct generator` in probe.bpf.c, in order.
const GENERATOR_FIELDS: usize = 4;

/// Fields of `struct counts` in probe.bpf.c, in order.
const COUNT_FIELDS: usize = 6;

/// The loaded generator and counter of one probe run.
pub struct ProbeHead {
    skel: ProbeSkel<'static>,
    frame: Vec<u8>,
}

impl ProbeHead {
    /// Load the programs for `template`, to send at most `frame_limit` frames out of
    /// `ifindex` at `rate` frames a second (0: as fast as the kernel takes them).
    pub fn load(
        template: &ProbeTemplate,
        ifindex: u32,
        rate: u64,
        frame_limit: u32,
    ) -> Result<ProbeHead> {
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
        let skel = skel::load::<ProbeSkelBuilder>(|rodata| {
            rodata.ifindex_out = ifindex;
            rodata.frame_limit = frame_limit.min(PROBE_MAX_FRAMES);
            rodata.gap_ns = 1_000_000_000u64
                .checked_div(rate)
                .map_or(0, |gap| gap.max(1));
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
        Ok(ProbeHead {
            skel,
            frame: template.frame.to_vec(),
        })
    }

    /// Attach the counter to the head's interface (it must see the returns).
    pub fn attach_counter(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
        XdpLink::attach(self.skel.progs.probe_count.as_fd(), ifindex, mode)
    }

    /// Run the generator `runs` times: one `BPF_PROG_RUN` in live-frames mode, which
    /// the kernel carries out in batches of 64 with a redirect flush after each. Each
    /// run sends a frame if one is due and the limit is not reached. A call costs tens
    /// of milliseconds beyond its runs (the kernel sets up and tears down a page pool).
    pub fn run_generator(&self, runs: u32) -> Result<()> {
        if runs == 0 {
            return Ok(());
        }
        let input = ProgramInput {
            data_in: Some(&self.frame),
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            repeat: runs,
            ..ProgramInput::default()
        };
        self.skel
            .progs
            .probe_send
            .test_run(input)
            .map_err(|source| Error::LiveFrames {
                len: self.frame.len(),
                source,
            })?;
        Ok(())
    }

    /// What the generator has sent so far.
    pub fn generated(&self) -> Result<Generated> {
        let state = self
            .skel
            .maps
            .generator
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_error("read the probe generator's state"))?
            .unwrap_or_default();
        let field = |i: usize| read_u64(&state[i * 8..]);
        debug_assert!(state.len() >= GENERATOR_FIELDS * 8);
        let frames = field(0);
        Ok(Generated {
            frames,
            seconds: if frames > 1 {
                (field(3) - field(2)) as f64 * 1e-9 * frames as f64 / (frames - 1) as f64
            } else {
                0.0
            },
        })
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
            total.rtt_max = total.rtt_max.max(field(5));
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
        let mut out = vec![0u8; self.frame.len()];
        let input = ProgramInput {
            data_in: Some(&self.frame),
            data_out: Some(&mut out),
            ..ProgramInput::default()
        };
        self.skel
            .progs
            .probe_send
            .test_run(input)
            .map_err(bpf_error("test-run the probe generator"))?;
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
            .probe_count
            .test_run(input)
            .map_err(bpf_error("test-run the probe counter"))?;
        Ok(output.return_value)
    }
}
