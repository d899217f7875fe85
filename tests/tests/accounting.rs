//! Every frame that arrives is accounted for: what the kernel drops at the worker's
//! socket (a full RX ring while the worker is stopped) shows up in the reflector's own
//! totals, and the socket that holds the STAMP port for the copying back ends
//! discards what it gets instead of queueing it.

use dataplane::Counters;
use netlab::End;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reflector_tests::{Reflector, Rig};
use std::time::Duration;

/// One of an interface's standard counters (/sys/class/net/IF/statistics/NAME).
fn interface_counter(end: &End, name: &str) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/{name}", end.interface);
    let out = reflector_tests::must(end.exec("cat").arg(&path));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{path} is not a number: {e}"))
}

/// Frames lost on the veth itself, before the reflector's socket could see them.
fn veth_drops(rig: &Rig) -> u64 {
    interface_counter(&rig.lab.head, "tx_dropped")
}

/// Freeze the reflector, offer `count` frames (far more than its socket can hold),
/// thaw it, let it drain, stop it. Returns its totals, the frames the probe sent and
/// those the veth dropped on the way.
fn overflow_while_stopped(rig: &Rig, reflector: Reflector, count: u64) -> (Counters, u64, u64) {
    let veth_before = veth_drops(rig);
    let pid = Pid::from_raw(reflector.pid());
    kill(pid, Signal::SIGSTOP).expect("stop the reflector");
    let report = rig.probe(&[
        "--count",
        &count.to_string(),
        "--rate",
        "50000",
        "--wait",
        "0.1",
    ]);
    kill(pid, Signal::SIGCONT).expect("continue the reflector");
    // Long enough to drain a full ring and publish; the final event reads the kernel's
    // counters again anyway.
    std::thread::sleep(Duration::from_millis(1500));
    let totals = reflector.stop();
    (totals, report.sent, veth_drops(rig) - veth_before)
}

/// AF_XDP: the frames the XDP program redirected are exactly those the worker got and
/// those the kernel dropped at the socket. No other frame is redirected in the lab and
/// none is refused in user space, so the worker got `reflected + tx_errors` of them.
#[test]
fn af_xdp_counts_the_frames_a_full_rx_ring_dropped() {
    let rig = Rig::new("acctxdp");
    let reflector = rig.start_reflector(&["--backend", "xdp"]);
    let veth_rx_before = interface_counter(&rig.lab.reflector, "rx_dropped");
    let (totals, sent, on_the_wire) = overflow_while_stopped(&rig, reflector, 20_000);
    let veth_rx = interface_counter(&rig.lab.reflector, "rx_dropped") - veth_rx_before;

    assert_eq!(sent, 20_000);
    let kernel = totals.kernel;
    // Fill ring and RX ring have the same size, so a stopped worker runs the fill ring
    // dry exactly when its RX ring is full: the kernel counts the rest as dropped for
    // want of a buffer.
    assert!(
        kernel.lost() > 0 && kernel.fill_ring_empty > 0,
        "20000 frames into a stopped worker must overflow its 2048-entry rings: {totals:?}"
    );
    assert_eq!(
        totals.reflected + totals.tx_errors + kernel.lost(),
        sent - on_the_wire,
        "reflected + kernel drops must account for every frame that reached the socket \
         ({on_the_wire} lost on the veth): {totals:?}"
    );
    // An independent witness: veth counts each frame its XDP redirect could not
    // deliver to the socket as an RX drop.
    assert_eq!(kernel.lost(), veth_rx, "{totals:?}");
}

/// AF_PACKET: the socket's full receive buffer drops frames (PACKET_STATISTICS). The
/// socket sees every frame on the interface, so frames of the host's own chatter
/// (neighbour discovery) may be among the dropped ones: they are bounded by what the
/// worker refused of that chatter when it did see it, and by a few frames besides.
#[test]
fn af_packet_counts_the_frames_a_full_socket_buffer_dropped() {
    let rig = Rig::new("acctafp");
    let reflector = rig.start_reflector(&["--backend", "af-packet"]);
    let backlog_before = interface_counter(&rig.lab.reflector, "rx_dropped");
    // The socket's 8 MiB buffer holds some 10-20 thousand small frames.
    let (totals, sent, on_the_wire) = overflow_while_stopped(&rig, reflector, 60_000);
    let backlog = interface_counter(&rig.lab.reflector, "rx_dropped") - backlog_before;

    assert_eq!(sent, 60_000);
    assert!(
        totals.kernel.rx_ring_full > 0,
        "60000 frames into a stopped worker must overflow its socket buffer: {totals:?}"
    );
    let reached_the_socket = sent - on_the_wire - backlog;
    let accounted = totals.reflected + totals.tx_errors + totals.kernel.lost();
    assert!(
        accounted >= reached_the_socket && accounted <= reached_the_socket + 16,
        "reflected + kernel drops = {accounted}, but {reached_the_socket} frames reached \
         the socket ({on_the_wire} lost on the veth, {backlog} in the backlog): {totals:?}"
    );
}

/// The local port, receive queue and drop count of the UDP socket bound to `port`
/// in /proc/net/udp6 (the holding socket is dual-stack) or /proc/net/udp.
fn udp_socket_state(end: &End, port: u16) -> Option<(u64, u64)> {
    let wanted = format!(":{port:04X}");
    for table in ["/proc/net/udp6", "/proc/net/udp"] {
        let out = reflector_tests::must(end.exec("cat").arg(table));
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 13 || !fields[1].ends_with(&wanted) {
                continue;
            }
            let (_, rx_queue) = fields[4].split_once(':').expect("tx_queue:rx_queue");
            let rx_queue = u64::from_str_radix(rx_queue, 16).expect("hex rx_queue");
            let drops = fields[12].parse().expect("drops");
            return Some((rx_queue, drops));
        }
    }
    None
}

/// The copying back ends hold the STAMP port with a socket nobody reads; it must
/// discard at once (a drop-all socket filter) rather than queue every STAMP packet
/// until its buffer is full. The answers still come back.
#[test]
fn the_stamp_port_holder_queues_nothing() {
    let rig = Rig::new("accthold");
    let reflector = rig.start_reflector(&["--backend", "af-packet"]);
    let (summary, _) = rig.stamp_sender(&["-c", "200", "-d", "1ms", "-L", "2"]);
    let held = udp_socket_state(&rig.lab.reflector, 862);
    let totals = reflector.stop();

    let (rx_queue, drops) = held.expect("a UDP socket holds port 862 while the reflector runs");
    assert_eq!(rx_queue, 0, "the holding socket queued STAMP packets");
    assert!(
        drops >= 200,
        "the holding socket's filter should have discarded all 200 packets, counted {drops}"
    );
    assert_eq!(summary["packets_received"], 200, "{summary}");
    assert_eq!(totals.signature(dataplane::Signature::Stamp), 200);
}
