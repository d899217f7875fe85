//! The test-frame examples in the README ("Test frames") are the reference frames, byte
//! for byte, and classify as the README says: the hex a tester compares a capture with
//! cannot drift from what the reflector does. On a mismatch the failure prints the
//! block to paste.

use dataplane::reference::{reference_filter, reference_frames, ReferenceFrame};
use dataplane::{classify, Signature};

const README: &str = include_str!("../../README.md");

/// A README example: a fenced block whose first line is
/// `reference frame "NAME": N bytes, reflected as SIGNATURE` and then hex dump lines
/// (`OFFSET  hh hh ...`).
struct Example {
    name: String,
    claimed_len: usize,
    claimed_signature: String,
    bytes: Vec<u8>,
}

fn examples() -> Vec<Example> {
    let mut found = Vec::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("reference frame \"") else {
            continue;
        };
        let (name, rest) = rest.split_once("\": ").expect("`\"NAME\": ...`");
        let (len, signature) = rest
            .split_once(" bytes, reflected as ")
            .expect("`N bytes, reflected as SIGNATURE`");
        let mut bytes = Vec::new();
        for dump in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            let (offset, hex) = dump.split_once("  ").expect("`OFFSET  hh hh ...`");
            assert_eq!(
                usize::from_str_radix(offset, 16).unwrap(),
                bytes.len(),
                "{name}: offset column"
            );
            bytes.extend(
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).expect("hex byte")),
            );
        }
        found.push(Example {
            name: name.into(),
            claimed_len: len.parse().unwrap(),
            claimed_signature: signature.trim().into(),
            bytes,
        });
    }
    found
}

/// The README block for a reference frame.
fn block(frame: &ReferenceFrame, signature: Signature) -> String {
    let mut text = format!(
        "reference frame \"{}\": {} bytes, reflected as {signature}\n",
        frame.name,
        frame.bytes.len()
    );
    for (i, row) in frame.bytes.chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        text += &format!("{:04x}  {}\n", i * 16, hex.join(" "));
    }
    text
}

#[test]
fn readme_examples_are_reference_frames_and_classify_as_documented() {
    let examples = examples();
    let frames = reference_frames();
    let mut shown = Vec::new();
    for example in &examples {
        let frame = frames
            .iter()
            .find(|f| f.name == example.name)
            .unwrap_or_else(|| panic!("README names no reference frame {:?}", example.name));
        let signature = frame
            .expected
            .expect("README examples are reflected frames");
        assert_eq!(
            (example.bytes.as_slice(), example.claimed_len),
            (frame.bytes.as_slice(), frame.bytes.len()),
            "README block for {:?} is out of date; it should read:\n{}",
            example.name,
            block(frame, signature)
        );
        // Under the defaults (README "Defaults"), as a tester would send it.
        let verdict = classify(&example.bytes, &reference_filter()).map(|a| a.signature);
        assert_eq!(verdict, Ok(signature), "{}", example.name);
        assert_eq!(example.claimed_signature, signature.to_string());
        shown.push(signature);
    }
    // One example per layout the README describes: ITO (signature after the 5-byte
    // vendor header), RFC 2544 / Y.1564 (at offset 0), STAMP.
    for wanted in [Signature::ProbeOt, Signature::Rfc2544, Signature::Stamp] {
        assert!(
            shown.contains(&wanted),
            "README shows no {wanted} example; add:\n{}",
            frames
                .iter()
                .find(|f| f.expected == Ok(wanted) && f.name.starts_with("ipv4 "))
                .map(|f| block(f, wanted))
                .unwrap_or_default()
        );
    }
}
