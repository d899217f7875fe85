//! Any bytes, under every filter variant: the classifier must not panic, and anything it
//! accepts must reflect in place and come back unchanged when reflected twice.
#![no_main]

use dataplane::reference::reference_filter;
use dataplane::{classify, reflect, Filter, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, frame)) = data.split_first() else { return };
    let filter = Filter {
        src_oui: if knobs & 1 != 0 { None } else { reference_filter().src_oui },
        udp_port: if knobs & 2 != 0 { 0 } else { 3842 },
        ipv6: knobs & 4 == 0,
        vlan: knobs & 8 == 0,
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
});
