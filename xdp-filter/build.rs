//! Compiles the XDP programs in `src/bpf/` into libbpf skeletons.
//!
//! The C code must make the same decisions as `dataplane::classify`, so it does not define
//! its own header offsets, protocol numbers, limits or reject indices: this script writes
//! them into `dataplane.h` from the `dataplane` crate itself. Changing a constant or adding
//! a `Reject` variant in Rust recompiles the BPF programs with the new values.

use dataplane::filter::MAX_BROADCASTS;
use dataplane::histogram;
use dataplane::parse::*;
use dataplane::safety::RATE_LIMIT_SOURCES;
use dataplane::signature::SIGNATURES;
use dataplane::stamp::STAMP_MIN_PAYLOAD;
use dataplane::worker::PUBLISH_EVERY;
use dataplane::Reject;
use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The BPF programs, by file stem: `src/bpf/<stem>.bpf.c` becomes `<stem>.skel.rs`.
const PROGRAMS: [&str; 4] = ["reflector", "xdp_tx_baseline", "probe", "send_drops"];

/// The programs' own constants, defined once here and written into both `dataplane.h`
/// and `program_constants.rs` (included by `lib.rs`), so the C and Rust sides agree:
/// (name, Rust type, value, doc).
const PROGRAM_CONSTANTS: [(&str, &str, u64, &str); 16] = [
    // The receive stamp the XDP program leaves in a redirected frame's metadata: a magic
    // number (so user space can tell a stamp from leftover bytes) and bpf_ktime_get_ns().
    (
        "RX_META_MAGIC",
        "u32",
        0x5246_5453, // "RFTS"
        "Marks the XDP program's receive stamp in a frame's metadata.",
    ),
    (
        "RX_META_LEN",
        "usize",
        16,
        "Bytes of XDP metadata in front of each redirected frame.",
    ),
    (
        "RX_META_STAMP_AT",
        "usize",
        0,
        "Offset of the arrival time (CLOCK_MONOTONIC ns, host order) in the metadata.",
    ),
    (
        "RX_META_MAGIC_AT",
        "usize",
        12,
        "Offset of [`RX_META_MAGIC`] (host order) in the metadata.",
    ),
    (
        "MAX_SIGNATURES",
        "usize",
        8,
        "Per-signature counter slots in the XDP program (the byte signatures' rows).",
    ),
    (
        "MAX_QUEUES",
        "u32",
        256,
        "Entries in the XSKMAP, hence the highest queue count a reflector can serve.",
    ),
    // A worker's batch for the reflector program to send as XDP frames (send_batches):
    // a count, the next frame to send, then SEND_BATCH frames, each a length and up to
    // SEND_FRAME_MAX bytes, so that a frame takes 2 KiB. 64 frames, a worker's batch: 256
    // (the most one BPF_PROG_RUN may flush at once) sent no faster at full rate on the
    // veth rig, where the worker's batches rarely fill even 64.
    (
        "SEND_META_LEN",
        "usize",
        16,
        "Bytes of XDP metadata that mark a worker's BPF_PROG_RUN: the secret and the queue.",
    ),
    (
        "SEND_BATCH",
        "usize",
        64,
        "Frames per batch a worker hands the XDP program to send.",
    ),
    (
        "SEND_FRAME_MAX",
        "usize",
        2044,
        "Longest frame a worker can send through the XDP program.",
    ),
    (
        "SEND_BATCH_SIZE",
        "usize",
        8 + 64 * 2048,
        "Bytes of one queue's batch in the `send_batches` map.",
    ),
    (
        "PROBE_SEND_SLOTS",
        "u32",
        1 << 20,
        "Send times the probe head keeps, by sequence number modulo this (a power of two).",
    ),
    (
        "PROBE_MAX_FRAMES",
        "u32",
        1 << 27,
        "Frames one fast probe run may send: the bits of its sequence bitmap.",
    ),
    (
        "PROBE_MAX_GENERATORS",
        "u32",
        64,
        "Generator threads (one per CPU) one fast probe run may use.",
    ),
    (
        "PROBE_BLOCK",
        "u32",
        1024,
        "Sequence numbers per block a probe generator owns: two cache lines of its bitmap.",
    ),
    (
        "PROBE_GENERATOR_TAIL_LEN",
        "usize",
        8,
        "Bytes after the frame that mark a probe generator's run: its secret.",
    ),
    (
        "PROBE_HEADER_WORDS",
        "usize",
        16,
        "8-byte words of a returned frame's headers the probe head checks.",
    ),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out_dir.join("dataplane.h"), dataplane_header())
        .expect("cannot write dataplane.h into OUT_DIR");
    fs::write(out_dir.join("program_constants.rs"), program_constants())
        .expect("cannot write program_constants.rs into OUT_DIR");

    let mut clang_args: Vec<OsString> = vec![
        "-Wall".into(),
        "-Werror".into(),
        "-I".into(),
        out_dir.clone().into(),
    ];
    // `linux/bpf.h` includes `asm/types.h`, which Debian-style systems keep under the
    // multiarch directory that `clang -target bpf` does not search by itself.
    if let Some(dir) = multiarch_include_dir() {
        clang_args.push("-I".into());
        clang_args.push(dir.into());
    }

    println!("cargo:rerun-if-changed=src/bpf");
    for stem in PROGRAMS {
        let source = PathBuf::from(format!("src/bpf/{stem}.bpf.c"));
        let skeleton = out_dir.join(format!("{stem}.skel.rs"));
        if let Err(error) = SkeletonBuilder::new()
            .source(&source)
            .clang_args(&clang_args)
            .build_and_generate(&skeleton)
        {
            panic!(
                "cannot build the BPF skeleton for {}: {error:#}\n\
                 The XDP programs need clang/llvm and the kernel uapi headers \
                 (Debian: apt-get install clang llvm libelf-dev zlib1g-dev pkg-config linux-libc-dev).",
                source.display()
            );
        }
    }
}

/// `/usr/include/<multiarch>` for the target, e.g. `x86_64-linux-gnu`, if it exists.
fn multiarch_include_dir() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let os = env::var("CARGO_CFG_TARGET_OS").ok()?;
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let dir = Path::new("/usr/include").join(format!("{arch}-{os}-{target_env}"));
    dir.join("asm").is_dir().then_some(dir)
}

/// The C view of the constants the classifier is built from.
fn dataplane_header() -> String {
    let mut h = String::from(
        "/* Generated by xdp-filter/build.rs from the dataplane crate. Do not edit. */\n\
         #ifndef REFLECTOR_DATAPLANE_H\n#define REFLECTOR_DATAPLANE_H\n\n",
    );
    let constants: &[(&str, usize)] = &[
        ("ETH_HEADER_LEN", ETH_HEADER_LEN),
        ("ETH_DST", ETH_DST),
        ("ETH_SRC", ETH_SRC),
        ("ETH_TYPE", ETH_TYPE),
        ("ETH_MIN_PAYLOAD", ETH_MIN_PAYLOAD),
        ("MAX_BROADCASTS", MAX_BROADCASTS),
        ("ETHERTYPE_IPV4", ETHERTYPE_IPV4.into()),
        ("ETHERTYPE_IPV6", ETHERTYPE_IPV6.into()),
        ("TPID_8021Q", TPID_8021Q.into()),
        ("TPID_8021AD", TPID_8021AD.into()),
        ("VLAN_TAG_LEN", VLAN_TAG_LEN),
        ("MAX_VLAN_TAGS", MAX_VLAN_TAGS),
        ("IPV4_MIN_HEADER_LEN", IPV4_MIN_HEADER_LEN),
        ("IPV4_TOTAL_LEN", IPV4_TOTAL_LEN),
        ("IPV4_FRAG", IPV4_FRAG),
        ("IPV4_PROTOCOL", IPV4_PROTOCOL),
        ("IPV4_SRC", IPV4_SRC),
        ("IPV4_DST", IPV4_DST),
        ("IPV4_MF_AND_OFFSET", IPV4_MF_AND_OFFSET.into()),
        ("IPV6_HEADER_LEN", IPV6_HEADER_LEN),
        ("IPV6_PAYLOAD_LEN", IPV6_PAYLOAD_LEN),
        ("IPV6_NEXT_HEADER", IPV6_NEXT_HEADER),
        ("IPV6_SRC", IPV6_SRC),
        ("IPV6_DST", IPV6_DST),
        ("IPV6_EXT_HOP_BY_HOP", IPV6_EXT_HOP_BY_HOP.into()),
        ("IPV6_EXT_ROUTING", IPV6_EXT_ROUTING.into()),
        ("IPV6_EXT_FRAGMENT", IPV6_EXT_FRAGMENT.into()),
        ("IPV6_EXT_DEST_OPTIONS", IPV6_EXT_DEST_OPTIONS.into()),
        ("MAX_IPV6_EXT_HEADERS", MAX_IPV6_EXT_HEADERS),
        ("IP_PROTO_UDP", IP_PROTO_UDP.into()),
        ("UDP_HEADER_LEN", UDP_HEADER_LEN),
        ("UDP_SRC_PORT", UDP_SRC_PORT),
        ("UDP_DST_PORT", UDP_DST_PORT),
        ("UDP_LENGTH", UDP_LENGTH),
        ("STAMP_MIN_PAYLOAD", STAMP_MIN_PAYLOAD),
        ("HISTOGRAM_SUB_BITS", histogram::SUB_BITS as usize),
        ("HISTOGRAM_BUCKETS", histogram::BUCKETS),
        // The in-kernel policy: as many sources per queue as a worker's rate limiter
        // tracks, forgotten when idle as often as a worker forgets them, and as many
        // allowed prefixes as the settings take.
        ("RATE_LIMIT_SOURCES", RATE_LIMIT_SOURCES),
        ("RATE_EXPIRY_NS", PUBLISH_EVERY.as_nanos() as usize),
        ("MAX_ALLOW_PREFIXES", settings::MAX_ALLOW_PREFIXES),
    ];
    for (name, value) in constants {
        writeln!(h, "#define {name} {value:#x}").unwrap();
    }
    h.push_str("\n/* dataplane::Reject, by discriminant: the index of its verdict counter. */\nenum reject {\n");
    for reject in Reject::ALL {
        let name = reject.name().to_ascii_uppercase();
        writeln!(h, "\tREJECT_{name} = {},", reject.index()).unwrap();
    }
    writeln!(h, "}};\n#define REJECT_COUNT {}\n", Reject::COUNT).unwrap();
    signature_table(&mut h);
    h.push_str("/* xdp-filter's own constants (PROGRAM_CONSTANTS in build.rs). */\n");
    for (name, _, value, _) in PROGRAM_CONSTANTS {
        writeln!(h, "#define {name} {value:#x}").unwrap();
    }
    h.push_str("\n#endif\n");
    h
}

/// `dataplane::signature::SIGNATURES` as C constants, so the program compares payloads
/// with immediates instead of loading a table from its configuration for every frame.
/// The filter's choice of rows stays a run-time setting (`cfg.signature_rows`).
fn signature_table(h: &mut String) {
    let max_signatures = PROGRAM_CONSTANTS
        .iter()
        .find(|c| c.0 == "MAX_SIGNATURES")
        .map(|c| c.2 as usize)
        .expect("MAX_SIGNATURES is a program constant");
    assert!(
        SIGNATURES.len() <= max_signatures && SIGNATURES.len() <= 32,
        "dataplane's signature table has {} rows; the XDP program counts {max_signatures} \
         (MAX_SIGNATURES in build.rs) and enables them with a 32-bit mask: raise MAX_SIGNATURES",
        SIGNATURES.len()
    );
    let longest = SIGNATURES
        .iter()
        .map(|row| row.bytes.len())
        .max()
        .unwrap_or(0);
    h.push_str(
        "/* dataplane::signature::SIGNATURES in matching order: Signature::index, offset\n \
         * in the UDP payload, length, bytes. */\n",
    );
    writeln!(h, "#define SIGNATURE_ROWS {}", SIGNATURES.len()).unwrap();
    writeln!(h, "#define SIGNATURE_MAX_LEN {longest}").unwrap();
    h.push_str("#define SIGNATURE_TABLE { \\\n");
    for row in SIGNATURES {
        let bytes: Vec<String> = row.bytes.iter().map(|b| format!("{b:#04x}")).collect();
        writeln!(
            h,
            "\t{{ {}, {}, {}, {{ {} }} }}, \\",
            row.signature.index(),
            row.offset,
            row.bytes.len(),
            bytes.join(", ")
        )
        .unwrap();
    }
    h.push_str("}\n\n");
}

/// The Rust view of [`PROGRAM_CONSTANTS`].
fn program_constants() -> String {
    let mut rs = String::from("// Generated by xdp-filter/build.rs. Do not edit.\n");
    for (name, rust_type, value, doc) in PROGRAM_CONSTANTS {
        writeln!(rs, "/// {doc}\npub const {name}: {rust_type} = {value:#x};").unwrap();
    }
    rs
}
