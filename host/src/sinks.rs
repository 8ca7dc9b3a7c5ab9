//! Where alerts go: the `[[alerts.sink]]` tables (and `alerts.file`, one sink), validated, and
//! opened as [`Sink`]s.
//!
//! - `kind = "file"`, `path`: appended to (standard output for `-`), reopened on SIGHUP.
//! - `kind = "http"`, `url`: POSTed in batches ([`crate::delivery::http`]), with `token`
//!   (or `token-env`, the variable holding it), `headers`, `index` (Elasticsearch `_bulk`),
//!   `gzip`, `timeout` and `batch`.
//! - `kind = "syslog"`, `address`: RFC 5424 over TCP, each alert shortened to
//!   `max-message-bytes` (default rsyslog's limit, 8,096 bytes) so that it arrives whole.
//!
//! Each has a `format` (default `native`). Network sinks deliver through a queue on disk beside
//! the state (`STATE.alerts/`), at least once across crashes and restarts
//! ([`crate::delivery`]); without a state an HTTP sink is refused (a queue needs a home), and a
//! syslog sink sends at once, retrying in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::delivery::http::{Http, HttpSettings};
use crate::delivery::{Formatted, QueueSettings, Queued, SyslogSender, WhenFull};
use crate::formats::Format;
use crate::metrics::Metrics;
use crate::output::{self, Sink};

/// Where one sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    /// Appended to: an alert file is a log that a SIEM follows, across runs.
    File(PathBuf),
    /// Syslog over TCP (RFC 5424, octet-counted), and the longest message its receiver takes.
    Syslog {
        addr: std::net::SocketAddr,
        max_message: usize,
    },
    Http(HttpSettings),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Stdout => "standard output".to_owned(),
            Target::File(p) => p.display().to_string(),
            Target::Syslog { addr, .. } => format!("syslog+tcp://{addr}"),
            Target::Http(h) => h.url.clone(),
        }
    }

    /// The queue's directory name: the kind and a hash of the destination, so that a sink
    /// keeps its queue across runs and two sinks never share one.
    fn queue_name(&self) -> String {
        let (kind, at) = match self {
            Target::Http(h) => ("http", h.url.clone()),
            other => ("syslog", other.name()),
        };
        format!("{kind}-{:016x}", xxhash_rust::xxh3::xxh3_64(at.as_bytes()))
    }
}

/// rsyslog's default `maxMessageSize`: the message, header included.
pub const DEFAULT_MAX_MESSAGE: usize = 8096;
/// RFC 5424: every receiver should take messages of 2,048 bytes.
const LEAST_MAX_MESSAGE: usize = 2048;

/// One alert sink, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSettings {
    pub target: Target,
    pub format: Format,
}

/// An `[[alerts.sink]]` table as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSink {
    kind: Option<String>,
    format: Option<String>,
    path: Option<PathBuf>,
    url: Option<String>,
    address: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    index: Option<String>,
    gzip: Option<bool>,
    timeout: Option<String>,
    batch: Option<usize>,
    max_message_bytes: Option<usize>,
}

/// `[alerts.queue]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawQueue {
    max_mb: Option<u64>,
    when_full: Option<String>,
    drain: Option<String>,
}

/// `alerts.format`, or another sink's `format`.
pub fn format(key: &str, name: Option<&str>) -> Result<Format, String> {
    match name {
        None => Ok(Format::Native),
        Some(name) => Format::from_name(name).ok_or_else(|| {
            format!("{key} \"{name}\" is not a format (native, ecs, ocsf, splunk-hec)")
        }),
    }
}

/// `alerts.file`: a file, `-` or `syslog+tcp://HOST:PORT`.
pub fn file_target(file: &str) -> Result<Target, String> {
    match file {
        "" => Err("alerts.file must not be empty (a file, or - for standard output)".to_owned()),
        "-" => Ok(Target::Stdout),
        url if url.starts_with("syslog+tcp://") => Ok(Target::Syslog {
            addr: address("alerts.file", &url["syslog+tcp://".len()..])?,
            max_message: DEFAULT_MAX_MESSAGE,
        }),
        path => Ok(Target::File(PathBuf::from(path))),
    }
}

fn address(key: &str, text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{key} {text}: wants an address such as 127.0.0.1:6514"))
}

/// The `n`th `[[alerts.sink]]`, validated.
pub fn sink(n: usize, raw: RawSink) -> Result<SinkSettings, String> {
    let key = |field: &str| format!("alerts.sink[{n}].{field}");
    let format = format(&key("format"), raw.format.as_deref())?;
    let target = match raw.kind.as_deref() {
        Some("file") => {
            let path = raw
                .path
                .clone()
                .ok_or_else(|| format!("{} is missing", key("path")))?;
            if path.as_os_str() == "-" {
                Target::Stdout
            } else {
                Target::File(path)
            }
        }
        Some("syslog") => {
            let at = raw
                .address
                .as_deref()
                .ok_or_else(|| format!("{} is missing", key("address")))?;
            Target::Syslog {
                addr: address(&key("address"), at)?,
                max_message: max_message(&key("max-message-bytes"), raw.max_message_bytes)?,
            }
        }
        Some("http") => Target::Http(http(&key, &raw, format)?),
        Some(other) => {
            return Err(format!(
                "{} \"{other}\" is not a kind (file, http, syslog)",
                key("kind")
            ));
        }
        None => return Err(format!("{} is missing (file, http or syslog)", key("kind"))),
    };
    let mut unused = match &target {
        Target::Http(_) => vec![
            ("path", raw.path.is_some()),
            ("address", raw.address.is_some()),
        ],
        _ => vec![
            ("url", raw.url.is_some()),
            ("token", raw.token.is_some() || raw.token_env.is_some()),
            ("headers", raw.headers.is_some()),
            ("index", raw.index.is_some()),
        ],
    };
    let syslog = matches!(target, Target::Syslog { .. });
    unused.push((
        "max-message-bytes",
        raw.max_message_bytes.is_some() && !syslog,
    ));
    if let Some((field, _)) = unused.into_iter().find(|(_, set)| *set) {
        return Err(format!(
            "{} does not apply to this kind of sink",
            key(field)
        ));
    }
    Ok(SinkSettings { target, format })
}

/// A syslog sink's `max-message-bytes`: at least what RFC 5424 asks every receiver to take.
fn max_message(key: &str, bytes: Option<usize>) -> Result<usize, String> {
    match bytes {
        None => Ok(DEFAULT_MAX_MESSAGE),
        Some(b) if (LEAST_MAX_MESSAGE..=16 << 20).contains(&b) => Ok(b),
        Some(b) => Err(format!(
            "{key} {b} is outside {LEAST_MAX_MESSAGE}..={} (rsyslog's default is {DEFAULT_MAX_MESSAGE})",
            16 << 20
        )),
    }
}

/// An HTTP sink's settings; the token becomes an `Authorization` header (`Splunk TOKEN` for
/// the `splunk-hec` format, `Bearer TOKEN` otherwise).
fn http(
    key: &dyn Fn(&str) -> String,
    raw: &RawSink,
    format: Format,
) -> Result<HttpSettings, String> {
    let url = raw
        .url
        .clone()
        .ok_or_else(|| format!("{} is missing", key("url")))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "{} {url}: wants an http:// or https:// URL",
            key("url")
        ));
    }
    let token = match (&raw.token, &raw.token_env) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{} and {}: set one",
                key("token"),
                key("token-env")
            ));
        }
        (Some(t), None) => Some(t.clone()),
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
            format!(
                "{} names {var}, which is not set in the environment",
                key("token-env")
            )
        })?),
        (None, None) => None,
    };
    let mut headers: Vec<(String, String)> = raw
        .headers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(token) = token {
        let scheme = if format == Format::SplunkHec {
            "Splunk"
        } else {
            "Bearer"
        };
        headers.push(("Authorization".to_owned(), format!("{scheme} {token}")));
    }
    let timeout = match &raw.timeout {
        None => Duration::from_secs(10),
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| format!("{} \"{t}\" is not a duration ({e})", key("timeout")))?,
    };
    let batch = match raw.batch {
        None => 100,
        Some(0) => return Err(format!("{} must be at least 1", key("batch"))),
        Some(n) => n,
    };
    Ok(HttpSettings {
        url,
        headers,
        index: raw.index.clone(),
        gzip: raw.gzip.unwrap_or(true),
        timeout,
        batch,
    })
}

/// `[alerts.queue]`, validated.
pub fn queue(raw: Option<RawQueue>) -> Result<QueueSettings, String> {
    let raw = raw.unwrap_or_default();
    let mut q = QueueSettings::default();
    match raw.max_mb {
        Some(0) => return Err("alerts.queue.max-mb must be at least 1".to_owned()),
        Some(mb) => q.max_bytes = mb << 20,
        None => {}
    }
    q.when_full = match raw.when_full.as_deref() {
        None | Some("block") => WhenFull::Block,
        Some("drop-oldest") => WhenFull::DropOldest,
        Some(other) => {
            return Err(format!(
                "alerts.queue.when-full \"{other}\" is not a policy (block, drop-oldest)"
            ));
        }
    };
    if let Some(d) = raw.drain {
        q.drain = humantime::parse_duration(&d)
            .map_err(|e| format!("alerts.queue.drain \"{d}\" is not a duration ({e})"))?;
    }
    Ok(q)
}

/// Opens every sink; network sinks get their queue in `STATE.alerts/` (a state is needed for
/// HTTP), or send at once without a state (syslog).
pub fn open(
    sinks: &[SinkSettings],
    queue: QueueSettings,
    state: Option<&Path>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let mut opened = Vec::new();
    for s in sinks {
        let inner: Box<dyn Sink> = match (&s.target, state) {
            (Target::Stdout, _) => {
                Box::new(output::Lines::stdout().context("starting the alerts thread")?)
            }
            (Target::File(p), _) => Box::new(
                output::Lines::append(p).with_context(|| format!("alerts file {}", p.display()))?,
            ),
            (Target::Syslog { addr, max_message }, None) => {
                Box::new(output::Syslog::new(*addr, Some(*max_message)))
            }
            (Target::Http(h), None) => anyhow::bail!(
                "the alert sink {} needs --state: its delivery queue lives beside the state file",
                h.url
            ),
            (target, Some(state)) => {
                let dir = queue_dir(state).join(target.queue_name());
                let sender: Box<dyn crate::delivery::Sender> = match target {
                    Target::Http(h) => Box::new(Http::new(h.clone()).context("the HTTP client")?),
                    Target::Syslog { addr, max_message } => {
                        Box::new(SyslogSender::new(*addr, Some(*max_message)))
                    }
                    Target::Stdout | Target::File(_) => unreachable!("matched above"),
                };
                Box::new(
                    Queued::start(sender, &dir, queue, metrics.clone())
                        .with_context(|| format!("the alert queue {}", dir.display()))?,
                )
            }
        };
        opened.push(Box::new(Formatted {
            format: s.format,
            inner,
        }) as Box<dyn Sink>);
    }
    Ok(opened)
}

/// The directory of the alert queues beside the state file `state`.
pub fn queue_dir(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".alerts");
    state.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawSink {
        toml::from_str(toml_text).expect("toml")
    }

    #[test]
    fn an_http_sink_takes_its_token_as_the_format_wants() {
        let s = sink(0, raw("kind = \"http\"\nurl = \"https://splunk:8088/services/collector/event\"\nformat = \"splunk-hec\"\ntoken = \"abc\"")).expect("valid");
        let Target::Http(h) = s.target else {
            panic!("http")
        };
        assert_eq!(
            h.headers,
            [("Authorization".to_owned(), "Splunk abc".to_owned())]
        );
        assert!(h.gzip);
        assert_eq!(h.batch, 100);
        let s = sink(
            0,
            raw("kind = \"http\"\nurl = \"http://hook\"\ntoken = \"t\"\ngzip = false\nbatch = 1"),
        )
        .expect("valid");
        let Target::Http(h) = s.target else {
            panic!("http")
        };
        assert_eq!(
            h.headers,
            [("Authorization".to_owned(), "Bearer t".to_owned())]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| sink(2, raw(t)).expect_err("refused");
        assert!(err("kind = \"kafka\"").contains("alerts.sink[2].kind \"kafka\" is not a kind"));
        assert!(err("kind = \"http\"").contains("alerts.sink[2].url is missing"));
        assert!(err("kind = \"http\"\nurl = \"ftp://x\"").contains("http:// or https://"));
        assert!(
            err("kind = \"file\"\npath = \"a\"\nurl = \"http://x\"").contains("url does not apply")
        );
        assert!(err("kind = \"syslog\"\naddress = \"nowhere\"").contains("127.0.0.1:6514"));
        assert!(
            err("kind = \"syslog\"\naddress = \"127.0.0.1:1\"\nmax-message-bytes = 480")
                .contains("alerts.sink[2].max-message-bytes 480 is outside 2048..=")
        );
        assert!(
            err("kind = \"file\"\npath = \"a\"\nmax-message-bytes = 9000")
                .contains("max-message-bytes does not apply")
        );
        assert!(
            err("kind = \"http\"\nurl = \"http://x\"\ntoken-env = \"ODDITY_NO_SUCH_VARIABLE\"")
                .contains("not set")
        );
    }

    #[test]
    fn queues_live_beside_the_state_one_per_destination() {
        assert_eq!(
            queue_dir(Path::new("/var/lib/oddity/m.snap")),
            Path::new("/var/lib/oddity/m.snap.alerts")
        );
        let syslog = |addr: &str| Target::Syslog {
            addr: addr.parse().expect("addr"),
            max_message: DEFAULT_MAX_MESSAGE,
        };
        let (a, b) = (
            syslog("127.0.0.1:1").queue_name(),
            syslog("127.0.0.1:2").queue_name(),
        );
        assert_ne!(a, b);
        assert!(a.starts_with("syslog-"));
    }
}
