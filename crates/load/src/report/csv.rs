//! Locust-compatible CSV files: stats.csv, stats_history.csv, failures.csv (same headers as
//! Locust 2.x `--csv`, so existing spreadsheets and scripts keep working).

use std::path::Path;

use super::Summary;
use crate::error::LoadError;
use crate::stats::RequestStats;

/// Locust's stats.csv header, exactly.
pub const STATS_HEADER: [&str; 22] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
];

/// Locust's stats_history.csv header, exactly.
pub const HISTORY_HEADER: [&str; 24] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

/// Formats a number the way the CSVs want: integers bare, others with up to 3 decimals.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "N/A".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn writer(path: &Path) -> Result<csv::Writer<std::fs::File>, LoadError> {
    let file = std::fs::File::create(path)
        .map_err(|e| LoadError::io(format!("create {}", path.display()), e))?;
    Ok(csv::Writer::from_writer(file))
}

fn stats_row(r: &RequestStats) -> Vec<String> {
    let mut row = vec![
        r.method.clone(),
        r.name.clone(),
        r.count.to_string(),
        r.failures.to_string(),
        num(r.pct(0.5)),
        num(r.avg_ms),
        num(r.min_ms),
        num(r.max_ms),
        num(r.avg_content_size),
        num(r.rps),
        num(r.failures_per_s),
    ];
    row.extend(r.percentiles_ms.iter().map(|p| num(*p)));
    row
}

/// stats.csv: one row per request name, then `Aggregated`.
pub fn write_stats(path: &Path, s: &Summary) -> Result<(), LoadError> {
    let mut w = writer(path)?;
    w.write_record(STATS_HEADER)?;
    // Names that never sent a request (only skipped) have no Locust row; the HTML shows them.
    for r in s.requests.iter().filter(|r| r.count > 0) {
        w.write_record(stats_row(r))?;
    }
    w.write_record(stats_row(&s.aggregated))?;
    w.flush()
        .map_err(|e| LoadError::io(format!("write {}", path.display()), e))
}

/// stats_history.csv: one `Aggregated` row per second.
pub fn write_history(path: &Path, s: &Summary) -> Result<(), LoadError> {
    let mut w = writer(path)?;
    w.write_record(HISTORY_HEADER)?;
    for p in &s.timeseries {
        let ts = s.settings.started_at_unix + p.t.round() as i64;
        let mut row = vec![
            ts.to_string(),
            p.users.to_string(),
            String::new(),
            "Aggregated".into(),
            num(p.rps),
            num(p.errors_per_s),
        ];
        if p.rps > 0.0 {
            row.extend(p.percentiles_ms.iter().map(|v| num(*v)));
        } else {
            row.extend(std::iter::repeat_n(
                "N/A".to_string(),
                p.percentiles_ms.len(),
            ));
        }
        row.extend([
            p.total_requests.to_string(),
            p.total_failures.to_string(),
            num(p.total_median_ms),
            num(p.total_avg_ms),
            num(p.total_min_ms),
            num(p.total_max_ms),
            num(p.total_avg_content_size),
        ]);
        w.write_record(row)?;
    }
    w.flush()
        .map_err(|e| LoadError::io(format!("write {}", path.display()), e))
}

/// failures.csv: Locust's `Method,Name,Error,Occurrences`.
pub fn write_failures(path: &Path, s: &Summary) -> Result<(), LoadError> {
    let mut w = writer(path)?;
    w.write_record(["Method", "Name", "Error", "Occurrences"])?;
    for f in &s.failures {
        w.write_record([
            f.method.as_str(),
            f.name.as_str(),
            f.error.as_str(),
            &f.occurrences.to_string(),
        ])?;
    }
    w.flush()
        .map_err(|e| LoadError::io(format!("write {}", path.display()), e))
}

/// workers.csv (distributed runs): one row per worker.
pub fn write_workers(
    path: &Path,
    d: &crate::distributed::DistributedReport,
) -> Result<(), LoadError> {
    let mut w = writer(path)?;
    w.write_record([
        "Worker",
        "Name",
        "Host",
        "Weight",
        "Users",
        "Peak Users",
        "Request Count",
        "Failure Count",
        "Reported Request Count",
        "Reported Failure Count",
        "CPU Average (cores)",
        "CPU Max (cores)",
        "State",
        "Lost At (s)",
        "Stop Reason",
    ])?;
    let opt = |v: Option<u64>| v.map_or_else(String::new, |n| n.to_string());
    for r in &d.workers {
        w.write_record([
            r.id.clone(),
            r.name.clone(),
            r.host.clone(),
            num(r.weight),
            r.users.to_string(),
            r.peak_users.to_string(),
            r.requests.to_string(),
            r.failures.to_string(),
            opt(r.reported_requests),
            opt(r.reported_failures),
            num(r.cpu_avg),
            num(r.cpu_max),
            r.state.clone(),
            r.lost_at_s.map_or_else(String::new, num),
            r.stop_reason.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()
        .map_err(|e| LoadError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(num(5.0), "5");
        assert_eq!(num(5.25), "5.25");
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(f64::NAN), "N/A");
    }
}
