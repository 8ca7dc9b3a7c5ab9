//! `--metrics ADDR`: the run's counters in the Prometheus text format at `/metrics`, and
//! `/healthz`, served over HTTP/1 on a local address while the run lasts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A label: the kind of an unscored line, or of an alert.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: String,
}

/// A label: an alert sink, by name (its URL or address).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub sink: String,
}

/// The run's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub events_in: Counter,
    pub events_out: Counter,
    pub scored: Counter,
    pub unscored: Family<Kind, Counter>,
    pub alerts: Family<Kind, Counter>,
    pub state_saves: Counter,
    pub state_save_failures: Counter,
    pub state_save_seconds: Histogram,
    pub plugin_restarts: Counter,
    pub batch_seconds: Histogram,
    pub alerts_delivered: Family<SinkLabel, Counter>,
    pub alerts_refused: Family<SinkLabel, Counter>,
    pub alerts_dropped: Family<SinkLabel, Counter>,
    pub delivery_retries: Family<SinkLabel, Counter>,
    pub alerts_queued_bytes: Family<SinkLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("oddity"),
            events_in: Counter::default(),
            events_out: Counter::default(),
            scored: Counter::default(),
            unscored: Family::default(),
            alerts: Family::default(),
            state_saves: Counter::default(),
            state_save_failures: Counter::default(),
            state_save_seconds: Histogram::new(exponential_buckets(0.001, 4.0, 8)),
            plugin_restarts: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
            alerts_delivered: Family::default(),
            alerts_refused: Family::default(),
            alerts_dropped: Family::default(),
            delivery_retries: Family::default(),
            alerts_queued_bytes: Family::default(),
        };
        let r = &mut m.registry;
        r.register("events_in", "Events read", m.events_in.clone());
        r.register(
            "events_out",
            "Output lines written, one per event",
            m.events_out.clone(),
        );
        r.register("events_scored", "Events scored", m.scored.clone());
        r.register(
            "events_unscored",
            "Lines not scored, by kind",
            m.unscored.clone(),
        );
        r.register(
            "alerts",
            "Alert lines written, by kind (event, campaign)",
            m.alerts.clone(),
        );
        r.register("state_saves", "State files saved", m.state_saves.clone());
        r.register(
            "state_save_failures",
            "State saves that failed (the previous file is intact)",
            m.state_save_failures.clone(),
        );
        r.register(
            "state_save_seconds",
            "Time to snapshot and save the state",
            m.state_save_seconds.clone(),
        );
        r.register(
            "plugin_restarts",
            "Plugin failures recovered from with a fresh instance",
            m.plugin_restarts.clone(),
        );
        r.register(
            "batch_seconds",
            "Time from a batch's reading to its lines' writing",
            m.batch_seconds.clone(),
        );
        r.register(
            "alerts_delivered",
            "Alerts a receiver took, by sink",
            m.alerts_delivered.clone(),
        );
        r.register(
            "alerts_refused",
            "Alerts a receiver refused (set aside in refused.jsonl), by sink",
            m.alerts_refused.clone(),
        );
        r.register(
            "alerts_dropped",
            "Alerts dropped from a full queue (when-full = drop-oldest), by sink",
            m.alerts_dropped.clone(),
        );
        r.register(
            "delivery_retries",
            "Deliveries tried again after a failure, by sink",
            m.delivery_retries.clone(),
        );
        r.register(
            "alerts_queued_bytes",
            "Bytes of alerts queued on disk, not yet delivered, by sink",
            m.alerts_queued_bytes.clone(),
        );
        m
    }
}

impl Metrics {
    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Binds `addr` (so that a taken address fails the start, by name).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics` and `/healthz` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics: accepting a connection: {e}");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, metrics.clone()));
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("metrics: a connection ended: {e}");
            }
        });
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, kind, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(response)
}
