//! The test head: sends numbered test frames at a chosen rate and size, receives the
//! reflections and reports loss, reordering, duplication and round-trip time.
//!
//! Each frame carries a 6-byte stamp after the signature: a 2-byte marker and a 32-bit
//! sequence number. Send times stay on this side in a table indexed by sequence
//! number, so even a 64-byte ITO frame has room for the stamp.

mod args;
#[cfg(target_os = "linux")]
mod fast;
#[cfg(target_os = "linux")]
mod in_flight;
#[cfg(target_os = "linux")]
mod json_progress;
#[cfg(target_os = "linux")]
pub mod linux;
mod progress;
#[cfg(target_os = "linux")]
mod search;
mod tracker;

pub use args::{Engine, ProbeArgs};
#[cfg(target_os = "linux")]
pub use json_progress::run_printing;
pub use progress::{Progress, RunInfo, PUBLISH_EVERY};
pub use tracker::{report, SequenceTracker};

use dataplane::checksum::{ones_complement_sum, replace_in_udp_checksum};
use dataplane::frame::{FrameBuilder, IpSpec, FCS_LEN};
use dataplane::parse::{be16, TPID_8021AD, TPID_8021Q, UDP_CHECKSUM};
use dataplane::{classify, reflect, Filter, Layout, MacAddr, Signature};
use std::net::IpAddr;

/// Marks our stamp so stray traffic is never counted as a reflection.
const STAMP_MARKER: [u8; 2] = [0xA5, 0x5A];
const STAMP_LEN: usize = 6;

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

    /// The sequence number in `frame` if it carries our stamp (sent or reflected).
    pub fn sequence(&self, frame: &[u8]) -> Option<u32> {
        let stamp = frame.get(self.stamp_at..self.stamp_at + STAMP_LEN)?;
        (stamp[..2] == STAMP_MARKER && frame.len() == self.template.len())
            .then(|| u32::from_be_bytes([stamp[2], stamp[3], stamp[4], stamp[5]]))
    }

    /// Is `frame` one of ours coming back? `Some(Ok(seq))` for a correct reflection,
    /// `Some(Err(()))` for ours but wrongly reflected, `None` for foreign traffic.
    pub fn check_reflection(&self, frame: &[u8], scratch: &mut Vec<u8>) -> Option<Result<u32, ()>> {
        let seq = self.sequence(frame)?;
        let stamp = &frame[self.stamp_at..self.stamp_at + STAMP_LEN];
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

/// Run the probe with the engine `args` names, publishing to `progress` as it goes.
#[cfg(target_os = "linux")]
pub fn run(args: &ProbeArgs, progress: &Progress) -> anyhow::Result<settings::events::ProbeReport> {
    match args.engine {
        Engine::Socket => linux::run(args, progress),
        Engine::Fast => fast::run_until(args, progress),
    }
}

#[cfg(target_os = "linux")]
pub use search::{search, SearchTable};

fn stamp_bytes(seq: u32) -> [u8; STAMP_LEN] {
    let s = seq.to_be_bytes();
    [STAMP_MARKER[0], STAMP_MARKER[1], s[0], s[1], s[2], s[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};
    use dataplane::Mode;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProbeArgs,
    }

    /// The probe's arguments as clap parses them: an interface, `--to` and `extra`.
    /// Shared with the engines' own tests.
    pub(in crate::probe) fn args(extra: &[&str]) -> ProbeArgs {
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
}
