//! The WebAssembly component: exports `oddity:detector/detector` (see `wit/detector.wit`) by
//! converting between the WIT types and the engine's own. No other file sees WIT types.

use std::cell::RefCell;

use crate::config::{ConfigError as EngineConfigError, Severity as EngineSeverity};
use crate::engine::{
    Batch as EngineBatch, BatchError as EngineBatchError, Engine as Inner,
    ScoreError as EngineScoreError, SnapshotError as EngineSnapshotError, Verdict as EngineVerdict,
};
use crate::snapshot::DecodeError;

wit_bindgen::generate!({
    path: "../wit",
    world: "oddity",
});

use exports::oddity::detector::detector::{Engine, EngineStats, Guest, GuestEngine};
use oddity::detector::types::{
    Batch, BatchError, ConfigError, Judged, ScoreError, Severity, SnapshotError, Verdict,
};

struct Component;

impl Guest for Component {
    type Engine = Detector;
}

/// The resource: WIT methods take `&self`, the engine learns, hence the cell.
struct Detector(RefCell<Inner>);

fn config_error(e: EngineConfigError) -> ConfigError {
    match e {
        EngineConfigError::Syntax(m) => ConfigError::Syntax(m),
        EngineConfigError::Invalid(m) => ConfigError::Invalid(m),
    }
}

fn score_error(e: EngineScoreError) -> ScoreError {
    match e {
        EngineScoreError::NotUtf8 => ScoreError::NotUtf8,
        EngineScoreError::NotJson(m) => ScoreError::NotJson(m),
        EngineScoreError::NotObject => ScoreError::NotObject,
        EngineScoreError::FieldMissing(m) => ScoreError::FieldMissing(m),
        EngineScoreError::Duplicate(m) => ScoreError::Duplicate(m),
    }
}

fn batch_error(e: EngineBatchError) -> BatchError {
    match e {
        EngineBatchError::Foreign(m) => BatchError::Foreign(m),
        EngineBatchError::Corrupt(m) => BatchError::Corrupt(m),
    }
}

fn severity(s: EngineSeverity) -> Severity {
    match s {
        EngineSeverity::Info => Severity::Info,
        EngineSeverity::Low => Severity::Low,
        EngineSeverity::Medium => Severity::Medium,
        EngineSeverity::High => Severity::High,
        EngineSeverity::Critical => Severity::Critical,
    }
}

fn verdict(v: Result<EngineVerdict, EngineScoreError>) -> Result<Verdict, ScoreError> {
    v.map(|v| Verdict {
        score: v.score,
        novelty: v.novelty,
        risk: v.risk,
        severity: severity(v.severity),
        campaign_risk: v.campaign_risk,
        cold: v.cold,
    })
    .map_err(score_error)
}

impl GuestEngine for Detector {
    fn create(config: String) -> Result<Engine, ConfigError> {
        let inner = Inner::new(&config).map_err(config_error)?;
        Ok(Engine::new(Detector(RefCell::new(inner))))
    }

    fn restore(config: String, snapshot: Vec<u8>) -> Result<Engine, SnapshotError> {
        let inner = Inner::restore(&config, &snapshot).map_err(|e| match e {
            EngineSnapshotError::Config(c) => SnapshotError::Config(config_error(c)),
            EngineSnapshotError::Decode(DecodeError::NotASnapshot(m)) => {
                SnapshotError::NotASnapshot(m)
            }
            EngineSnapshotError::Decode(DecodeError::Version(m)) => SnapshotError::Version(m),
            EngineSnapshotError::Decode(DecodeError::Checksum(m)) => SnapshotError::Checksum(m),
            EngineSnapshotError::Decode(DecodeError::Mismatch(m)) => SnapshotError::Mismatch(m),
        })?;
        Ok(Engine::new(Detector(RefCell::new(inner))))
    }

    fn judge(&self, batch: Batch) -> Result<Judged, BatchError> {
        let mut engine = self.0.borrow_mut();
        let judged = match &batch {
            Batch::Lines(lines) => engine.judge(EngineBatch::Lines(lines)),
            Batch::Text(text) => engine.judge(EngineBatch::Lines(text.as_bytes())),
            Batch::Observations(bytes) => engine.judge(EngineBatch::Observations(bytes)),
        }
        .map_err(batch_error)?;
        // Notes are JSON written by the engine from UTF-8 text: always UTF-8.
        let notes = String::from_utf8(judged.notes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Judged {
            notes,
            verdicts: judged.verdicts.into_iter().map(verdict).collect(),
        })
    }

    fn extract(&self, lines: Vec<u8>) -> Vec<u8> {
        self.0.borrow_mut().extract(&lines)
    }

    fn entities(&self, lines: Vec<u8>) -> Vec<Option<String>> {
        self.0.borrow_mut().entities(&lines)
    }

    fn share_population(&self) -> Vec<u8> {
        self.0.borrow_mut().share_population()
    }

    fn merge_population(&self, share: Vec<u8>) -> Result<(), BatchError> {
        self.0
            .borrow_mut()
            .merge_population(&share)
            .map_err(batch_error)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn stats(&self) -> EngineStats {
        let s = self.0.borrow().stats();
        EngineStats {
            events: s.events,
            nodes: s.nodes,
            max_nodes: s.max_nodes,
            principals: s.principals,
            prunes: s.prunes,
        }
    }

    fn fingerprint(&self) -> String {
        self.0.borrow().fingerprint().to_owned()
    }
}

export!(Component);
