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

/// Publishes this process's CPU time and resident memory (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, the names Prometheus' own clients use), read from
/// `/proc/self/stat` at scrape time. The load generator grades CPU usage from them. On systems
/// without `/proc` nothing is published.
pub fn record_process_metrics() {
    let Some((cpu_seconds, rss_bytes)) = read_proc_self_stat() else {
        return;
    };
    metrics::gauge!("process_cpu_seconds_total").set(cpu_seconds);
    metrics::gauge!("process_resident_memory_bytes").set(rss_bytes);
}

fn read_proc_self_stat() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) is index 11, stime (15) 12, rss (24) 21.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // USER_HZ is 100 on every Linux architecture Rust targets in practice.
    const USER_HZ: f64 = 100.0;
    const PAGE_SIZE: f64 = 4096.0;
    Some(((ticks(11)? + ticks(12)?) / USER_HZ, ticks(21)? * PAGE_SIZE))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu_and_memory() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        // Burn a little CPU so the counter is above zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let (cpu, rss) = super::read_proc_self_stat().expect("parsable /proc/self/stat");
        assert!(cpu > 0.0, "cpu {cpu}");
        assert!(rss > 1_000_000.0, "rss {rss}");
    }
}
