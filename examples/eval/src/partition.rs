//! oddity partitioned by principal, as the NATS JetStream scale-out runs it: the route stage
//! sends every event to partition `xxh3_64(principal) % N`, and each partition is scored by an
//! engine of its own that sees only that partition's events, in stream order.
//!
//! The engines are independent, so scoring each event in its partition's engine as the stream
//! comes gives every engine its sub-stream in order: the same verdicts as running the `N`
//! sub-streams one after the other and putting the scores back by index.

use anyhow::{Context, Result, ensure};
use oddity_engine::{Engine, ScoreError, ScoreRecord};
use xxhash_rust::xxh3::xxh3_64;

/// The partition of an event, by the route stage's rule: `xxh3_64(principal) % n` (seed 0, the
/// principal's UTF-8 bytes), or `xxh3_64(line) % n` for a line that is not an event.
pub fn partition_of(principal: Option<&str>, line: &[u8], n: usize) -> usize {
    let hash = principal.map_or_else(|| xxh3_64(line), |p| xxh3_64(p.as_bytes()));
    (hash % n as u64) as usize
}

/// oddity over `N` partitions: one fresh engine per partition, and an engine that names each
/// event's principal (`Engine::entities`, as the route stage does) when `N > 1`.
pub struct Partitioned {
    engines: Vec<Engine>,
    router: Option<Engine>,
    framed: Vec<u8>,
}

impl std::fmt::Debug for Partitioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitioned")
            .field("partitions", &self.engines.len())
            .finish_non_exhaustive()
    }
}

impl Partitioned {
    /// `partitions` fresh engines of configuration `config`; one is oddity as one process.
    pub fn new(config: &str, partitions: usize) -> Result<Partitioned> {
        ensure!(partitions >= 1, "partitions must be at least 1");
        let engine = || Engine::new(config).context("engine configuration");
        let engines = (0..partitions).map(|_| engine()).collect::<Result<_>>()?;
        let router = if partitions > 1 {
            Some(engine()?)
        } else {
            None
        };
        Ok(Partitioned {
            engines,
            router,
            framed: Vec::new(),
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

    /// Scores, then learns, `line` in the engine of partition `part`.
    pub fn score_line(&mut self, part: usize, line: &[u8]) -> Result<ScoreRecord, ScoreError> {
        self.engines[part].score_line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"eventTime":"2024-03-04T09:15:02Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice"},"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli/2.15.1","eventID":"e1"}"#;

    #[test]
    fn one_partition_is_one_engine_and_routes_nothing() {
        let mut p = Partitioned::new("", 1).expect("engine");
        assert_eq!(p.partitions(), 1);
        assert_eq!(p.partition(LINE.as_bytes()).expect("routes"), 0);
        assert_eq!(partition_of(Some("anyone"), b"x", 1), 0);
    }

    #[test]
    fn an_event_goes_to_its_principals_partition_and_a_non_event_by_its_bytes() {
        let mut p = Partitioned::new("", 16).expect("engines");
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
        let cfg = oddity_cloudtrail_gen::GenConfig {
            seed: 5,
            days: 1,
            humans: 6,
            roles: 4,
            ..Default::default()
        };
        let open = || crate::streams::StreamSpec::Generated(cfg.clone()).open();
        let scored = crate::harness::run_partitioned(open().expect("opens"), "", 3).expect("runs");
        let lines: Vec<String> = open().expect("opens").events.map(|e| e.json).collect();
        let mut router = Partitioned::new("", 3).expect("engines");
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
    fn an_event_holding_a_newline_is_refused() {
        let mut p = Partitioned::new("", 4).expect("engines");
        assert!(p.partition(b"{\n}").is_err());
    }
}
