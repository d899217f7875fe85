//! The stream table's storage: dense entries behind a fixed open-addressed index.
//!
//! Why not a general hash map: the lookup was the largest single cost of the default
//! pipeline's profile (hashing the key field by field, the group probe, a compare of
//! each field). Here the key is four words, hashed with two independent folded
//! multiplications and compared as four words; the entry the previous frame hit is
//! tried before hashing at all (a test head sends each stream's frames back to back,
//! so in a batch most frames belong to the stream of the one before); and what every
//! frame updates ([`Hot`], 56 bytes) lives apart from what only a stream's first frame
//! and its STAMP packets touch ([`Cold`], which holds the sequence window).
//!
//! Memory is fixed when the table is built: entries are reserved for `capacity`
//! streams and the index has at least twice as many slots, so it is at most half full,
//! every probe ends at an empty slot, and recording never allocates. The hash is
//! seeded per table, so senders cannot choose keys that collide.

use super::{SessionCounts, StreamKey};
use crate::sequence::SequenceTracker;
use std::hash::{BuildHasher, RandomState};

/// What every frame of a stream updates.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hot {
    pub key: StreamKey,
    pub frames: u64,
    pub bytes: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub last_seen: u64,
}

/// What only a stream's first frame and its sequence-numbered (STAMP) frames touch.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cold {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub first_seen: u64,
    /// Present once a sequence-numbered (STAMP) frame has been seen.
    pub sequence: Option<SequenceTracker>,
    /// The current STAMP session: since the stream began or the sender last
    /// restarted its numbering.
    pub session: SessionCounts,
}

/// An index slot: empty, or the key's hash tag (high 32 bits) over its entry's
/// position + 1 (low 32 bits).
const EMPTY: u64 = 0;
const TAG: u64 = !(u32::MAX as u64);

/// No previous hit.
const NONE: usize = usize::MAX;

#[derive(Debug)]
pub(super) struct Table {
    hot: Vec<Hot>,
    cold: Vec<Cold>,
    slots: Box<[u64]>,
    seed: [u64; 4],
    /// The entry the last lookup found or inserted.
    last: usize,
    capacity: usize,
}

impl Table {
    /// Room for `capacity` streams, allocated now.
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity < u32::MAX as usize,
            "a stream table holds fewer than 2^32 streams"
        );
        let slots = (capacity * 2).max(1).next_power_of_two();
        let seeds = RandomState::new();
        Table {
            hot: Vec::with_capacity(capacity),
            cold: Vec::with_capacity(capacity),
            slots: vec![EMPTY; slots].into_boxed_slice(),
            seed: std::array::from_fn(|i| seeds.hash_one(i)),
            last: NONE,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.hot.len()
    }

    /// The position of `key`'s entry, added (first seen at `now`) if it is new and
    /// there is room; `None` if it is new and the table is full.
    #[inline(always)]
    pub fn find_or_insert(&mut self, key: &StreamKey, now: u64) -> Option<usize> {
        if self.hot.get(self.last).is_some_and(|hot| hot.key == *key) {
            return Some(self.last);
        }
        let hash = self.hash(key);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                break;
            }
            if slot & TAG == hash & TAG {
                let index = (slot as u32 - 1) as usize;
                if self.hot[index].key == *key {
                    self.last = index;
                    return Some(index);
                }
            }
            at = (at + 1) & mask;
        }
        if self.hot.len() >= self.capacity {
            return None;
        }
        let index = self.hot.len();
        self.slots[at] = hash & TAG | (index as u64 + 1);
        self.hot.push(Hot {
            key: *key,
            frames: 0,
            bytes: 0,
            last_seen: now,
        });
        self.cold.push(Cold {
            first_seen: now,
            ..Cold::default()
        });
        self.last = index;
        Some(index)
    }

    #[inline(always)]
    pub fn hot_mut(&mut self, index: usize) -> &mut Hot {
        &mut self.hot[index]
    }

    #[inline(always)]
    pub fn cold_mut(&mut self, index: usize) -> &mut Cold {
        &mut self.cold[index]
    }

    /// Keep only the entries `keep` accepts, then rebuild the index if any went.
    pub fn retain(&mut self, mut keep: impl FnMut(&Hot) -> bool) {
        let before = self.hot.len();
        let mut kept = 0;
        for index in 0..before {
            if keep(&self.hot[index]) {
                self.hot.swap(kept, index);
                self.cold.swap(kept, index);
                kept += 1;
            }
        }
        if kept == before {
            return;
        }
        self.hot.truncate(kept);
        self.cold.truncate(kept);
        self.last = NONE;
        self.slots.fill(EMPTY);
        let mask = self.slots.len() - 1;
        for (index, hot) in self.hot.iter().enumerate() {
            let hash = hash(&self.seed, &hot.key);
            let mut at = hash as usize & mask;
            while self.slots[at] != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = hash & TAG | (index as u64 + 1);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hot, &Cold)> + '_ {
        self.hot.iter().zip(&self.cold)
    }

    #[inline(always)]
    fn hash(&self, key: &StreamKey) -> u64 {
        hash(&self.seed, key)
    }
}

/// Two independent folded multiplications (as foldhash does), so the hash costs one
/// multiply's latency rather than a chain of four.
#[inline(always)]
fn hash(seed: &[u64; 4], key: &StreamKey) -> u64 {
    let [a, b, c, d] = key.words();
    fold_mul(a ^ seed[0], b ^ seed[1]) ^ fold_mul(c ^ seed[2], d ^ seed[3])
}

#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    product as u64 ^ (product >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::MacAddr;
    use crate::signature::Signature;

    fn key(port: u16) -> StreamKey {
        StreamKey::new(
            MacAddr([0, 0xc0, 0x17, 0, 0, 1]),
            [0; 16],
            port,
            3842,
            Signature::Latency,
            0,
        )
    }

    #[test]
    fn finds_every_entry_until_full_and_after_expiry() {
        let mut table = Table::new(100);
        for port in 0..100 {
            assert_eq!(table.find_or_insert(&key(port), 7), Some(usize::from(port)));
        }
        assert_eq!(table.find_or_insert(&key(100), 7), None, "full");
        for port in (0..100).rev() {
            assert_eq!(table.find_or_insert(&key(port), 8), Some(usize::from(port)));
        }
        table.retain(|hot| hot.key.src_port() % 3 == 0);
        assert_eq!(table.len(), 34);
        let kept: Vec<_> = (0..100)
            .step_by(3)
            .map(|port| table.find_or_insert(&key(port), 9))
            .collect();
        assert!(
            kept.iter().all(Option::is_some),
            "kept entries are found again"
        );
        for port in 0..100 {
            assert!(table.find_or_insert(&key(port), 9).is_some());
        }
        assert_eq!(table.len(), 100, "the freed room went to new streams");
        let mut ports: Vec<_> = table.iter().map(|(hot, _)| hot.key.src_port()).collect();
        ports.sort_unstable();
        assert_eq!(ports, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn new_entries_start_at_now() {
        let mut table = Table::new(1);
        let index = table.find_or_insert(&key(1), 42).unwrap();
        assert_eq!(table.hot_mut(index).last_seen, 42);
        assert_eq!(table.cold_mut(index).first_seen, 42);
        assert_eq!(table.hot_mut(index).frames, 0);
    }
}
