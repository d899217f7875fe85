//! `reflector --read in.pcap --write out.pcap` end to end: the real binary, real pcap
//! files, the hand-written NetAlly capture and the whole reference table.

use dataplane::reference::{
    reference_filter, reference_frames, NETALLY_PROBEOT_FRAME, NETALLY_PROBEOT_REFLECTED,
};
use dataplane::{classify, reflect, Mode, Signature};
use pcap::{Capture, Linktype, Packet, PacketHeader};
use settings::events::Event;
use std::path::Path;
use std::process::Command;

fn write_pcap(path: &Path, frames: &[Vec<u8>], linktype: Linktype) {
    let mut out = Capture::dead(linktype).unwrap().savefile(path).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let header = PacketHeader {
            ts: libc::timeval {
                tv_sec: 1_700_000_000 + i as libc::time_t,
                tv_usec: 0,
            },
            caplen: frame.len() as u32,
            len: frame.len() as u32,
        };
        out.write(&Packet::new(&header, frame));
    }
    out.flush().unwrap();
}

fn read_pcap(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut cap = Capture::from_file(path).unwrap();
    let mut frames = Vec::new();
    while let Ok(packet) = cap.next_packet() {
        frames.push((packet.header.ts.tv_sec, packet.data.to_vec()));
    }
    frames
}

fn reflector(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reflector"))
        .args(args)
        .output()
        .expect("reflector binary runs")
}

#[test]
fn netally_capture_comes_out_correctly_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    write_pcap(
        &input,
        &[NETALLY_PROBEOT_FRAME.to_vec()],
        Linktype::ETHERNET,
    );
    let run = reflector(&[
        "--read",
        input.to_str().unwrap(),
        "--write",
        output.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let frames = read_pcap(&output);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1, NETALLY_PROBEOT_REFLECTED.to_vec());
    assert_eq!(frames[0].0, 1_700_000_000, "timestamps are kept");
}

#[test]
fn only_accepted_frames_are_written_and_totals_match() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    // Frames judged under the default filter (with an explicit --dst-mac to match it).
    let filter = reference_filter();
    let reference: Vec<_> = reference_frames()
        .into_iter()
        .filter(|f| f.filter == filter && !f.bytes.is_empty())
        .collect();
    let bytes: Vec<Vec<u8>> = reference.iter().map(|f| f.bytes.clone()).collect();
    write_pcap(&input, &bytes, Linktype::ETHERNET);
    let run = reflector(&[
        "--read",
        input.to_str().unwrap(),
        "--write",
        output.to_str().unwrap(),
        "--dst-mac",
        "02:52:45:46:4c:01",
        "--mode",
        "mac-ip",
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Signature frames come back swapped and otherwise byte-exact; STAMP packets are
    // answered (rewritten), so only their count and length are checked here (the
    // dataplane's STAMP tests check the answers' contents).
    let accepted: Vec<_> = reference.iter().filter(|f| f.expected.is_ok()).collect();
    let written: Vec<Vec<u8>> = read_pcap(&output).into_iter().map(|(_, b)| b).collect();
    assert_eq!(written.len(), accepted.len());
    for (out, f) in written.iter().zip(&accepted) {
        assert_eq!(out.len(), f.bytes.len(), "{}", f.name);
        if f.expected == Ok(Signature::Stamp) {
            continue;
        }
        let mut b = f.bytes.clone();
        let layout = classify(&b, &filter).unwrap().layout;
        reflect(&mut b, &layout, Mode::MacIp);
        assert!(*out == b, "{} is not its reflection", f.name);
    }

    let stdout = String::from_utf8(run.stdout).unwrap();
    let last = stdout.lines().last().expect("final totals line");
    match serde_json::from_str::<Event>(last).unwrap() {
        Event::Final { counters, .. } => {
            assert_eq!(counters.received, bytes.len() as u64);
            assert_eq!(counters.reflected, accepted.len() as u64);
            assert_eq!(counters.rejected(), (bytes.len() - accepted.len()) as u64);
        }
        other => panic!("last line should be the final totals, got {other:?}"),
    }
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.pcap");
    let missing = reflector(&[
        "--read",
        "/nonexistent/in.pcap",
        "--write",
        output.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cannot open capture /nonexistent/in.pcap"),
        "{stderr}"
    );

    let raw_ip = dir.path().join("raw.pcap");
    write_pcap(
        &raw_ip,
        &[NETALLY_PROBEOT_FRAME[14..].to_vec()],
        Linktype(12), // DLT_RAW: raw IP, no Ethernet header
    );
    let wrong_link = reflector(&[
        "--read",
        raw_ip.to_str().unwrap(),
        "--write",
        output.to_str().unwrap(),
    ]);
    assert!(!wrong_link.status.success());
    let stderr = String::from_utf8_lossy(&wrong_link.stderr);
    assert!(
        stderr.contains("Ethernet (DLT_EN10MB) captures only"),
        "{stderr}"
    );
}

#[test]
fn each_cause_of_an_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    let output = dir.path().join("out.pcap");
    let run = reflector(&[
        "--read",
        garbage.to_str().unwrap(),
        "--write",
        output.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot open capture"), "{stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    let libpcap_causes = line.matches("libpcap error").count();
    assert_eq!(libpcap_causes, 1, "the cause is repeated: {line}");
}

#[test]
fn the_same_file_for_read_and_write_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("in.pcap");
    write_pcap(
        &capture,
        &[NETALLY_PROBEOT_FRAME.to_vec()],
        Linktype::ETHERNET,
    );
    let before = std::fs::read(&capture).unwrap();
    let symlink = dir.path().join("link.pcap");
    std::os::unix::fs::symlink(&capture, &symlink).unwrap();
    let hardlink = dir.path().join("hard.pcap");
    std::fs::hard_link(&capture, &hardlink).unwrap();

    for write in [&capture, &symlink, &hardlink] {
        let run = reflector(&[
            "--read",
            capture.to_str().unwrap(),
            "--write",
            write.to_str().unwrap(),
        ]);
        assert!(
            !run.status.success(),
            "--write {} accepted",
            write.display()
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("--read and --write both name"), "{stderr}");
        assert_eq!(std::fs::read(&capture).unwrap(), before, "input changed");
    }
}
