//! Jumbo frames on every back end: on a lab whose link runs at MTU 9000, frames of 1500,
//! 4000, 9000 and 9018 bytes (the last a 9000-byte IP packet with Ethernet and a VLAN
//! tag) come back byte for byte with their addresses swapped and are counted, through
//! AF_XDP (multi-buffer: a frame longer than a UMEM chunk is a chain of buffers), the
//! in-kernel XDP_TX path and AF_PACKET; the XDP program attaches in native mode, and
//! the first line says so and what the path carries. Longer frames than a path takes
//! are counted as `too_large`, never lost silently.

use dataplane::frame::{FrameBuilder, FCS_LEN};
use dataplane::parse::TPID_8021Q;
use dataplane::{
    classify, reflect, Counters, DstMacFilter, Filter, MacAddr, Mode, Reject, Signature,
};
use platform_linux::packet::{PacketSocket, MAX_FRAME_LEN as AF_PACKET_MAX_FRAME_LEN};
use platform_linux::xsk::MULTI_BUFFER_MAX_FRAME_LEN;
use reflector_tests::*;
use std::collections::HashMap;
use std::time::Duration;

/// Frame lengths (no FCS) and VLAN tag: one chunk, two, three, and the longest test frame.
const SIZES: [(usize, Option<u16>); 4] =
    [(1500, None), (4000, None), (9000, None), (9018, Some(10))];
const PER_SIZE: usize = 25;

/// Each back end, its flags and the XDP mode its first line must report: native unless
/// generic is asked for, never a silent fallback to generic at a jumbo MTU.
const BACKENDS: [(&str, &[&str], Option<&str>); 4] = [
    ("af_xdp", &["--backend", "xdp"], Some("native")),
    (
        "af_xdp",
        &["--backend", "xdp", "--xdp-mode", "generic"],
        Some("generic"),
    ),
    (
        "xdp_tx",
        &["--backend", "xdp-tx", "--max-streams", "0"],
        Some("native"),
    ),
    ("af_packet", &["--backend", "af-packet"], None),
];

/// A lab at `mtu` whose head also receives what the XDP program sends back with XDP_TX.
struct JumboRig {
    rig: Rig,
    _head_program: HeadXdpReceiver,
}

fn rig(name: &str, mtu: u32) -> JumboRig {
    let rig = Rig::new(name);
    rig.lab
        .set_mtu(mtu)
        .unwrap_or_else(|e| panic!("cannot set the lab's MTU to {mtu}: {e}"));
    let head_program = rig.receive_xdp_tx_on_head();
    JumboRig {
        rig,
        _head_program: head_program,
    }
}

fn mac(text: &str) -> MacAddr {
    text.parse().expect("a lab MAC")
}

/// An RFC 2544 test frame of `len` bytes (no FCS), its payload a pattern that differs
/// from byte to byte and from frame to frame (`seq`): a buffer copied to the wrong place
/// or a chain put together out of order would show.
fn test_frame(len: usize, vlan: Option<u16>, seq: usize) -> Vec<u8> {
    let mut builder = FrameBuilder::ipv4(mac(HEAD_MAC), mac(REFLECTOR_MAC), Signature::Rfc2544);
    builder.vlan_tags = vlan.map(|id| (TPID_8021Q, id)).into_iter().collect();
    let mut builder = builder.sized_for_wire(len + FCS_LEN);
    let pattern_from = Signature::Rfc2544.min_payload();
    for (i, byte) in builder.payload[pattern_from..].iter_mut().enumerate() {
        *byte = (i.wrapping_mul(31) ^ i >> 8 ^ seq) as u8;
    }
    let frame = builder.build();
    assert_eq!(frame.len(), len);
    frame
}

/// What a reflector in `all` mode sends back for `frame`.
fn reflection_of(frame: &[u8]) -> Vec<u8> {
    let any = Filter {
        dst_mac: DstMacFilter::AnyUnicast,
        src_oui: None,
        udp_port: 0,
        ..Filter::default()
    };
    let layout = classify(frame, &any).expect("a valid test frame").layout;
    let mut reflected = frame.to_vec();
    reflect(&mut reflected, &layout, Mode::All);
    reflected
}

/// Send `frames` from the head in bursts (so the reflector's receive batches end inside
/// chained frames too); the frames that came back within `window` that are exactly the
/// expected reflection of one sent (each counted once), and the UDP frames from the
/// reflector that are not.
fn round_trip(rig: &Rig, frames: &[Vec<u8>], window: Duration) -> (usize, usize) {
    let mut expected: HashMap<Vec<u8>, usize> = HashMap::new();
    for frame in frames {
        *expected.entry(reflection_of(frame)).or_default() += 1;
    }
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let head = &rig.lab.head;
    head.run(|| {
        let socket = PacketSocket::open(&head.interface).expect("packet socket on the head");
        send_all(&socket, &frames);
        let (mut exact, mut wrong) = (0, 0);
        let tally = |frame: &[u8]| match expected.get_mut(frame) {
            Some(left) if *left > 0 => {
                *left -= 1;
                exact += 1;
            }
            _ => wrong += 1,
        };
        for_each_udp_frame_from(&socket, mac(REFLECTOR_MAC), window, tally);
        (exact, wrong)
    })
    .expect("enter the head's namespace")
}

fn assert_counted(totals: &Counters, frames: &[Vec<u8>], backend: &str) {
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let sent = frames.len() as u64;
    assert_eq!(totals.reflected, sent, "{backend}: {totals:?}");
    assert_eq!(totals.signature(Signature::Rfc2544), sent, "{backend}");
    assert_eq!(totals.tx_bytes, bytes, "{backend}: reflected bytes");
    assert_eq!(totals.reject(Reject::TooLarge), 0, "{backend}: {totals:?}");
    assert_eq!(totals.tx_errors, 0, "{backend}: {totals:?}");
}

#[test]
fn jumbo_frames_come_back_byte_exact_on_every_back_end() {
    let jumbo = rig("jumbo", 9000);
    let rig = &jumbo.rig;
    let frames: Vec<Vec<u8>> = SIZES
        .iter()
        .flat_map(|&(len, vlan)| (0..PER_SIZE).map(move |seq| test_frame(len, vlan, seq)))
        .collect();
    for (backend, args, xdp_mode) in BACKENDS {
        let reflector = rig.start_reflector(args);
        let platform = &reflector.platform;
        assert_eq!(platform.backend, backend);
        assert_eq!(platform.xdp_mode.as_deref(), xdp_mode, "{platform:?}");
        let max_frame_len = if xdp_mode.is_some() {
            MULTI_BUFFER_MAX_FRAME_LEN
        } else {
            AF_PACKET_MAX_FRAME_LEN as u32
        };
        assert_eq!(platform.max_frame_len, Some(max_frame_len), "{platform:?}");
        let backend = &format!("{args:?}");
        let (exact, wrong) = round_trip(rig, &frames, Duration::from_millis(800));
        let totals = reflector.stop();
        assert_eq!(wrong, 0, "{backend}: frames came back altered");
        assert_eq!(
            exact,
            frames.len(),
            "{backend}: {exact} of {} came back",
            frames.len()
        );
        assert_counted(&totals, &frames, backend);
    }
}

/// A frame 16 bytes longer than an AF_XDP socket (16 KiB) takes, and so than an
/// AF_PACKET slot (9216 B): both count it as `too_large`; the in-kernel path reflects it.
#[test]
fn frames_longer_than_a_path_takes_are_counted_as_too_large() {
    let len = MULTI_BUFFER_MAX_FRAME_LEN as usize + 16;
    let jumbo = rig("toolarge", len as u32 + 100);
    let rig = &jumbo.rig;
    let frames: Vec<Vec<u8>> = (0..10).map(|seq| test_frame(len, None, seq)).collect();
    for (backend, args, _) in BACKENDS {
        let reflector = rig.start_reflector(args);
        // Nothing comes back where the path cannot carry it (and the head's slots could
        // not hold it anyway): the counters tell.
        round_trip(rig, &frames, Duration::from_millis(400));
        let totals = reflector.stop();
        if backend == "xdp_tx" {
            assert_counted(&totals, &frames, backend);
        } else {
            assert_eq!(totals.reject(Reject::TooLarge), 10, "{args:?}: {totals:?}");
            assert_eq!(totals.reflected, 0, "{args:?}: {totals:?}");
        }
    }
}
