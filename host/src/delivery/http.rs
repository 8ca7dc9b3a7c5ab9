//! Alerts POSTed over HTTP(S): as Splunk's HTTP Event Collector, Elasticsearch's and
//! OpenSearch's `_bulk` API or any webhook take them.
//!
//! A batch is the alert lines themselves (newline-delimited JSON; one JSON object when the
//! batch holds one), or with `index` set, a `_bulk` body that creates each alert under its
//! `alertId` (a replay after a crash answers 409 for those already there, which counts as
//! delivered). Bodies are gzipped unless `gzip = false`.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{Delivery, Sender};

/// An `[[alerts.sink]]` of kind `http`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub url: String,
    /// Headers sent with every request (`Authorization` from `token` among them).
    pub headers: Vec<(String, String)>,
    /// With an index: Elasticsearch's `_bulk` body.
    pub index: Option<String>,
    pub gzip: bool,
    pub timeout: Duration,
    /// Alerts per request at most.
    pub batch: usize,
}

/// Sends batches to one URL.
#[derive(Debug)]
pub struct Http {
    settings: HttpSettings,
    client: reqwest::Client,
}

impl Http {
    pub fn new(settings: HttpSettings) -> Result<Http, reqwest::Error> {
        // rustls needs its crypto provider chosen once per process; a second install is a no-op.
        #[expect(
            deprecated,
            reason = "ring builds without cmake; it lacks post-quantum key exchange"
        )]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("oddity/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Http { settings, client })
    }

    /// The request body for `lines`, and its content type.
    fn body(&self, lines: &[u8]) -> (Vec<u8>, &'static str) {
        let Some(index) = &self.settings.index else {
            return (lines.to_vec(), "application/json");
        };
        let mut body = Vec::with_capacity(lines.len() * 2);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let id = crate::formats::alert_id(line);
            let action = format!(
                "{{\"create\":{{\"_index\":{},\"_id\":{}}}}}",
                Value::from(index.as_str()),
                Value::from(id)
            );
            body.extend_from_slice(action.as_bytes());
            body.push(b'\n');
            body.extend_from_slice(line);
            body.push(b'\n');
        }
        (body, "application/x-ndjson")
    }

    async fn post(&self, lines: &[u8]) -> Delivery {
        let (body, content_type) = self.body(lines);
        let mut request = self
            .client
            .post(&self.settings.url)
            .header("Content-Type", content_type);
        for (name, value) in &self.settings.headers {
            request = request.header(name, value);
        }
        let body = if self.settings.gzip {
            request = request.header("Content-Encoding", "gzip");
            gzip(&body)
        } else {
            body
        };
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => return Delivery::Retry(error_chain(&e), None),
        };
        let status = response.status();
        let wait = retry_after(&response);
        let text = response.text().await.unwrap_or_default();
        judge(status.as_u16(), &text, self.settings.index.is_some(), wait)
    }
}

impl Sender for Http {
    fn name(&self) -> String {
        self.settings.url.clone()
    }

    fn batch(&self) -> usize {
        self.settings.batch
    }

    fn send<'a>(&'a mut self, lines: &'a [u8]) -> BoxFuture<'a, Delivery> {
        Box::pin(self.post(lines))
    }
}

/// What an answer means: 2xx delivered (for `_bulk`, unless an item failed), 408, 429 and 5xx
/// worth another try, any other status refused.
fn judge(status: u16, body: &str, bulk: bool, wait: Option<Duration>) -> Delivery {
    let said = || snippet(body);
    match status {
        200..=299 if bulk => bulk_items(body),
        200..=299 => Delivery::Done,
        408 | 429 | 500..=599 => Delivery::Retry(format!("HTTP {status}: {}", said()), wait),
        _ => Delivery::Refused(format!("HTTP {status}: {}", said())),
    }
}

/// A `_bulk` answer: delivered when every item was created or was there already (409).
fn bulk_items(body: &str) -> Delivery {
    let answer: Value = serde_json::from_str(body).unwrap_or_default();
    if answer["errors"] != Value::Bool(true) {
        return Delivery::Done;
    }
    let items = answer["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let failed = items
        .iter()
        .filter_map(|item| item.as_object()?.values().next())
        .filter(|result| !matches!(result["status"].as_u64(), Some(200..=299 | 409)));
    let mut retry = None;
    for result in failed {
        let status = result["status"].as_u64().unwrap_or(0);
        let why = format!(
            "_bulk item {status}: {}",
            snippet(&result["error"].to_string())
        );
        if status == 429 || status >= 500 {
            retry.get_or_insert(why);
        } else {
            return Delivery::Refused(why);
        }
    }
    retry.map_or(Delivery::Done, |why| Delivery::Retry(why, None))
}

/// `Retry-After` in seconds, at most five minutes.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(300)))
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into memory cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// The first 200 characters of an answer, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.chars().take(200).collect();
    one_line.replace(['\n', '\r'], " ")
}

/// An error with its causes (reqwest's own message hides whether it was a timeout, a refused
/// connection or TLS).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_as_documented() {
        assert!(matches!(judge(200, "", false, None), Delivery::Done));
        assert!(matches!(
            judge(503, "busy", false, None),
            Delivery::Retry(..)
        ));
        assert!(matches!(judge(429, "", false, None), Delivery::Retry(..)));
        assert!(matches!(judge(408, "", false, None), Delivery::Retry(..)));
        assert!(matches!(
            judge(400, "{\"text\":\"Invalid data format\"}", false, None),
            Delivery::Refused(why) if why.contains("Invalid data format")
        ));
        assert!(matches!(judge(403, "", false, None), Delivery::Refused(_)));
    }

    #[test]
    fn bulk_items_conflicts_are_delivered_and_rejections_refused() {
        let ok = r#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]}"#;
        assert!(matches!(judge(200, ok, true, None), Delivery::Done));
        let busy = r#"{"errors":true,"items":[{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#;
        assert!(matches!(judge(200, busy, true, None), Delivery::Retry(..)));
        let bad = r#"{"errors":true,"items":[{"create":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#;
        assert!(
            matches!(judge(200, bad, true, None), Delivery::Refused(why) if why.contains("mapper_parsing"))
        );
    }

    #[test]
    fn a_bulk_body_creates_each_alert_under_its_id() {
        let http = Http::new(HttpSettings {
            url: "http://127.0.0.1:9/_bulk".into(),
            headers: vec![],
            index: Some("oddity-alerts".into()),
            gzip: false,
            timeout: Duration::from_secs(1),
            batch: 10,
        })
        .expect("client");
        let (body, kind) = http.body(b"{\"alertId\":\"a1\"}\n{\"event\":{\"id\":\"a2\"}}\n");
        assert_eq!(kind, "application/x-ndjson");
        let text = String::from_utf8(body).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"create":{"_index":"oddity-alerts","_id":"a1"}}"#,
                r#"{"alertId":"a1"}"#,
                r#"{"create":{"_index":"oddity-alerts","_id":"a2"}}"#,
                r#"{"event":{"id":"a2"}}"#,
            ]
        );
    }
}
