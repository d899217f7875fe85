//! The worker loop over the in-memory platform: counters, send/release routing and
//! TX-full accounting.

use dataplane::platform::memory::MemoryPlatform;
use dataplane::reference::{reference_frames, NETALLY_PROBEOT_FRAME, NETALLY_PROBEOT_REFLECTED};
use dataplane::{
    Counters, KernelDrops, Mode, Reject, Signature, Worker, WorkerConfig, WorkerShared,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn default_filter_frames() -> Vec<(Vec<u8>, Result<Signature, Reject>)> {
    let filter = dataplane::reference::reference_filter();
    reference_frames()
        .into_iter()
        .filter(|f| f.filter == filter)
        .map(|f| (f.bytes, f.expected))
        .collect()
}

#[test]
fn worker_reflects_accepted_frames_and_counts_everything() {
    let frames = default_filter_frames();
    let shared = Arc::new(WorkerShared::default());
    let platform = MemoryPlatform::new(16, frames.iter().map(|(b, _)| b.clone()));
    let mut worker = Worker::new(
        platform,
        &WorkerConfig::new(dataplane::reference::reference_filter(), Mode::All),
        shared.clone(),
    );
    worker.run(&AtomicBool::new(false)).unwrap();

    let accepted: Vec<_> = frames.iter().filter(|(_, e)| e.is_ok()).collect();
    let counters = shared.counters.snapshot();
    assert_eq!(
        counters,
        *worker.counters(),
        "published counters lag the worker"
    );
    assert_eq!(counters.received, frames.len() as u64);
    assert_eq!(counters.reflected, accepted.len() as u64);
    assert_eq!(counters.rejected(), (frames.len() - accepted.len()) as u64);
    assert_eq!(
        counters.rx_bytes,
        frames.iter().map(|(b, _)| b.len() as u64).sum::<u64>()
    );
    assert_eq!(
        counters.tx_bytes,
        accepted.iter().map(|(b, _)| b.len() as u64).sum::<u64>()
    );
    for signature in Signature::ALL {
        let expected = frames.iter().filter(|(_, e)| *e == Ok(signature)).count() as u64;
        assert_eq!(counters.signature(signature), expected, "{signature}");
    }
    for reason in Reject::ALL {
        let expected = frames.iter().filter(|(_, e)| *e == Err(reason)).count() as u64;
        assert_eq!(counters.reject(reason), expected, "{reason}");
    }
    let platform = worker.into_platform();
    assert_eq!(platform.sent.len(), accepted.len());
    assert_eq!(platform.released, frames.len() - accepted.len());
    assert_eq!(platform.sent[0], NETALLY_PROBEOT_REFLECTED.to_vec());
    // Sent frames are reflections: each goes back to the MAC it came from.
    for (sent, (received, _)) in platform.sent.iter().zip(&accepted) {
        assert_eq!(sent[..6], received[6..12]);
    }
}

#[test]
fn frames_the_platform_cannot_send_are_counted_as_tx_errors() {
    let batch: Vec<_> = std::iter::repeat_n(NETALLY_PROBEOT_FRAME.to_vec(), 10).collect();
    let mut platform = MemoryPlatform::new(10, batch);
    platform.tx_capacity = Some(6);
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(
        platform,
        &WorkerConfig::new(dataplane::reference::reference_filter(), Mode::Mac),
        shared.clone(),
    );
    worker.poll().unwrap();
    let counters = shared.counters.snapshot();
    assert_eq!(
        counters.reflected, 6,
        "only frames the transmitter took count"
    );
    assert_eq!(counters.tx_bytes, 6 * NETALLY_PROBEOT_FRAME.len() as u64);
    assert_eq!(counters.tx_errors, 4);
    let platform = worker.into_platform();
    assert_eq!(platform.sent.len(), 6);
    assert_eq!(
        platform.released, 4,
        "unsent frames must go back to the pool"
    );
}

#[test]
fn stop_flag_ends_the_loop_before_the_source_is_exhausted() {
    let platform = MemoryPlatform::new(1, std::iter::repeat_n(NETALLY_PROBEOT_FRAME.to_vec(), 5));
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(
        platform,
        &WorkerConfig::new(dataplane::reference::reference_filter(), Mode::All),
        shared,
    );
    worker.run(&AtomicBool::new(true)).unwrap();
    assert_eq!(worker.counters().received, 0);
}

#[test]
fn the_kernels_drops_reach_the_published_counters() {
    let frames = std::iter::repeat_n(NETALLY_PROBEOT_FRAME.to_vec(), 3);
    let mut platform = MemoryPlatform::new(16, frames);
    platform.kernel = KernelDrops {
        rx_dropped: 1,
        rx_ring_full: 20,
        fill_ring_empty: 1,
        tx_invalid: 0,
        unserved_queue: 0,
    };
    let counters = published_after_run(platform);
    assert_eq!(counters.kernel.lost(), 21);
    assert_eq!(counters.kernel.fill_ring_empty, 1);
    assert_eq!(counters.received, 3);
}

#[test]
fn frames_too_large_for_the_platform_are_received_and_refused() {
    let mut platform = MemoryPlatform::new(16, [NETALLY_PROBEOT_FRAME.to_vec()]);
    platform.too_large = 2;
    let counters = published_after_run(platform);
    assert_eq!(counters.received, 3);
    assert_eq!(counters.reflected, 1);
    assert_eq!(counters.reject(Reject::TooLarge), 2);
    assert_eq!(counters.received, counters.reflected + counters.rejected());
}

/// Run a worker reflecting in `mac` mode over `platform` to its end; the counters it
/// published.
fn published_after_run(platform: MemoryPlatform) -> Counters {
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(
        platform,
        &WorkerConfig::new(dataplane::reference::reference_filter(), Mode::Mac),
        shared.clone(),
    );
    worker.run(&AtomicBool::new(false)).unwrap();
    shared.counters.snapshot()
}

/// A directed broadcast stored in the worker's shared state while it runs (an address
/// was added to the interface) is refused from the next batch on.
#[test]
fn worker_picks_up_new_directed_broadcasts_between_batches() {
    let to_broadcast = reference_frames()
        .into_iter()
        .find(|f| f.expected == Err(Reject::DirectedBroadcast))
        .expect("a directed-broadcast reference frame")
        .bytes;
    let platform = MemoryPlatform::new(1, std::iter::repeat_n(to_broadcast, 3));
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(
        platform,
        &WorkerConfig::new(dataplane::reference::reference_filter(), Mode::All),
        shared.clone(),
    );
    worker.poll().unwrap();
    assert_eq!(worker.counters().reflected, 1, "no broadcast learned yet");
    let learned = dataplane::reference::reference_filter_with_prefixes().broadcasts;
    shared.broadcasts.store(learned);
    worker.poll().unwrap();
    assert_eq!(worker.counters().reject(Reject::DirectedBroadcast), 1);
    shared.broadcasts.store(dataplane::Broadcasts::NONE);
    worker.poll().unwrap();
    assert_eq!(worker.counters().reflected, 2, "the prefix is gone again");
}
