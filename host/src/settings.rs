//! Typed settings, validated once from (lowest to highest precedence) defaults, the TOML
//! configuration file, `ODDITY_` environment variables and command-line flags.
//!
//! The `[engine]` and `[campaign]` tables are the plugin's: they are passed to it with the
//! profile as its configuration text, and the plugin validates them (naming the key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Case, Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::alerts::{AlertSettings, DEFAULT_CAMPAIGN_MIN_EVENTS, DEFAULT_MIN_SEVERITY};
use crate::annotation::Severity;
use crate::cli::ScoreArgs;
use crate::deadletter::BadLinePolicy;
use crate::plugin::Limits;
use crate::sinks::Target;

/// Why the settings were refused.
#[derive(Debug, thiserror::Error)]
#[error("configuration error ({origin}): {message}")]
pub struct SettingsError {
    /// Where the configuration came from (file, environment, flags).
    pub origin: String,
    pub message: String,
}

/// When to save the state file.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub file: PathBuf,
    pub every_events: Option<u64>,
    pub every: Option<Duration>,
}

/// Everything `oddity score` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub paths: Vec<PathBuf>,
    /// The plugin's configuration text (TOML): profile plus `[engine]` and `[campaign]`.
    pub engine_config: String,
    /// Where the profile came from, for messages.
    pub profile_origin: String,
    pub output: Option<PathBuf>,
    pub output_key: String,
    pub batch_size: usize,
    /// Read observations in a second plugin instance on another thread (`staged`).
    pub staged: bool,
    pub max_line_bytes: usize,
    /// What happens to lines that are not events (`[bad-lines]`, `--dead-letter`).
    pub bad_lines: BadLinePolicy,
    pub plugin: Option<PathBuf>,
    pub limits: Limits,
    pub state: Option<StateSettings>,
    /// Where and when to write alerts (`[alerts]`, `--alerts`).
    pub alerts: Option<AlertSettings>,
    /// Where compiled plugins are cached; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
    pub quiet: bool,
    /// Read input files from their start, whatever the state's checkpoints say.
    pub reread: bool,
    /// Follow the input files as they grow and the directories as files come in (`--follow`).
    pub follow: bool,
    /// A shipper's protocol answered on standard output (`--reply`).
    pub reply: Option<crate::cli::Reply>,
    /// Where `--metrics` serves the counters.
    pub metrics: Option<std::net::SocketAddr>,
}

pub const DEFAULT_BATCH: usize = 256;
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
const DEFAULT_MEMORY_MIB: u64 = 1024;
const DEFAULT_FUEL: u64 = 0;
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
const DEFAULT_SAVE_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_SAVE_EVERY_EVENTS: u64 = 1_000_000;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    profile: Option<String>,
    output: Option<PathBuf>,
    output_key: Option<String>,
    batch_size: Option<usize>,
    staged: Option<bool>,
    max_line_bytes: Option<usize>,
    plugin: Option<PathBuf>,
    cache_dir: Option<String>,
    quiet: Option<bool>,
    state: Option<RawState>,
    bad_lines: Option<RawBadLines>,
    sandbox: Option<RawSandbox>,
    alerts: Option<RawAlerts>,
    engine: Option<toml::Table>,
    campaign: Option<toml::Table>,
    risk: Option<toml::Table>,
    stakes: Option<toml::Table>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawState {
    file: Option<PathBuf>,
    save_every_events: Option<u64>,
    save_every: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlerts {
    file: Option<String>,
    min_severity: Option<String>,
    campaign_min_events: Option<u32>,
    format: Option<String>,
    suppress: Option<PathBuf>,
    sink: Option<Vec<crate::sinks::RawSink>>,
    queue: Option<crate::sinks::RawQueue>,
    /// Replaced by `min-severity`; named only to say so.
    event_threshold: Option<toml::Value>,
    campaign_threshold: Option<toml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBadLines {
    policy: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSandbox {
    memory_mib: Option<u64>,
    fuel: Option<u64>,
    deadline: Option<String>,
}

/// A file a run writes: what it is, the setting that names it, and its path.
#[derive(Debug, Clone, Copy)]
pub struct WrittenFile<'a> {
    pub what: &'static str,
    pub key: &'static str,
    pub path: &'a Path,
}

impl<'a> WrittenFile<'a> {
    fn new(what: &'static str, key: &'static str, path: &'a Path) -> Self {
        WrittenFile { what, key, path }
    }
}

impl std::fmt::Display for WrittenFile<'_> {
    /// `the state file (state.file)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} file ({})", self.what, self.key)
    }
}

/// Whether two paths name the same file: the same file on disk when both exist (the same
/// device and inode, so symbolic and hard links are seen through), else the same absolute path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    // Two names of one existing file (hard links too): the same device and inode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (fs_err::metadata(a), fs_err::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (fs_err::canonicalize(a), fs_err::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => match (std::path::absolute(a), std::path::absolute(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
    }
}

impl Settings {
    /// The files this run writes, each with what it is and its setting (for the checks that no
    /// two are the same, and that none is an input).
    pub fn written_files(&self) -> Vec<WrittenFile<'_>> {
        let mut files = Vec::new();
        if let Some(o) = &self.output
            && syslog_output(o).is_none()
        {
            files.push(WrittenFile::new("output", "output", o));
        }
        if let Some(s) = &self.state {
            files.push(WrittenFile::new("state", "state.file", &s.file));
        }
        if let BadLinePolicy::DeadLetter(f) = &self.bad_lines {
            files.push(WrittenFile::new("dead-letter", "bad-lines.file", f));
        }
        for sink in self.alerts.iter().flat_map(|a| &a.sinks) {
            if let Target::File(a) = &sink.target {
                files.push(WrittenFile::new("alerts", "alerts.file", a));
            }
        }
        files
    }

    /// Reads the configuration file named by `--config` (if any), the environment and the flags.
    pub fn load(args: &ScoreArgs) -> Result<Settings, SettingsError> {
        Settings::load_with_env(args, None)
    }

    /// As [`Settings::load`], with the environment given (tests) instead of read.
    pub fn load_with_env(
        args: &ScoreArgs,
        env: Option<config::Map<String, String>>,
    ) -> Result<Settings, SettingsError> {
        let origin = match &args.config {
            Some(p) => format!("{}, ODDITY_* environment and flags", p.display()),
            None => "ODDITY_* environment and flags".to_owned(),
        };
        let err = |message: String| SettingsError {
            origin: origin.clone(),
            message,
        };
        let mut builder = Config::builder();
        if let Some(path) = &args.config {
            let text = fs_err::read_to_string(path).map_err(|e| err(e.to_string()))?;
            // Parse with `toml` first: its errors give the line and column.
            text.parse::<toml::Table>()
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }
        builder = builder.add_source(
            Environment::with_prefix("ODDITY")
                .prefix_separator("_")
                .separator("__")
                .convert_case(Case::Kebab)
                .try_parsing(true)
                .source(env),
        );
        let overrides: [(&str, Option<config::Value>); 18] = [
            ("profile", args.profile.clone().map(Into::into)),
            (
                "state.file",
                args.state.as_ref().map(|p| p.display().to_string().into()),
            ),
            (
                "state.save-every-events",
                args.save_every_events.map(Into::into),
            ),
            ("state.save-every", args.save_every.clone().map(Into::into)),
            (
                "output",
                args.output.as_ref().map(|p| p.display().to_string().into()),
            ),
            ("output-key", args.key.clone().map(Into::into)),
            ("batch-size", args.batch_size.map(|n| (n as u64).into())),
            (
                "max-line-bytes",
                args.max_line_bytes.map(|n| (n as u64).into()),
            ),
            (
                "plugin",
                args.plugin.as_ref().map(|p| p.display().to_string().into()),
            ),
            ("sandbox.memory-mib", args.memory_mib.map(Into::into)),
            ("sandbox.fuel", args.fuel.map(Into::into)),
            ("sandbox.deadline", args.deadline.clone().map(Into::into)),
            ("quiet", args.quiet.then_some(true.into())),
            ("alerts.file", args.alerts.clone().map(Into::into)),
            ("alerts.format", args.alerts_format.clone().map(Into::into)),
            (
                "alerts.suppress",
                args.suppress
                    .as_ref()
                    .map(|p| p.display().to_string().into()),
            ),
            (
                "bad-lines.policy",
                args.dead_letter.as_ref().map(|_| "dead-letter".into()),
            ),
            (
                "bad-lines.file",
                args.dead_letter
                    .as_ref()
                    .map(|p| p.display().to_string().into()),
            ),
        ];
        for (key, value) in overrides {
            if let Some(v) = value {
                builder = builder
                    .set_override(key, v)
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        let raw: RawSettings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| err(e.to_string()))?;
        let mut settings = validate(args, raw).map_err(err)?;
        settings.reread = args.reread;
        settings.follow = args.follow;
        settings.reply = args.reply;
        settings.metrics = args.metrics;
        check_reply(&settings).map_err(err)?;
        Ok(settings)
    }
}

/// `--reply` owns standard output: the scored stream of `omprog` needs a file, that of
/// `mmexternal` is the replies themselves; alerts cannot go to standard output either.
fn check_reply(settings: &Settings) -> Result<(), String> {
    use crate::cli::Reply;
    let alerts_on_stdout = settings
        .alerts
        .as_ref()
        .is_some_and(|a| a.sinks.iter().any(|s| s.target == Target::Stdout));
    match settings.reply {
        None => Ok(()),
        Some(_) if alerts_on_stdout => {
            Err("--reply answers on standard output: write the alerts to a file".into())
        }
        Some(Reply::Omprog) if settings.output.is_none() => Err(
            "--reply omprog answers OK on standard output: write the scored stream to a file with -o FILE"
                .into(),
        ),
        Some(Reply::Mmexternal) if settings.output.is_some() => Err(
            "--reply mmexternal answers with the scored events on standard output: leave out -o"
                .into(),
        ),
        Some(_) => Ok(()),
    }
}

fn positive(key: &str, v: Option<usize>, default: usize) -> Result<usize, String> {
    match v {
        None => Ok(default),
        Some(0) => Err(format!("{key} must be at least 1")),
        Some(n) => Ok(n),
    }
}

/// The address of an output named `syslog+tcp://HOST:PORT` (the scored stream sent as syslog
/// messages), if it is one.
pub fn syslog_output(output: &Path) -> Option<anyhow::Result<std::net::SocketAddr>> {
    let at = output.to_str()?.strip_prefix("syslog+tcp://")?;
    Some(at.parse().map_err(|_| {
        anyhow::anyhow!("output syslog+tcp://{at}: wants an address such as 127.0.0.1:6514")
    }))
}

fn duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{key}: \"{text}\" is not a duration such as \"60s\" or \"5m\" ({e})"))
}

fn validate(args: &ScoreArgs, raw: RawSettings) -> Result<Settings, String> {
    let batch_size = positive("batch-size", raw.batch_size, DEFAULT_BATCH)?;
    if batch_size > 1_000_000 {
        return Err(format!("batch-size {batch_size} is more than 1000000"));
    }
    let max_line_bytes = positive("max-line-bytes", raw.max_line_bytes, DEFAULT_MAX_LINE)?;
    let output_key = raw.output_key.unwrap_or_else(|| "novelty".to_owned());
    if output_key.is_empty() {
        return Err("output-key must not be empty".to_owned());
    }
    let sandbox = raw.sandbox.unwrap_or_default();
    let memory_mib = sandbox.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    if !(16..=4096).contains(&memory_mib) {
        return Err(format!(
            "sandbox.memory-mib {memory_mib} is outside 16..=4096"
        ));
    }
    let fuel = match sandbox.fuel.unwrap_or(DEFAULT_FUEL) {
        0 => None,
        f => Some(f),
    };
    // The budget's checks cost the plugin about a quarter of its speed (measured:
    // docs/operations.md, "The sandbox"), so by default only a plugin loaded with `plugin` (untrusted) runs under
    // it; the embedded one is our own code, linear in each line's length.
    let deadline = match sandbox.deadline.as_deref() {
        None if raw.plugin.is_some() => Some(DEFAULT_DEADLINE),
        None => None,
        Some("0" | "off" | "none") => None,
        Some(t) => Some(duration("sandbox.deadline", t)?),
    };
    let limits = Limits {
        memory: (memory_mib as usize) << 20,
        fuel,
        deadline,
    };
    let state = match raw.state {
        Some(RawState {
            file: Some(file),
            save_every_events,
            save_every,
        }) => Some(StateSettings {
            file,
            every_events: match save_every_events {
                Some(0) => None,
                Some(n) => Some(n),
                None => Some(DEFAULT_SAVE_EVERY_EVENTS),
            },
            every: match save_every.as_deref() {
                Some("0" | "never" | "off") => None,
                Some(t) => Some(duration("state.save-every", t)?),
                None => Some(DEFAULT_SAVE_EVERY),
            },
        }),
        Some(RawState {
            file: None,
            save_every_events,
            save_every,
        }) if save_every_events.is_some() || save_every.is_some() => {
            return Err(
                "state.save-every and state.save-every-events need state.file (--state FILE)"
                    .to_owned(),
            );
        }
        _ => None,
    };
    let alerts = alerts(raw.alerts, raw.output.as_deref())?;
    let bad_lines = bad_lines(raw.bad_lines)?;
    let (engine_config, profile_origin) = engine_config(
        raw.profile.as_deref().unwrap_or("cloudtrail"),
        [
            ("engine", raw.engine),
            ("campaign", raw.campaign),
            ("risk", raw.risk),
            ("stakes", raw.stakes),
        ],
    )?;
    let cache_dir = cache_dir(
        raw.cache_dir.as_deref(),
        state.as_ref().map(|s| s.file.as_path()),
    );
    let settings = Settings {
        paths: args.paths.clone(),
        engine_config,
        profile_origin,
        output: raw.output,
        output_key,
        batch_size,
        // Two instances pay off only with a core for each.
        staged: raw
            .staged
            .unwrap_or_else(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)),
        max_line_bytes,
        bad_lines,
        plugin: raw.plugin,
        limits,
        state,
        alerts,
        cache_dir,
        quiet: raw.quiet.unwrap_or(false),
        reread: false,
        follow: false,
        reply: None,
        metrics: None,
    };
    // Two of the files written being one would lose one of them (a snapshot over the scored
    // events, alerts or dead letters among them), by the file itself (links, `./`).
    let written = settings.written_files();
    for (i, a) in written.iter().enumerate() {
        if let Some(b) = written[..i].iter().find(|b| same_file(a.path, b.path)) {
            return Err(format!(
                "{a}, {}, is also {b}: write them to different files",
                a.path.display()
            ));
        }
    }
    Ok(settings)
}

/// `[alerts]`: the sink and the thresholds. With alerts on standard output (`-`), the scored
/// stream must go to a file, or the two would be mixed.
fn alerts(raw: Option<RawAlerts>, output: Option<&Path>) -> Result<Option<AlertSettings>, String> {
    let Some(raw) = raw else { return Ok(None) };
    for (key, set) in [
        ("event-threshold", raw.event_threshold.is_some()),
        ("campaign-threshold", raw.campaign_threshold.is_some()),
    ] {
        if set {
            return Err(format!(
                "alerts.{key} is gone since 0.3: alerts are chosen by severity, from risk (novelty weighted by what the action is at stake for); use alerts.min-severity = \"info\" | \"low\" | \"medium\" | \"high\" | \"critical\" (default \"{}\"), and [risk] to tune the levels",
                DEFAULT_MIN_SEVERITY.name()
            ));
        }
    }
    let mut sinks = Vec::new();
    if let Some(file) = &raw.file {
        let target = crate::sinks::file_target(file)?;
        if target == Target::Stdout && output.is_none() {
            return Err("alerts.file is - (alerts on standard output), so the scored stream needs a file: add -o FILE (output = ...)".to_owned());
        }
        let format = crate::sinks::format("alerts.format", raw.format.as_deref())?;
        sinks.push(crate::sinks::SinkSettings { target, format });
    } else if raw.format.is_some() {
        return Err("alerts.format is the format of alerts.file (--alerts FILE|-); give each [[alerts.sink]] its own format".to_owned());
    }
    for (n, table) in raw.sink.into_iter().flatten().enumerate() {
        let sink = crate::sinks::sink(n, table)?;
        if sink.target == Target::Stdout && output.is_none() {
            return Err(format!(
                "alerts.sink[{n}] writes to standard output (-), so the scored stream needs a file: add -o FILE (output = ...)"
            ));
        }
        sinks.push(sink);
    }
    if sinks.is_empty() {
        if raw.min_severity.is_some()
            || raw.campaign_min_events.is_some()
            || raw.suppress.is_some()
            || raw.queue.is_some()
        {
            return Err("the alerts.* settings need somewhere to send alerts: alerts.file (--alerts FILE|-) or [[alerts.sink]]".to_owned());
        }
        return Ok(None);
    }
    let queue = crate::sinks::queue(raw.queue)?;
    let min_severity = match raw.min_severity.as_deref() {
        None => DEFAULT_MIN_SEVERITY,
        Some(name) => Severity::from_name(name).ok_or_else(|| {
            format!(
                "alerts.min-severity \"{name}\" is not a severity (info, low, medium, high, critical)"
            )
        })?,
    };
    let campaign_min_events = raw
        .campaign_min_events
        .unwrap_or(DEFAULT_CAMPAIGN_MIN_EVENTS);
    if campaign_min_events == 0 {
        return Err("alerts.campaign-min-events must be at least 1".to_owned());
    }
    let suppress = match &raw.suppress {
        None => crate::suppress::Rules::default(),
        Some(path) => crate::suppress::Rules::load(path)
            .map_err(|e| format!("alerts.suppress: {e}"))?
            .in_force(jiff::Timestamp::now().as_second() as f64),
    };
    Ok(Some(AlertSettings {
        sinks,
        queue,
        min_severity,
        campaign_min_events,
        suppress,
    }))
}

/// `[bad-lines]`: `policy = "pass"` (the default) or `"dead-letter"` with a `file`.
fn bad_lines(raw: Option<RawBadLines>) -> Result<BadLinePolicy, String> {
    let raw = raw.unwrap_or_default();
    match (raw.policy.as_deref(), raw.file) {
        (None | Some("pass"), None) => Ok(BadLinePolicy::Pass),
        (Some("pass"), Some(_)) => Err(
            "bad-lines.file is set but bad-lines.policy is \"pass\" (bad lines go to the output); use policy = \"dead-letter\" or remove the file".to_owned(),
        ),
        (None | Some("dead-letter"), Some(file)) => {
            if file.as_os_str().is_empty() || file.as_os_str() == "-" {
                return Err("bad-lines.file must be a file".to_owned());
            }
            Ok(BadLinePolicy::DeadLetter(file))
        }
        (Some("dead-letter"), None) => Err(
            "bad-lines.policy is \"dead-letter\" but bad-lines.file is not set (--dead-letter FILE)"
                .to_owned(),
        ),
        (Some(other), _) => Err(format!(
            "bad-lines.policy \"{other}\" is neither \"pass\" nor \"dead-letter\""
        )),
    }
}

/// `cache-dir`: a directory, `off`, or by default `$XDG_CACHE_HOME/oddity` (`~/.cache/oddity`).
/// Where the compiled plugin is cached: `cache-dir`, else `$XDG_CACHE_HOME/oddity` or
/// `$HOME/.cache/oddity`; without either (log shippers start their children with an empty
/// environment) a directory beside the state file, else a private one in the system's
/// temporary directory, said once in the log.
fn cache_dir(setting: Option<&str>, state: Option<&Path>) -> Option<PathBuf> {
    match setting {
        Some("" | "off" | "none") => return None,
        Some(dir) => return Some(PathBuf::from(dir)),
        None => {}
    }
    let home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    if let Some(dir) = home {
        return Some(dir.join("oddity"));
    }
    let beside_state = state.map(|s| match s.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(".oddity-cache"),
        _ => PathBuf::from(".oddity-cache"),
    });
    let fallback = beside_state.or_else(|| private_temp_dir().ok());
    match &fallback {
        Some(dir) => tracing::info!(
            cache = %dir.display(),
            "neither XDG_CACHE_HOME nor HOME is set: caching the compiled plugin in {}",
            dir.display()
        ),
        None => tracing::warn!(
            "neither XDG_CACHE_HOME nor HOME is set and no private temporary directory could be made: every start compiles the plugin (about a second); set cache-dir"
        ),
    }
    fallback
}

/// `oddity-cache-<owner>` in the system's temporary directory, made private (mode 0700):
/// compiled machine code is loaded from it, so nobody else may write there.
fn private_temp_dir() -> std::io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
        let uid = user_id(&tmp)?;
        let dir = tmp.join(format!("oddity-cache-{uid}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = fs_err::symlink_metadata(&dir)?;
        if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is not a private directory of this user",
                dir.display()
            )));
        }
        Ok(dir)
    }
    #[cfg(not(unix))]
    Ok(tmp.join("oddity-cache"))
}

/// This process's user id: the owner of a file it creates in `dir`.
#[cfg(unix)]
fn user_id(dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join(format!(".oddity-probe-{}", std::process::id()));
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    let uid = file.metadata().map(|m| m.uid());
    drop(file);
    let _ = fs_err::remove_file(&probe);
    uid
}

/// The plugin's configuration text: the profile (a built-in name or a file's tables), with the
/// `[engine]`, `[campaign]`, `[risk]` and `[stakes]` tables of the host configuration laid over
/// the profile file's own (see [`overlay`]).
fn engine_config(
    profile: &str,
    tables: [(&str, Option<toml::Table>); 4],
) -> Result<(String, String), String> {
    let path = PathBuf::from(profile);
    let is_name = !profile.is_empty()
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let (mut doc, origin) = if is_name && !path.is_file() {
        let mut t = toml::Table::new();
        t.insert("profile".into(), toml::Value::String(profile.to_owned()));
        (t, format!("built-in profile {profile}"))
    } else {
        let text = fs_err::read_to_string(&path).map_err(|e| format!("profile: {e}"))?;
        let t = text
            .parse::<toml::Table>()
            .map_err(|e| format!("profile file {}: {e}", path.display()))?;
        (t, format!("profile file {}", path.display()))
    };
    for (name, table) in tables {
        let Some(table) = table else { continue };
        let entry = doc
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(into) = entry else {
            return Err(format!("{origin}: `{name}` must be a table"));
        };
        overlay(into, table);
    }
    let text = toml::to_string(&doc).map_err(|e| format!("{origin}: {e}"))?;
    Ok((text, origin))
}

/// Lays `from` over `into`: a value replaces `into`'s, tables merge key by key and arrays (of
/// stakes rules) are appended to, so the configuration's rules come after a profile file's.
fn overlay(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => overlay(a, b),
            (Some(toml::Value::Array(a)), toml::Value::Array(b)) => a.extend(b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's own files: the messages need no path
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<config::Map<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults() {
        let s = Settings::load_with_env(&ScoreArgs::default(), env(&[])).expect("valid");
        assert_eq!(s.batch_size, DEFAULT_BATCH);
        assert_eq!(s.output_key, "novelty");
        assert!(s.state.is_none());
        assert_eq!(s.engine_config.trim(), "profile = \"cloudtrail\"");
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("oddity.toml");
        std::fs::write(&path, "batch-size = 64\noutput-key = \"n\"\n[state]\nfile = \"s.bin\"\nsave-every = \"5m\"\n[engine]\nhalf-life = \"7d\"\n")
            .expect("write");
        let args = ScoreArgs {
            config: Some(path.clone()),
            ..ScoreArgs::default()
        };
        let s = Settings::load_with_env(
            &args,
            env(&[
                ("ODDITY_BATCH_SIZE", "32"),
                ("ODDITY_ENGINE__MAX_NODES", "5000"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.batch_size, 32, "environment beats the file");
        assert_eq!(s.output_key, "n");
        let state = s.state.expect("state");
        assert_eq!(state.every, Some(Duration::from_secs(300)));
        assert!(
            s.engine_config.contains("half-life = \"7d\"")
                && s.engine_config.contains("max-nodes = 5000"),
            "{}",
            s.engine_config
        );
        let args = ScoreArgs {
            config: Some(path),
            batch_size: Some(16),
            ..ScoreArgs::default()
        };
        let s = Settings::load_with_env(&args, env(&[("ODDITY_BATCH_SIZE", "32")])).expect("valid");
        assert_eq!(s.batch_size, 16, "flags beat the environment");
    }

    #[test]
    fn risk_and_stakes_reach_the_engine_after_a_profile_files_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = dir.path().join("profile.toml");
        std::fs::write(
            &profile,
            "profile = \"cloudtrail\"\n[risk]\nlift = 3.0\n[[stakes.rules]]\nactions = [\"A\"]\ntactic = \"impact\"\ntechnique = \"T1485\"\n",
        )
        .expect("write");
        let path = dir.path().join("oddity.toml");
        std::fs::write(
            &path,
            format!(
                "profile = {:?}\n[risk]\nmedium = 45\n[stakes.tactics]\nimpact = 3.0\n[[stakes.rules]]\nactions = [\"B\"]\ntactic = \"impact\"\ntechnique = \"T1485\"\n",
                profile.display().to_string()
            ),
        )
        .expect("write");
        let args = ScoreArgs {
            config: Some(path),
            ..ScoreArgs::default()
        };
        let s = Settings::load_with_env(&args, env(&[])).expect("valid");
        let doc: toml::Table = s.engine_config.parse().expect("toml");
        assert_eq!(doc["risk"]["lift"].as_float(), Some(3.0), "the file's kept");
        assert_eq!(doc["risk"]["medium"].as_integer(), Some(45));
        assert_eq!(doc["stakes"]["tactics"]["impact"].as_float(), Some(3.0));
        let actions: Vec<&str> = doc["stakes"]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| r["actions"][0].as_str().expect("action"))
            .collect();
        assert_eq!(actions, ["A", "B"], "the configuration's rules come after");
    }

    #[test]
    fn alerts_from_file_env_and_flag() {
        let s = Settings::load_with_env(&ScoreArgs::default(), env(&[])).expect("valid");
        assert!(s.alerts.is_none(), "no alerts unless asked");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("oddity.toml");
        std::fs::write(
            &path,
            "[alerts]\nfile = \"a.jsonl\"\nmin-severity = \"high\"\n",
        )
        .expect("write");
        let args = ScoreArgs {
            config: Some(path.clone()),
            ..ScoreArgs::default()
        };
        let s = Settings::load_with_env(&args, env(&[("ODDITY_ALERTS__CAMPAIGN_MIN_EVENTS", "3")]))
            .expect("valid");
        let a = s.alerts.expect("alerts");
        assert_eq!(a.sinks[0].target, Target::File("a.jsonl".into()));
        assert_eq!(a.min_severity, Severity::High);
        assert_eq!(a.campaign_min_events, 3);
        let args = ScoreArgs {
            config: Some(path),
            alerts: Some("-".into()),
            output: Some("scored.jsonl".into()),
            ..ScoreArgs::default()
        };
        let s = Settings::load_with_env(&args, env(&[])).expect("valid");
        assert_eq!(s.alerts.expect("alerts").sinks[0].target, Target::Stdout);
    }

    #[test]
    fn alert_sinks_are_tables_of_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("oddity.toml");
        std::fs::write(
            &path,
            "[alerts]\nfile = \"a.jsonl\"\n[alerts.queue]\nmax-mb = 8\nwhen-full = \"drop-oldest\"\n[[alerts.sink]]\nkind = \"http\"\nurl = \"http://127.0.0.1:8088/services/collector/event\"\nformat = \"splunk-hec\"\nheaders = { X-Tenant = \"blue\" }\n[[alerts.sink]]\nkind = \"syslog\"\naddress = \"127.0.0.1:6514\"\nformat = \"ocsf\"\n",
        )
        .expect("write");
        let args = ScoreArgs {
            config: Some(path),
            ..ScoreArgs::default()
        };
        let a = Settings::load_with_env(&args, env(&[]))
            .expect("valid")
            .alerts
            .expect("alerts");
        assert_eq!(a.sinks.len(), 3);
        assert_eq!(a.sinks[1].format, crate::formats::Format::SplunkHec);
        let Target::Http(h) = &a.sinks[1].target else {
            panic!("http")
        };
        assert_eq!(h.headers, [("X-Tenant".to_owned(), "blue".to_owned())]);
        assert_eq!(
            a.sinks[2].target,
            Target::Syslog {
                addr: "127.0.0.1:6514".parse().expect("addr"),
                max_message: crate::sinks::DEFAULT_MAX_MESSAGE,
            }
        );
        assert_eq!(a.queue.max_bytes, 8 << 20);
        assert_eq!(a.queue.when_full, crate::delivery::WhenFull::DropOldest);
    }

    #[test]
    fn alert_errors_name_the_key() {
        let bad = |args: ScoreArgs, want: &[&str]| {
            let e = Settings::load_with_env(&args, env(&[]))
                .expect_err("invalid")
                .to_string();
            for w in want {
                assert!(e.contains(w), "{w} in {e}");
            }
        };
        bad(
            ScoreArgs {
                alerts: Some("-".into()),
                ..ScoreArgs::default()
            },
            &["alerts.file", "-o FILE"],
        );
        bad(
            ScoreArgs {
                alerts: Some("same.jsonl".into()),
                output: Some("same.jsonl".into()),
                ..ScoreArgs::default()
            },
            &["alerts.file", "output"],
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        let with = |text: &str| {
            std::fs::write(&path, text).expect("write");
            ScoreArgs {
                config: Some(path.clone()),
                ..ScoreArgs::default()
            }
        };
        bad(
            with("[alerts]\nfile = \"a\"\nmin-severity = \"urgent\"\n"),
            &["alerts.min-severity", "bad.toml"],
        );
        bad(
            with("[alerts]\nfile = \"a\"\ncampaign-threshold = 20\n"),
            &["alerts.campaign-threshold", "min-severity"],
        );
        bad(
            with("[alerts]\nfile = \"a\"\ncampaign-min-events = 0\n"),
            &["alerts.campaign-min-events"],
        );
        bad(
            with("[alerts]\nfile = \"a\"\nthreshold = 0.9\n"),
            &["threshold", "bad.toml"],
        );
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "batch-size = \"many\"\n").expect("write");
        let args = ScoreArgs {
            config: Some(path.clone()),
            ..ScoreArgs::default()
        };
        let e = Settings::load_with_env(&args, env(&[]))
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("batch-size") && e.contains("bad.toml"), "{e}");
        std::fs::write(&path, "batchsize = 3\n").expect("write");
        let e = Settings::load_with_env(&args, env(&[]))
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("batchsize") && e.contains("bad.toml"), "{e}");
        std::fs::write(&path, "[state]\nfile = \"x\"\nsave-every = \"often\"\n").expect("write");
        let e = Settings::load_with_env(&args, env(&[]))
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("state.save-every") && e.contains("often"), "{e}");
    }
}
