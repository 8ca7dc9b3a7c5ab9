//! `oddity ack`: an analyst's verdict on an alert, recorded (who, when, why) in a verdicts file;
//! a `benign` verdict also writes a suppression rule for the alert's principal and action
//! ([`crate::suppress`]), with an expiry, so the behaviour stops alerting.

use std::fmt;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::cli::AckArgs;

/// Why a verdict could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no alert {id} in {file}")]
    NotFound { id: String, file: String },
    #[error("--for {0}: not a duration such as 30d or 12h")]
    Duration(String),
    #[error("the verdict is {0}: use benign or malicious")]
    Verdict(String),
}

/// One recorded verdict (a line of the verdicts file).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Verdict<'a> {
    alert_id: &'a str,
    verdict: &'a str,
    by: &'a str,
    at: String,
    reason: &'a str,
    principal: &'a str,
    action: &'a str,
    network: &'a str,
    campaign_id: Option<&'a str>,
    /// The suppression rule written, for a benign verdict: until when.
    suppressed_until: Option<String>,
}

/// What `ack` did.
#[derive(Debug)]
pub struct Acked {
    pub verdicts: PathBuf,
    pub rule: Option<(PathBuf, String)>,
}

impl fmt::Display for Acked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oddity: verdict recorded in {}", self.verdicts.display())?;
        if let Some((file, until)) = &self.rule {
            write!(
                f,
                "; a suppression rule until {until} added to {}",
                file.display()
            )?;
        }
        Ok(())
    }
}

/// The alert `id` of a native alerts file.
fn find(file: &Path, id: &str) -> Result<Value, AckError> {
    let reader = std::io::BufReader::new(fs_err::File::open(file)?);
    for line in reader.lines() {
        let line = line?;
        if !line.contains(id) {
            continue;
        }
        if let Ok(alert) = serde_json::from_str::<Value>(&line)
            && alert["alertId"] == id
        {
            return Ok(alert);
        }
    }
    Err(AckError::NotFound {
        id: id.to_owned(),
        file: file.display().to_string(),
    })
}

/// Records the verdict of `args`.
pub fn run(args: &AckArgs) -> Result<Acked, AckError> {
    if !matches!(args.verdict.as_str(), "benign" | "malicious") {
        return Err(AckError::Verdict(args.verdict.clone()));
    }
    let alert = find(&args.alerts, &args.alert_id)?;
    let observation = |name: &str| alert["observation"][name].as_str().unwrap_or("");
    let now = jiff::Timestamp::now();
    let until = match (&args.suppress, args.verdict.as_str()) {
        (Some(_), "benign") => {
            let span = humantime::parse_duration(&args.r#for)
                .map_err(|_| AckError::Duration(args.r#for.clone()))?;
            let secs = i64::try_from(span.as_secs()).unwrap_or(i64::MAX);
            Some(
                now.checked_add(jiff::SignedDuration::from_secs(secs))
                    .unwrap_or(now)
                    .to_string(),
            )
        }
        _ => None,
    };
    let verdict = Verdict {
        alert_id: &args.alert_id,
        verdict: &args.verdict,
        by: &args.by,
        at: now.to_string(),
        reason: &args.reason,
        principal: alert["principal"].as_str().unwrap_or(""),
        action: observation("action"),
        network: observation("network"),
        campaign_id: alert["campaign"]["id"].as_str(),
        suppressed_until: until.clone(),
    };
    let mut line = serde_json::to_vec(&verdict).unwrap_or_default();
    line.push(b'\n');
    append(&args.verdicts, &line)?;
    let rule = match (until, &args.suppress) {
        (Some(until), Some(file)) => {
            let text = rule_text(&verdict, &until);
            append(file, text.as_bytes())?;
            Some((file.clone(), until))
        }
        _ => None,
    };
    Ok(Acked {
        verdicts: args.verdicts.clone(),
        rule,
    })
}

/// A suppression rule for the principal and action of a benign verdict, as TOML.
fn rule_text(v: &Verdict<'_>, until: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let reason = format!("ack {} by {}: {}", v.alert_id, v.by, v.reason);
    format!(
        "\n[[rule]]\nprincipal = {}\naction = {}\nreason = {}\nexpires = {}\nby = {}\n",
        quote(v.principal),
        quote(v.action),
        quote(&reason),
        quote(until),
        quote(v.by)
    )
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}
