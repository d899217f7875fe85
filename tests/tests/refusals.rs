//! The refusals that turn on the reflector's own addresses and on where a frame ends,
//! over the real data path on each Linux back end: directed broadcasts of the
//! interface's prefixes (learned at start, and re-learned while running), martian
//! sources and destinations (loopback, source equal to destination, IPv4-mapped IPv6
//! addresses judged by their IPv4 part) and bytes after the IP datagram beyond Ethernet's
//! minimum-frame padding. Each refused frame must not come back and must be counted
//! under its reason.

use dataplane::reference::{
    reference_filter, reference_filter_with_prefixes, reference_frames, REFERENCE_PREFIXES,
    REFLECTOR_MAC as REFERENCE_REFLECTOR_MAC,
};
use dataplane::{classify, Reject};
use reflector_tests::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// The back ends a frame can take on Linux: AF_PACKET, AF_XDP behind the XDP program,
/// and the XDP program reflecting in the kernel (which tracks no streams).
const BACKENDS: [&[&str]; 3] = [
    &["--backend", "af-packet"],
    &["--backend", "xdp"],
    &["--backend", "xdp-tx", "--max-streams", "0"],
];

/// Reasons the head's own stack also produces on the link (neighbour discovery, ARP,
/// multicast): counted at least as often as the injected frames give them.
const BACKGROUND: [Reject; 3] = [Reject::DstMacMismatch, Reject::NotIp, Reject::NotUdp];

/// Every reference frame that fits the link, judged as a reflector on the lab's
/// interface judges it once that interface also holds the reference /25: answered
/// exactly when `classify` accepts it, every refusal counted under its reason, the new
/// ones (directed broadcast, src == dst, loopback, IPv4-mapped, trailer) among them.
#[test]
fn address_and_trailer_refusals_hold_on_every_backend() {
    let interface_filter = reference_filter_with_prefixes();
    let frames: Vec<_> = reference_frames()
        .into_iter()
        .filter(|f| [reference_filter(), interface_filter].contains(&f.filter))
        .filter(|f| (14..=1514).contains(&f.bytes.len()))
        // A frame that ends inside its headers may not survive AF_PACKET's receive
        // path (a tag cut short); the XDP back end's test in safety.rs has those.
        .filter(|f| f.expected != Err(Reject::Truncated))
        .collect();
    let verdicts: Vec<_> = frames
        .iter()
        .map(|f| classify(&f.bytes, &interface_filter))
        .collect();
    let accepted = verdicts.iter().filter(|v| v.is_ok()).count();
    let mut expected_rejects = BTreeMap::new();
    for reason in verdicts.iter().filter_map(|v| v.err()) {
        *expected_rejects.entry(reason).or_insert(0u64) += 1;
    }
    for reason in [
        Reject::DirectedBroadcast,
        Reject::SrcIpIsDst,
        Reject::SrcIpLoopback,
        Reject::DstIpLoopback,
        Reject::LengthMismatch,
        Reject::SrcIpInvalid,
        Reject::DstIpInvalid,
    ] {
        assert!(
            expected_rejects.contains_key(&reason),
            "no frame for {reason}"
        );
    }
    assert_eq!(REFERENCE_REFLECTOR_MAC.to_string(), REFLECTOR_MAC);
    let bytes: Vec<&[u8]> = frames.iter().map(|f| f.bytes.as_slice()).collect();

    for backend in BACKENDS {
        let rig = Rig::new("refuse");
        let _head = rig.receive_xdp_tx_on_head();
        // The lab's end holds the first reference prefix; add the others.
        assert!(REFERENCE_PREFIXES[0].starts_with(REFLECTOR_IP));
        for prefix in &REFERENCE_PREFIXES[1..] {
            rig.reflector_address("add", prefix);
        }
        let reflector = rig.start_reflector(backend);
        let backend = reflector.platform.backend.clone();
        let came_back = rig.inject_and_count_answers(
            &bytes,
            REFERENCE_REFLECTOR_MAC,
            Duration::from_millis(700),
        );
        let totals = reflector.stop();
        assert_eq!(
            came_back, accepted,
            "{backend}: exactly the accepted frames come back"
        );
        assert_eq!(totals.reflected, accepted as u64, "{backend}");
        for (reason, count) in &expected_rejects {
            let counted = totals.reject(*reason);
            if BACKGROUND.contains(reason) {
                assert!(counted >= *count, "{backend}: {reason} {counted} < {count}");
            } else {
                assert_eq!(counted, *count, "{backend}: {reason}");
            }
        }
    }
}

/// A prefix added to the interface while the reflector runs makes its directed
/// broadcast refused within a couple of seconds, and removing it makes such frames test
/// frames again: in the workers (AF_PACKET, AF_XDP) and in the XDP program's own copy
/// (which reflects by itself with `xdp-tx`).
#[test]
fn an_address_added_while_running_makes_its_broadcast_refused() {
    const PREFIX: &str = "203.0.113.7/24";
    const BROADCAST: &str = "203.0.113.255";
    // Longer than the reflector's re-reading period (one second) plus a worker's batch.
    let settle = Duration::from_millis(2000);
    let probe = ["--count", "50", "--rate", "1000", "--wait", "0.3"];
    let to_broadcast = [&probe[..], &["--dst-ip", BROADCAST]].concat();
    for backend in BACKENDS {
        let rig = Rig::new("relearn");
        let _head = rig.receive_xdp_tx_on_head();
        let reflector = rig.start_reflector(backend);
        let backend = reflector.platform.backend.clone();
        let before = rig.probe(&to_broadcast);
        assert_eq!(
            (before.sent, before.received),
            (50, 50),
            "{backend}: {BROADCAST} is no broadcast of ours yet: {before:?}"
        );
        rig.reflector_address("add", PREFIX);
        std::thread::sleep(settle);
        let refused = rig.probe(&to_broadcast);
        rig.reflector_address("del", PREFIX);
        std::thread::sleep(settle);
        let after = rig.probe(&to_broadcast);
        let totals = reflector.stop();
        assert_eq!(
            (refused.sent, refused.received),
            (50, 0),
            "{backend}: the new prefix's broadcast was answered: {refused:?}"
        );
        assert_eq!(totals.reject(Reject::DirectedBroadcast), 50, "{backend}");
        assert_eq!(
            (after.sent, after.received),
            (50, 50),
            "{backend}: answered again once the prefix is gone: {after:?}"
        );
        assert_eq!(totals.reflected, 100, "{backend}");
    }
}
