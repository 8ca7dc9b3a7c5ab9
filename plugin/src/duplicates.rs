//! Duplicate events: the events learned within a window of event time, so that an event
//! delivered twice (CloudTrail may deliver an event more than once; a file read twice) is
//! annotated and not learned again.
//!
//! An event is known by its id together with its time and its observation: a second event that
//! reuses a known id but says something else is not a duplicate (it is scored), so an id cannot
//! be used to hide an event. Events are kept as 64-bit hashes with the event time they were
//! seen at, in the order they came, at most `capacity` of them: the oldest are forgotten first,
//! and so are those more than the window older than the latest time seen. An event seen again
//! within the window of its first sighting (before or after it in event time: deliveries come
//! out of order) is a duplicate.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64_with_seed;

const ID_SEED: u64 = 0x6964_7570_6c69_6361;

/// The key of an event: its id, its time's text and its observation's values, each after its
/// length, hashed at once (`buf` is scratch: one hash of the whole is cheaper than a streaming
/// hasher fed two dozen short pieces, and the same number).
pub fn key<'a>(
    buf: &mut Vec<u8>,
    id: &'a str,
    time: Option<&'a str>,
    values: impl IntoIterator<Item = &'a str>,
) -> u64 {
    buf.clear();
    for part in [id, time.unwrap_or("")].into_iter().chain(values) {
        buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
        buf.extend_from_slice(part.as_bytes());
    }
    xxh3_64_with_seed(buf, ID_SEED)
}

/// The ids seen, bounded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Id hash → the event time it was first seen at.
    ids: FxHashMap<u64, u32>,
    /// The same, in the order they came (for forgetting).
    order: VecDeque<(u64, u32)>,
    /// The latest event time seen.
    latest: u32,
}

impl Seen {
    /// Whether the event of `key` (see [`key`]) was seen within `window` seconds of `time`: the
    /// time it was first seen at. An event not seen is remembered.
    pub fn check(&mut self, key: u64, time: u32, window: u32, capacity: usize) -> Option<u32> {
        match self.ids.entry(key) {
            Entry::Occupied(seen) if seen.get().abs_diff(time) <= window => {
                return Some(*seen.get());
            }
            Entry::Occupied(mut seen) => {
                seen.insert(time);
            }
            Entry::Vacant(new) => {
                new.insert(time);
            }
        }
        self.order.push_back((key, time));
        self.latest = self.latest.max(time);
        self.forget(window, capacity);
        None
    }

    /// Forgets beyond the capacity, and what is more than `window` older than the latest time.
    fn forget(&mut self, window: u32, capacity: usize) {
        while let Some(&(key, time)) = self.order.front() {
            let stale = time.saturating_add(window) < self.latest;
            if !stale && self.order.len() <= capacity {
                break;
            }
            self.order.pop_front();
            // An id seen again later was re-remembered with its newer time: keep that one.
            if let Entry::Occupied(seen) = self.ids.entry(key)
                && *seen.get() == time
            {
                seen.remove();
            }
        }
    }

    /// The remembered ids, oldest first, for a snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.order
            .iter()
            .copied()
            .filter(|(key, time)| self.ids.get(key) == Some(time))
    }

    /// From a snapshot's entries, oldest first.
    pub fn from_entries(entries: impl IntoIterator<Item = (u64, u32)>) -> Seen {
        let mut seen = Seen::default();
        for (key, time) in entries {
            seen.ids.insert(key, time);
            seen.order.push_back((key, time));
            seen.latest = seen.latest.max(time);
        }
        seen
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(
        id: &'a str,
        time: Option<&'a str>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> u64 {
        super::key(&mut Vec::new(), id, time, values)
    }

    fn k(id: &str) -> u64 {
        key(id, Some("2024-03-04T09:15:02Z"), ["raul", "GetObject"])
    }

    /// Snapshots hold these keys: they must stay what a streaming hash of the parts gave.
    #[test]
    fn the_key_is_the_streaming_hash_of_the_parts() {
        let parts = ["id-1", "2024-03-04T09:15:02Z", "raul", "", "GetObject"];
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(ID_SEED);
        for part in parts {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        assert_eq!(
            key(parts[0], Some(parts[1]), parts[2..].iter().copied()),
            h.digest()
        );
    }

    #[test]
    fn the_key_is_the_id_with_what_the_event_says() {
        assert_eq!(k("a"), k("a"));
        assert_ne!(k("a"), k("b"));
        assert_ne!(
            k("a"),
            key("a", Some("2024-03-04T09:15:02Z"), ["raul", "PutObject"])
        );
        assert_ne!(k("a"), key("a", None, ["raul", "GetObject"]));
        assert_ne!(
            key("ab", None, ["c"]),
            key("a", None, ["bc"]),
            "parts are delimited"
        );
    }

    #[test]
    fn an_id_is_a_duplicate_within_the_window_either_way_in_time() {
        let mut seen = Seen::default();
        assert_eq!(seen.check(k("a"), 1000, 100, 10), None);
        assert_eq!(seen.check(k("a"), 1050, 100, 10), Some(1000));
        assert_eq!(
            seen.check(k("a"), 950, 100, 10),
            Some(1000),
            "delivered out of order"
        );
        assert_eq!(seen.check(k("b"), 1000, 100, 10), None);
        // Beyond the window it is an event of its own.
        assert_eq!(seen.check(k("a"), 1200, 100, 10), None);
        assert_eq!(seen.check(k("a"), 1250, 100, 10), Some(1200));
    }

    #[test]
    fn memory_is_bounded_by_capacity_and_window() {
        let mut seen = Seen::default();
        for i in 0..1000 {
            seen.check(k(&format!("id-{i}")), 5000, 100, 50);
        }
        assert_eq!(seen.len(), 50);
        assert_eq!(
            seen.check(k("id-999"), 5000, 100, 50),
            Some(5000),
            "the newest are kept"
        );
        assert_eq!(
            seen.check(k("id-0"), 5000, 100, 50),
            None,
            "the oldest are forgotten"
        );
        seen.check(k("late"), 9000, 100, 50);
        assert_eq!(seen.len(), 1, "what is older than the window is forgotten");
        let again = Seen::from_entries(seen.entries().collect::<Vec<_>>());
        assert_eq!(again, seen);
    }
}
