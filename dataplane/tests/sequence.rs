//! The per-stream sequence tracker against a reference model with unbounded memory,
//! over random send orders: losses, late packets, duplicates, late duplicates, runs
//! that wrap at 2^32 and senders that restart at 0. Each packet carries its send time,
//! as a STAMP sender's timestamp does; a copy carries the original's.

use dataplane::sequence::{SequenceTracker, WINDOW};
use proptest::prelude::*;
use std::collections::HashSet;

/// What happens to one sent packet on the way.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Arrives,
    Lost,
    /// Arrives this many places later.
    Late(u32),
    /// Arrives, and once more this many places later.
    Duplicated(u32),
}

fn fate(max_delay: u32) -> impl Strategy<Value = Fate> {
    prop_oneof![
        20 => Just(Fate::Arrives),
        1 => Just(Fate::Lost),
        1 => (1..=max_delay).prop_map(Fate::Late),
        1 => (0..=max_delay).prop_map(Fate::Duplicated),
    ]
}

/// One run of a sender: consecutive numbers from `base`, each with its fate.
#[derive(Clone, Debug)]
struct Run {
    base: u32,
    fates: Vec<Fate>,
}

/// Runs after the first restart at 0; the first one may start just before the 2^32
/// wrap (and then runs through it).
fn runs(max_delay: u32) -> impl Strategy<Value = Vec<Run>> {
    let run = |max_len: usize| prop::collection::vec(fate(max_delay), 1..max_len);
    (
        prop_oneof![Just(0u32), (1u32..200).prop_map(|k| 0u32.wrapping_sub(k))],
        prop::collection::vec(run(3000), 1..4),
    )
        .prop_map(|(first_base, fates)| {
            fates
                .into_iter()
                .enumerate()
                .map(|(i, fates)| Run {
                    base: if i == 0 { first_base } else { 0 },
                    fates,
                })
                .collect::<Vec<_>>()
        })
        .prop_filter("a wrapping first run reaches 0", |runs| {
            runs[0].base == 0 || runs[0].fates.len() as u32 > 0u32.wrapping_sub(runs[0].base)
        })
}

/// The arrivals of the run that `first` tells is the stream's first or not, as
/// (index in the run) in arrival order. Arriving first and in place: a later run's 0
/// (a restart whose first arrival is ahead of the old run's highest reads as a gap),
/// and the 0 of a run that wraps (so that it reaches past the wrap).
fn arrivals(run: &Run, first: bool) -> Vec<u64> {
    let mut keyed: Vec<(u64, u64)> = Vec::new(); // (2 * place + 1 if moved, index)
    for (i, fate) in run.fates.iter().enumerate() {
        let i = i as u64;
        let place = 2 * i;
        let zero = run.base.wrapping_add(i as u32) == 0;
        let fate = if zero && !(first && run.base == 0) {
            Fate::Arrives
        } else {
            *fate
        };
        match fate {
            Fate::Arrives => keyed.push((place, i)),
            Fate::Lost => {}
            Fate::Late(d) => keyed.push((place + 2 * u64::from(d) + 1, i)),
            Fate::Duplicated(d) => {
                keyed.push((place, i));
                keyed.push((place + 2 * u64::from(d) + 1, i));
            }
        }
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The counts the tracker should report: unbounded memory, positions in the run
/// rather than wrapping numbers, run boundaries known. The one concession to the
/// window: an arrival at least [`WINDOW`] behind the highest is `too_late`, and a
/// number that only arrived that late stays lost.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    lost: u64,
    reordered: u64,
    duplicated: u64,
    too_late: u64,
    restarts: u64,
}

fn model(runs: &[Run]) -> Counts {
    let mut c = Counts::default();
    let mut runs_seen = 0;
    for (r, run) in runs.iter().enumerate() {
        let arrived_in_order = arrivals(run, r == 0);
        let Some(&first) = arrived_in_order.first() else {
            continue;
        };
        runs_seen += 1;
        let mut seen: HashSet<u64> = HashSet::from([first]);
        let mut highest = first;
        for &i in &arrived_in_order[1..] {
            if i > highest {
                highest = i;
                seen.insert(i);
            } else if highest - i >= u64::from(WINDOW) {
                c.too_late += 1;
            } else if !seen.insert(i) {
                c.duplicated += 1;
            } else {
                c.reordered += 1;
            }
        }
        c.lost += (first..=highest).filter(|i| !seen.contains(i)).count() as u64;
    }
    c.restarts = runs_seen.max(1) - 1;
    c
}

fn tracker(runs: &[Run]) -> Counts {
    let mut t = SequenceTracker::default();
    // Send times: runs follow one another; within a run, in number order.
    let mut sent_before = 0;
    for (r, run) in runs.iter().enumerate() {
        for i in arrivals(run, r == 0) {
            t.observe(run.base.wrapping_add(i as u32), sent_before + i);
        }
        sent_before += run.fates.len() as u64;
    }
    Counts {
        lost: t.lost,
        reordered: t.reordered,
        duplicated: t.duplicated,
        too_late: t.too_late,
        restarts: t.restarts,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Delays well inside the window: the tracker knows everything the model does.
    #[test]
    fn tracker_matches_the_model_inside_the_window(runs in runs(200)) {
        let expected = model(&runs);
        prop_assert_eq!(expected.too_late, 0);
        prop_assert_eq!(tracker(&runs), expected);
    }

    /// Delays past the window: what the tracker cannot judge is counted too late,
    /// never guessed.
    #[test]
    fn tracker_matches_the_model_past_the_window(runs in runs(3 * WINDOW)) {
        prop_assert_eq!(tracker(&runs), model(&runs));
    }
}
