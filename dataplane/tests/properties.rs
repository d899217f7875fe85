//! Property tests: arbitrary input never panics the classifier; any accepted frame
//! reflects back to itself and keeps valid checksums.

mod common;

use common::checksums_verify;
use dataplane::frame::{FrameBuilder, IpSpec};
use dataplane::parse::*;
use dataplane::reference::{reference_filter, reference_frames, HEAD_MAC, REFLECTOR_MAC};
use dataplane::{classify, reflect, Filter, Mode, Signature};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn any_signature() -> impl Strategy<Value = Signature> {
    prop::sample::select(Signature::ALL.to_vec())
}

fn any_mode() -> impl Strategy<Value = Mode> {
    prop::sample::select(Mode::ALL.to_vec())
}

fn any_filter() -> impl Strategy<Value = Filter> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u16, 3842, 7]),
    )
        .prop_map(|(oui, ipv6, vlan, udp_port)| Filter {
            src_oui: if oui {
                reference_filter().src_oui
            } else {
                None
            },
            ipv6,
            vlan,
            udp_port,
            ..reference_filter()
        })
}

/// Random IPv6 addresses, with IPv4-mapped ones (::ffff:a.b.c.d) and ::1 common
/// enough to be tried.
fn any_ipv6() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        6 => any::<[u8; 16]>(),
        3 => any::<[u8; 4]>().prop_map(|v4| Ipv4Addr::from(v4).to_ipv6_mapped().octets()),
        1 => Just(Ipv6Addr::LOCALHOST.octets()),
    ]
}

/// The spec's never-reflect rules for IP endpoints, written out from the standard
/// library's address predicates rather than the classifier's: unspecified, broadcast,
/// multicast and loopback addresses on either side, the IPv4 part of an IPv4-mapped
/// address counting as the address, and a source equal to the destination.
fn endpoints_refused(ip: &IpSpec) -> bool {
    fn v4(addr: Ipv4Addr) -> bool {
        addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback()
    }
    fn v6(addr: Ipv6Addr) -> bool {
        match addr.to_ipv4_mapped() {
            Some(mapped) => v4(mapped),
            None => addr.is_unspecified() || addr.is_multicast() || addr.is_loopback(),
        }
    }
    match ip {
        IpSpec::V4 { src, dst, .. } => v4((*src).into()) || v4((*dst).into()) || src == dst,
        IpSpec::V6 { src, dst, .. } => v6((*src).into()) || v6((*dst).into()) || src == dst,
    }
}

/// Well-formed test frames with random addresses, tags, options and payload sizes.
fn any_test_frame() -> impl Strategy<Value = FrameBuilder> {
    let tags = prop::collection::vec(
        (
            prop::sample::select(vec![TPID_8021Q, TPID_8021AD]),
            0u16..4096,
        ),
        0..=2,
    );
    let ext = prop::collection::vec(
        prop::sample::select(vec![
            IPV6_EXT_HOP_BY_HOP,
            IPV6_EXT_ROUTING,
            IPV6_EXT_DEST_OPTIONS,
        ]),
        0..=MAX_IPV6_EXT_HEADERS,
    );
    let v4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        0usize..=10,
        any::<bool>(),
    )
        .prop_map(|(src, dst, words, sum)| IpSpec::V4 {
            src,
            dst,
            ttl: 64,
            options: vec![1; words * 4],
            flags_fragment: 0x4000,
            udp_checksum: sum,
        });
    let v6 = (any_ipv6(), any_ipv6(), ext).prop_map(|(src, dst, extension_headers)| IpSpec::V6 {
        src,
        dst,
        hop_limit: 64,
        extension_headers,
    });
    (
        any_signature(),
        tags,
        prop_oneof![v4, v6],
        any::<u16>(),
        0usize..1500,
        any::<[u8; 3]>(),
    )
        .prop_map(|(signature, vlan_tags, ip, src_port, wire_len, host)| {
            let mut src_mac = HEAD_MAC;
            src_mac.0[3..].copy_from_slice(&host);
            let mut b =
                FrameBuilder::ipv4(src_mac, REFLECTOR_MAC, signature).sized_for_wire(wire_len);
            b.vlan_tags = vlan_tags;
            b.ip = ip;
            b.src_port = src_port;
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), filter in any_filter()) {
        let _ = classify(&bytes, &filter);
    }

    #[test]
    fn mutated_reference_frames_never_panic_and_reflect_back(
        index in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        mode in any_mode(),
    ) {
        let frames = reference_frames();
        let reference = &frames[index.index(frames.len())];
        let mut bytes = reference.bytes.clone();
        if !bytes.is_empty() {
            for (at, value) in &flips {
                let at = at.index(bytes.len());
                bytes[at] = *value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(accepted) = classify(&bytes, &reference.filter) {
            let original = bytes.clone();
            reflect(&mut bytes, &accepted.layout, mode);
            reflect(&mut bytes, &accepted.layout, mode);
            prop_assert_eq!(bytes, original);
        }
    }

    #[test]
    fn well_formed_frames_are_accepted_exactly_when_the_rules_allow(builder in any_test_frame(), mode in any_mode()) {
        let filter = reference_filter();
        let bytes = builder.build();
        let verdict = classify(&bytes, &filter);
        prop_assert_eq!(verdict.is_ok(), !endpoints_refused(&builder.ip), "{:?}", verdict);
        if let Ok(accepted) = verdict {
            prop_assert_eq!(accepted.layout.vlan_tags as usize, builder.vlan_tags.len());
            prop_assert!(checksums_verify(&bytes, &accepted.layout));
            let mut out = bytes.clone();
            reflect(&mut out, &accepted.layout, mode);
            prop_assert!(checksums_verify(&out, &accepted.layout), "checksum broken by {}", mode);
            prop_assert_eq!(&out[ETH_DST..ETH_DST + 6], &bytes[ETH_SRC..ETH_SRC + 6]);
            prop_assert_eq!(out.len(), bytes.len());
            reflect(&mut out, &accepted.layout, mode);
            prop_assert_eq!(out, bytes);
        }
    }
}
