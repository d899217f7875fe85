//! The reference table against the classifier and the reflector.

mod common;

use common::checksums_verify;
use dataplane::parse::*;
use dataplane::reference::*;
use dataplane::{classify, reflect, Mode, Reject, Signature};
use std::collections::HashSet;

#[test]
fn every_reference_frame_gets_its_expected_verdict() {
    let mut failures = Vec::new();
    for frame in reference_frames() {
        let verdict = classify(&frame.bytes, &frame.filter).map(|a| a.signature);
        if verdict != frame.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                frame.name, frame.expected, verdict
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reference_names_are_unique() {
    let frames = reference_frames();
    let names: HashSet<_> = frames.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), frames.len());
}

#[test]
fn table_covers_every_reason_and_every_signature_on_both_ip_versions() {
    let frames = reference_frames();
    for reason in Reject::ALL
        .into_iter()
        .filter(|r| !r.is_policy() && !r.is_path_limit())
    {
        assert!(
            frames.iter().any(|f| f.expected == Err(reason)),
            "no reference frame for {reason}"
        );
    }
    for signature in Signature::ALL {
        for ip in [IpVersion::V4, IpVersion::V6] {
            let covered = frames.iter().any(|f| {
                f.expected == Ok(signature)
                    && classify(&f.bytes, &f.filter).map(|a| a.layout.ip) == Ok(ip)
            });
            assert!(covered, "no accepted {ip:?} frame for {signature}");
        }
    }
}

#[test]
fn netally_capture_reflects_byte_exact() {
    let mut frame = NETALLY_PROBEOT_FRAME;
    let accepted = classify(&frame, &reference_filter()).unwrap();
    reflect(&mut frame, &accepted.layout, Mode::All);
    assert_eq!(frame, NETALLY_PROBEOT_REFLECTED);
}

#[test]
fn every_mode_swaps_exactly_its_fields_and_keeps_checksums() {
    for frame in reference_frames()
        .into_iter()
        .filter(|f| f.expected.is_ok())
    {
        let accepted = classify(&frame.bytes, &frame.filter).unwrap();
        let l = accepted.layout;
        assert!(
            checksums_verify(&frame.bytes, &l),
            "{}: reference checksums broken",
            frame.name
        );
        let (ip_src, ip_dst, ip_len) = match l.ip {
            IpVersion::V4 => (l.l3 + IPV4_SRC, l.l3 + IPV4_DST, 4),
            IpVersion::V6 => (l.l3 + IPV6_SRC, l.l3 + IPV6_DST, 16),
        };
        for mode in Mode::ALL {
            let original = &frame.bytes;
            let mut out = original.clone();
            reflect(&mut out, &l, mode);
            let mut expected = original.clone();
            expected[ETH_DST..ETH_DST + 6].copy_from_slice(&original[ETH_SRC..ETH_SRC + 6]);
            expected[ETH_SRC..ETH_SRC + 6].copy_from_slice(&original[ETH_DST..ETH_DST + 6]);
            if mode != Mode::Mac {
                expected[ip_src..ip_src + ip_len]
                    .copy_from_slice(&original[ip_dst..ip_dst + ip_len]);
                expected[ip_dst..ip_dst + ip_len]
                    .copy_from_slice(&original[ip_src..ip_src + ip_len]);
            }
            if mode == Mode::All {
                expected[l.l4..l.l4 + 2].copy_from_slice(&original[l.l4 + 2..l.l4 + 4]);
                expected[l.l4 + 2..l.l4 + 4].copy_from_slice(&original[l.l4..l.l4 + 2]);
            }
            assert_eq!(out, expected, "{} in mode {mode}", frame.name);
            assert!(
                checksums_verify(&out, &l),
                "{} in mode {mode}: checksum broken",
                frame.name
            );
            reflect(&mut out, &l, mode);
            assert_eq!(
                &out, original,
                "{}: reflecting twice in mode {mode} must restore",
                frame.name
            );
        }
    }
}

#[test]
fn vlan_tags_survive_reflection_unchanged() {
    let frame = reference_frames()
        .into_iter()
        .find(|f| f.name == "QinQ 802.1ad + 802.1Q")
        .unwrap();
    let accepted = classify(&frame.bytes, &frame.filter).unwrap();
    assert_eq!(accepted.layout.vlan_tags, 2);
    let mut out = frame.bytes.clone();
    reflect(&mut out, &accepted.layout, Mode::All);
    assert_eq!(
        out[12..22],
        frame.bytes[12..22],
        "tags and inner EtherType must not change"
    );
}
