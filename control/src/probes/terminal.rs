//! The probes on a terminal (the demo's): one summary line per probe every few
//! seconds while they run, and each one's final verdict once they are stopped.

use super::{ProbeState, ProbeView, Probes};
use std::time::Duration;

/// Print a line per running probe every `every`, until the task is dropped.
pub async fn print_every(probes: Probes, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate: nothing measured yet
    loop {
        tick.tick().await;
        for probe in probes.list() {
            if probe.state == ProbeState::Running && probe.report.is_some() {
                println!("{}", line(&probe, ""));
            }
        }
    }
}

/// Stop every probe and print its final report.
pub async fn stop_and_print_verdicts(probes: &Probes) {
    probes.stop_all().await;
    for probe in probes.list() {
        let verdict = match &probe.report {
            None => "no report".to_owned(),
            Some(r) if r.sent == 0 => "nothing sent".to_owned(),
            Some(r) if r.lost == 0 && r.malformed == 0 => {
                "PASS: every frame came back, correctly reflected".to_owned()
            }
            Some(_) => "FAIL: frames were lost or came back wrong".to_owned(),
        };
        println!("{}", line(&probe, "final "));
        println!("{}: {verdict}", probe.id);
    }
}

fn line(probe: &ProbeView, prefix: &str) -> String {
    let target = probe
        .settings
        .reflector
        .as_deref()
        .unwrap_or(&probe.settings.to);
    format!("{prefix}{} -> {target}: {}", probe.id, probe.summary)
}
