//! Prometheus metrics: an exporter on a port of its own (`DIALIN_METRICS_LISTEN`),
//! RPC counts and latencies by method and status code (a tower layer), and a
//! sampler for the gauges each service computes from its database.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::codegen::http;
use tower::{Layer, Service};

/// Latency buckets, in seconds: from a cached read to a slow SMTP exchange.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Serves `/metrics` on `listen`. Call once per process.
pub fn install(listen: SocketAddr) -> Result<(), BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .install()?;
    tracing::info!(%listen, "metrics at /metrics");
    Ok(())
}

/// Every `period`, runs `sample` (which sets gauges from the database).
pub fn sample_every<F, Fut>(period: Duration, mut sample: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            sample().await;
            tokio::time::sleep(period).await;
        }
    });
}

/// Sets two gauges from `query`, which must return a count and the oldest
/// `created_at` (Unix ms, or NULL): `count_gauge` and `age_gauge` (seconds).
pub async fn sample_backlog(
    db: &DatabaseConnection,
    query: &'static str,
    count_gauge: &'static str,
    age_gauge: &'static str,
) {
    let statement = Statement::from_string(db.get_database_backend(), query);
    let Ok(Some(row)) = db.query_one_raw(statement).await else {
        return;
    };
    let count: i64 = row.try_get_by_index(0).unwrap_or(0);
    let oldest: Option<i64> = row.try_get_by_index(1).ok().flatten();
    metrics::gauge!(count_gauge).set(count as f64);
    let age = oldest.map_or(0.0, |oldest| {
        (dialin_domain::time::now_millis() - oldest) as f64 / 1000.0
    });
    metrics::gauge!(age_gauge).set(age);
}

/// Counts every call by method and gRPC status code, and times it.
#[derive(Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // A unary error is a trailers-only response: its status is in the
            // headers. Without one there, the call succeeded.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from),
                Err(_) => tonic::Code::Unavailable,
            };
            let code = format!("{code:?}");
            metrics::counter!("dialin_rpc_requests_total", "method" => method.clone(), "code" => code.clone())
                .increment(1);
            metrics::histogram!("dialin_rpc_duration_seconds", "method" => method, "code" => code)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
