//! What the in-kernel policy (`--backend xdp-tx` with `--allow`, `--rate-limit`,
//! `--loop-timeout`) costs per frame: the XDP program run in the kernel with
//! BPF_PROG_TEST_RUN on a 64-byte IPv4 RFC 2544 frame, a million times in a row per
//! sample, each configuration once per round, rounds interleaved; the median and the
//! best of the rounds, and the program's length after the verifier. Every frame passes
//! the policy (an allowed source, a limit it never reaches, a timeout a year away): the
//! path a reflected frame takes. Needs root:
//!
//! `cargo bench -p xdp-filter --bench policy`

use dataplane::frame::FrameBuilder;
use dataplane::safety::{RateLimit, Safety};
use dataplane::{classify, Filter, MacAddr, Mode, Signature};
use std::time::Duration;
use xdp_filter::{Reflection, XdpFilter};

const ROUNDS: usize = 9;
const REPEAT: u32 = 1_000_000;

/// A frame that is still a test frame after the program swapped it (both MACs with
/// the NetAlly OUI, both ports the test port), since each run sees the previous run's
/// output.
fn symmetric_frame(filter: &Filter) -> Vec<u8> {
    let oui = [0, 0xc0, 0x17];
    let mac = |last| MacAddr([oui[0], oui[1], oui[2], 0, 0, last]);
    let mut builder = FrameBuilder::ipv4(mac(1), mac(2), Signature::Rfc2544);
    builder.vlan_tags.clear();
    builder.src_port = builder.dst_port;
    let frame = builder.build();
    assert!(
        classify(&frame, filter).is_ok(),
        "the frame is a test frame"
    );
    frame
}

fn main() {
    let filter = Filter::default();
    let frame = symmetric_frame(&filter);
    let allow = ["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect::<Vec<_>>();
    let rate_limit = Some(RateLimit {
        per_source_pps: 1_000_000_000,
        burst: 64,
    });
    let loop_timeout = Some(Duration::from_secs(365 * 24 * 3600));
    let configs = [
        ("xdp-tx, no policy", Safety::default()),
        (
            "--allow (3 prefixes)",
            Safety {
                allow: allow.clone(),
                ..Safety::default()
            },
        ),
        (
            "--rate-limit",
            Safety {
                rate_limit,
                ..Safety::default()
            },
        ),
        (
            "--loop-timeout",
            Safety {
                loop_timeout,
                ..Safety::default()
            },
        ),
        (
            "all three",
            Safety {
                allow,
                rate_limit,
                loop_timeout,
            },
        ),
    ];
    let mut samples = vec![Vec::new(); configs.len()];
    let mut insns = vec![0; configs.len()];
    for _ in 0..ROUNDS {
        for (i, (_, safety)) in configs.iter().enumerate() {
            let reflection = Reflection::InKernel {
                mode: Mode::All,
                safety: safety.clone(),
            };
            let program = XdpFilter::load(&filter, &reflection, u32::MAX)
                .expect("load the XDP program (run as root)");
            let per_run = program.time_test_run(&frame, REPEAT).expect("test run");
            samples[i].push(per_run.as_nanos() as u64);
            insns[i] = program.translated_insns().expect("program info");
            let verdicts = program.verdicts().expect("verdicts");
            assert_eq!(
                verdicts.transmitted(),
                u64::from(REPEAT),
                "every run reflects"
            );
        }
    }
    println!(
        "{:<22} {:>7} {:>7} {:>12}",
        "config", "median", "best", "instructions"
    );
    for (i, (name, _)) in configs.iter().enumerate() {
        samples[i].sort_unstable();
        let (median, best) = (samples[i][ROUNDS / 2], samples[i][0]);
        println!("{name:<22} {median:>4} ns {best:>4} ns {:>12}", insns[i]);
    }
}
