//! The configuration an engine is created from, validated once into typed [`Settings`].
//!
//! The text is TOML. It either names a built-in profile (`profile = "cloudtrail"`, also the
//! meaning of empty text) or describes a custom one (`entity`, `fields`, `views`, optional `time`,
//! `id`, `action`), and may tune the model in `[engine]` and the campaign grouping in
//! `[campaign]`. Nothing downstream reads raw configuration; every error names the key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use crate::normalize::Normalizer;
use crate::stakes::{RawStakes, Stakes};

/// Built-in profiles: (name, TOML text, the TOML text of its `[stakes]` table).
pub const BUILTIN_PROFILES: &[(&str, &str, &str)] = &[(
    "cloudtrail",
    include_str!("profiles/cloudtrail.toml"),
    include_str!("profiles/cloudtrail-stakes.toml"),
)];

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The text is not valid TOML.
    Syntax(String),
    /// A key is unknown, missing or has an invalid value; the message names it.
    Invalid(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Syntax(m) => write!(f, "configuration is not valid TOML: {m}"),
            ConfigError::Invalid(m) => write!(f, "invalid configuration: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// A JSON path: the keys to follow from the top-level object.
pub type JsonPath = Vec<String>;

/// Where a field's value may come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The value at a JSON path.
    Path(JsonPath),
    /// The values at several paths joined into one text: `pieces[0]`, the value at `from[0]`,
    /// `pieces[1]`, ... (`pieces` has one more entry than `from`). Present only when every path
    /// in `from` holds a non-empty value and, if `when` is given, its path holds exactly its
    /// text. For records that name a thing in parts: a failed console sign-in names an IAM user
    /// by account and user name, where the user's other calls carry its ARN.
    Compose {
        pieces: Vec<String>,
        from: Vec<JsonPath>,
        when: Option<(JsonPath, String)>,
    },
}

impl Source {
    /// The source as a message names it: `a.b`, or `a.b + c.d` for a composed one.
    pub fn describe(&self) -> String {
        match self {
            Source::Path(p) => p.join("."),
            Source::Compose { from, .. } => from
                .iter()
                .map(|p| p.join("."))
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// One named categorical field of the observation.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    /// Tried in order; the first present, non-null, non-empty value wins.
    pub paths: Vec<Source>,
    pub normalize: Vec<Normalizer>,
    /// Value used when no path is present; `None` makes the field required.
    pub default: Option<String>,
    /// Values are cut to this many bytes (at a character boundary) after normalisation.
    pub max_len: usize,
    /// Values (after normalisation) that say the event does not know, such as CloudTrail's
    /// `AWS Internal` for the source of a call AWS made on the caller's behalf: learned like any
    /// value, but never novel (a view component with one adds no evidence and is no first
    /// sighting).
    pub neutral: Vec<String>,
}

/// One view: an ordered list of components, judged given the entity and the components before.
#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    /// Fields the view's questions are asked *given*, in order, before its components: they
    /// route the counts (a resource is judged among the principal's resources of the same
    /// service) but are not judged themselves, carry no novelty and are not part of the
    /// observation (another view judges them). Indices into [`Profile::fields`].
    pub given: Vec<usize>,
    /// Indices into [`Profile::fields`].
    pub components: Vec<usize>,
}

impl View {
    /// The view's path in the tree: its given fields, then its components, with whether each
    /// is given (context only).
    pub fn path(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.given
            .iter()
            .map(|&f| (f, true))
            .chain(self.components.iter().map(|&f| (f, false)))
    }

    /// How many components the view's path has (given fields included).
    pub fn path_len(&self) -> usize {
        self.given.len() + self.components.len()
    }
}

/// What to extract from an event and how to ask questions of it.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The built-in name, or "custom".
    pub name: String,
    pub fields: Vec<Field>,
    /// Indices of the fields that identify the principal, in order.
    pub entity: Vec<usize>,
    pub views: Vec<View>,
    /// Field whose value is listed as the "action" of campaign steps.
    pub action: Option<usize>,
    /// The field naming the principal's peer group (people, workloads, CI, AWS services...):
    /// each view backs off from the principal to its peers before the whole population.
    pub peer: Option<usize>,
    /// What each action is at stake for (ATT&CK tactics and their weights).
    pub stakes: Stakes,
    /// Paths of the event time, the first present wins (RFC 3339 text, or epoch seconds /
    /// milliseconds as a number). Empty: the events have no time.
    pub time: Vec<JsonPath>,
    /// Paths of the event id, the first present wins.
    pub id: Vec<JsonPath>,
}

impl Profile {
    /// The fields the learned model reads (entity, peer group, views), in field order.
    pub fn model_fields(&self) -> impl Iterator<Item = usize> + '_ {
        let views = self.views.iter().flat_map(View::path).map(|(f, _)| f);
        let read: std::collections::BTreeSet<usize> = self
            .entity
            .iter()
            .copied()
            .chain(self.peer)
            .chain(views)
            .collect();
        read.into_iter()
    }
}

/// Model settings (`[engine]`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Counts halve over this much event time; `None` never forgets.
    pub half_life: Option<Duration>,
    /// Maximum number of tree nodes; the least valuable are pruned beyond it.
    pub max_nodes: u64,
    /// A principal with fewer events than this is in warm-up (`cold`).
    pub warm_up: u64,
    /// Most bits of evidence one component can add to an event's novelty (soft cap).
    pub component_cap: f64,
    /// Weight of a principal's recent novelty (beyond its usual) added to each of its events.
    pub escalation: f64,
    /// Half-life, in seconds of event time, of that recent novelty.
    pub escalation_half_life: f64,
    /// Half-life, in seconds of event time, of the score distribution: `score` ranks an event
    /// against recent events, so the learning burst of a new deployment fades from it.
    pub calibration_half_life: u64,
    /// A value seen fewer times than this in a context that has seen at least this many events
    /// is still settling: see `settle_time`. 0 turns settling off.
    pub settle_count: u64,
    /// A settling value's sighting counts fully only if it comes at least this many seconds of
    /// event time after the previous one; a sooner one counts by the fraction of this spacing
    /// that passed (at least [`crate::model::MIN_SETTLING_WEIGHT`]). So a burst (a polling loop,
    /// a script) does not make a new value routine within minutes.
    pub settle_time: u64,
    /// A value seen before is familiar in proportion to how often: its rarity among the
    /// context's values (its surprisal beyond the context's entropy) counts by
    /// `1 / (1 + n_v / familiar_count)`, `n_v` its (decayed) count there. A tool a CI role
    /// uses once per run, two hundred times a fortnight, is rare among its calls but not new.
    /// 0 turns the discount off.
    pub familiar_count: f64,
    /// A principal's context is judged as if it had also seen this many events at the rate of
    /// new values its population context shows (`p_new = (d + a·p_pop) / (n + d + a)`). A
    /// principal's first steps in a service it never used are a young context where half of
    /// what it saw was new, so one more new bucket there looked unremarkable; the population
    /// knows new buckets are rare. The weight of a few events fades as the context fills.
    /// 0 turns the prior off.
    pub population_prior: f64,
    /// An event time more than this many seconds ahead of the latest one seen is not believed
    /// until the next event confirms it (see [`crate::model::Model::observe`]); `None` believes
    /// every time.
    pub max_time_jump: Option<u64>,
    /// An event whose id was seen within this many seconds of event time is a duplicate (a
    /// delivery repeated, a file read twice): annotated, not learned. `None` turns it off.
    pub duplicate_window: Option<u64>,
    /// Most event ids remembered for that (the oldest are forgotten first).
    pub duplicate_capacity: u64,
}

/// Campaign grouping (`[campaign]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSettings {
    /// An event joins (or opens) its principal's campaign when its score reaches this.
    pub threshold: f64,
    /// A campaign ends when its principal shows no novel event for this long (event time).
    pub window: Duration,
}

/// Risk: novelty weighted by stakes (`[risk]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RiskSettings {
    /// Each tactic of a campaign beyond its first raises the campaign's risk by this fraction.
    pub progression: f64,
    /// A campaign's risk is at most this many times its strongest step's: many faint
    /// novelties (a busy afternoon, a new hire's first week) never add up to an alert by
    /// themselves.
    pub lift: f64,
    /// A step weighing more than this is high-stakes: its campaign stays open for
    /// `sequence-window` after it, not only `campaign.window`.
    pub high_stakes: f64,
    /// How long a campaign with a high-stakes step stays open (event time).
    pub sequence_window: Duration,
    /// Risk in bits from which an event is of severity low, medium, high, critical.
    pub severity: [f64; 4],
}

/// How much an event is worth an analyst's attention, from its risk; lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// The severities above [`Severity::Info`], in [`RiskSettings::severity`]'s order.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl RiskSettings {
    /// The severity of a risk in bits.
    pub fn severity(&self, risk: f64) -> Severity {
        self.severity
            .iter()
            .rposition(|&t| risk >= t)
            .map_or(Severity::Info, |i| SEVERITIES[i])
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: Profile,
    pub engine: EngineSettings,
    pub campaign: CampaignSettings,
    pub risk: RiskSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            half_life: Some(Duration::from_secs(30 * 86_400)),
            max_nodes: 1_000_000,
            warm_up: 20,
            component_cap: 12.0,
            escalation: 1.0,
            escalation_half_life: 900.0,
            calibration_half_life: 7 * 86_400,
            settle_count: 16,
            settle_time: 300,
            familiar_count: 32.0,
            population_prior: 1.0,
            max_time_jump: Some(86_400),
            duplicate_window: Some(86_400),
            duplicate_capacity: 1_000_000,
        }
    }
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            progression: 0.25,
            lift: 2.0,
            high_stakes: 1.5,
            sequence_window: Duration::from_secs(48 * 3600),
            severity: [25.0, 40.0, 60.0, 90.0],
        }
    }
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            threshold: 0.95,
            window: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    profile: Option<String>,
    #[serde(flatten)]
    body: RawProfile,
    engine: Option<RawEngine>,
    campaign: Option<RawCampaign>,
    risk: Option<RawRisk>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    time: Option<RawPaths>,
    id: Option<RawPaths>,
    entity: Option<Vec<String>>,
    action: Option<String>,
    peer: Option<String>,
    fields: Option<BTreeMap<String, RawField>>,
    views: Option<Vec<RawView>>,
    stakes: Option<RawStakes>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPath {
    Dotted(String),
    Keys(Vec<String>),
}

/// One path, or `{ paths = [...] }`: alternatives, the first present wins.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPaths {
    One(RawPath),
    Many(RawPathList),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPathList {
    paths: Vec<RawPath>,
}

fn to_paths(key: &str, raw: Option<RawPaths>) -> Result<Vec<JsonPath>, ConfigError> {
    match raw {
        None => Ok(Vec::new()),
        Some(RawPaths::One(p)) => Ok(vec![to_path(key, p)?]),
        Some(RawPaths::Many(list)) if list.paths.is_empty() => {
            Err(invalid(format!("{key}: `paths` needs at least one path")))
        }
        Some(RawPaths::Many(list)) => list.paths.into_iter().map(|p| to_path(key, p)).collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompose {
    format: String,
    from: Vec<RawPath>,
    when: Option<RawWhen>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    path: RawPath,
    equals: String,
}

/// A field's source: a path (dotted, or an array of keys), or `{ format = "...{}...{}", from =
/// [paths], when = { path = "...", equals = "..." } }`. Read from TOML by hand, so that a
/// mistake is named precisely (an untagged enum could only say that nothing matched).
fn to_source(key: &str, raw: toml::Value) -> Result<Source, ConfigError> {
    let c: RawCompose = match raw {
        table @ toml::Value::Table(_) => table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(format!("{key}: {}", e.message())))?,
        other => {
            let path = other.try_into::<RawPath>().map_err(|_| {
                invalid(format!(
                    "{key}: a path is a dotted string, an array of keys, or {{ format, from, when }}"
                ))
            })?;
            return Ok(Source::Path(to_path(key, path)?));
        }
    };
    let pieces: Vec<String> = c.format.split("{}").map(str::to_owned).collect();
    if c.from.is_empty() || pieces.len() != c.from.len() + 1 {
        return Err(invalid(format!(
            "{key}: `format` {:?} needs one `{{}}` per path in `from` ({} given)",
            c.format,
            c.from.len()
        )));
    }
    let from = c
        .from
        .into_iter()
        .map(|p| to_path(&format!("{key}.from"), p))
        .collect::<Result<Vec<_>, _>>()?;
    let when = match c.when {
        Some(w) => Some((to_path(&format!("{key}.when.path"), w.path)?, w.equals)),
        None => None,
    };
    Ok(Source::Compose { pieces, from, when })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawField {
    path: Option<RawPath>,
    paths: Option<Vec<toml::Value>>,
    #[serde(default)]
    normalize: Vec<toml::Value>,
    default: Option<String>,
    max_len: Option<usize>,
    #[serde(default)]
    neutral: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawView {
    name: String,
    #[serde(default)]
    given: Vec<String>,
    components: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEngine {
    half_life: Option<String>,
    max_nodes: Option<u64>,
    warm_up: Option<u64>,
    component_cap: Option<f64>,
    escalation: Option<f64>,
    escalation_half_life: Option<String>,
    calibration_half_life: Option<String>,
    settle_count: Option<u64>,
    familiar_count: Option<f64>,
    population_prior: Option<f64>,
    settle_time: Option<String>,
    max_time_jump: Option<String>,
    duplicate_window: Option<String>,
    duplicate_capacity: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRisk {
    progression: Option<f64>,
    lift: Option<f64>,
    high_stakes: Option<f64>,
    sequence_window: Option<String>,
    low: Option<f64>,
    medium: Option<f64>,
    high: Option<f64>,
    critical: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCampaign {
    threshold: Option<f64>,
    window: Option<String>,
}

const MAX_DEFAULT_VALUE_LEN: usize = 256;

impl Settings {
    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Settings, ConfigError> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) if text.parse::<toml::Table>().is_err() => {
                return Err(ConfigError::Syntax(e.to_string()));
            }
            Err(e) => return Err(invalid(e.to_string().trim_end().to_owned())),
        };
        let user_defines_profile = raw.body.entity.is_some()
            || raw.body.fields.is_some()
            || raw.body.views.is_some()
            || raw.body.peer.is_some();
        let (name, body) = match (&raw.profile, user_defines_profile) {
            (Some(name), true) => {
                return Err(invalid(format!(
                    "`profile = \"{name}\"` names a built-in profile; a configuration cannot also define \
                     `entity`, `fields`, `views` or `peer` (drop `profile` to describe a custom one)"
                )));
            }
            (Some(name), false) => (name.clone(), with_stakes(builtin(name)?, raw.body.stakes)),
            (None, true) => ("custom".to_owned(), raw.body),
            (None, false) => (
                "cloudtrail".to_owned(),
                with_stakes(builtin("cloudtrail")?, raw.body.stakes),
            ),
        };
        let profile = validate_profile(name, body)?;
        let engine = validate_engine(raw.engine)?;
        let campaign = validate_campaign(raw.campaign)?;
        let risk = validate_risk(raw.risk)?;
        Ok(Settings {
            profile,
            engine,
            campaign,
            risk,
        })
    }

    /// A stable text form of everything the learned model depends on (the event time and id,
    /// the fields the entity, peer group and views read, those, and the engine settings); its
    /// hash is the fingerprint a snapshot carries. Campaign, risk and stakes settings judge what
    /// the model says and may change between runs of one snapshot, and so may the fields only
    /// they read (the action listed in campaigns, a field only a stakes rule's `when` reads).
    /// Fields are named, not numbered: adding one does not move the others.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        let p = &self.profile;
        let name = |i: &usize| p.fields[*i].name.as_str();
        let names = |ids: &[usize]| ids.iter().map(name).collect::<Vec<_>>();
        let _ = writeln!(s, "profile={}", p.name);
        let _ = writeln!(s, "time={:?} id={:?}", p.time, p.id);
        for f in p.model_fields().map(|i| &p.fields[i]) {
            let _ = writeln!(
                s,
                "field {} paths={:?} default={:?} max-len={} normalize={:?} neutral={:?}",
                f.name,
                f.paths,
                f.default,
                f.max_len,
                f.normalize
                    .iter()
                    .map(Normalizer::canonical)
                    .collect::<Vec<_>>(),
                f.neutral
            );
        }
        let _ = writeln!(
            s,
            "entity={:?} peer={:?}",
            names(&p.entity),
            p.peer.as_ref().map(name)
        );
        for v in &p.views {
            let _ = write!(s, "view {} {:?}", v.name, names(&v.components));
            if !v.given.is_empty() {
                let _ = write!(s, " given {:?}", names(&v.given));
            }
            s.push('\n');
        }
        let e = &self.engine;
        let _ = writeln!(
            s,
            "half-life={:?} max-nodes={} warm-up={} component-cap={} escalation={} escalation-half-life={} calibration-half-life={} settle-count={} settle-time={} familiar-count={} population-prior={} max-time-jump={:?} duplicate-window={:?} duplicate-capacity={}",
            e.half_life.map(|d| d.as_secs()),
            e.max_nodes,
            e.warm_up,
            e.component_cap,
            e.escalation,
            e.escalation_half_life,
            e.calibration_half_life,
            e.settle_count,
            e.settle_time,
            e.familiar_count,
            e.population_prior,
            e.max_time_jump,
            e.duplicate_window,
            e.duplicate_capacity,
        );
        s
    }

    /// Fingerprint of [`Settings::canonical`], 16 hex digits.
    pub fn fingerprint(&self) -> String {
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(self.canonical().as_bytes())
        )
    }
}

fn builtin(name: &str) -> Result<RawProfile, ConfigError> {
    let Some((_, text, stakes)) = BUILTIN_PROFILES.iter().find(|(n, _, _)| *n == name) else {
        let known: Vec<_> = BUILTIN_PROFILES.iter().map(|(n, _, _)| *n).collect();
        return Err(invalid(format!(
            "profile: unknown built-in profile \"{name}\" (known: {})",
            known.join(", ")
        )));
    };
    let body: RawProfile =
        toml::from_str(text).map_err(|e| invalid(format!("built-in profile {name}: {e}")))?;
    let table: RawProfile = toml::from_str(stakes)
        .map_err(|e| invalid(format!("built-in profile {name}'s stakes: {e}")))?;
    Ok(with_stakes(body, table.stakes))
}

/// A built-in profile with a configuration's own `[stakes]` laid over its table: its tactic
/// weights replace the profile's, its rules come after the profile's.
fn with_stakes(mut body: RawProfile, own: Option<RawStakes>) -> RawProfile {
    if let Some(own) = own {
        let base = body.stakes.get_or_insert_with(RawStakes::default);
        base.extend(own);
    }
    body
}

fn to_path(key: &str, raw: RawPath) -> Result<JsonPath, ConfigError> {
    let keys: Vec<String> = match raw {
        RawPath::Dotted(s) => s.split('.').map(str::to_owned).collect(),
        RawPath::Keys(k) => k,
    };
    if keys.is_empty() || keys.iter().any(String::is_empty) {
        return Err(invalid(format!(
            "{key}: a path needs one or more non-empty keys, such as \"userIdentity.arn\""
        )));
    }
    Ok(keys)
}

fn validate_profile(name: String, raw: RawProfile) -> Result<Profile, ConfigError> {
    let raw_fields = raw.fields.unwrap_or_default();
    if raw_fields.is_empty() {
        return Err(invalid(
            "fields: a profile needs at least one field, such as [fields.user] paths = [\"user\"]",
        ));
    }
    let mut fields = Vec::with_capacity(raw_fields.len());
    for (fname, rf) in raw_fields {
        let key = format!("fields.{fname}");
        let mut paths = Vec::new();
        if let Some(p) = rf.path {
            paths.push(Source::Path(to_path(&format!("{key}.path"), p)?));
        }
        for (i, p) in rf.paths.unwrap_or_default().into_iter().enumerate() {
            paths.push(to_source(&format!("{key}.paths[{i}]"), p)?);
        }
        if paths.is_empty() {
            return Err(invalid(format!(
                "{key}: give `path` or `paths` (the JSON keys to read, such as \"eventName\")"
            )));
        }
        let normalize = rf
            .normalize
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Normalizer::from_toml(v).map_err(|m| invalid(format!("{key}.normalize[{i}]: {m}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_len = rf.max_len.unwrap_or(MAX_DEFAULT_VALUE_LEN);
        if max_len == 0 {
            return Err(invalid(format!("{key}.max-len: must be at least 1")));
        }
        fields.push(Field {
            name: fname,
            paths,
            normalize,
            default: rf.default,
            max_len,
            neutral: rf.neutral,
        });
    }
    let index_of = |key: &str, n: &str| -> Result<usize, ConfigError> {
        fields.iter().position(|f| f.name == n).ok_or_else(|| {
            let known: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
            invalid(format!(
                "{key}: no field named \"{n}\" (fields: {})",
                known.join(", ")
            ))
        })
    };
    let entity_names = raw.entity.unwrap_or_default();
    if entity_names.is_empty() {
        return Err(invalid(
            "entity: name the field(s) that identify the principal, such as entity = [\"user\"]",
        ));
    }
    let entity = entity_names
        .iter()
        .map(|n| index_of("entity", n))
        .collect::<Result<Vec<_>, _>>()?;
    let raw_views = raw.views.unwrap_or_default();
    if raw_views.is_empty() {
        return Err(invalid(
            "views: a profile needs at least one [[views]] with `name` and `components`",
        ));
    }
    let mut views: Vec<View> = Vec::new();
    for (i, rv) in raw_views.into_iter().enumerate() {
        let key = format!("views[{i}]");
        if rv.name.is_empty() || rv.name == "entity" || views.iter().any(|v| v.name == rv.name) {
            return Err(invalid(format!(
                "{key}.name: \"{}\" is empty, reserved or used twice",
                rv.name
            )));
        }
        if rv.components.is_empty() {
            return Err(invalid(format!(
                "{key}.components: a view needs at least one field"
            )));
        }
        let components = rv
            .components
            .iter()
            .map(|n| index_of(&format!("{key}.components"), n))
            .collect::<Result<Vec<_>, _>>()?;
        let given = rv
            .given
            .iter()
            .map(|n| index_of(&format!("{key}.given"), n))
            .collect::<Result<Vec<_>, _>>()?;
        for (part, list) in [("given", &given), ("components", &components)] {
            if let Some(c) = list.iter().find(|c| entity.contains(c)) {
                return Err(invalid(format!(
                    "{key}.{part}: \"{}\" is part of the entity; views are already judged per entity",
                    fields[*c].name
                )));
            }
        }
        let mut path = given.iter().chain(&components).copied().collect::<Vec<_>>();
        path.sort_unstable();
        if let Some(w) = path.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!(
                "{key}: \"{}\" is named twice (in `given` and `components`, or twice in one)",
                fields[w[0]].name
            )));
        }
        // The observation lists each judged field once, by name: a field is judged by one view
        // (another view may still ask its questions given it).
        if let Some((c, other)) = components.iter().find_map(|c| {
            views
                .iter()
                .find(|v| v.components.contains(c))
                .map(|v| (*c, v.name.as_str()))
        }) {
            return Err(invalid(format!(
                "{key}.components: \"{}\" is already judged by view \"{other}\"; a field is judged by one view (list it in `given` to ask this view's questions given it)",
                fields[c].name
            )));
        }
        views.push(View {
            name: rv.name,
            given,
            components,
        });
    }
    let action = match raw.action {
        Some(a) => Some(index_of("action", &a)?),
        None => views[0].components.last().copied(),
    };
    let peer = match raw.peer {
        Some(p) => {
            let f = index_of("peer", &p)?;
            if entity.contains(&f) {
                return Err(invalid(format!(
                    "peer: \"{p}\" is part of the entity; name the field that groups principals"
                )));
            }
            Some(f)
        }
        None => None,
    };
    let stakes = Stakes::validate(raw.stakes.unwrap_or_default(), index_of, action)?;
    let time = to_paths("time", raw.time)?;
    let id = to_paths("id", raw.id)?;
    Ok(Profile {
        name,
        fields,
        entity,
        views,
        action,
        peer,
        stakes,
        time,
        id,
    })
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|e| {
        invalid(format!(
            "{key}: \"{text}\" is not a duration such as \"30d\" or \"90m\" ({e})"
        ))
    })
}

/// A duration of at least one second, or none: `off`, `never` or `none` (`word` is the one the
/// error message suggests).
fn duration_or_off(key: &str, text: &str, word: &str) -> Result<Option<Duration>, ConfigError> {
    if matches!(text, "off" | "never" | "none") {
        return Ok(None);
    }
    let d = duration(key, text)?;
    if d.as_secs() == 0 {
        return Err(invalid(format!(
            "{key}: must be at least one second, or \"{word}\""
        )));
    }
    Ok(Some(d))
}

/// `value` if it lies in `range` (NaN never does), else an error naming `key` and the range.
fn within<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(format!(
            "{key}: {value} is outside {}..={}",
            range.start(),
            range.end()
        )))
    }
}

fn validate_engine(raw: Option<RawEngine>) -> Result<EngineSettings, ConfigError> {
    let mut e = EngineSettings::default();
    let Some(raw) = raw else { return Ok(e) };
    if let Some(h) = raw.half_life {
        e.half_life = duration_or_off("engine.half-life", &h, "never")?;
    }
    if let Some(m) = raw.max_nodes {
        e.max_nodes = within("engine.max-nodes", m, 1_000..=1_000_000_000)?;
    }
    if let Some(w) = raw.warm_up {
        e.warm_up = w;
    }
    if let Some(c) = raw.component_cap {
        if !(c > 0.0 && c <= 1024.0) {
            return Err(invalid(format!(
                "engine.component-cap: {c} is outside (0, 1024] bits"
            )));
        }
        e.component_cap = c;
    }
    if let Some(x) = raw.escalation {
        if !(0.0..=10.0).contains(&x) {
            return Err(invalid(format!(
                "engine.escalation: {x} is outside [0, 10]"
            )));
        }
        e.escalation = x;
    }
    if let Some(h) = raw.escalation_half_life {
        e.escalation_half_life = duration("engine.escalation-half-life", &h)?.as_secs_f64();
    }
    if let Some(h) = raw.calibration_half_life {
        let d = duration("engine.calibration-half-life", &h)?;
        if d.as_secs() == 0 {
            return Err(invalid(
                "engine.calibration-half-life: must be at least one second",
            ));
        }
        e.calibration_half_life = d.as_secs();
    }
    if let Some(k) = raw.settle_count {
        e.settle_count = within("engine.settle-count", k, 0..=1_000_000)?;
    }
    if let Some(t) = raw.settle_time {
        let d = duration("engine.settle-time", &t)?;
        if d.as_secs() == 0 {
            return Err(invalid("engine.settle-time: must be at least one second"));
        }
        e.settle_time = d.as_secs();
    }
    if let Some(k) = raw.familiar_count {
        e.familiar_count = within("engine.familiar-count", k, 0.0..=1e9)?;
    }
    if let Some(a) = raw.population_prior {
        e.population_prior = within("engine.population-prior", a, 0.0..=1e9)?;
    }
    if let Some(j) = raw.max_time_jump {
        e.max_time_jump = duration_or_off("engine.max-time-jump", &j, "off")?.map(|d| d.as_secs());
    }
    if let Some(w) = raw.duplicate_window {
        e.duplicate_window =
            duration_or_off("engine.duplicate-window", &w, "off")?.map(|d| d.as_secs());
    }
    if let Some(n) = raw.duplicate_capacity {
        e.duplicate_capacity = within("engine.duplicate-capacity", n, 1..=100_000_000)?;
    }
    Ok(e)
}

fn validate_risk(raw: Option<RawRisk>) -> Result<RiskSettings, ConfigError> {
    let mut r = RiskSettings::default();
    let Some(raw) = raw else { return Ok(r) };
    if let Some(p) = raw.progression {
        r.progression = within("risk.progression", p, 0.0..=10.0)?;
    }
    if let Some(l) = raw.lift {
        r.lift = within("risk.lift", l, 1.0..=1e6)?;
    }
    if let Some(h) = raw.high_stakes {
        r.high_stakes = within("risk.high-stakes", h, 0.0..=100.0)?;
    }
    if let Some(w) = raw.sequence_window {
        r.sequence_window = duration("risk.sequence-window", &w)?;
    }
    let levels = [raw.low, raw.medium, raw.high, raw.critical];
    for (i, (level, severity)) in levels.into_iter().zip(SEVERITIES).enumerate() {
        if let Some(t) = level {
            r.severity[i] = within(&format!("risk.{}", severity.name()), t, 0.0..=1e6)?;
        }
    }
    if let Some(w) = r.severity.windows(2).position(|w| w[0] > w[1]) {
        return Err(invalid(format!(
            "risk.{}: {} is below risk.{} ({}); severities rise from low to critical",
            SEVERITIES[w + 1].name(),
            r.severity[w + 1],
            SEVERITIES[w].name(),
            r.severity[w]
        )));
    }
    Ok(r)
}

fn validate_campaign(raw: Option<RawCampaign>) -> Result<CampaignSettings, ConfigError> {
    let mut c = CampaignSettings::default();
    let Some(raw) = raw else { return Ok(c) };
    if let Some(t) = raw.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid(format!(
                "campaign.threshold: {t} is outside [0, 1]"
            )));
        }
        c.threshold = t;
    }
    if let Some(w) = raw.window {
        c.window = duration("campaign.window", &w)?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_cloudtrail_profile() {
        let s = Settings::parse("").expect("valid");
        assert_eq!(s.profile.name, "cloudtrail");
        assert_eq!(s.profile.views.len(), 5);
        assert!(s.profile.peer.is_some());
        assert!(!s.profile.stakes.is_empty());
        assert_eq!(
            s.fingerprint(),
            Settings::parse("profile = \"cloudtrail\"")
                .expect("valid")
                .fingerprint()
        );
    }

    #[test]
    fn judging_settings_leave_the_fingerprint_as_it_is() {
        let a = Settings::parse("").expect("valid");
        for text in [
            "[risk]\nmedium = 45\nlift = 3",
            "[campaign]\nwindow = \"2h\"",
            "[stakes.tactics]\ndiscovery = 1.0",
        ] {
            let b = Settings::parse(text).expect("valid");
            assert_eq!(a.fingerprint(), b.fingerprint(), "{text}");
        }
    }

    #[test]
    fn a_configurations_stakes_rules_are_numbered_as_in_its_file() {
        let rule = |tactic: &str| {
            format!(
                "[[stakes.rules]]\nactions = [\"GetObject\"]\ntactic = \"{tactic}\"\ntechnique = \"T1530\"\n"
            )
        };
        for profile in ["", "profile = \"cloudtrail\"\n"] {
            let text = format!("{profile}{}{}", rule("collection"), rule("plunder"));
            let e = Settings::parse(&text).expect_err("unknown tactic");
            assert!(
                e.to_string().starts_with(
                    "invalid configuration: stakes.rules[1].tactic: unknown tactic \"plunder\""
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn fields_the_model_does_not_read_leave_the_fingerprint_as_it_is() {
        let profile = |extra: &str| {
            format!(
                "entity = [\"user\"]\naction = \"act\"\n\
                 [fields.user]\npath = \"user\"\n[fields.act]\npath = \"act\"\n{extra}\
                 [[views]]\nname = \"what\"\ncomponents = [\"act\"]\n"
            )
        };
        let base = Settings::parse(&profile("")).expect("valid");
        // A field only a stakes rule reads, named to come first among the fields.
        let stakes_only = Settings::parse(&format!(
            "{}[[stakes.rules]]\nactions = [\"open\"]\ntactic = \"defense-evasion\"\n\
             technique = \"T1562.007\"\nwhen = {{ field = \"aa\", matches = \"^0\" }}\n",
            profile("[fields.aa]\npath = \"cidr\"\n")
        ))
        .expect("valid");
        assert_eq!(base.fingerprint(), stakes_only.fingerprint());
        // A field a view reads changes it.
        let viewed = Settings::parse(
            &profile("[fields.aa]\npath = \"cidr\"\n")
                .replace("components = [\"act\"]", "components = [\"act\", \"aa\"]"),
        )
        .expect("valid");
        assert_ne!(base.fingerprint(), viewed.fingerprint());
    }

    #[test]
    fn the_built_in_profiles_fingerprint_stays_as_it_was() {
        // Every saved state of the built-in profile carries this fingerprint: a change refuses
        // them all. Change it only on purpose, and say so in CHANGELOG.md.
        let s = Settings::parse("").expect("valid");
        assert_eq!(s.fingerprint(), "29068d617eb2dabe");
    }

    #[test]
    fn engine_settings_change_the_fingerprint() {
        let a = Settings::parse("").expect("valid");
        let b = Settings::parse("[engine]\nhalf-life = \"7d\"").expect("valid");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(b.engine.half_life, Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::parse("[engine]\nhalf-life = \"soon\"").expect_err("invalid");
        assert!(e.to_string().contains("engine.half-life"), "{e}");
        let e = Settings::parse("[engine]\nmax-nodez = 5").expect_err("invalid");
        assert!(e.to_string().contains("max-nodez"), "{e}");
        let e = Settings::parse("profile = \"syslog\"").expect_err("invalid");
        assert!(
            e.to_string().contains("syslog") && e.to_string().contains("cloudtrail"),
            "{e}"
        );
        let e = Settings::parse("entity = [").expect_err("invalid");
        assert!(matches!(e, ConfigError::Syntax(_)), "{e:?}");
        let e = Settings::parse("[engine]\nsettle-time = \"0s\"").expect_err("invalid");
        assert!(e.to_string().contains("engine.settle-time"), "{e}");
        let s = Settings::parse("[engine]\nsettle-count = 0\nsettle-time = \"2m\"").expect("valid");
        assert_eq!((s.engine.settle_count, s.engine.settle_time), (0, 120));
        let e = Settings::parse("[engine]\nmax-time-jump = \"0h\"").expect_err("invalid");
        assert!(e.to_string().contains("engine.max-time-jump"), "{e}");
        let s = Settings::parse("[engine]\nfamiliar-count = 0").expect("valid");
        assert_eq!(s.engine.familiar_count, 0.0);
        let e = Settings::parse("[engine]\nfamiliar-count = -1").expect_err("invalid");
        assert!(e.to_string().contains("engine.familiar-count"), "{e}");
        let s = Settings::parse("[engine]\npopulation-prior = 0").expect("valid");
        assert_eq!(s.engine.population_prior, 0.0);
        for bad in ["-1", "nan", "inf"] {
            let e = Settings::parse(&format!("[engine]\npopulation-prior = {bad}"))
                .expect_err("invalid");
            assert!(e.to_string().contains("engine.population-prior"), "{e}");
        }
        let s = Settings::parse("[engine]\nmax-time-jump = \"off\"").expect("valid");
        assert_eq!(s.engine.max_time_jump, None);
        let s = Settings::parse("[engine]\nmax-time-jump = \"3d\"").expect("valid");
        assert_eq!(s.engine.max_time_jump, Some(3 * 86_400));
        let e = Settings::parse("[risk]\nlift = 0.5").expect_err("invalid");
        assert!(e.to_string().contains("risk.lift"), "{e}");
        let s = Settings::parse("[risk]\nlift = 3").expect("valid");
        assert_eq!(s.risk.lift, 3.0);
    }

    #[test]
    fn time_and_id_take_one_path_or_alternatives() {
        let base = "entity = [\"u\"]\n[fields.u]\npath = \"u\"\n[fields.p]\npath = \"p\"\n[[views]]\nname = \"v\"\ncomponents = [\"p\"]\n";
        let one =
            Settings::parse(&format!("time = \"a.b\"\nid = [\"x.y\"]\n{base}")).expect("valid");
        assert_eq!(one.profile.time, vec![vec!["a".to_owned(), "b".to_owned()]]);
        assert_eq!(one.profile.id, vec![vec!["x.y".to_owned()]]);
        let many = Settings::parse(&format!("time = {{ paths = [\"t\", \"d.t\"] }}\n{base}"))
            .expect("valid");
        assert_eq!(many.profile.time.len(), 2);
        assert!(many.profile.id.is_empty());
        let e = Settings::parse(&format!("time = {{ paths = [] }}\n{base}")).expect_err("invalid");
        assert!(e.to_string().contains("time"), "{e}");
    }

    #[test]
    fn a_view_may_ask_its_questions_given_fields_another_view_judges() {
        let base = "entity = [\"u\"]\n[fields.u]\npath = \"u\"\n[fields.s]\npath = \"s\"\n[fields.r]\npath = \"r\"\n[[views]]\nname = \"do\"\ncomponents = [\"s\"]\n";
        let view = |body: &str| format!("{base}[[views]]\nname = \"on\"\n{body}\n");
        let s = Settings::parse(&view("given = [\"s\"]\ncomponents = [\"r\"]")).expect("valid");
        let on = &s.profile.views[1];
        let name = |(f, given): (usize, bool)| (s.profile.fields[f].name.as_str(), given);
        assert_eq!(
            on.path().map(name).collect::<Vec<_>>(),
            [("s", true), ("r", false)]
        );
        let plain = Settings::parse(&view("components = [\"r\"]")).expect("valid");
        assert_ne!(s.fingerprint(), plain.fingerprint());
        for (body, names) in [
            ("given = [\"x\"]\ncomponents = [\"r\"]", "views[1].given"),
            (
                "given = [\"u\"]\ncomponents = [\"r\"]",
                "part of the entity",
            ),
            ("given = [\"r\"]\ncomponents = [\"r\"]", "named twice"),
            ("components = [\"r\", \"r\"]", "named twice"),
            (
                "components = [\"s\", \"r\"]",
                "already judged by view \"do\"",
            ),
        ] {
            let e = Settings::parse(&view(body)).expect_err(body);
            assert!(e.to_string().contains(names), "{body}: {e}");
        }
    }

    #[test]
    fn a_source_may_compose_several_paths() {
        let text = |format: &str| {
            format!(
                r#"
                entity = ["user"]
                [fields.user]
                paths = ["user.arn", {{ format = "{format}", from = ["user.account", "user.name"], when = {{ path = "user.kind", equals = "person" }} }}]
                [fields.action]
                path = "action"
                [[views]]
                name = "do"
                components = ["action"]
                "#
            )
        };
        let s = Settings::parse(&text("{}/{}")).expect("valid");
        let user = s
            .profile
            .fields
            .iter()
            .find(|f| f.name == "user")
            .expect("field");
        assert_eq!(
            user.paths[1],
            Source::Compose {
                pieces: vec![String::new(), "/".into(), String::new()],
                from: vec![
                    vec!["user".into(), "account".into()],
                    vec!["user".into(), "name".into()]
                ],
                when: Some((vec!["user".into(), "kind".into()], "person".into())),
            }
        );
        for bad in ["{}", "{}/{}/{}", "no placeholder"] {
            let e = Settings::parse(&text(bad)).expect_err("invalid");
            assert!(
                e.to_string().contains("fields.user.paths[1]")
                    && e.to_string().contains("one `{}` per path"),
                "{e}"
            );
        }
        // A mistake is named, with its place.
        let typo = text("{}/{}").replace("format =", "formt =");
        let e = Settings::parse(&typo).expect_err("invalid");
        assert!(
            e.to_string().contains("fields.user.paths[1]")
                && e.to_string().contains("unknown field `formt`"),
            "{e}"
        );
        let number = text("{}/{}").replace(r#""user.arn","#, "42,");
        let e = Settings::parse(&number).expect_err("invalid");
        assert!(
            e.to_string().contains("fields.user.paths[0]") && e.to_string().contains("a path is"),
            "{e}"
        );
        // Through an engine: composed when every part is there and the condition holds.
        let mut engine = crate::Engine::new(&text("{}/{}")).expect("valid");
        let who = |engine: &mut crate::Engine, user: &str| {
            let line = format!(r#"{{"action":"a","user":{{{user}}}}}"#);
            engine
                .score_line(line.as_bytes())
                .map(|r| r.principal)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            who(&mut engine, r#""account":"1","name":"ann","kind":"person""#).as_deref(),
            Ok("1/ann")
        );
        assert_eq!(
            who(
                &mut engine,
                r#""arn":"x:ann","account":"1","name":"ann","kind":"person""#
            )
            .as_deref(),
            Ok("x:ann")
        );
        for missing in [
            r#""account":"1","name":"ann","kind":"robot""#,
            r#""account":"1","name":"","kind":"person""#,
            r#""name":"ann","kind":"person""#,
        ] {
            let e = who(&mut engine, missing).expect_err("no source present");
            assert!(e.contains("user.account + user.name"), "{e}");
        }
    }

    #[test]
    fn custom_profile() {
        let text = r#"
            entity = ["user"]
            time = "ts"
            [fields.user]
            path = "user.name"
            normalize = ["lowercase"]
            [fields.process]
            paths = ["process.name", ["process", "exe"]]
            [[views]]
            name = "launch"
            components = ["process"]
        "#;
        let s = Settings::parse(text).expect("valid");
        assert_eq!(s.profile.name, "custom");
        let process = s
            .profile
            .fields
            .iter()
            .position(|f| f.name == "process")
            .expect("field");
        assert_eq!(
            s.profile.fields[process].paths[1],
            Source::Path(vec!["process".to_owned(), "exe".to_owned()])
        );
        assert_eq!(
            s.profile.action,
            Some(process),
            "defaults to the first view's last component"
        );
        let bad = text.replace("components = [\"process\"]", "components = [\"proc\"]");
        let e = Settings::parse(&bad).expect_err("invalid");
        assert!(
            e.to_string().contains("views[0].components") && e.to_string().contains("proc"),
            "{e}"
        );
    }
}
