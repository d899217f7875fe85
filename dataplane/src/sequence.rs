//! Loss, reordering and duplication of one sequence-numbered (STAMP) stream, in fixed
//! memory: a [`WINDOW`]-bit ring remembers which of the last numbers behind the highest
//! have arrived.
//!
//! What the counts mean, for one run of numbers (a sender numbers each session from 0):
//! - `lost`: numbers between the first one seen and the highest that have not (yet)
//!   arrived. A gap counts as lost at once; a missing number that arrives later moves
//!   from `lost` to `reordered`.
//! - `reordered`: first arrivals of a number lower than the highest seen before it.
//! - `duplicated`: arrivals of a number already seen.
//! - `too_late`: arrivals more than [`WINDOW`] behind the highest. The window no longer
//!   says whether that number was seen, so the packet is either a late one (and `lost`
//!   is one too high) or a duplicate; it is counted here rather than guessed.
//! - `restarts`: new runs. Within a run, a packet behind the highest was sent before
//!   it, so a packet behind the highest whose sender timestamp is later than the
//!   highest's starts a new run: the sender restarted its numbering. Senders whose
//!   timestamps tell nothing (equal to the highest's) are judged by numbers alone: a 0
//!   that was already seen (or is out of the window), or any number more than
//!   [`RESTART_DISTANCE`] behind the highest, starts a new run. The counts above carry
//!   on across runs.
//!
//! Numbers wrap at 2^32 (a number less than 2^31 ahead of the highest is ahead), so a
//! long stream passes through 0 without a restart. Not knowable: a restart whose first
//! packet to arrive is ahead of the old run's highest (read as a gap), packets of an
//! old run that arrive after the new run began, and, by numbers alone, a duplicated 0
//! (read as a restart) or a restart whose 0 is lost (read as late or duplicate
//! numbers unless far behind).

use std::cmp::Ordering;

/// How many numbers behind the highest the tracker remembers (a power of two, so a
/// number's ring bit stays put across the 2^32 wrap).
pub const WINDOW: u32 = 1024;

const WORDS: usize = WINDOW as usize / 64;

/// How far behind the highest a number may be and still belong to the same run.
pub const RESTART_DISTANCE: u32 = 1 << 16;

/// What one arrival was, as [`SequenceTracker::observe`] judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The first number of a run (the stream's first, or a restart).
    RunStart,
    InOrder,
    Reordered,
    Duplicate,
    TooLate,
}

/// The counts of one stream; see the module documentation for what each one means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceTracker {
    highest: u32,
    /// The sender's transmit timestamp of the packet numbered `highest`.
    highest_sent: u64,
    /// How many numbers of the run lie at or below `highest`, capped at [`WINDOW`]:
    /// a late number no further behind than this was counted lost.
    span: u32,
    /// Bit `n % WINDOW` set: number `n` (within the window) has arrived.
    seen: [u64; WORDS],
    started: bool,
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub too_late: u64,
    pub restarts: u64,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        SequenceTracker {
            highest: 0,
            highest_sent: 0,
            span: 0,
            seen: [0; WORDS],
            started: false,
            lost: 0,
            reordered: 0,
            duplicated: 0,
            too_late: 0,
            restarts: 0,
        }
    }
}

impl SequenceTracker {
    /// Count one arrival of `sequence`, which the sender sent at `sent_at` (its
    /// transmit timestamp, in any unit that grows with time). Constant time and memory.
    #[inline]
    pub fn observe(&mut self, sequence: u32, sent_at: u64) -> Arrival {
        if !self.started {
            self.started = true;
            self.start_run(sequence, sent_at);
            return Arrival::RunStart;
        }
        let ahead = sequence.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 1 << 31 {
            self.lost += u64::from(ahead - 1);
            self.forget(self.highest.wrapping_add(1), ahead);
            self.mark(sequence);
            self.highest = sequence;
            self.highest_sent = sent_at;
            self.span = self.span.saturating_add(ahead).min(WINDOW);
            return Arrival::InOrder;
        }
        let behind = self.highest.wrapping_sub(sequence);
        let in_window = behind < WINDOW;
        let restart = match sent_at.cmp(&self.highest_sent) {
            Ordering::Greater => true,
            Ordering::Less => false,
            // No information (or the highest itself, again): numbers alone.
            Ordering::Equal => {
                behind > RESTART_DISTANCE
                    || sequence == 0 && behind != 0 && (!in_window || self.was_seen(0))
            }
        };
        if restart {
            self.restarts += 1;
            self.start_run(sequence, sent_at);
            return Arrival::RunStart;
        }
        if !in_window {
            self.too_late += 1;
            return Arrival::TooLate;
        }
        if self.was_seen(sequence) {
            self.duplicated += 1;
            return Arrival::Duplicate;
        }
        self.mark(sequence);
        self.reordered += 1;
        // Numbers before the run's first one were never counted lost.
        if behind < self.span {
            self.lost = self.lost.saturating_sub(1);
        }
        Arrival::Reordered
    }

    fn start_run(&mut self, sequence: u32, sent_at: u64) {
        self.seen = [0; WORDS];
        self.mark(sequence);
        self.highest = sequence;
        self.highest_sent = sent_at;
        self.span = 1;
    }

    #[inline(always)]
    fn bit(sequence: u32) -> (usize, u64) {
        let at = sequence % WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    #[inline(always)]
    fn was_seen(&self, sequence: u32) -> bool {
        let (word, bit) = Self::bit(sequence);
        self.seen[word] & bit != 0
    }

    #[inline(always)]
    fn mark(&mut self, sequence: u32) {
        let (word, bit) = Self::bit(sequence);
        self.seen[word] |= bit;
    }

    /// Clear the bits of `count` numbers from `from` on: they enter the window unseen.
    /// At most [`WORDS`] + 1 word operations, however far the window moves.
    #[inline]
    fn forget(&mut self, from: u32, count: u32) {
        if count >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (mut at, mut left) = (from % WINDOW, count);
        while left > 0 {
            let offset = at % 64;
            let take = (64 - offset).min(left);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << offset
            };
            self.seen[(at / 64) as usize] &= !mask;
            at = (at + take) % WINDOW;
            left -= take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Counts = (u64, u64, u64, u64, u64);

    /// Counts for arrivals from a sender whose timestamps tell nothing (all equal).
    fn counts(sequence: impl IntoIterator<Item = u32>) -> Counts {
        timed_counts(sequence.into_iter().map(|s| (s, 7)))
    }

    /// Counts for (sequence, sender timestamp) arrivals.
    fn timed_counts(arrivals: impl IntoIterator<Item = (u32, u64)>) -> Counts {
        let mut t = SequenceTracker::default();
        for (s, sent_at) in arrivals {
            t.observe(s, sent_at);
        }
        (t.lost, t.reordered, t.duplicated, t.too_late, t.restarts)
    }

    #[test]
    fn in_order_stream_has_no_anomalies() {
        assert_eq!(counts(0..10_000), (0, 0, 0, 0, 0));
    }

    #[test]
    fn gaps_are_lost_until_they_arrive() {
        assert_eq!(counts([0, 1, 4, 5]), (2, 0, 0, 0, 0));
        assert_eq!(counts([0, 1, 4, 2, 5, 3]), (0, 2, 0, 0, 0));
    }

    #[test]
    fn repeats_are_duplicates() {
        assert_eq!(counts([0, 1, 1, 2, 1, 2]), (0, 0, 3, 0, 0));
    }

    /// The pattern of issue 12: 10,000 packets, 7 lost, 3 late by 1, 10 and 100
    /// places, 2 duplicated (at once and 100 packets later).
    #[test]
    fn late_duplicates_are_duplicates_not_late_packets() {
        let lost = [500, 1500, 2500, 3500, 4500, 5500, 6500];
        let mut order: Vec<u32> = (0..10_000).filter(|s| !lost.contains(s)).collect();
        for (number, places) in [(1000, 1), (2000, 10), (3000, 100)] {
            let at = order.iter().position(|s| *s == number).unwrap();
            order.remove(at);
            order.insert(at + places, number);
        }
        let at = order.iter().position(|s| *s == 7000).unwrap();
        order.insert(at + 1, 7000);
        let at = order.iter().position(|s| *s == 8000).unwrap();
        order.insert(at + 100, 8000);
        assert_eq!(counts(order), (7, 3, 2, 0, 0));
    }

    #[test]
    fn numbers_before_the_first_one_seen_are_late_not_found() {
        assert_eq!(counts([5, 6, 3, 7]), (0, 1, 0, 0, 0));
    }

    #[test]
    fn beyond_the_window_is_too_late_to_judge() {
        let mut order: Vec<u32> = (0..3000).filter(|s| *s != 10).collect();
        order.push(10);
        order.push(20);
        assert_eq!(counts(order), (1, 0, 0, 2, 0));
    }

    #[test]
    fn sequence_wraps_without_a_restart() {
        let start = u32::MAX - 5;
        let order = (0..20).map(|i| start.wrapping_add(i)).filter(|s| *s != 2);
        assert_eq!(counts(order), (1, 0, 0, 0, 0));
        assert_eq!(
            counts([u32::MAX - 1, 0, u32::MAX, 1]),
            (0, 1, 0, 0, 0),
            "a late number just before the wrap"
        );
    }

    #[test]
    fn a_sender_restarting_at_zero_starts_a_new_run() {
        // A short run (0 still in the window) and a long one (0 far behind).
        assert_eq!(counts((0..10).chain(0..10)), (0, 0, 0, 0, 1));
        assert_eq!(counts((0..100_000).chain(0..10)), (0, 0, 0, 0, 1));
        // A late 0 that was never seen is late, not a restart.
        assert_eq!(counts([1, 2, 0, 3]), (0, 1, 0, 0, 0));
        // Far behind (but not 0) is a restart too.
        assert_eq!(counts((0..200_000).chain(5..10)), (0, 0, 0, 0, 1));
    }

    /// Real senders stamp each packet: a packet sent after the highest one but
    /// numbered below it is a restart, one sent before it belongs to the run.
    #[test]
    fn sender_timestamps_tell_restarts_from_late_and_duplicate_packets() {
        let sent = |numbers: &[u32]| -> Vec<(u32, u64)> {
            numbers.iter().map(|s| (*s, 1000 + u64::from(*s))).collect()
        };
        // 0 duplicated at once and 50 packets later: duplicates, not restarts.
        let mut order = sent(&(0..100).collect::<Vec<_>>());
        order.insert(1, (0, 1000));
        order.insert(52, (0, 1000));
        assert_eq!(timed_counts(order), (0, 0, 2, 0, 0));
        // A restart whose 0 is lost, after a short run: 1 was sent after 9.
        let mut order = sent(&(0..10).collect::<Vec<_>>());
        order.extend((1..10).map(|s| (s, 5000 + u64::from(s))));
        assert_eq!(timed_counts(order), (0, 0, 0, 0, 1));
        // A restart after a run whose own 0 was lost: the new 0 is not a late one.
        let mut order = sent(&(1..10).collect::<Vec<_>>());
        order.extend((0..10).map(|s| (s, 5000 + u64::from(s))));
        assert_eq!(timed_counts(order), (0, 0, 0, 0, 1));
        // A very late duplicate of 0 is too late to judge, not a restart.
        let mut order = sent(&(0..3000).collect::<Vec<_>>());
        order.push((0, 1000));
        assert_eq!(timed_counts(order), (0, 0, 0, 1, 0));
    }

    #[test]
    fn jumping_far_ahead_forgets_the_whole_window() {
        assert_eq!(counts([0, 1, 5000, 2]), (4998, 0, 0, 1, 0));
        assert_eq!(counts([0, 1, 5000, 4999, 5000]), (4997, 1, 1, 0, 0));
    }
}
