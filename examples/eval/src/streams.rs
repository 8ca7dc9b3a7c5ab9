//! The labelled streams: generated organisations, Stratus Red Team detonations injected into
//! generated background, the invictus-ir capture and the OTRF (Mordor) dataset.
//!
//! A [`StreamSpec`] is a cheap description that can be sent to a worker thread; [`StreamSpec::open`]
//! turns it into events there, lazily when the source is large.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use oddity_cloudtrail_gen::{GenConfig, generate};
use serde_json::Value;
use serde_json::value::RawValue;

/// Ground truth of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    /// An attack event (what the metrics count as positive).
    pub positive: bool,
    /// The attack it belongs to: scenario, technique or (invictus) attack action.
    pub group: Option<Arc<str>>,
    /// 1-based step within the group (0 when not an attack).
    pub step: u32,
    /// For negatives, why the event may look new (a benign-novelty kind, an invictus label);
    /// `None` for ordinary events.
    pub class: Option<Arc<str>>,
}

/// One record as a JSON line, with its truth.
#[derive(Debug, Clone)]
pub struct LabeledEvent {
    pub json: String,
    pub truth: Truth,
}

/// An opened stream.
pub struct Stream {
    pub name: String,
    /// Parameters and provenance, one line each, for the report.
    pub about: Vec<String>,
    pub events: Box<dyn Iterator<Item = LabeledEvent>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.name)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// A stream to evaluate.
#[derive(Debug, Clone)]
pub enum StreamSpec {
    /// The generator with its own attack scenarios.
    Generated(GenConfig),
    /// Stratus Red Team detonation logs (directory) injected into attack-free background, from
    /// the attacker's or the victim's network and client.
    Stratus {
        background: GenConfig,
        dir: PathBuf,
        origin: Origin,
    },
    /// The invictus-ir capture (its directory, holding `CloudTrail/` and `labels_derived.csv`).
    Invictus { dir: PathBuf },
    /// The OTRF `ec2_proxy_s3_exfiltration` JSON-lines file.
    Otrf { file: PathBuf },
}

/// Whose network and client the injected Stratus records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The attacker's: Stratus' source addresses and user agents (stolen keys used elsewhere).
    Attacker,
    /// The victim's most common user agent from the attacker's addresses (an attacker using the
    /// victim's tool, so the client gives nothing away).
    VictimClient,
    /// The victim's most common source address and user agent (an insider, malware on the
    /// victim's machine, a stolen session): neither network nor client gives anything away.
    Victim,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Attacker, Origin::VictimClient, Origin::Victim];

    /// The stream name's prefix.
    pub fn stream(self) -> &'static str {
        match self {
            Origin::Attacker => "stratus-injected",
            Origin::VictimClient => "stratus-own-client-injected",
            Origin::Victim => "stratus-own-origin-injected",
        }
    }

    fn about(self) -> &'static str {
        match self {
            Origin::Attacker => {
                "every record's userIdentity is the victim's (AKIA key), eventTime shifted, awsRegion the background's home region; source IP, user agent, event, error and parameters are the attacker's"
            }
            Origin::VictimClient => {
                "every record's userIdentity is the victim's (AKIA key), eventTime shifted, awsRegion the background's home region, userAgent the victim's most common; source IP, event, error and parameters are the attacker's"
            }
            Origin::Victim => {
                "every record's userIdentity is the victim's (AKIA key), eventTime shifted, awsRegion the background's home region, userAgent the victim's most common, sourceIPAddress (where it is an address, not an AWS service) the victim's most common; event, error and parameters are the attacker's"
            }
        }
    }
}

impl StreamSpec {
    pub fn name(&self) -> String {
        match self {
            StreamSpec::Generated(cfg) => format!("generated seed {}", cfg.seed),
            StreamSpec::Stratus {
                background, origin, ..
            } => format!("{} (background seed {})", origin.stream(), background.seed),
            StreamSpec::Invictus { .. } => "invictus-ir".into(),
            StreamSpec::Otrf { .. } => "otrf ec2-proxy-s3-exfiltration".into(),
        }
    }

    pub fn open(&self) -> Result<Stream> {
        match self {
            StreamSpec::Generated(cfg) => Ok(generated(cfg)),
            StreamSpec::Stratus {
                background,
                dir,
                origin,
            } => stratus(background, dir, *origin),
            StreamSpec::Invictus { dir } => invictus(dir),
            StreamSpec::Otrf { file } => otrf(file),
        }
    }
}

fn gen_params(cfg: &GenConfig) -> String {
    format!(
        "GenConfig {{ seed: {}, days: {}, humans: {}, roles: {}, attacks: {}, attack_repeats: {}, new_engineers: {}, iam_user_share: {}, start: {} }}",
        cfg.seed,
        cfg.days,
        cfg.humans,
        cfg.roles,
        cfg.attacks,
        cfg.attack_repeats,
        cfg.new_engineers,
        cfg.iam_user_share,
        rfc3339(cfg.start_unix)
    )
}

/// The generator's stream with its labels.
pub fn generated(cfg: &GenConfig) -> Stream {
    let events = generate(cfg).map(|e| LabeledEvent {
        truth: Truth {
            positive: e.label.scenario.is_some(),
            group: e.label.scenario.map(Arc::from),
            step: e.label.step,
            class: e.label.benign_novelty.map(Arc::from),
        },
        json: e.json,
    });
    Stream {
        name: StreamSpec::Generated(cfg.clone()).name(),
        about: vec![gen_params(cfg)],
        events: Box::new(events),
    }
}

// ---------------------------------------------------------------------------------------------
// Time

/// Seconds between the Unix epoch and 2000-01-01 (oddity's time origin).
const EPOCH_2000: i64 = 946_684_800;

/// RFC 3339 / ISO 8601 text to Unix seconds (whole seconds; via oddity's own parser).
pub fn parse_unix(text: &str) -> Option<i64> {
    oddity_engine::parse_time(text).map(|t| i64::from(t) + EPOCH_2000)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Stratus Red Team injection

/// One technique's detonation log.
#[derive(Debug, Clone)]
pub struct Technique {
    /// The file name without `aws.` and `.json` (`exfiltration.ec2-share-ebs-snapshot`).
    pub name: String,
    pub records: Vec<Value>,
}

/// Reads every `aws.*.json` (a JSON array of CloudTrail records) in name order.
pub fn load_techniques(dir: &Path) -> Result<Vec<Technique>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("aws.") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no aws.*.json in {}", dir.display());
    }
    files
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let records: Vec<Value> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a JSON array of records", p.display()))?;
            let file = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let name = file
                .strip_prefix("aws.")
                .unwrap_or(file)
                .trim_end_matches(".json")
                .to_owned();
            Ok(Technique { name, records })
        })
        .collect()
}

/// A possible victim: an IAM user of the background.
#[derive(Debug, Clone)]
pub struct Victim {
    pub arn: String,
    /// Its `userIdentity` object, copied from one of its background events (one made with a
    /// long-term `AKIA` key when there is one: the model is stolen keys).
    pub identity: Value,
    /// Its events before the injection window opens.
    pub events_before: usize,
    /// Its most common user agent in the background, if any.
    pub user_agent: Option<String>,
    /// Its most common source IP address in the background, if any.
    pub source_ip: Option<String>,
}

/// What the injection needs to know about the background.
#[derive(Debug, Clone)]
pub struct Survey {
    pub events: usize,
    /// Injection window: from the time of the event at 30 % of the stream to the last event.
    pub window: (i64, i64),
    /// IAM users with at least [`MIN_VICTIM_EVENTS`] events before the window (if there are
    /// none, those with any), by ARN.
    pub victims: Vec<Victim>,
    /// The background's most common `awsRegion` (its home region), if any.
    pub region: Option<String>,
}

/// History a victim needs before the injection window.
pub const MIN_VICTIM_EVENTS: usize = 50;
/// Share of the stream before the injection window.
pub const INJECT_AFTER: f64 = 0.3;

#[derive(serde::Deserialize)]
struct IdentityOnly<'a> {
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow, rename = "awsRegion")]
    aws_region: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the background once: size, time window and IAM users.
pub fn survey(background: impl Iterator<Item = (i64, String)>) -> Survey {
    struct Seen {
        identity: Value,
        long_term: bool,
        at: Vec<usize>,
        agents: std::collections::BTreeMap<String, usize>,
        addresses: std::collections::BTreeMap<String, usize>,
    }
    let mut times = Vec::new();
    let mut users: std::collections::BTreeMap<String, Seen> = Default::default();
    let mut regions: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, (t, json)) in background.enumerate() {
        times.push(t);
        let Ok(r) = serde_json::from_str::<IdentityOnly<'_>>(&json) else {
            continue;
        };
        if let Some(region) = r.aws_region {
            *regions.entry(region.into_owned()).or_default() += 1;
        }
        let Some(raw) = r.user_identity else { continue };
        if !raw.get().contains("IAMUser") {
            continue;
        }
        let Ok(id) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        let arn = id["arn"].as_str().unwrap_or_default();
        if id["type"] != "IAMUser" || !arn.contains(":user/") {
            continue;
        }
        let long_term = id["accessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("AKIA"));
        let seen = users.entry(arn.to_owned()).or_insert_with(|| Seen {
            identity: id.clone(),
            long_term,
            at: Vec::new(),
            agents: Default::default(),
            addresses: Default::default(),
        });
        if let Some(ua) = &r.user_agent {
            *seen.agents.entry(ua.clone().into_owned()).or_default() += 1;
        }
        if let Some(ip) = r.source_ip.filter(|ip| is_address(ip)) {
            *seen.addresses.entry(ip.into_owned()).or_default() += 1;
        }
        if long_term && !seen.long_term {
            seen.identity = id;
            seen.long_term = true;
        }
        seen.at.push(i);
    }
    let n = times.len();
    let cut = ((n as f64 * INJECT_AFTER) as usize).min(n.saturating_sub(1));
    let window = (
        times.get(cut).copied().unwrap_or(0),
        times.last().copied().unwrap_or(0),
    );
    let all: Vec<Victim> = users
        .into_iter()
        .map(|(arn, s)| Victim {
            arn,
            identity: s.identity,
            events_before: s.at.iter().filter(|&&i| i < cut).count(),
            user_agent: most_common(&s.agents),
            source_ip: most_common(&s.addresses),
        })
        .collect();
    // Users with a history; on a tiny background, whoever has any.
    let mature: Vec<Victim> = all
        .iter()
        .filter(|v| v.events_before >= MIN_VICTIM_EVENTS)
        .cloned()
        .collect();
    let victims = if mature.is_empty() {
        all.into_iter().filter(|v| v.events_before > 0).collect()
    } else {
        mature
    };
    let region = most_common(&regions);
    Survey {
        events: n,
        window,
        victims,
        region,
    }
}

/// The key counted most often (ties: the first in order, so the choice is deterministic).
fn most_common(counts: &std::collections::BTreeMap<String, usize>) -> Option<String> {
    counts
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name)))
        .map(|(name, _)| name.clone())
}

/// One record ready to merge into the background.
#[derive(Debug, Clone)]
pub struct Injected {
    pub time: i64,
    pub json: String,
    pub truth: Truth,
    /// The victim's ARN.
    pub victim: String,
}

/// Places the techniques in the background: technique `i` of `n` (name order) is detonated by
/// victim `i mod m` (so consecutive techniques use different victims) starting at
/// `start + (i + ½) · (end − start) / n` of the injection window, keeping its records' relative
/// timing. Every record's `userIdentity` becomes the victim's, its `eventTime` is shifted and
/// its `awsRegion` becomes the background's home region (the published detonation logs carry
/// anonymised, made-up region names, which no background shows: a detector reading the region
/// would find every attack event in a never-seen region, a label leak); everything else
/// (source address, user agent, event, error, parameters) stays the attacker's, except the
/// user agent and source address where `origin` is the victim's: they become the victim's most
/// common ones (a source that is an AWS service, not an address, stays). Returns the records
/// sorted by time (file order within a second), labelled with the technique and their 1-based
/// position in the file.
pub fn plan_injection(
    techniques: &[Technique],
    survey: &Survey,
    origin: Origin,
) -> Result<Vec<Injected>> {
    if survey.victims.is_empty() {
        bail!("the background has no IAM user active before the injection window");
    }
    let (start, end) = survey.window;
    let n = techniques.len() as f64;
    let mut out = Vec::new();
    for (i, tech) in techniques.iter().enumerate() {
        let victim = &survey.victims[i % survey.victims.len()];
        let at = start + ((i as f64 + 0.5) * (end - start) as f64 / n) as i64;
        let times: Vec<Option<i64>> = tech
            .records
            .iter()
            .map(|r| r["eventTime"].as_str().and_then(parse_unix))
            .collect();
        let base = times.iter().flatten().min().copied().unwrap_or(0);
        let group: Arc<str> = Arc::from(tech.name.as_str());
        for (k, (rec, t)) in tech.records.iter().zip(&times).enumerate() {
            let mut rec = rec.clone();
            let Some(obj) = rec.as_object_mut() else {
                continue;
            };
            let time = at + t.map_or(0, |t| t - base);
            obj.insert("userIdentity".into(), victim.identity.clone());
            obj.insert("eventTime".into(), Value::String(rfc3339(time)));
            if let Some(region) = &survey.region
                && obj.contains_key("awsRegion")
            {
                obj.insert("awsRegion".into(), Value::String(region.clone()));
            }
            if origin != Origin::Attacker
                && let Some(ua) = &victim.user_agent
            {
                obj.insert("userAgent".into(), Value::String(ua.clone()));
            }
            if origin == Origin::Victim
                && let Some(ip) = &victim.source_ip
                && obj
                    .get("sourceIPAddress")
                    .and_then(Value::as_str)
                    .is_some_and(is_address)
            {
                obj.insert("sourceIPAddress".into(), Value::String(ip.clone()));
            }
            out.push(Injected {
                time,
                json: serde_json::to_string(&rec)?,
                truth: Truth {
                    positive: true,
                    group: Some(group.clone()),
                    step: k as u32 + 1,
                    class: None,
                },
                victim: victim.arn.clone(),
            });
        }
    }
    out.sort_by_key(|r| r.time);
    Ok(out)
}

/// Merges time-sorted injected records into a time-sorted background; an injected record
/// follows the background events of its second.
pub fn merge<I>(background: I, injected: Vec<Injected>) -> impl Iterator<Item = LabeledEvent>
where
    I: Iterator<Item = (i64, LabeledEvent)>,
{
    let mut bg = background.peekable();
    let mut inj = injected.into_iter().peekable();
    std::iter::from_fn(move || {
        let take_bg = match (bg.peek(), inj.peek()) {
            (Some((tb, _)), Some(r)) => *tb <= r.time,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_bg {
            bg.next().map(|(_, e)| e)
        } else {
            inj.next().map(|r| LabeledEvent {
                json: r.json,
                truth: r.truth,
            })
        }
    })
}

/// Whether a `sourceIPAddress` is an address (not an AWS service's name).
fn is_address(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

fn stratus(background: &GenConfig, dir: &Path, origin: Origin) -> Result<Stream> {
    let techniques = load_techniques(dir)?;
    let mut cfg = background.clone();
    cfg.attacks = false;
    let survey = survey(generate(&cfg).map(|e| (e.unix_time(), e.json)));
    let injected = plan_injection(&techniques, &survey, origin)?;
    let mut about = vec![
        format!("background: {} (attacks off)", gen_params(&cfg)),
        format!(
            "{} techniques, {} records from {}, injected after {:.0} % of {} background events ({} .. {}), {} victims (IAM users with >= {MIN_VICTIM_EVENTS} events before): {}",
            techniques.len(),
            injected.len(),
            dir.display(),
            INJECT_AFTER * 100.0,
            crate::report::thousands(survey.events),
            rfc3339(survey.window.0),
            rfc3339(survey.window.1),
            survey.victims.len(),
            survey
                .victims
                .iter()
                .map(|v| v.arn.rsplit('/').next().unwrap_or(&v.arn))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    about.push(origin.about().into());
    let bg = generate(&cfg).map(|e| {
        (
            e.unix_time(),
            LabeledEvent {
                truth: Truth {
                    class: e.label.benign_novelty.map(Arc::from),
                    ..Truth::default()
                },
                json: e.json,
            },
        )
    });
    Ok(Stream {
        name: StreamSpec::Stratus {
            background: background.clone(),
            dir: dir.to_owned(),
            origin,
        }
        .name(),
        about,
        events: Box::new(merge(bg, injected)),
    })
}

// ---------------------------------------------------------------------------------------------
// invictus-ir

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// The invictus-ir capture: delivery files in name order, records in order, byte for byte;
/// positives are the `attack` label, grouped by eventName; other labels are classes.
pub fn invictus(dir: &Path) -> Result<Stream> {
    let labels_path = dir.join("labels_derived.csv");
    let text = std::fs::read_to_string(&labels_path)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap_or_default());
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name}", labels_path.display()))
    };
    let (c_file, c_index, c_label) = (col("file")?, col("record_index")?, col("label")?);
    let mut labels = std::collections::HashMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f = csv_fields(line);
        let (Some(file), Some(index), Some(label)) =
            (f.get(c_file), f.get(c_index), f.get(c_label))
        else {
            bail!("{}: short row {line:?}", labels_path.display());
        };
        let index: usize = index
            .parse()
            .with_context(|| format!("record_index {index:?}"))?;
        labels.insert((file.clone(), index), label.clone());
    }
    let trail = dir.join("CloudTrail");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&trail)
        .with_context(|| format!("reading {}", trail.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    let mut unlabelled = 0;
    let mut by_class: std::collections::BTreeMap<String, usize> = Default::default();
    let mut occurrences: std::collections::HashMap<String, u32> = Default::default();
    let mut classes: std::collections::HashMap<String, Arc<str>> = Default::default();
    for path in &files {
        let text = std::fs::read_to_string(path)?;
        let env: Envelope<'_> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a CloudTrail delivery file", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        for (i, rec) in env.records.iter().enumerate() {
            let label = labels
                .get(&(name.to_owned(), i))
                .map_or("unlabelled", String::as_str);
            if label == "unlabelled" {
                unlabelled += 1;
            }
            *by_class.entry(label.to_owned()).or_default() += 1;
            let truth = if label == "attack" {
                let action = serde_json::from_str::<Value>(rec.get())
                    .ok()
                    .and_then(|v| v["eventName"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "?".into());
                let step = occurrences.entry(action.clone()).or_default();
                *step += 1;
                Truth {
                    positive: true,
                    group: Some(Arc::from(action.as_str())),
                    step: *step,
                    class: None,
                }
            } else {
                Truth {
                    class: (label != "background").then(|| {
                        classes
                            .entry(label.to_owned())
                            .or_insert_with(|| Arc::from(label))
                            .clone()
                    }),
                    ..Truth::default()
                }
            };
            events.push(LabeledEvent {
                json: rec.get().to_owned(),
                truth,
            });
        }
    }
    let mut about = vec![format!(
        "{} delivery files from {}, labels from {} ({})",
        files.len(),
        trail.display(),
        labels_path.display(),
        by_class
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    about.push(
        "positives: label attack (grouped by eventName); negatives: everything else; user agents unchanged"
            .into(),
    );
    if unlabelled > 0 {
        about.push(format!("{unlabelled} records without a label (negatives)"));
    }
    Ok(Stream {
        name: StreamSpec::Invictus {
            dir: dir.to_owned(),
        }
        .name(),
        about,
        events: Box::new(events.into_iter()),
    })
}

// ---------------------------------------------------------------------------------------------
// OTRF

/// The attack identity of the OTRF dataset (SOURCES.md): the WAF role's instance session.
const OTRF_ROLE: &str = "MordorNginxStack-BankingWAFRole-";
const OTRF_SESSION: &str = "/i-0317f6c6b66ae9c40";

/// The OTRF `ec2_proxy_s3_exfiltration` capture, sorted by `@timestamp` (stable; the file is
/// not in time order and has no `eventTime`); events unchanged.
pub fn otrf(file: &Path) -> Result<Stream> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}: a line is not JSON", file.display()))?;
        let arn = v["userIdentity"]["arn"].as_str().unwrap_or_default();
        let ua = v["userAgent"].as_str().unwrap_or_default();
        let positive =
            arn.contains(OTRF_ROLE) && arn.ends_with(OTRF_SESSION) && ua.contains("aws-cli");
        let t = v["@timestamp"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default();
        rows.push((t, positive, line.to_owned()));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let group: Arc<str> = Arc::from("ec2-proxy-s3-exfiltration");
    let mut step = 0;
    let positives = rows.iter().filter(|r| r.1).count();
    let events: Vec<LabeledEvent> = rows
        .into_iter()
        .map(|(_, positive, json)| {
            let truth = if positive {
                step += 1;
                Truth {
                    positive,
                    group: Some(group.clone()),
                    step,
                    class: None,
                }
            } else {
                Truth::default()
            };
            LabeledEvent { json, truth }
        })
        .collect();
    Ok(Stream {
        name: StreamSpec::Otrf {
            file: file.to_owned(),
        }
        .name(),
        about: vec![
            format!(
                "{} events from {}, sorted by @timestamp (no eventTime: oddity sees no time)",
                events.len(),
                file.display()
            ),
            format!(
                "positives: {positives} events of assumed-role/{OTRF_ROLE}…{OTRF_SESSION} with an aws-cli user agent"
            ),
        ],
        events: Box::new(events.into_iter()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for t in [951_782_400, 1_709_510_400, 1_722_515_282, 4_102_444_799] {
            assert_eq!(parse_unix(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(rfc3339(1_722_515_282), "2024-08-01T12:28:02Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_fields(r#"a,"b,c",,"d""e""#), ["a", "b,c", "", "d\"e"]);
    }
}
