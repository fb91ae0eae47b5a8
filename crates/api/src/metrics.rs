//! The Prometheus recorder behind `/metrics`.
//!
//! One global recorder per process (the `metrics` facade allows only one), installed on first
//! use, so several apps in one test process share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds, fine enough near the seed's 200 ms / 500 ms / 1 s targets.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0,
];

/// Installs the recorder if none is installed yet and returns its handle.
///
/// If another recorder was installed first (e.g. by an embedding program), metrics still work
/// through that one and this handle renders an empty page.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "a metrics recorder was already installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}
