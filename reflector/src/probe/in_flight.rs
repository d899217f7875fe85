//! Telling lost frames from frames still on their way, for the reports a run
//! publishes before it ends.

use settings::events::ProbeReport;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A frame is lost only when it has not come back `--wait` after it was sent, so a
/// report taken while the run goes on splits the frames still missing into lost (sent
/// before that) and in flight. The send count is sampled at each report; the report
/// uses the newest sample at least `wait` old.
pub struct InFlight {
    wait: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl InFlight {
    pub fn new(wait: Duration) -> Self {
        InFlight {
            wait,
            samples: VecDeque::new(),
        }
    }

    /// Note `sent` frames sent by `now`; returns how many had been sent `wait` before
    /// `now` (0 early in the run).
    pub fn sent_before_wait(&mut self, now: Instant, sent: u64) -> u64 {
        self.samples.push_back((now, sent));
        let old_enough = |at: &Instant| now.saturating_duration_since(*at) >= self.wait;
        while self.samples.len() > 1 && old_enough(&self.samples[1].0) {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some((at, sent)) if old_enough(at) => *sent,
            _ => 0,
        }
    }
}

/// Turn `report`'s missing frames that may still come back into `in_flight`: of the
/// first `settled` frames sent (those sent at least `--wait` ago), `settled_received`
/// came back, so only the rest of those is lost.
pub fn count_in_flight(report: &mut ProbeReport, settled: u64, settled_received: u64) {
    let missing = report.sent.saturating_sub(report.received);
    report.lost = settled.saturating_sub(settled_received).min(missing);
    report.in_flight = missing - report.lost;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frames_older_than_the_wait_count_as_lost() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut in_flight = InFlight::new(Duration::from_millis(1000));
        assert_eq!(in_flight.sent_before_wait(at(0), 0), 0);
        assert_eq!(
            in_flight.sent_before_wait(at(500), 500),
            0,
            "nothing is old enough"
        );
        assert_eq!(in_flight.sent_before_wait(at(1000), 1000), 0);
        assert_eq!(in_flight.sent_before_wait(at(1600), 1600), 500);
        assert_eq!(in_flight.sent_before_wait(at(2100), 2100), 1000);

        // 2100 sent, 2000 back: 40 of the first 1000 never came back, 60 are recent.
        let mut report = ProbeReport {
            sent: 2100,
            received: 2000,
            lost: 100,
            ..ProbeReport::default()
        };
        count_in_flight(&mut report, 1000, 960);
        assert_eq!((report.lost, report.in_flight), (40, 60));
        // Everything missing is old: all of it is lost.
        count_in_flight(&mut report, 2100, 2000);
        assert_eq!((report.lost, report.in_flight), (100, 0));
    }
}
