//! What the in-kernel reflector (`--backend xdp-tx`) costs per frame, set against the
//! XDP_TX baseline (`xdp_tx_baseline.bpf.c`, the rig's upper bound) measured in the same
//! run: each program run in the kernel with BPF_PROG_TEST_RUN on a 64-byte IPv4 RFC 2544
//! frame, a million times in a row per sample; the baseline and each configuration of
//! the reflector (no policy, then `--allow`, `--rate-limit`, `--loop-timeout`, all three)
//! once per round, rounds interleaved. Printed per program: the median and the best
//! round, the median of the rounds' ratios and differences to the baseline, and the
//! program's length after the verifier. Every frame is reflected and passes the policy
//! (an allowed source, a limit it never reaches, a timeout a year away): the path a
//! reflected frame takes. On veth the reflector's program runs on the sender's CPU, so
//! the difference is what the rig's head loses per frame. Needs root:
//!
//! `cargo bench -p xdp-filter --bench program_cost`

use dataplane::frame::FrameBuilder;
use dataplane::safety::{RateLimit, Safety};
use dataplane::{classify, Filter, MacAddr, Mode, Signature};
use std::time::Duration;
use xdp_filter::{ProgramSize, Reflection, XdpFilter, XdpTxBaseline};

const ROUNDS: usize = 9;
const REPEAT: u32 = 1_000_000;

/// A frame that is still a test frame after the program swapped it (both MACs with
/// the NetAlly OUI, both ports the test port), since each run sees the previous run's
/// output; the baseline, which swaps the same fields, bounces it every time too.
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

/// The reflector's configurations, by name.
fn configs() -> Vec<(&'static str, Safety)> {
    let allow = ["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect::<Vec<_>>();
    let rate_limit = Some(RateLimit {
        per_source_pps: 1_000_000_000,
        burst: 64,
    });
    let loop_timeout = Some(Duration::from_secs(365 * 24 * 3600));
    vec![
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
    ]
}

/// One sample of the baseline: ns per frame, and its size.
fn time_baseline(frame: &[u8], port: u16) -> (f64, ProgramSize) {
    let program = XdpTxBaseline::load(port).expect("load the XDP_TX baseline (run as root)");
    let per_run = program.time_test_run(frame, REPEAT).expect("test run");
    assert_eq!(
        program.bounced().expect("baseline counter"),
        u64::from(REPEAT),
        "the baseline bounces every run"
    );
    (ns(per_run), program.size().expect("program info"))
}

/// One sample of the reflector with `safety`: ns per frame, and its size.
fn time_reflector(frame: &[u8], filter: &Filter, safety: &Safety) -> (f64, ProgramSize) {
    let reflection = Reflection::InKernel {
        mode: Mode::All,
        safety: safety.clone(),
    };
    let program =
        XdpFilter::load(filter, &reflection, u32::MAX).expect("load the XDP program (run as root)");
    let per_run = program.time_test_run(frame, REPEAT).expect("test run");
    let verdicts = program.verdicts().expect("verdicts");
    assert_eq!(
        verdicts.transmitted(),
        u64::from(REPEAT),
        "every run reflects"
    );
    (ns(per_run), program.size().expect("program info"))
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let filter = Filter::default();
    let frame = symmetric_frame(&filter);
    let configs = configs();
    // Row 0 is the baseline, then the reflector's configurations.
    let rows = 1 + configs.len();
    let mut samples = vec![Vec::new(); rows];
    let mut sizes = vec![None; rows];
    for _ in 0..ROUNDS {
        let (base, size) = time_baseline(&frame, filter.udp_port);
        samples[0].push(base);
        sizes[0] = Some(size);
        for (i, (_, safety)) in configs.iter().enumerate() {
            let (ours, size) = time_reflector(&frame, &filter, safety);
            samples[i + 1].push(ours);
            sizes[i + 1] = Some(size);
        }
    }
    println!(
        "{:<22} {:>9} {:>9} {:>8} {:>8} {:>6} {:>10}",
        "program", "median", "best", "ratio", "extra", "insns", "JIT bytes"
    );
    let names = std::iter::once("XDP_TX baseline").chain(configs.iter().map(|(n, _)| *n));
    for (i, name) in names.enumerate() {
        let round = |j: usize| (samples[i][j], samples[0][j]);
        let ratios = (0..ROUNDS).map(|j| round(j).0 / round(j).1).collect();
        let extra = (0..ROUNDS).map(|j| round(j).0 - round(j).1).collect();
        let best = samples[i].iter().copied().fold(f64::INFINITY, f64::min);
        let size = sizes[i].expect("measured");
        println!(
            "{name:<22} {:>6.1} ns {best:>6.1} ns {:>7.2}x {:>5.1} ns {:>6} {:>10}",
            median(samples[i].clone()),
            median(ratios),
            median(extra),
            size.insns,
            size.jited_bytes,
        );
    }
}
