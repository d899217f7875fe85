//! Counting what came back: loss, reordering, duplication, and the final report.

use dataplane::histogram::Histogram;
use settings::events::ProbeReport;

/// Counts loss, reordering and duplication from the sequence numbers that came back.
pub struct SequenceTracker {
    seen: Vec<u64>,
    capacity: u32,
    highest: Option<u32>,
    pub received: u64,
    pub reordered: u64,
    pub duplicated: u64,
}

impl SequenceTracker {
    /// For sequence numbers `0..capacity`.
    pub fn new(capacity: u32) -> Self {
        SequenceTracker {
            seen: vec![0; (capacity as usize).div_ceil(64)],
            capacity,
            highest: None,
            received: 0,
            reordered: 0,
            duplicated: 0,
        }
    }

    /// Record `seq`; returns false if it is outside the run (not ours).
    pub fn record(&mut self, seq: u32) -> bool {
        if seq >= self.capacity {
            return false;
        }
        let slot = &mut self.seen[seq as usize / 64];
        let bit = seq % 64;
        if *slot & (1 << bit) != 0 {
            self.duplicated += 1;
            return true;
        }
        *slot |= 1 << bit;
        self.received += 1;
        match self.highest {
            Some(high) if seq < high => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
        true
    }

    /// How many of the sequence numbers below `seq` came back.
    pub fn received_below(&self, seq: u32) -> u64 {
        let seq = seq.min(self.capacity) as usize;
        let whole: u64 = self.seen[..seq / 64]
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum();
        let partial = match seq % 64 {
            0 => 0,
            bits => u64::from((self.seen[seq / 64] & ((1u64 << bits) - 1)).count_ones()),
        };
        whole + partial
    }
}

/// Combine tracker and timing into the final report; `timestamps` names what timed
/// the round trips.
pub fn report(
    sent: u64,
    tracker: &SequenceTracker,
    malformed: u64,
    rtt: &Histogram,
    send_seconds: f64,
    timestamps: String,
) -> ProbeReport {
    report_counts(
        sent,
        Returns {
            received: tracker.received,
            reordered: tracker.reordered,
            duplicated: tracker.duplicated,
            malformed,
        },
        rtt,
        send_seconds,
        timestamps,
    )
}

/// What came back, however it was counted.
pub struct Returns {
    pub received: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub malformed: u64,
}

/// The final report from counts that came back and timing. Every engine names what
/// timed its round trips (`timestamps`, README "probe"), so a report never leaves it out.
pub fn report_counts(
    sent: u64,
    returns: Returns,
    rtt: &Histogram,
    send_seconds: f64,
    timestamps: String,
) -> ProbeReport {
    ProbeReport {
        sent,
        received: returns.received,
        lost: sent.saturating_sub(returns.received),
        in_flight: 0,
        reordered: returns.reordered,
        duplicated: returns.duplicated,
        malformed: returns.malformed,
        rtt_ns: rtt.percentiles(),
        rtt_buckets: rtt.buckets(),
        send_seconds,
        tx_pps: if send_seconds > 0.0 {
            sent as f64 / send_seconds
        } else {
            0.0
        },
        timestamps: Some(timestamps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_loss_reorder_and_duplicates() {
        let mut t = SequenceTracker::new(10);
        for seq in [0, 1, 3, 2, 3, 5] {
            assert!(t.record(seq));
        }
        assert!(!t.record(10), "outside the run");
        let r = report(10, &t, 0, &Histogram::default(), 1.0, "user clock".into());
        assert_eq!(
            (r.received, r.lost, r.reordered, r.duplicated),
            (5, 5, 1, 1)
        );
    }

    #[test]
    fn received_below_counts_only_the_lower_sequence_numbers() {
        let mut t = SequenceTracker::new(200);
        for seq in [0, 5, 63, 64, 65, 130, 199] {
            t.record(seq);
        }
        let below = |seq| t.received_below(seq);
        assert_eq!(
            [
                below(0),
                below(1),
                below(63),
                below(64),
                below(66),
                below(131)
            ],
            [0, 1, 2, 3, 5, 6]
        );
        assert_eq!(below(200), 7);
        assert_eq!(below(u32::MAX), 7, "past the run counts the whole run");
    }
}
