//! The generated classic-BPF program, run by the real Linux kernel.
//!
//! macOS and Linux execute the same classic-BPF instruction set (`struct bpf_insn` and
//! `struct sock_filter` are one layout), so attaching the program to `AF_PACKET`
//! sockets with `SO_ATTACH_FILTER` checks, on a kernel, exactly what `/dev/bpf` will
//! run on a Mac: that it is accepted by a kernel validator and that it admits the same
//! reference frames as `dataplane::classify`.
//!
//! Rig: the two-namespace lab of `netlab`, its MTU raised for the reference jumbo frame.
//! Each frame is sent out of the head's end on an unfiltered socket, followed by a
//! *sentinel* (a test frame the filter must admit). Two filtered sockets listen:
//!
//! - `tap` on the head's end, which sees frames as transmitted, byte for byte; every
//!   frame is judged there.
//! - `rx` on the reflector's end, in the other namespace: the receive path, like a NIC
//!   under `/dev/bpf`. Linux removes the outer VLAN tag (`skb_vlan_untag`) before
//!   packet sockets and their filters see a received frame, so a filter on the
//!   receive path cannot see tags at all; on `rx` only untagged frames are judged.
//!   (macOS BPF sees tags in the frame.)
//!
//! Everything a socket reads before the sentinel is the verdict on the frame. Frames
//! shorter than an Ethernet header (the reference "empty frame" and "13-byte runt")
//! cannot be transmitted and are covered by the interpreter tests in `src/cbpf`.
//!
//! Runs as root; if the lab cannot be built the test fails, it never skips.
#![cfg(target_os = "linux")]

use dataplane::classify;
use dataplane::filter::DstMacFilter;
use dataplane::filter::{DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT};
use dataplane::frame::{signature_payload, FrameBuilder};
use dataplane::parse::{be16, ETH_HEADER_LEN, ETH_TYPE, TPID_8021AD, TPID_8021Q};
use dataplane::reference::{
    reference_filter, reference_filter_with_prefixes, reference_frames, ReferenceFrame,
    FOREIGN_MAC, HEAD_MAC, REFLECTOR_MAC,
};
use dataplane::signature::{Signature, SignatureSet};
use dataplane::stamp::STAMP_MIN_PAYLOAD;
use dataplane::{Filter, MacAddr, Oui, Reject};
use netlab::Lab;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use platform_macos::cbpf::{compile, Insn};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `SO_ATTACH_FILTER` from `<asm-generic/socket.h>` (x86_64 and aarch64); the libc
/// crate does not export it for glibc targets.
const SO_ATTACH_FILTER: libc::c_int = 26;
/// How long a sentinel may take to come back before the rig is declared broken.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(3);

/// A lab of this test's own whose link carries the 9000-byte reference jumbo frame
/// plus VLAN tags.
fn jumbo_lab() -> Lab {
    let lab = Lab::unique("pm-cbpf").unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
    lab.set_mtu(9500)
        .unwrap_or_else(|e| panic!("cannot raise the lab's MTU: {e}"));
    lab
}

/// Pin the calling thread to one CPU, so that a frame and its sentinel go through the
/// same per-CPU backlog and cannot be reordered on the receive path.
fn pin_to_one_cpu() {
    let mut cpus = CpuSet::new();
    cpus.set(0).expect("CPU 0 is in range");
    sched_setaffinity(Pid::from_raw(0), &cpus).expect("pin the sending thread to CPU 0");
}

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface.
struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Bind to `interface`; with a program, receive every protocol through it; without,
    /// receive nothing (a pure sender).
    fn open(interface: &str, program: Option<&[Insn]>) -> PacketSocket {
        // SAFETY: plain socket(2) call; the result is checked before it is owned.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            raw >= 0,
            "socket(AF_PACKET): {}",
            io::Error::last_os_error()
        );
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = CString::new(interface).unwrap();
        // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(
            ifindex != 0,
            "no interface {interface}: {}",
            io::Error::last_os_error()
        );
        // Protocol 0 until bind: the socket queues nothing before the filter is attached.
        let protocol = match program {
            Some(program) => {
                let mut insns: Vec<libc::sock_filter> = program
                    .iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect();
                let fprog = libc::sock_fprog {
                    len: insns.len() as u16,
                    filter: insns.as_mut_ptr(),
                };
                // SAFETY: `fprog` points at `insns`, which outlives the call; the kernel
                // copies the program.
                let rc = unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        SO_ATTACH_FILTER,
                        (&fprog as *const libc::sock_fprog).cast(),
                        std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
                    )
                };
                assert_eq!(
                    rc,
                    0,
                    "the kernel refused the program: {}",
                    io::Error::last_os_error()
                );
                (libc::ETH_P_ALL as u16).to_be()
            }
            None => 0,
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind to {interface}: {}", io::Error::last_os_error());
        PacketSocket { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: the pointer and length describe `frame`.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            sent,
            frame.len() as isize,
            "send: {}",
            io::Error::last_os_error()
        );
    }

    /// The next frame, or `None` after `timeout`.
    fn recv(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        assert!(ready >= 0, "poll: {}", io::Error::last_os_error());
        if ready == 0 {
            return None;
        }
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        assert!(n >= 0, "recv: {}", io::Error::last_os_error());
        Some(n as usize)
    }
}

/// What one listening socket saw for one frame.
#[derive(Debug, Default)]
struct Seen {
    admitted: bool,
    /// Frames other than the one sent and the sentinel (hex), which no filter may admit.
    strays: Vec<String>,
}

/// Read until the sentinel arrives.
fn collect(socket: &PacketSocket, frame: &[u8], sentinel: &[u8], buf: &mut [u8]) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + SENTINEL_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = socket.recv(buf, left).unwrap_or_else(|| {
            panic!("the sentinel did not arrive within {SENTINEL_TIMEOUT:?}: rig is broken")
        });
        let got = &buf[..n];
        if got == sentinel {
            return seen;
        }
        if got == frame {
            seen.admitted = true;
        } else {
            seen.strays.push(format!("{got:02x?}"));
        }
    }
}

/// A frame `filter` must admit, unlike any reference frame (its trailer says SENTINEL):
/// a frame with the first enabled signature to the ITO port, or a STAMP packet to the
/// STAMP port, whichever the filter accepts.
fn sentinel(filter: &Filter) -> Vec<u8> {
    let dst = match filter.dst_mac {
        DstMacFilter::Exact(mac) => mac,
        DstMacFilter::AnyUnicast => REFLECTOR_MAC,
    };
    let src = match filter.src_oui {
        Some(Oui([a, b, c])) => MacAddr([a, b, c, 0x53, 0x4e, 0x54]),
        None => HEAD_MAC,
    };
    let candidate = |signature: Signature| {
        let mut builder = FrameBuilder::ipv4(src, dst, signature);
        builder.dst_port = match signature {
            Signature::Stamp => filter.stamp_port,
            _ if filter.udp_port != 0 => filter.udp_port,
            _ => builder.dst_port,
        };
        builder.payload = signature_payload(signature, 8);
        let end = builder.payload.len();
        builder.payload[end - 8..].copy_from_slice(b"SENTINEL");
        builder.build()
    };
    filter
        .signatures
        .iter()
        .map(candidate)
        .find(|bytes| classify(bytes, filter).is_ok())
        .unwrap_or_else(|| panic!("no sentinel passes {filter:?}"))
}

fn is_tagged(frame: &[u8]) -> bool {
    frame.len() >= ETH_HEADER_LEN && matches!(be16(frame, ETH_TYPE), TPID_8021Q | TPID_8021AD)
}

/// One frame to judge and the verdict the kernel must reach.
struct Case<'a> {
    name: &'a str,
    bytes: &'a [u8],
    admit: bool,
}

/// Outcome of sending a set of frames through one filter.
#[derive(Debug, Default)]
struct Report {
    judged_tap: usize,
    judged_rx: usize,
    admitted_tap: usize,
    /// (socket, frame name, expected, seen)
    mismatches: Vec<(&'static str, String, bool, bool)>,
    strays: Vec<(&'static str, String, String)>,
}

/// Attach `filter`'s program on both listening sockets and judge every case.
fn judge(lab: &Lab, filter: &Filter, cases: &[Case<'_>]) -> Report {
    let program = compile(filter).expect("filter compiles");
    // Each socket stays in the namespace it was opened in, whichever thread reads it.
    let rx = lab
        .reflector
        .run(|| PacketSocket::open(&lab.reflector.interface, Some(&program)))
        .expect("enter the reflector's namespace");
    lab.head
        .run(|| {
            pin_to_one_cpu();
            let sender = PacketSocket::open(&lab.head.interface, None);
            let tap = PacketSocket::open(&lab.head.interface, Some(&program));
            judge_on(filter, cases, &sender, &tap, &rx)
        })
        .expect("enter the head's namespace")
}

/// Send every case and its sentinel from `sender`; judge it on `tap` and `rx`.
fn judge_on(
    filter: &Filter,
    cases: &[Case<'_>],
    sender: &PacketSocket,
    tap: &PacketSocket,
    rx: &PacketSocket,
) -> Report {
    let sentinel = sentinel(filter);
    let mut buf = vec![0u8; 65536];
    let mut report = Report::default();
    for case in cases.iter().filter(|c| c.bytes.len() >= ETH_HEADER_LEN) {
        sender.send(case.bytes);
        sender.send(&sentinel);
        let on_tap = collect(tap, case.bytes, &sentinel, &mut buf);
        report.judged_tap += 1;
        report.admitted_tap += usize::from(on_tap.admitted);
        record(&mut report, "tap", case, on_tap);
        let on_rx = collect(rx, case.bytes, &sentinel, &mut buf);
        // The receive path strips the outer tag before the filter runs (see the top).
        if !is_tagged(case.bytes) {
            report.judged_rx += 1;
            record(&mut report, "rx", case, on_rx);
        }
    }
    report
}

fn record(report: &mut Report, socket: &'static str, case: &Case<'_>, seen: Seen) {
    if seen.admitted != case.admit {
        report
            .mismatches
            .push((socket, case.name.to_owned(), case.admit, seen.admitted));
    }
    for stray in seen.strays {
        report.strays.push((socket, case.name.to_owned(), stray));
    }
}

fn assert_clean(what: &str, report: &Report, cases: &[Case<'_>]) {
    let sendable = cases
        .iter()
        .filter(|c| c.bytes.len() >= ETH_HEADER_LEN)
        .count();
    assert_eq!(
        report.judged_tap, sendable,
        "{what}: every sendable frame is judged on tap"
    );
    let untagged = cases
        .iter()
        .filter(|c| c.bytes.len() >= ETH_HEADER_LEN && !is_tagged(c.bytes))
        .count();
    assert_eq!(
        report.judged_rx, untagged,
        "{what}: every untagged frame is judged on rx"
    );
    assert!(
        report.mismatches.is_empty(),
        "{what}: kernel verdicts differ from classify (socket, frame, expected admit, admitted):\n{:#?}",
        report.mismatches
    );
    assert!(
        report.strays.is_empty(),
        "{what}: the filter admitted foreign frames:\n{:#?}",
        report.strays
    );
    eprintln!(
        "{what}: {} frames judged on tap ({} admitted), {} untagged on rx, all equal to classify",
        report.judged_tap, report.admitted_tap, report.judged_rx
    );
}

fn cases_under<'a>(frames: &'a [ReferenceFrame], filter: &Filter) -> Vec<Case<'a>> {
    frames
        .iter()
        .map(|f| Case {
            name: f.name,
            bytes: &f.bytes,
            admit: classify(&f.bytes, filter).is_ok(),
        })
        .collect()
}

/// Frames around the STAMP decision, named: to each of `ports`, from an ephemeral port
/// and from the destination port itself (to the STAMP port, another reflector's
/// answer), with UDP payloads below, at and above a STAMP packet's minimum (a PROBEOT
/// signature when they are long enough for one), from NetAlly's OUI and a foreign one,
/// over IPv4 and IPv6.
fn stamp_frames(ports: &[u16]) -> Vec<(String, Vec<u8>)> {
    let long = signature_payload(Signature::ProbeOt, 64);
    let mut frames = Vec::new();
    for &port in ports {
        for src_port in [49152, port] {
            for len in [
                12,
                STAMP_MIN_PAYLOAD - 1,
                STAMP_MIN_PAYLOAD,
                STAMP_MIN_PAYLOAD + 20,
            ] {
                for (oui, src) in [("netally", HEAD_MAC), ("foreign", FOREIGN_MAC)] {
                    for (ip, mut builder) in [
                        (
                            "v4",
                            FrameBuilder::ipv4(src, REFLECTOR_MAC, Signature::ProbeOt),
                        ),
                        (
                            "v6",
                            FrameBuilder::ipv6(src, REFLECTOR_MAC, Signature::ProbeOt),
                        ),
                    ] {
                        builder.src_port = src_port;
                        builder.dst_port = port;
                        builder.payload = long[..len].to_vec();
                        let name =
                            format!("{ip} port {src_port} -> {port} payload {len} from {oui} OUI");
                        frames.push((name, builder.build()));
                    }
                }
            }
        }
    }
    frames
}

#[test]
fn reference_filter_admits_exactly_what_classify_accepts() {
    let frames = reference_frames();
    let filter = reference_filter();
    let cases = cases_under(&frames, &filter);
    let admitted = cases.iter().filter(|c| c.admit).count();
    assert!(
        admitted >= 20 && admitted < cases.len() - 20,
        "the reference set exercises both verdicts"
    );
    let lab = jumbo_lab();
    let report = judge(&lab, &filter, &cases);
    assert_clean("reference filter", &report, &cases);
    assert_eq!(report.admitted_tap, admitted);
}

#[test]
fn every_reference_frame_gets_its_spec_verdict() {
    let frames = reference_frames();
    // Frames carry the filter their verdict holds for; judge each group under its own.
    let mut filters: Vec<Filter> = Vec::new();
    for frame in &frames {
        if !filters.contains(&frame.filter) {
            filters.push(frame.filter);
        }
    }
    assert!(filters.len() > 1, "the reference set varies the filter");
    let lab = jumbo_lab();
    for filter in filters {
        let cases: Vec<Case<'_>> = frames
            .iter()
            .filter(|f| f.filter == filter)
            .map(|f| Case {
                name: f.name,
                bytes: &f.bytes,
                admit: f.expected.is_ok(),
            })
            .collect();
        let report = judge(&lab, &filter, &cases);
        assert_clean(&format!("spec verdicts under {filter:?}"), &report, &cases);
    }
}

#[test]
fn second_configuration_admits_exactly_what_classify_accepts() {
    let filter = Filter {
        dst_mac: DstMacFilter::AnyUnicast,
        src_oui: None,
        udp_port: 0,
        stamp_port: DEFAULT_STAMP_PORT,
        signatures: [Signature::Rfc2544, Signature::Y1564, Signature::ProbeOt]
            .into_iter()
            .collect(),
        ipv6: false,
        vlan: false,
        broadcasts: reference_filter_with_prefixes().broadcasts,
    };
    let frames = reference_frames();
    let cases = cases_under(&frames, &filter);
    let admitted = cases.iter().filter(|c| c.admit).count();
    // Differs from the reference filter: e.g. the foreign OUI and wrong port frames pass,
    // tagged and IPv6 frames do not.
    let differs = cases_under(&frames, &reference_filter())
        .iter()
        .zip(&cases)
        .filter(|(a, b)| a.admit != b.admit)
        .count();
    assert!(
        admitted >= 5 && differs >= 10,
        "admitted {admitted}, differs {differs}"
    );
    let lab = jumbo_lab();
    let report = judge(&lab, &filter, &cases);
    assert_clean("second configuration", &report, &cases);
    assert_eq!(report.admitted_tap, admitted);
}

/// STAMP on a custom port next to the ITO port, with the OUI filter on: STAMP packets
/// from any OUI are admitted there, short ones, those from the STAMP port and those to
/// the default STAMP port are not, and signature frames still need the ITO port and
/// NetAlly's OUI. Then the same frames with STAMP off.
#[test]
fn stamp_configurations_admit_exactly_what_classify_accepts() {
    const CUSTOM_STAMP_PORT: u16 = 8620;
    let stamp_on = Filter {
        stamp_port: CUSTOM_STAMP_PORT,
        ..reference_filter()
    };
    let stamp_off = Filter {
        signatures: SignatureSet::ALL
            .iter()
            .filter(|s| *s != Signature::Stamp)
            .collect(),
        ..stamp_on
    };
    let named = stamp_frames(&[
        CUSTOM_STAMP_PORT,
        DEFAULT_STAMP_PORT,
        DEFAULT_UDP_PORT,
        9999,
    ]);
    let references = reference_frames();
    let lab = jumbo_lab();
    for (what, filter) in [("STAMP on port 8620", stamp_on), ("STAMP off", stamp_off)] {
        let mut cases = cases_under(&references, &filter);
        cases.extend(named.iter().map(|(name, bytes)| Case {
            name,
            bytes,
            admit: classify(bytes, &filter).is_ok(),
        }));
        let stamps = named
            .iter()
            .filter(|(_, bytes)| matches!(classify(bytes, &filter), Ok(a) if a.signature == Signature::Stamp))
            .count();
        let from_reflector = named
            .iter()
            .filter(|(_, bytes)| classify(bytes, &filter) == Err(Reject::StampFromReflector))
            .count();
        let (expected_stamps, expected_from_reflector) =
            if filter.signatures.contains(Signature::Stamp) {
                // To port 8620: from an ephemeral port with a long enough payload, and
                // from port 8620 itself at every length; from either OUI, over v4 and v6.
                (8, 16)
            } else {
                (0, 0)
            };
        assert_eq!(
            (stamps, from_reflector),
            (expected_stamps, expected_from_reflector),
            "{what}: STAMP frames accepted and StampFromReflector rejects by classify"
        );
        let admitted = cases.iter().filter(|c| c.admit).count();
        let report = judge(&lab, &filter, &cases);
        assert_clean(what, &report, &cases);
        assert_eq!(report.admitted_tap, admitted);
    }
}
