//! oddity partitioned by principal, as the NATS JetStream scale-out runs it: the route stage
//! sends every event to partition `xxh3_64(principal) % N`, and each partition is scored by an
//! engine of its own that sees only that partition's events, in stream order.
//!
//! Scoring each event in its partition's engine as the stream comes gives every engine its
//! sub-stream in order. With `share_every` (the route stage's `--share-every`), the engines also
//! share population knowledge as the workers do at each of the route stage's markers: after every
//! `share_every` events, each engine shares what it learned into the population since the last
//! marker, then merges what every other engine shared at the marker before (one marker late, as a
//! worker that does not wait for the slowest partition's latest).

use anyhow::{Context, Result, ensure};
use oddity_engine::{Engine, ScoreError, ScoreRecord};
use xxhash_rust::xxh3::xxh3_64;

/// The partition of an event, by the route stage's rule: `xxh3_64(principal) % n` (seed 0, the
/// principal's UTF-8 bytes), or `xxh3_64(line) % n` for a line that is not an event.
pub fn partition_of(principal: Option<&str>, line: &[u8], n: usize) -> usize {
    let hash = principal.map_or_else(|| xxh3_64(line), |p| xxh3_64(p.as_bytes()));
    (hash % n as u64) as usize
}

/// How oddity is spread over engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    pub partitions: usize,
    /// Events between two exchanges of population knowledge; 0 keeps it partition-local.
    pub share_every: usize,
}

impl Partitioning {
    /// One engine: oddity as one process.
    pub const ONE: Partitioning = Partitioning {
        partitions: 1,
        share_every: 0,
    };
}

/// oddity over `N` partitions: one fresh engine per partition, and an engine that names each
/// event's principal (`Engine::entities`, as the route stage does) when `N > 1`.
pub struct Partitioned {
    engines: Vec<Engine>,
    router: Option<Engine>,
    framed: Vec<u8>,
    share_every: usize,
    events: usize,
    /// What each engine shared at the last marker.
    shared: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Partitioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitioned")
            .field("partitions", &self.engines.len())
            .finish_non_exhaustive()
    }
}

impl Partitioned {
    /// Fresh engines of configuration `config`; one partition is oddity as one process.
    pub fn new(config: &str, how: Partitioning) -> Result<Partitioned> {
        let partitions = how.partitions;
        ensure!(partitions >= 1, "partitions must be at least 1");
        let engine = || Engine::new(config).context("engine configuration");
        let mut engines: Vec<Engine> = (0..partitions).map(|_| engine()).collect::<Result<_>>()?;
        let share_every = if partitions > 1 { how.share_every } else { 0 };
        if share_every > 0 {
            engines.iter_mut().for_each(|e| drop(e.share_population()));
        }
        let router = if partitions > 1 {
            Some(engine()?)
        } else {
            None
        };
        Ok(Partitioned {
            engines,
            router,
            framed: Vec::new(),
            share_every,
            events: 0,
            shared: Vec::new(),
        })
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.engines.len()
    }

    /// The partition of `line` (one event, without its newline).
    pub fn partition(&mut self, line: &[u8]) -> Result<usize> {
        let Some(router) = &mut self.router else {
            return Ok(0);
        };
        self.framed.clear();
        self.framed.extend_from_slice(line);
        self.framed.push(b'\n');
        let entities = router.entities(&self.framed);
        ensure!(
            entities.len() == 1,
            "an event framed as {} lines (it holds a newline)",
            entities.len()
        );
        Ok(partition_of(
            entities[0].as_deref(),
            line,
            self.engines.len(),
        ))
    }

    /// Scores, then learns, `line` in the engine of partition `part`; then, at a marker,
    /// exchanges population knowledge.
    pub fn score_line(&mut self, part: usize, line: &[u8]) -> Result<ScoreRecord, ScoreError> {
        let verdict = self.engines[part].score_line(line);
        self.events += 1;
        if self.share_every > 0 && self.events.is_multiple_of(self.share_every) {
            self.exchange();
        }
        verdict
    }

    /// A marker: every engine shares, then merges the others' shares of the marker before.
    fn exchange(&mut self) {
        let fresh: Vec<Vec<u8>> = self
            .engines
            .iter_mut()
            .map(Engine::share_population)
            .collect();
        for (p, engine) in self.engines.iter_mut().enumerate() {
            for (q, delta) in self.shared.iter().enumerate() {
                if q != p {
                    engine
                        .merge_population(delta)
                        .expect("engines of one configuration share what they merge");
                }
            }
        }
        self.shared = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated organisation of six people and four roles over `days`.
    fn small_organisation(days: u32) -> oddity_cloudtrail_gen::GenConfig {
        oddity_cloudtrail_gen::GenConfig {
            seed: 5,
            days,
            humans: 6,
            roles: 4,
            ..Default::default()
        }
    }

    fn parts(partitions: usize) -> Partitioning {
        Partitioning {
            partitions,
            share_every: 0,
        }
    }

    const LINE: &str = r#"{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice"},"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli/2.15.1","eventID":"e1"}"#;

    #[test]
    fn one_partition_is_one_engine_and_routes_nothing() {
        let mut p = Partitioned::new("", Partitioning::ONE).expect("engine");
        assert_eq!(p.partitions(), 1);
        assert_eq!(p.partition(LINE.as_bytes()).expect("routes"), 0);
        assert_eq!(partition_of(Some("anyone"), b"x", 1), 0);
    }

    #[test]
    fn an_event_goes_to_its_principals_partition_and_a_non_event_by_its_bytes() {
        let mut p = Partitioned::new("", parts(16)).expect("engines");
        let principal = Engine::new("")
            .expect("engine")
            .entities(format!("{LINE}\n").as_bytes())
            .remove(0)
            .expect("an event");
        let by_principal = (xxh3_64(principal.as_bytes()) % 16) as usize;
        assert_eq!(p.partition(LINE.as_bytes()).expect("routes"), by_principal);
        let junk = b"not json";
        let by_bytes = (xxh3_64(junk) % 16) as usize;
        assert_eq!(p.partition(junk).expect("routes"), by_bytes);
        let verdict = p.score_line(by_principal, LINE.as_bytes()).expect("scores");
        assert_eq!(verdict.principal, principal);
    }

    #[test]
    fn a_partitioned_run_scores_each_partition_as_its_sub_stream_alone() {
        let cfg = small_organisation(1);
        let open = || crate::streams::StreamSpec::Generated(cfg.clone()).open();
        let scored =
            crate::harness::run_partitioned(open().expect("opens"), "", parts(3)).expect("runs");
        let lines: Vec<String> = open().expect("opens").events.map(|e| e.json).collect();
        let mut router = Partitioned::new("", parts(3)).expect("engines");
        let parts: Vec<usize> = lines
            .iter()
            .map(|l| router.partition(l.as_bytes()).expect("routes"))
            .collect();
        for part in 0..3 {
            let mut alone = Engine::new("").expect("engine");
            let mine: Vec<usize> = (0..lines.len()).filter(|&i| parts[i] == part).collect();
            assert!(!mine.is_empty(), "partition {part} has events");
            for i in mine {
                let score = alone
                    .score_line(lines[i].as_bytes())
                    .map_or(0.0, |r| r.score);
                assert_eq!(scored.scores[0][i].to_bits(), score.to_bits(), "event {i}");
            }
        }
    }

    #[test]
    fn shared_population_knowledge_reaches_every_partition_one_marker_late() {
        let cfg = small_organisation(2);
        let lines: Vec<String> = crate::streams::StreamSpec::Generated(cfg)
            .open()
            .expect("opens")
            .events
            .map(|e| e.json)
            .collect();
        let how = Partitioning {
            partitions: 3,
            share_every: 100,
        };
        let mut shared = Partitioned::new("", how).expect("engines");
        let mut local = Partitioned::new("", parts(3)).expect("engines");
        let mut differ = 0;
        for (i, line) in lines.iter().enumerate() {
            let part = shared.partition(line.as_bytes()).expect("routes");
            let a = shared
                .score_line(part, line.as_bytes())
                .map_or(0.0, |r| r.score);
            let b = local
                .score_line(part, line.as_bytes())
                .map_or(0.0, |r| r.score);
            if i < 200 {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "nothing merged before the second marker"
                );
            }
            differ += usize::from(a.to_bits() != b.to_bits());
        }
        assert!(
            differ > lines.len() / 2,
            "{differ} of {} scores moved",
            lines.len()
        );
        let events: u64 = shared.engines.iter().map(|e| e.stats().events).sum();
        assert_eq!(
            events,
            lines.len() as u64,
            "each event learned by one engine only"
        );
    }

    #[test]
    fn an_event_holding_a_newline_is_refused() {
        let mut p = Partitioned::new("", parts(4)).expect("engines");
        assert!(p.partition(b"{\n}").is_err());
    }
}
