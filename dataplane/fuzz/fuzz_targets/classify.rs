//! Any bytes, under every filter variant: the classifier must not panic, anything it
//! accepts must reflect in place and come back unchanged when reflected twice, and the
//! whole per-frame pipeline (policy, streams, STAMP answers) must not panic either.
#![no_main]

use dataplane::reference::{reference_filter, reference_filter_with_prefixes};
use dataplane::worker::{BatchTime, Pipeline};
use dataplane::{classify, reflect, Filter, Mode, StampMode, WorkerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, frame)) = data.split_first() else { return };
    let filter = Filter {
        src_oui: if knobs & 1 != 0 { None } else { reference_filter().src_oui },
        udp_port: if knobs & 2 != 0 { 0 } else { 3842 },
        ipv6: knobs & 4 == 0,
        vlan: knobs & 8 == 0,
        broadcasts: if knobs & 128 != 0 {
            reference_filter_with_prefixes().broadcasts
        } else {
            Default::default()
        },
        ..reference_filter()
    };
    let mode = Mode::ALL[usize::from(knobs >> 4) % Mode::ALL.len()];
    if let Ok(accepted) = classify(frame, &filter) {
        let mut bytes = frame.to_vec();
        reflect(&mut bytes, &accepted.layout, mode);
        assert_eq!(bytes.len(), frame.len());
        reflect(&mut bytes, &accepted.layout, mode);
        assert_eq!(bytes, frame, "reflecting twice must restore the frame");
    }
    let mut config = WorkerConfig::new(filter, mode);
    // A small table: building the default 1024-entry one per input would dominate.
    config.streams.capacity = 4;
    if knobs & 64 != 0 {
        config.stamp.mode = StampMode::Stateful;
    }
    let mut pipeline = Pipeline::new(&config);
    let mut bytes = frame.to_vec();
    let at = BatchTime { monotonic: 1, wall: 1_700_000_000_000_000_000 };
    pipeline.process(&mut bytes, at);
    assert_eq!(bytes.len(), frame.len());
});
