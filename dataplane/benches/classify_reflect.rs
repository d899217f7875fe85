//! Per-frame cost of classify + reflect, against a plain copy of the same bytes
//! measured in the same run (the baseline `docs/PERFORMANCE.md` reports ratios to).
//!
//! Run: `cargo bench -p dataplane --bench classify_reflect`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataplane::frame::FrameBuilder;
use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};
use dataplane::safety::RateLimit;
use dataplane::stamp::{write_transmit_time, NtpTimestamp};
use dataplane::worker::{BatchTime, Outcome, Pipeline};
use dataplane::{classify, reflect, DstMacFilter, Filter, Mode, Signature, WorkerConfig};

/// The reference filter, loosened (any unicast MAC, any OUI, any port) so a reflected
/// frame is accepted again: the timed
/// loop reflects one buffer back and forth instead of copying a fresh frame each time.
fn both_directions_filter() -> Filter {
    let mut filter = reference_filter();
    filter.dst_mac = DstMacFilter::AnyUnicast;
    filter.src_oui = None;
    filter.udp_port = 0;
    filter
}

fn frame(wire_len: usize, ipv6: bool) -> Vec<u8> {
    let builder = if ipv6 {
        FrameBuilder::ipv6(HEAD_MAC, REFLECTOR_MAC, Signature::Latency)
    } else {
        FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Latency)
    };
    builder.sized_for_wire(wire_len).build()
}

fn bench(c: &mut Criterion) {
    let filter = both_directions_filter();
    let mut group = c.benchmark_group("per_frame");
    group.throughput(Throughput::Elements(1));
    let baseline = frame(64, false);
    group.bench_function("baseline_copy_64", |b| {
        let mut out = vec![0u8; baseline.len()];
        b.iter(|| {
            out.copy_from_slice(black_box(&baseline));
            black_box(&mut out);
        })
    });
    for (name, wire_len, ipv6) in [
        ("ipv4_64", 64, false),
        ("ipv4_1500", 1518, false),
        ("ipv6_64", 78, true),
    ] {
        let original = frame(wire_len, ipv6);
        group.bench_function(format!("classify_reflect_{name}"), |b| {
            // Reflecting twice restores the frame, so one buffer serves every iteration.
            let mut bytes = original.clone();
            b.iter(|| {
                let accepted =
                    classify(black_box(&bytes), &filter).expect("reference frame is accepted");
                reflect(&mut bytes, &accepted.layout, Mode::All);
                black_box(&mut bytes);
            })
        });
    }
    let rejected = {
        let mut f = frame(64, false);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f
    };
    group.bench_function("classify_reject_arp_64", |b| {
        b.iter(|| black_box(classify(black_box(&rejected), &filter)).is_err())
    });
    group.bench_function("classify_reflect_batch64_ipv4_64", |b| {
        b.iter_batched_ref(
            || vec![frame(64, false); 64],
            |batch| {
                for bytes in batch.iter_mut() {
                    let accepted = classify(bytes, &filter).expect("accepted");
                    reflect(bytes, &accepted.layout, Mode::All);
                }
            },
            BatchSize::LargeInput,
        )
    });
    pipeline_benches(&mut group, &filter);
    group.finish();
}

/// The whole per-frame pipeline a worker runs (classify, safety policy, stream
/// accounting, reflect or STAMP answer), in the configurations users run.
fn pipeline_benches(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    filter: &Filter,
) {
    let at = BatchTime {
        monotonic: 1_000_000_000,
        wall: 1_795_000_000_000_000_000,
    };
    let default_config = WorkerConfig::new(*filter, Mode::All);
    let mut no_streams = default_config.clone();
    no_streams.streams.capacity = 0;
    let mut guarded = default_config.clone();
    guarded.safety.allow = vec!["192.0.2.0/24".parse().unwrap()];
    guarded.safety.rate_limit = Some(RateLimit {
        per_source_pps: u64::MAX / 4,
        burst: 1_000_000,
    });
    for (name, config) in [
        ("pipeline_ipv4_64", &default_config),
        ("pipeline_no_streams_ipv4_64", &no_streams),
        ("pipeline_allow_and_rate_limit_ipv4_64", &guarded),
    ] {
        let mut pipeline = Pipeline::new(config);
        let mut bytes = frame(64, false);
        group.bench_function(name, |b| {
            b.iter(|| {
                let outcome = pipeline.process(black_box(&mut bytes), at);
                assert_eq!(outcome, Outcome::Send);
            })
        });
    }
    // Frames from 16 senders (source ports) in turn: every lookup misses the entry the
    // frame before hit and takes the hashed path. (In the rows above, reflecting the
    // one buffer alternates it between two streams, its own and its answer's.)
    let mut pipeline = Pipeline::new(&default_config);
    let mut senders: Vec<_> = (0..16u16)
        .map(|sender| {
            let mut builder = FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Latency);
            builder.src_port = 49152 + sender;
            builder.sized_for_wire(64).build()
        })
        .collect();
    let mut next = 0;
    group.bench_function("pipeline_16_streams_ipv4_64", |b| {
        b.iter(|| {
            let bytes = &mut senders[next % 16];
            next += 1;
            let outcome = pipeline.process(black_box(bytes), at);
            assert_eq!(outcome, Outcome::Send);
        })
    });
    let stamp = FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp)
        .sized_for_wire(128)
        .build();
    let mut pipeline = Pipeline::new(&default_config);
    let transmit_time = NtpTimestamp::from_unix_nanos(at.wall + 1_000);
    group.bench_function("stamp_answer_ipv4_128", |b| {
        b.iter_batched_ref(
            || stamp.clone(),
            |bytes| match pipeline.process(bytes, at) {
                Outcome::SendStampAnswer(layout) => {
                    write_transmit_time(bytes, &layout, transmit_time)
                }
                other => panic!("STAMP packet not answered: {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
