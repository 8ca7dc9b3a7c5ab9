//! The WebAssembly component: exports `oddity:detector/detector` (see `wit/detector.wit`) by
//! converting between the WIT types and the engine's own. No other file sees WIT types.

use std::cell::RefCell;

use crate::campaign::Campaign as EngineCampaign;
use crate::config::{ConfigError as EngineConfigError, Severity as EngineSeverity};
use crate::engine::{
    Engine as Inner, LineStatus as EngineLineStatus, ScoreError as EngineScoreError,
    SnapshotError as EngineSnapshotError,
};
use crate::model::ScoreRecord as EngineRecord;
use crate::snapshot::DecodeError;

wit_bindgen::generate!({
    path: "../wit",
    world: "oddity",
});

use exports::oddity::detector::detector::{Engine, EngineStats, Guest, GuestEngine};
use oddity::detector::types::{
    Annotated, Campaign, ComponentNovelty, ConfigError, Judged, LineStatus, ScoreError,
    ScoreRecord, ScoredLine, Severity, SnapshotError, ViewScore,
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
    }
}

fn campaign(c: EngineCampaign) -> Campaign {
    Campaign {
        id: format!("{:016x}", c.id),
        principal: String::new(),
        events: c.events,
        first: c.first,
        last: c.last,
        score: c.score,
        risk: c.risk,
        tactics: crate::stakes::tactic_names(c.tactics)
            .map(str::to_owned)
            .collect(),
        actions: c.actions.into(),
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

fn record(r: EngineRecord) -> ScoreRecord {
    let principal = r.principal;
    ScoreRecord {
        score: r.score,
        info_content: r.info_content,
        novelty: r.novelty,
        risk: r.risk,
        severity: severity(r.severity),
        tactics: r.tactics.into_iter().map(str::to_owned).collect(),
        techniques: r.techniques,
        probability: r.probability,
        uniqueness: r.uniqueness,
        sequence: r.sequence,
        cold: r.cold,
        observation: r.observation,
        fields: r.fields,
        most_novel: ComponentNovelty {
            index: r.most_novel.index,
            view: r.most_novel.view,
            field: r.most_novel.field,
            value: r.most_novel.value,
            novelty: r.most_novel.novelty,
            bits: r.most_novel.bits,
        },
        views: r
            .views
            .into_iter()
            .map(|v| ViewScore {
                name: v.name,
                info_content: v.info_content,
                excess: v.excess,
            })
            .collect(),
        event_id: r.event_id,
        event_time: r.event_time,
        campaign: r.campaign.map(|c| Campaign {
            principal: principal.clone(),
            ..campaign(c)
        }),
        principal,
    }
}

fn results(
    rs: Vec<Result<EngineRecord, EngineScoreError>>,
) -> Vec<Result<ScoreRecord, ScoreError>> {
    rs.into_iter()
        .map(|r| r.map(record).map_err(score_error))
        .collect()
}

fn line_status(s: EngineLineStatus) -> LineStatus {
    match s {
        EngineLineStatus::Scored {
            score,
            severity: level,
            campaign,
        } => LineStatus::Scored(ScoredLine {
            score,
            severity: severity(level),
            campaign,
        }),
        EngineLineStatus::Failed(e) => LineStatus::Failed(score_error(e)),
    }
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

    fn score(&self, lines: Vec<String>) -> Vec<Result<ScoreRecord, ScoreError>> {
        let mut engine = self.0.borrow_mut();
        results(
            lines
                .iter()
                .map(|l| engine.score_line(l.as_bytes()))
                .collect(),
        )
    }

    fn score_batch(&self, lines: Vec<u8>) -> Vec<Result<ScoreRecord, ScoreError>> {
        results(self.0.borrow_mut().score_batch(&lines))
    }

    fn annotate_batch(&self, lines: Vec<u8>, key: String) -> Annotated {
        let (output, status) = self.0.borrow_mut().annotate_batch(&lines, &key);
        Annotated {
            output,
            status: status.into_iter().map(line_status).collect(),
        }
    }

    fn extract_batch(&self, lines: Vec<u8>) -> Vec<u8> {
        self.0.borrow_mut().extract_batch(&lines)
    }

    fn judge_extracted(&self, extracted: Vec<u8>) -> Result<Judged, String> {
        let (notes, status) = self.0.borrow_mut().judge_extracted(&extracted)?;
        Ok(Judged {
            notes,
            status: status.into_iter().map(line_status).collect(),
        })
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
