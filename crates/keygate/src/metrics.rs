//! Prometheus metrics: the recorder behind the `metrics` facade the libraries record
//! through, `/metrics` in Prometheus's text format, process metrics, and the REST
//! listener's per-route series. The names are keygate-metrics' catalogue.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::{Duration, Instant};

/// The installed recorder: renders `/metrics`.
#[derive(Clone)]
pub(crate) struct Exporter {
    handle: PrometheusHandle,
    process: std::sync::Arc<metrics_process::Collector>,
}

/// Install the process-wide recorder (once, before anything records).
pub(crate) fn install() -> anyhow::Result<Exporter> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            keygate_metrics::SECONDS_BUCKETS,
        )?
        .install_recorder()?;
    keygate_metrics::describe();
    let process = metrics_process::Collector::default();
    process.describe();
    // Histograms are drained into their buckets by the upkeep, not on the hot path.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(Exporter {
        handle,
        process: std::sync::Arc::new(process),
    })
}

impl Exporter {
    /// The current values, in Prometheus's text exposition format.
    pub(crate) fn render(&self) -> String {
        self.process.collect();
        self.handle.render()
    }

    /// A router serving `GET /metrics`.
    pub(crate) fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/metrics", axum::routing::get(serve))
            .with_state(self)
    }
}

async fn serve(State(e): State<Exporter>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.render(),
    )
        .into_response()
}

/// REST and console requests by route template (never the raw path: ids would make
/// one series per object), method and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_str().to_owned();
    metrics::histogram!(keygate_metrics::REST_DURATION, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(keygate_metrics::REST_REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    resp
}

/// The method's label: the standard ones by name, anything else `other` (a peer must
/// not be able to mint series).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
