//! `reflector probe --json --interval` prints its report so far while it runs. A frame
//! is lost only once it has not come back `--wait` after it was sent, so a report taken
//! while frames are on their way counts them as in flight, never as loss: through a
//! reflector that loses nothing, every report so far reads lost 0, and the final one
//! has nothing in flight.

use reflector_tests::*;
use settings::events::ProbeReport;

fn assert_nothing_lost_on_the_way(reports: &[ProbeReport], sent: u64, what: &str) {
    let (last, so_far) = reports.split_last().expect("at least the final report");
    assert!(
        so_far.len() >= 5,
        "{what}: a 2 s run printed {} reports so far at 0.1 s intervals",
        so_far.len()
    );
    for report in so_far {
        assert_eq!(
            report.lost, 0,
            "{what}: a report so far counted loss: {report:?}"
        );
        assert_eq!(
            report.received + report.in_flight,
            report.sent,
            "{what}: every frame sent is back or in flight: {report:?}"
        );
    }
    assert!(
        so_far.iter().any(|r| r.sent > 0),
        "{what}: no report so far saw a frame sent: {so_far:?}"
    );
    assert_eq!(
        (last.sent, last.received, last.lost, last.in_flight),
        (sent, sent, 0, 0),
        "{what}: final report {last:?}"
    );
}

/// Probe a fresh rig's reflector (started with `reflector_args`) for `count` frames,
/// printing a report so far every 0.1 s, and check them all.
fn probe_through(rig_name: &str, reflector_args: &[&str], probe_args: &[&str], count: u64) {
    let rig = Rig::new(rig_name);
    let reflector = rig.start_reflector(reflector_args);
    let count_arg = count.to_string();
    let reports = rig.probe_reports(
        &[
            probe_args,
            &["--count", &count_arg, "--wait", "0.5", "--interval", "0.1"],
        ]
        .concat(),
    );
    let what = format!("{probe_args:?} through {reflector_args:?}");
    assert_nothing_lost_on_the_way(&reports, count, &what);
    assert_eq!(reflector.stop().reflected, count, "{what}");
}

#[test]
fn the_socket_engine_counts_frames_on_their_way_as_in_flight() {
    probe_through("pgsock", &[], &["--rate", "50000"], 100_000);
}

#[test]
fn the_fast_engine_counts_frames_on_their_way_as_in_flight() {
    probe_through(
        "pgfast",
        &["--backend", "xdp-tx", "--max-streams", "0"],
        &["--engine", "fast", "--rate", "200000"],
        400_000,
    );
}
