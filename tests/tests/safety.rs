//! Reflector safety over the real data path: the never-reflect rules, the source
//! allow-list, the per-source rate limit and the loop timeout, each with its counter.

use dataplane::reference::{
    reference_filter, reference_frames, REFLECTOR_MAC as REFERENCE_REFLECTOR_MAC,
};
use dataplane::Reject;
use reflector_tests::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Every reference frame a reflector with the default settings judges (all of them
/// fit the veth MTU), injected raw from the head: the accepted ones come back, the
/// rest — broadcast/multicast sources, src == dst MAC, bad IP endpoints, truncated
/// headers, lying lengths, fragments, ... — never do, and each is counted under the
/// reason the reference table gives.
#[test]
fn never_reflect_rules_hold_on_the_wire() {
    let rig = Rig::new("never");
    let reflector = rig.start_reflector(&[]);
    let frames: Vec<_> = reference_frames()
        .into_iter()
        .filter(|f| f.filter == reference_filter() && (14..=1514).contains(&f.bytes.len()))
        .collect();
    let accepted = frames.iter().filter(|f| f.expected.is_ok()).count();
    let mut expected_rejects = BTreeMap::new();
    for reason in frames.iter().filter_map(|f| f.expected.err()) {
        *expected_rejects.entry(reason).or_insert(0u64) += 1;
    }
    assert!(expected_rejects.contains_key(&Reject::SrcMacGroup));
    assert!(expected_rejects.contains_key(&Reject::Fragment));

    // The reference frames are addressed to the lab's reflector.
    assert_eq!(REFERENCE_REFLECTOR_MAC.to_string(), REFLECTOR_MAC);
    let bytes: Vec<&[u8]> = frames.iter().map(|f| f.bytes.as_slice()).collect();
    let came_back =
        rig.inject_and_count_answers(&bytes, REFERENCE_REFLECTOR_MAC, Duration::from_millis(700));
    let totals = reflector.stop();

    assert_eq!(came_back, accepted, "exactly the accepted frames come back");
    assert_eq!(totals.reflected, accepted as u64);
    // The head's own stack also talks on the link (IPv6 neighbour discovery, ARP):
    // multicast, non-IP and non-UDP frames the reflector refuses along with ours.
    let background = [Reject::DstMacMismatch, Reject::NotIp, Reject::NotUdp];
    for (reason, count) in &expected_rejects {
        if background.contains(reason) {
            assert!(totals.reject(*reason) >= *count, "{reason}");
        } else {
            assert_eq!(totals.reject(*reason), *count, "{reason}");
        }
    }
}

#[test]
fn allow_list_answers_only_listed_sources() {
    let rig = Rig::new("allow");
    let reflector = rig.start_reflector(&["--allow", ALLOW_LIST]);
    let [refused, allowed] = rig.probe_refused_then_allowed();
    let totals = reflector.stop();
    assert_eq!((refused.sent, refused.received), (100, 0), "{refused:?}");
    assert_eq!((allowed.sent, allowed.received), (100, 100), "{allowed:?}");
    assert_eq!(totals.reject(Reject::SourceNotAllowed), 100);
    assert_eq!(totals.reflected, 100);
}

#[test]
fn rate_limit_caps_each_source() {
    let rig = Rig::new("ratelim");
    let reflector = rig.start_reflector(&["--rate-limit", "200", "--rate-burst", "20"]);
    // 1000 frames at 2000 pps: half a second, in which one source earns its burst of
    // 20 plus 200/s x 0.5 s = about 120 answers.
    let report = rig.probe(&["--count", "1000", "--rate", "2000", "--wait", "0.3"]);
    let totals = reflector.stop();
    assert_eq!(report.sent, 1000);
    assert!(
        (100..=170).contains(&report.received),
        "expected about 120 answers, got {report:?}"
    );
    assert_eq!(totals.reflected, report.received);
    assert_eq!(totals.reject(Reject::RateLimited), 1000 - report.received);
}

#[test]
fn loop_timeout_stops_reflecting_and_reports_it() {
    let rig = Rig::new("looptmo");
    let reflector = rig.start_reflector(&["--loop-timeout", "1"]);
    let started = Instant::now();
    // 2.5 s of traffic at 1000 pps: roughly the first second is answered.
    let report = rig.probe(&["--count", "2500", "--rate", "1000", "--wait", "0.3"]);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let (totals, telemetry) = reflector.stop_with_telemetry();
    assert_eq!(report.sent, 2500);
    assert!(
        (500..=1500).contains(&report.received),
        "expected about a second's worth of answers, got {report:?}"
    );
    assert_eq!(totals.reject(Reject::LoopTimeout), 2500 - report.received);
    assert!(telemetry.loop_timed_out);
}
