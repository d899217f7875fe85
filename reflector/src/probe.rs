//! The test head: sends numbered test frames at a chosen rate and size, receives the
//! reflections and reports loss, reordering, duplication and round-trip time.
//!
//! Each frame carries a 6-byte stamp after the signature: a 2-byte marker and a 32-bit
//! sequence number. Send times stay on this side in a table indexed by sequence
//! number, so even a 64-byte ITO frame has room for the stamp.

use crate::cli::{format_mac, parse_mac};
use dataplane::checksum::{ones_complement_sum, replace_in_udp_checksum};
use dataplane::frame::{FrameBuilder, IpSpec, FCS_LEN};
use dataplane::histogram::{Histogram, Percentiles};
use dataplane::parse::{be16, TPID_8021AD, TPID_8021Q, UDP_CHECKSUM};
use dataplane::{classify, reflect, Filter, Layout, MacAddr, Mode, Signature};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Marks our stamp so stray traffic is never counted as a reflection.
const STAMP_MARKER: [u8; 2] = [0xA5, 0x5A];
const STAMP_LEN: usize = 6;

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Interface to send from.
    #[arg(value_name = "IFACE")]
    pub interface: String,

    /// MAC address of the reflector.
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub to: MacAddr,

    /// Source MAC (default: the interface's). Must be in the reflector's OUI filter.
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub src_mac: Option<MacAddr>,

    /// Signature to send: PROBEOT, DATA:OT, LATENCY, RFC2544 or Y.1564 (for STAMP, use a
    /// STAMP session-sender).
    #[arg(long, default_value = "PROBEOT")]
    pub signature: Signature,

    /// Frame size on the wire in bytes, FCS included (64 to 9018). Default: 64, or the
    /// smallest size that fits (IPv6 and VLAN tags need more).
    #[arg(long, value_parser = clap::value_parser!(u16).range(64..=9018))]
    pub size: Option<u16>,

    /// Frames per second; 0 sends as fast as the interface takes them.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,

    /// Frames to send (default: rate x duration).
    #[arg(long)]
    pub count: Option<u32>,

    /// Seconds to send for, when --count is not given.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,

    /// Seconds to wait for late reflections after the last frame.
    #[arg(long, default_value_t = 1.0)]
    pub wait: f64,

    /// Source IP (IPv4 or IPv6; the destination must be the same family).
    #[arg(long, default_value = "192.0.2.1")]
    pub src_ip: IpAddr,

    /// Destination IP.
    #[arg(long, default_value = "192.0.2.2")]
    pub dst_ip: IpAddr,

    /// VLAN IDs, outermost first (two for QinQ: the outer tag is sent as 802.1ad).
    #[arg(long, value_delimiter = ',', value_name = "ID[,ID]")]
    pub vlan: Vec<u16>,

    /// UDP destination port.
    #[arg(long, default_value_t = dataplane::filter::DEFAULT_UDP_PORT)]
    pub port: u16,

    /// Reflection mode the reflector is expected to use; other reflections count as malformed.
    #[arg(long, default_value = "all", value_parser = |s: &str| s.parse::<Mode>().map_err(|e| e.to_string()))]
    pub mode: Mode,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the probe measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub sent: u64,
    /// Distinct sequence numbers that came back correctly reflected.
    pub received: u64,
    pub lost: u64,
    /// Reflections that arrived after a higher sequence number.
    pub reordered: u64,
    /// Reflections of a sequence number already seen.
    pub duplicated: u64,
    /// Frames carrying our stamp whose reflection is wrong (fields not swapped as
    /// `--mode` says, or a bad checksum).
    pub malformed: u64,
    /// Round-trip time in nanoseconds.
    pub rtt_ns: Percentiles,
    pub send_seconds: f64,
    pub tx_pps: f64,
}

/// Frames for one probe run: a template, its expected reflection, and where the stamp
/// goes. Stamping and checking touch only the stamp and the UDP checksum.
pub struct ProbeFrames {
    template: Vec<u8>,
    expected_reflection: Vec<u8>,
    layout: Layout,
    stamp_at: usize,
    template_checksum: u16,
}

impl ProbeFrames {
    pub fn new(args: &ProbeArgs, src_mac: MacAddr) -> anyhow::Result<Self> {
        if args.signature == Signature::Stamp {
            anyhow::bail!(
                "the probe sends signature frames and expects them back unchanged; a STAMP \
                 reflector rewrites its packets, so test it with a STAMP session-sender \
                 (README: \"STAMP\")"
            );
        }
        let mut builder = match (args.src_ip, args.dst_ip) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut b = FrameBuilder::ipv4(src_mac, args.to, args.signature);
                if let IpSpec::V4 { src: s, dst: d, .. } = &mut b.ip {
                    *s = src.octets();
                    *d = dst.octets();
                }
                b
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut b = FrameBuilder::ipv6(src_mac, args.to, args.signature);
                if let IpSpec::V6 { src: s, dst: d, .. } = &mut b.ip {
                    *s = src.octets();
                    *d = dst.octets();
                }
                b
            }
            _ => anyhow::bail!(
                "--src-ip {} and --dst-ip {} must both be IPv4 or both IPv6",
                args.src_ip,
                args.dst_ip
            ),
        };
        builder.dst_port = args.port;
        builder.vlan_tags = match args.vlan.as_slice() {
            [] => vec![],
            [one] => vec![(TPID_8021Q, *one)],
            [outer, inner] => vec![(TPID_8021AD, *outer), (TPID_8021Q, *inner)],
            more => anyhow::bail!("--vlan takes at most two IDs (QinQ), got {}", more.len()),
        };
        if let Some(bad) = args.vlan.iter().find(|id| **id > 4094) {
            anyhow::bail!("--vlan {bad} is not a VLAN ID (0..=4094)");
        }
        // The stamp starts on an even offset of the UDP datagram so its one's-complement
        // sum can be added to the checksum word by word.
        let stamp_offset = args.signature.min_payload().next_multiple_of(2);
        builder.payload.resize(stamp_offset + STAMP_LEN, 0);
        let wire_len = builder.build().len() + FCS_LEN;
        let size = usize::from(args.size.unwrap_or(64)).max(if args.size.is_some() {
            0
        } else {
            wire_len
        });
        if wire_len > size {
            anyhow::bail!(
                "--size {size} is too small for this frame; it needs at least {wire_len} bytes"
            );
        }
        let builder = builder.sized_for_wire(size);
        let template = builder.build();
        let accept_all = Filter {
            src_oui: None,
            udp_port: 0,
            ..Filter::default()
        };
        let layout = classify(&template, &accept_all)
            .map_err(|reason| {
                anyhow::anyhow!(
                    "the probe frame would be refused by a reflector ({reason}); check addresses"
                )
            })?
            .layout;
        let mut expected_reflection = template.clone();
        reflect(&mut expected_reflection, &layout, args.mode);
        Ok(ProbeFrames {
            template_checksum: be16(&template, layout.l4 + UDP_CHECKSUM),
            stamp_at: layout.payload() + stamp_offset,
            template,
            expected_reflection,
            layout,
        })
    }

    pub fn len(&self) -> usize {
        self.template.len()
    }

    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Write frame number `seq` into `frame` (a copy of the template, or the previous
    /// frame: only the stamp and checksum change).
    pub fn stamp(&self, frame: &mut Vec<u8>, seq: u32) {
        if frame.len() != self.template.len() {
            frame.clear();
            frame.extend_from_slice(&self.template);
        }
        let stamp = stamp_bytes(seq);
        frame[self.stamp_at..self.stamp_at + STAMP_LEN].copy_from_slice(&stamp);
        let checksum_at = self.layout.l4 + UDP_CHECKSUM;
        // IPv4 may carry no UDP checksum; stamping must not invent one.
        if self.template_checksum != 0 {
            let checksum =
                replace_in_udp_checksum(self.template_checksum, 0, ones_complement_sum(&stamp, 0));
            frame[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
        }
    }

    /// Is `frame` one of ours coming back? `Some(Ok(seq))` for a correct reflection,
    /// `Some(Err(()))` for ours but wrongly reflected, `None` for foreign traffic.
    pub fn check_reflection(&self, frame: &[u8], scratch: &mut Vec<u8>) -> Option<Result<u32, ()>> {
        let stamp = frame.get(self.stamp_at..self.stamp_at + STAMP_LEN)?;
        if stamp[..2] != STAMP_MARKER || frame.len() != self.expected_reflection.len() {
            return None;
        }
        let seq = u32::from_be_bytes([stamp[2], stamp[3], stamp[4], stamp[5]]);
        scratch.clear();
        scratch.extend_from_slice(&self.expected_reflection);
        // Reflection never moves the stamp or checksum, so the expected frame is the
        // reflected template with this frame's stamp applied.
        scratch[self.stamp_at..self.stamp_at + STAMP_LEN].copy_from_slice(stamp);
        if self.template_checksum != 0 {
            let checksum =
                replace_in_udp_checksum(self.template_checksum, 0, ones_complement_sum(stamp, 0));
            let at = self.layout.l4 + UDP_CHECKSUM;
            scratch[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
        }
        Some(if scratch.as_slice() == frame {
            Ok(seq)
        } else {
            Err(())
        })
    }
}

fn stamp_bytes(seq: u32) -> [u8; STAMP_LEN] {
    let s = seq.to_be_bytes();
    [STAMP_MARKER[0], STAMP_MARKER[1], s[0], s[1], s[2], s[3]]
}

/// Counts loss, reordering and duplication from the sequence numbers that came back.
pub struct SequenceTracker {
    seen: Vec<u64>,
    capacity: u32,
    highest: Option<u32>,
    pub received: u64,
    pub reordered: u64,
    pub duplicated: u64,
}

impl SequenceTracker {
    /// For sequence numbers `0..capacity`.
    pub fn new(capacity: u32) -> Self {
        SequenceTracker {
            seen: vec![0; (capacity as usize).div_ceil(64)],
            capacity,
            highest: None,
            received: 0,
            reordered: 0,
            duplicated: 0,
        }
    }

    /// Record `seq`; returns false if it is outside the run (not ours).
    pub fn record(&mut self, seq: u32) -> bool {
        if seq >= self.capacity {
            return false;
        }
        let slot = &mut self.seen[seq as usize / 64];
        let bit = seq % 64;
        if *slot & (1 << bit) != 0 {
            self.duplicated += 1;
            return true;
        }
        *slot |= 1 << bit;
        self.received += 1;
        match self.highest {
            Some(high) if seq < high => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
        true
    }
}

/// Combine tracker and timing into the final report.
pub fn report(
    sent: u64,
    tracker: &SequenceTracker,
    malformed: u64,
    rtt: &Histogram,
    send_seconds: f64,
) -> ProbeReport {
    ProbeReport {
        sent,
        received: tracker.received,
        lost: sent.saturating_sub(tracker.received),
        reordered: tracker.reordered,
        duplicated: tracker.duplicated,
        malformed,
        rtt_ns: rtt.percentiles(),
        send_seconds,
        tx_pps: if send_seconds > 0.0 {
            sent as f64 / send_seconds
        } else {
            0.0
        },
    }
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        writeln!(
            f,
            "sent {} in {:.2}s ({:.0} pps)",
            self.sent, self.send_seconds, self.tx_pps
        )?;
        writeln!(
            f,
            "received {}  lost {}  reordered {}  duplicated {}  malformed {}",
            self.received, self.lost, self.reordered, self.duplicated, self.malformed
        )?;
        let r = &self.rtt_ns;
        write!(
            f,
            "rtt us: min {:.1}  p50 {:.1}  p99 {:.1}  max {:.1}",
            us(r.min),
            us(r.p50),
            us(r.p99),
            us(r.max)
        )
    }
}

/// One line for logs: who the probe talks to.
pub fn describe(args: &ProbeArgs, src_mac: &MacAddr, frame_len: usize) -> String {
    format!(
        "probe {} -> {} on {}: {} frames of {} bytes on the wire, {}",
        format_mac(src_mac),
        format_mac(&args.to),
        args.interface,
        args.signature,
        frame_len + FCS_LEN,
        if args.rate == 0 {
            "as fast as possible".to_owned()
        } else {
            format!("{} pps", args.rate)
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProbeArgs,
    }

    fn args(extra: &[&str]) -> ProbeArgs {
        let base = ["probe", "veth0", "--to", "02:52:45:46:4c:01"];
        Wrapper::try_parse_from(base.iter().chain(extra))
            .unwrap()
            .args
    }

    /// Reflect a stamped frame the way the real reflector does and check the probe
    /// recognises it, for each mode, IP version and tag count.
    #[test]
    fn stamped_frames_are_accepted_by_the_reflector_and_recognised_back() {
        for extra in [
            &[][..],
            &["--src-ip", "2001:db8::1", "--dst-ip", "2001:db8::2"],
            &["--vlan", "10,20"],
            &["--signature", "rfc2544", "--size", "1518"],
        ] {
            for mode in Mode::ALL {
                let mut a = args(extra);
                a.mode = mode;
                let frames = ProbeFrames::new(&a, HEAD_MAC).unwrap();
                let mut frame = Vec::new();
                frames.stamp(&mut frame, 0xDEAD_BEEF);
                let accepted =
                    classify(&frame, &reference_filter()).expect("reflector accepts probe frames");
                assert_eq!(accepted.signature, a.signature);
                reflect(&mut frame, &accepted.layout, mode);
                let mut scratch = Vec::new();
                assert_eq!(
                    frames.check_reflection(&frame, &mut scratch),
                    Some(Ok(0xDEAD_BEEF)),
                    "{extra:?} {mode}"
                );
            }
        }
    }

    #[test]
    fn stamping_keeps_the_udp_checksum_valid() {
        let frames = ProbeFrames::new(&args(&[]), HEAD_MAC).unwrap();
        let mut frame = Vec::new();
        frames.stamp(&mut frame, 7);
        let mut rebuilt = frame.clone();
        let layout = frames.layout;
        rebuilt[layout.l4 + 6..layout.l4 + 8].copy_from_slice(&[0, 0]);
        let udp = &rebuilt[layout.l4..layout.end()];
        let expected = dataplane::checksum::udp_checksum(&frame[26..30], &frame[30..34], udp);
        assert_eq!(be16(&frame, layout.l4 + 6), expected);
    }

    #[test]
    fn a_64_byte_ito_frame_fits_the_stamp_and_bigger_frames_grow_the_default() {
        let frames = ProbeFrames::new(&args(&[]), HEAD_MAC).unwrap();
        assert_eq!(frames.len() + FCS_LEN, 64);
        let v6 = ProbeFrames::new(
            &args(&[
                "--src-ip",
                "2001:db8::1",
                "--dst-ip",
                "2001:db8::2",
                "--vlan",
                "7",
            ]),
            HEAD_MAC,
        );
        assert_eq!(v6.unwrap().len() + FCS_LEN, 14 + 4 + 40 + 8 + 18 + FCS_LEN);
    }

    #[test]
    fn wrong_reflections_and_foreign_frames_are_told_apart() {
        let a = args(&[]);
        let frames = ProbeFrames::new(&a, HEAD_MAC).unwrap();
        let mut frame = Vec::new();
        frames.stamp(&mut frame, 1);
        let mut scratch = Vec::new();
        // Unreflected (as if the reflector only echoed it): ours, but wrong.
        assert_eq!(frames.check_reflection(&frame, &mut scratch), Some(Err(())));
        // Reflected in mac mode while the probe expects all: wrong.
        let layout = classify(&frame, &reference_filter()).unwrap().layout;
        reflect(&mut frame, &layout, Mode::Mac);
        assert_eq!(frames.check_reflection(&frame, &mut scratch), Some(Err(())));
        // No stamp: not ours.
        let foreign = FrameBuilder::ipv4(REFLECTOR_MAC, HEAD_MAC, Signature::ProbeOt).build();
        assert_eq!(frames.check_reflection(&foreign, &mut scratch), None);
    }

    #[test]
    fn bad_probe_settings_are_explained() {
        let err = ProbeFrames::new(&args(&["--dst-ip", "2001:db8::2"]), HEAD_MAC)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("both be IPv4 or both IPv6"), "{err}");
        let err = ProbeFrames::new(&args(&["--vlan", "1,2,3"]), HEAD_MAC)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at most two"), "{err}");
        let err = ProbeFrames::new(
            &args(&[
                "--src-ip",
                "2001:db8::1",
                "--dst-ip",
                "2001:db8::2",
                "--size",
                "64",
            ]),
            HEAD_MAC,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("too small"), "{err}");
        let err = ProbeFrames::new(&args(&["--dst-ip", "224.0.0.1"]), HEAD_MAC)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("dst_ip_invalid"), "{err}");
    }

    #[test]
    fn tracker_counts_loss_reorder_and_duplicates() {
        let mut t = SequenceTracker::new(10);
        for seq in [0, 1, 3, 2, 3, 5] {
            assert!(t.record(seq));
        }
        assert!(!t.record(10), "outside the run");
        let r = report(10, &t, 0, &Histogram::default(), 1.0);
        assert_eq!(
            (r.received, r.lost, r.reordered, r.duplicated),
            (5, 5, 1, 1)
        );
    }
}
