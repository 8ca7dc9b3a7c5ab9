//! One pass over a stream: every event is scored, then learned, by oddity and by every
//! baseline, in stream order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use oddity_engine::{ScoreError, Severity};

use crate::baselines::{self, Baseline};
use crate::fields::{ACTION, Fields, Interner, Normalizers, PRINCIPAL};
use crate::partition::{Partitioned, Partitioning};
use crate::streams::{Stream, Truth};

/// Name of oddity in the reports; always detector 0.
pub const ODDITY: &str = "oddity";
/// oddity's risk (novelty weighted by stakes) as a ranking; always detector 1.
pub const ODDITY_RISK: &str = "oddity-risk";
/// Index of the first baseline among the detectors.
pub const FIRST_BASELINE: usize = 2;

/// The campaign an oddity verdict placed an event in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignTag {
    pub id: u64,
    /// Events in the campaign so far (this one included).
    pub events: u32,
    /// The campaign's score and risk so far.
    pub score: f64,
    pub risk: f64,
}

/// What is kept of one event after scoring.
#[derive(Debug, Clone)]
pub struct Row {
    pub truth: Truth,
    /// Interned principal and eventName ([`Interner`]).
    pub principal: u32,
    pub action: u32,
    /// oddity: the principal was cold (fewer than `warm-up` events).
    pub cold: bool,
    /// oddity: index into [`Scored::novel_fields`] of the most novel component's field, or
    /// `u16::MAX` when oddity could not score the event.
    pub novel_field: u16,
    /// oddity: index into [`Scored::novel_values`] of the most novel component's value.
    pub novel_value: u32,
    pub campaign: Option<CampaignTag>,
    /// oddity: the event's severity, and the risk it is of (the event's, or its campaign's
    /// when that is higher).
    pub severity: Severity,
    pub alert_risk: f64,
    /// The event's time (seconds), when it has one.
    pub time: Option<u32>,
    /// oddity: the ATT&CK tactics of the event's action, as bits of [`Scored::tactics`].
    pub tactics: u16,
}

/// A scored stream.
#[derive(Debug)]
pub struct Scored {
    pub name: String,
    pub about: Vec<String>,
    /// Detector names; 0 is oddity.
    pub detectors: Vec<&'static str>,
    /// `scores[d][i]`: detector `d`'s score of event `i` (oddity: the calibrated `score`).
    pub scores: Vec<Vec<f64>>,
    /// oddity's raw novelty (bits), its tie-break.
    pub novelty: Vec<f64>,
    pub rows: Vec<Row>,
    pub interner: Interner,
    pub novel_fields: Vec<String>,
    pub novel_values: Vec<String>,
    /// Tactic names oddity gave, in order of first appearance (bit `i` of [`Row::tactics`]).
    pub tactics: Vec<&'static str>,
    /// Events oddity refused, by reason (they score 0).
    pub errors: BTreeMap<String, usize>,
    /// Events the baselines could not read (they score 0 and are not learned).
    pub unreadable: usize,
    /// Wall time of the whole pass, and of oddity's `score_line` calls alone.
    pub elapsed: Duration,
    pub engine_time: Duration,
}

/// `names` as bits of `known`, adding the names not known yet.
fn tactic_bits(known: &mut Vec<&'static str>, names: &[&'static str]) -> u16 {
    names.iter().fold(0, |bits, &name| {
        let i = known.iter().position(|&k| k == name).unwrap_or_else(|| {
            known.push(name);
            known.len() - 1
        });
        bits | 1 << i
    })
}

/// Runs `stream` through a fresh engine (configuration text `config`) and the baselines.
pub fn run(stream: Stream, config: &str) -> Result<Scored> {
    run_partitioned(stream, config, Partitioning::ONE)
}

/// Runs `stream` through oddity partitioned by principal over fresh engines ([`Partitioned`];
/// one partition is [`run`]) and through the baselines, which are not partitioned.
pub fn run_partitioned(stream: Stream, config: &str, how: Partitioning) -> Result<Scored> {
    let started = Instant::now();
    let mut oddity = Partitioned::new(config, how)?;
    let mut baselines: Vec<Box<dyn Baseline>> = baselines::all();
    let norm = Normalizers::builtin();
    let mut detectors = vec![ODDITY, ODDITY_RISK];
    detectors.extend(baselines.iter().map(|b| b.name()));
    let mut scores: Vec<Vec<f64>> = vec![Vec::new(); detectors.len()];
    let mut novelty = Vec::new();
    let mut rows = Vec::new();
    let mut interner = Interner::default();
    let mut novel_fields: Vec<String> = Vec::new();
    let mut novel_values: Vec<String> = Vec::new();
    let mut value_ids: rustc_hash::FxHashMap<String, u32> = Default::default();
    let mut tactics: Vec<&'static str> = Vec::new();
    let mut errors = BTreeMap::new();
    let mut unreadable = 0;
    let mut engine_time = Duration::ZERO;

    for ev in stream.events {
        let part = oddity.partition(ev.json.as_bytes())?;
        let t = Instant::now();
        let verdict = oddity.score_line(part, ev.json.as_bytes());
        engine_time += t.elapsed();
        let mut fields = Fields::extract(&ev.json, &norm);
        // The baselines judge per principal as oddity does: the principal is the entity
        // oddity's profile reads (its composed and fallback sources included).
        if let (Some(f), Ok(r)) = (&mut fields, &verdict) {
            f.values[PRINCIPAL].clone_from(&r.principal);
        }
        let ids = fields.as_ref().map(|f| interner.ids(f));
        let mut row = Row {
            truth: ev.truth,
            principal: ids.map_or(u32::MAX, |i| i[PRINCIPAL]),
            action: ids.map_or(u32::MAX, |i| i[ACTION]),
            cold: false,
            novel_field: u16::MAX,
            novel_value: u32::MAX,
            campaign: None,
            severity: Severity::Info,
            alert_risk: 0.0,
            time: None,
            tactics: 0,
        };
        match verdict {
            Ok(r) => {
                scores[0].push(r.score);
                scores[1].push(r.risk);
                novelty.push(r.novelty);
                row.severity = r.severity;
                row.alert_risk = r.campaign.as_ref().map_or(r.risk, |c| c.risk.max(r.risk));
                row.time = r.event_time.as_deref().and_then(oddity_engine::parse_time);
                row.cold = r.cold;
                row.tactics = tactic_bits(&mut tactics, &r.tactics);
                let f = &r.most_novel.field;
                row.novel_field = match novel_fields.iter().position(|x| x == f) {
                    Some(i) => i as u16,
                    None => {
                        novel_fields.push(f.clone());
                        (novel_fields.len() - 1) as u16
                    }
                };
                let v = &r.most_novel.value;
                row.novel_value = match value_ids.get(v) {
                    Some(&i) => i,
                    None => {
                        let i = novel_values.len() as u32;
                        value_ids.insert(v.clone(), i);
                        novel_values.push(v.clone());
                        i
                    }
                };
                row.campaign = r.campaign.map(|c| CampaignTag {
                    id: c.id,
                    events: c.events,
                    score: c.score,
                    risk: c.risk,
                });
            }
            Err(e) => {
                let kind = match e {
                    ScoreError::NotUtf8 => "not-utf8".to_owned(),
                    ScoreError::NotJson(_) => "not-json".to_owned(),
                    ScoreError::NotObject => "not-object".to_owned(),
                    ScoreError::FieldMissing(m) => format!("field-missing: {m}"),
                    ScoreError::Duplicate(_) => "duplicate".to_owned(),
                };
                *errors.entry(kind).or_insert(0) += 1;
                scores[0].push(0.0);
                scores[1].push(0.0);
                novelty.push(0.0);
            }
        }
        match (&fields, ids) {
            (Some(f), Some(ids)) => {
                for (b, s) in baselines.iter_mut().zip(&mut scores[FIRST_BASELINE..]) {
                    s.push(b.score_and_learn(&ids, f.time));
                }
            }
            _ => {
                unreadable += 1;
                for s in &mut scores[FIRST_BASELINE..] {
                    s.push(0.0);
                }
            }
        }
        rows.push(row);
    }
    Ok(Scored {
        name: stream.name,
        about: stream.about,
        detectors,
        scores,
        novelty,
        rows,
        interner,
        novel_fields,
        novel_values,
        tactics,
        errors,
        unreadable,
        elapsed: started.elapsed(),
        engine_time,
    })
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

impl Scored {
    /// Writes one CSV row per event: truth, oddity's verdict and every detector's score.
    pub fn write_csv(&self, out: &mut impl std::io::Write, warm_up: usize) -> std::io::Result<()> {
        write!(
            out,
            "index,warm_up,positive,group,step,class,principal,action,cold,most_novel_field,most_novel_value,campaign_id,campaign_events,campaign_score,oddity_novelty,severity,alert_risk,time"
        )?;
        for d in &self.detectors {
            write!(out, ",{d}")?;
        }
        writeln!(out)?;
        for (i, r) in self.rows.iter().enumerate() {
            let name = |attr: usize, id: u32| {
                if id == u32::MAX {
                    String::new()
                } else {
                    csv_cell(self.interner.name(attr, id))
                }
            };
            write!(
                out,
                "{i},{},{},{},{},{},{},{},{},{},{},",
                u8::from(i < warm_up),
                u8::from(r.truth.positive),
                csv_cell(r.truth.group.as_deref().unwrap_or("")),
                r.truth.step,
                csv_cell(r.truth.class.as_deref().unwrap_or("")),
                name(PRINCIPAL, r.principal),
                name(ACTION, r.action),
                u8::from(r.cold),
                csv_cell(
                    self.novel_fields
                        .get(r.novel_field as usize)
                        .map_or("", String::as_str)
                ),
                csv_cell(
                    self.novel_values
                        .get(r.novel_value as usize)
                        .map_or("", String::as_str)
                ),
            )?;
            match r.campaign {
                Some(c) => write!(out, "{:016x},{},{:.3}", c.id, c.events, c.score)?,
                None => write!(out, ",,")?,
            }
            write!(
                out,
                ",{:.4},{:?},{:.3},{}",
                self.novelty[i],
                r.severity,
                r.alert_risk,
                r.time.map_or(String::new(), |t| t.to_string())
            )?;
            for s in &self.scores {
                write!(out, ",{}", s[i])?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}
