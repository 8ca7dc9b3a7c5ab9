//! The sources of a run by index (the `source` of every [`super::Item`]): those opened at the
//! start, then the files a followed directory finds as the run goes. Each has its name (for
//! messages and alerts) and, for a file read with a state, the checkpoint its reading starts
//! from (see [`crate::checkpoint`]), on which the scorer counts its events.
//!
//! The reader appends sources; the scorer and the writer read them without a lock (an entry,
//! once in, never moves).

use std::ops::Index;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::Source;
use crate::checkpoint::{self, Checkpoint, Checkpoints, Identity, Resume};

/// A source's checkpoint key and the checkpoint its reading starts from.
pub type Tracked = Option<(String, Checkpoint)>;

/// The run's sources, by index.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Entries,
    /// The checkpoints restored with the state.
    checkpoints: Checkpoints,
    /// Whether the run keeps a state (without one, nothing is skipped or tracked).
    stateful: bool,
    /// `--reread`: no file is skipped.
    reread: bool,
}

/// One source: its name, and its checkpoint when it is a file read with a state.
#[derive(Debug)]
struct Entry {
    name: String,
    tracked: Tracked,
}

impl Registry {
    pub fn new(checkpoints: Checkpoints, stateful: bool, reread: bool) -> Registry {
        Registry {
            entries: Entries::default(),
            checkpoints,
            stateful,
            reread,
        }
    }

    /// Registers `source`: its index, and how many of its first events to skip (those its
    /// checkpoint says the state learned; none with `reread`).
    pub fn register(&self, source: &dyn Source) -> (u32, u64) {
        let (skip, tracked) = self.start(source);
        let name = source.name();
        (self.entries.push(Entry { name, tracked }), skip)
    }

    /// The checkpoints of the sources from index `from` on, as far as they are registered.
    pub fn tracked_from(&self, from: usize) -> impl Iterator<Item = Tracked> + '_ {
        (from..)
            .map_while(|i| self.entries.get(i))
            .map(|e| e.tracked.clone())
    }

    /// Where reading `source` starts: the events to skip, and its checkpoint then (for a file
    /// with an identity, when the run keeps a state).
    fn start(&self, source: &dyn Source) -> (u64, Tracked) {
        let identity = source
            .file()
            .and_then(|p| Some((p, Identity::of(p).ok()??)));
        let Some((path, id)) = identity.filter(|_| self.stateful) else {
            return (0, None);
        };
        let skip = match checkpoint::resume(&self.checkpoints, path, &id) {
            Resume::Fresh => 0,
            Resume::After(n) if self.reread => {
                tracing::info!(
                    "{}: read from its start (--reread): its {n} events learned before are learned again",
                    path.display()
                );
                0
            }
            Resume::After(n) => n,
            Resume::Changed(why) => {
                tracing::warn!("{}: {why}; reading it from its start", path.display());
                0
            }
        };
        let start = checkpoint::checkpoint(path, &id, skip);
        (skip, Some((id.key(), start)))
    }
}

/// A source's name, by index.
impl Index<usize> for Registry {
    type Output = String;

    fn index(&self, index: usize) -> &String {
        &self
            .entries
            .get(index)
            .expect("an item of a registered source")
            .name
    }
}

/// Chunks of entries, 32 for the `u32` indexes.
const CHUNKS: usize = 32;

/// Entries appended one at a time and read without a lock: chunk `k` holds indexes
/// `2^k - 1 ..= 2^(k+1) - 2`; it is allocated when first needed and never moves.
#[derive(Debug, Default)]
struct Entries {
    chunks: [OnceLock<Box<[OnceLock<Entry>]>>; CHUNKS],
    /// The number of entries, held while one is appended.
    len: Mutex<usize>,
}

impl Entries {
    /// Appends `entry`; its index.
    fn push(&self, entry: Entry) -> u32 {
        let mut len = self.len.lock().unwrap_or_else(PoisonError::into_inner);
        let index = u32::try_from(*len).expect("fewer than 2^32 sources");
        let (chunk, at) = locate(*len);
        let slots = self.chunks[chunk]
            .get_or_init(|| (0..1usize << chunk).map(|_| OnceLock::new()).collect());
        let _ = slots[at].set(entry);
        *len += 1;
        index
    }

    fn get(&self, index: usize) -> Option<&Entry> {
        let (chunk, at) = locate(index);
        self.chunks.get(chunk)?.get()?.get(at)?.get()
    }
}

/// The chunk of an index, and its place in the chunk.
fn locate(index: usize) -> (usize, usize) {
    let n = index + 1;
    let chunk = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (chunk, n - (1 << chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Stream;

    fn memory(name: &str) -> Stream {
        Stream::Memory {
            name: name.to_owned(),
            bytes: bytes::Bytes::new(),
        }
    }

    #[test]
    fn sources_keep_their_index_as_more_come() {
        let registry = Registry::default();
        for i in 0..1000u32 {
            assert_eq!(registry.register(&memory(&format!("s{i}"))), (i, 0));
        }
        assert_eq!(registry[0], "s0");
        assert_eq!(registry[1], "s1");
        assert_eq!(registry[2], "s2");
        assert_eq!(registry[999], "s999");
        assert_eq!(registry.tracked_from(990).count(), 10);
        assert_eq!(registry.tracked_from(1000).count(), 0);
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(6), (2, 3));
        assert_eq!(locate(7), (3, 0));
    }
}
