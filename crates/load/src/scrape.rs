//! Server-side metrics during a run, each source optional: the target's Prometheus `/metrics`,
//! PostgreSQL `pg_stat_activity`, and Redis `INFO`. A missing source is noted, never invented.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// Metric name (with `_bucket`/`_sum`/`_count` suffixes as exposed).
    pub name: String,
    /// Label pairs in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl PromSample {
    /// The value of label `k`, if present.
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text exposition format (counters, gauges, histograms, summaries;
/// `# HELP`/`# TYPE` lines and timestamps are skipped). Malformed lines are ignored.
pub fn parse_prometheus(text: &str) -> Vec<PromSample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<PromSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut key = String::new();
        let close;
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    close = i;
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // Quoted value with \" \\ \n escapes.
                    let (_, q) = chars.next()?;
                    if q != '"' {
                        return None;
                    }
                    let mut val = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '\\' => match chars.next()?.1 {
                                'n' => val.push('\n'),
                                other => val.push(other),
                            },
                            '"' => break,
                            other => val.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), val));
                }
                other => key.push(other),
            }
        }
        rest = &after[close + 1..];
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(PromSample {
        name,
        labels,
        value,
    })
}

/// Sum of all samples named `name` whose labels include every pair of `filter`.
pub fn sum(samples: &[PromSample], name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let total = samples
        .iter()
        .filter(|s| s.name == name && filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .inspect(|_| found = true)
        .map(|s| s.value)
        .sum();
    found.then_some(total)
}

/// Quantile `q` of the histogram `name` over the increase between two scrapes, interpolated
/// within buckets like PromQL's `histogram_quantile`. `None` without observations.
pub fn histogram_quantile(
    before: &[PromSample],
    after: &[PromSample],
    name: &str,
    q: f64,
) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let collect = |samples: &[PromSample]| {
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == bucket) {
            let le: f64 = match s.label("le")? {
                "+Inf" => f64::INFINITY,
                v => v.parse().ok()?,
            };
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
        }
        let mut v: Vec<(f64, f64)> = by_le.into_values().collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(v)
    };
    let after_b = collect(after)?;
    let before_b = collect(before).unwrap_or_default();
    let delta: Vec<(f64, f64)> = after_b
        .iter()
        .map(|(le, n)| {
            let prev = before_b
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, p)| *p);
            (*le, (n - prev).max(0.0))
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, cum) in &delta {
        if cum >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let in_bucket = cum - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, cum);
    }
    None
}

/// Where to scrape.
#[derive(Debug, Clone, Default)]
pub struct ScrapeConfig {
    /// Prometheus endpoint (e.g. `http://127.0.0.1:8080/metrics`).
    pub metrics_url: Option<String>,
    /// PostgreSQL URL for `pg_stat_activity`.
    pub database_url: Option<String>,
    /// Redis URL for `INFO`.
    pub redis_url: Option<String>,
    /// Time between scrapes.
    pub interval: Duration,
}

/// One scrape: seconds since start and named values (see [`ServerSummary::series`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerSample {
    /// Seconds since the run started.
    pub t: f64,
    /// Values by name, e.g. `db_pool_in_use`, `queue_depth:pdf`, `pg_connections`.
    pub values: BTreeMap<String, f64>,
}

/// What the server side showed over the run; every field is `None` when not measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerSummary {
    /// Sources that answered (`metrics`, `postgres`, `redis`).
    pub sources: Vec<String>,
    /// Why a source is missing or failed.
    pub notes: Vec<String>,
    /// Values over time.
    pub series: Vec<ServerSample>,
    /// Cache hits / lookups over the run, from `pique_cache_*_total`.
    pub cache_hit_rate: Option<f64>,
    /// Redis keyspace hits / lookups over the run.
    pub redis_hit_rate: Option<f64>,
    /// Highest `pique_db_pool_connections{state="in_use"}` / `pique_db_pool_max`.
    pub db_pool_usage_max: Option<f64>,
    /// Highest PostgreSQL connections / `max_connections`.
    pub pg_connection_usage_max: Option<f64>,
    /// Highest Redis `used_memory / maxmemory` (only when maxmemory is set).
    pub redis_memory_usage_max: Option<f64>,
    /// Highest job queue depth (any queue).
    pub queue_depth_max: Option<f64>,
    /// p95 of `pique_pdf_duration_seconds` over the run, seconds.
    pub pdf_p95_s: Option<f64>,
    /// p95 of `pique_checkout_duration_seconds` over the run, seconds.
    pub checkout_p95_s: Option<f64>,
    /// Mean of `pique_db_query_duration_seconds` over the run, ms (if the target exports it).
    pub db_query_avg_ms: Option<f64>,
    /// Increase of `pique_jobs_done_total` by queue.
    pub jobs_done: BTreeMap<String, f64>,
    /// Increase of `pique_emails_sent_total`.
    pub emails_sent: Option<f64>,
    /// Increase of `pique_checkout_attempts_total` by `strategy/outcome`.
    pub checkout_attempts: BTreeMap<String, f64>,
    /// Highest process CPU usage in cores, from `process_cpu_seconds_total`.
    pub cpu_cores_max: Option<f64>,
    /// The architecture profile the server ran, from `pique_profile_info` (e.g.
    /// `django-railway (gunicorn gthread 1x2)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A running scraper; [`Scraper::finish`] stops it and returns the summary.
pub struct Scraper {
    stop: CancellationToken,
    task: JoinHandle<ServerSummary>,
}

impl Scraper {
    /// Starts scraping now (a first scrape is the baseline for counter increases).
    pub fn start(cfg: ScrapeConfig, start: Instant) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(scrape_loop(cfg, start, stop.clone()));
        Self { stop, task }
    }

    /// Takes a last scrape and returns everything collected.
    pub async fn finish(self) -> ServerSummary {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|e| ServerSummary {
            notes: vec![format!("scraper crashed: {e}")],
            ..ServerSummary::default()
        })
    }
}

struct Sources {
    http: reqwest::Client,
    metrics_url: Option<String>,
    pg: Option<sqlx::PgPool>,
    pg_max: Option<f64>,
    redis: Option<redis::aio::MultiplexedConnection>,
}

async fn connect(cfg: &ScrapeConfig, notes: &mut Vec<String>) -> Sources {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default();
    let mut pg = None;
    let mut pg_max = None;
    if let Some(url) = &cfg.database_url {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await;
        match pool {
            Ok(p) => {
                pg_max = sqlx::query_scalar::<_, String>(
                    "SELECT setting FROM pg_settings WHERE name = 'max_connections'",
                )
                .fetch_one(&p)
                .await
                .ok()
                .and_then(|s| s.parse().ok());
                pg = Some(p);
            }
            Err(e) => notes.push(format!("postgres not scraped: {e}")),
        }
    }
    let mut redis_con = None;
    if let Some(url) = &cfg.redis_url {
        let con = async {
            let client = redis::Client::open(url.as_str())?;
            client.get_multiplexed_async_connection().await
        };
        match tokio::time::timeout(Duration::from_secs(3), con).await {
            Ok(Ok(c)) => redis_con = Some(c),
            Ok(Err(e)) => notes.push(format!("redis not scraped: {e}")),
            Err(_) => notes.push("redis not scraped: connect timed out".into()),
        }
    }
    Sources {
        http,
        metrics_url: cfg.metrics_url.clone(),
        pg,
        pg_max,
        redis: redis_con,
    }
}

/// One round of scraping; `None` for sources that did not answer.
struct Round {
    t: f64,
    prom: Option<Vec<PromSample>>,
    pg: Option<BTreeMap<String, f64>>,
    redis: Option<BTreeMap<String, f64>>,
}

async fn scrape_once(src: &mut Sources, t: f64, notes: &mut Vec<String>) -> Round {
    let mut round = Round {
        t,
        prom: None,
        pg: None,
        redis: None,
    };
    if let Some(url) = src.metrics_url.clone() {
        match src.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                // An HTML page (a SPA catch-all, an error page) is not a metrics endpoint even
                // if a line of it happens to look like `name value`.
                let html = r
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|ct| ct.contains("html") || ct.contains("json"));
                let samples = if html {
                    Vec::new()
                } else {
                    parse_prometheus(&r.text().await.unwrap_or_default())
                };
                if samples.is_empty() {
                    notes.push(format!("{url} is not Prometheus text; metrics not scraped"));
                    src.metrics_url = None;
                } else {
                    round.prom = Some(samples);
                }
            }
            Ok(r) => {
                notes.push(format!(
                    "{url} answered HTTP {}; metrics not scraped",
                    r.status()
                ));
                src.metrics_url = None;
            }
            Err(e) => {
                notes.push(format!("{url} unreachable ({e}); metrics not scraped"));
                src.metrics_url = None;
            }
        }
    }
    if let Some(pool) = &src.pg {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT coalesce(state, 'background'), count(*) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() GROUP BY 1",
        )
        .fetch_all(pool)
        .await;
        match rows {
            Ok(rows) => {
                let mut v = BTreeMap::new();
                let mut total = 0.0;
                for (state, n) in rows {
                    if state != "background" {
                        total += n as f64;
                    }
                    v.insert(format!("pg_{}", state.replace(' ', "_")), n as f64);
                }
                v.insert("pg_connections".into(), total);
                round.pg = Some(v);
            }
            Err(e) => {
                notes.push(format!("postgres scrape failed: {e}"));
                src.pg = None;
            }
        }
    }
    if let Some(con) = &mut src.redis {
        let info = tokio::time::timeout(
            Duration::from_secs(3),
            redis::cmd("INFO").query_async::<String>(con),
        )
        .await;
        match info {
            Ok(Ok(text)) => round.redis = Some(parse_redis_info(&text)),
            Ok(Err(e)) => {
                notes.push(format!("redis INFO failed: {e}"));
                src.redis = None;
            }
            Err(_) => notes.push("redis INFO timed out".into()),
        }
    }
    round
}

/// The profile a pique server reports (`pique_profile_info{profile,model} 1`), as
/// `name (model)`; several (servers sharing one metrics endpoint) are joined with `, `.
pub fn server_profile(samples: &[PromSample]) -> Option<String> {
    let mut found: Vec<String> = samples
        .iter()
        .filter(|s| s.name == "pique_profile_info" && s.value > 0.0)
        .filter_map(|s| {
            let name = s.label("profile")?;
            Some(match s.label("model") {
                Some(model) if model != "none" => format!("{name} ({model})"),
                _ => name.to_string(),
            })
        })
        .collect();
    found.sort();
    found.dedup();
    (!found.is_empty()).then(|| found.join(", "))
}

/// Numeric fields of Redis `INFO` we use.
pub fn parse_redis_info(text: &str) -> BTreeMap<String, f64> {
    const KEEP: &[&str] = &[
        "keyspace_hits",
        "keyspace_misses",
        "used_memory",
        "maxmemory",
        "connected_clients",
        "evicted_keys",
    ];
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(k, _)| KEEP.contains(k))
        .filter_map(|(k, v)| Some((format!("redis_{k}"), v.trim().parse().ok()?)))
        .collect()
}

async fn scrape_loop(cfg: ScrapeConfig, start: Instant, stop: CancellationToken) -> ServerSummary {
    let mut notes = Vec::new();
    let mut src = connect(&cfg, &mut notes).await;
    let mut rounds = vec![scrape_once(&mut src, 0.0, &mut notes).await];
    let interval = cfg.interval.max(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => break,
        }
        let t = start.elapsed().as_secs_f64();
        rounds.push(scrape_once(&mut src, t, &mut notes).await);
    }
    let t = start.elapsed().as_secs_f64();
    rounds.push(scrape_once(&mut src, t, &mut notes).await);
    if let Some(pool) = src.pg.take() {
        pool.close().await;
    }
    summarise(&rounds, src.pg_max, notes)
}

fn summarise(rounds: &[Round], pg_max: Option<f64>, notes: Vec<String>) -> ServerSummary {
    let mut s = ServerSummary {
        notes,
        ..ServerSummary::default()
    };
    let prom: Vec<(f64, &Vec<PromSample>)> = rounds
        .iter()
        .filter_map(|r| r.prom.as_ref().map(|p| (r.t, p)))
        .collect();
    if rounds.iter().any(|r| r.prom.is_some()) {
        s.sources.push("metrics".into());
    }
    if rounds.iter().any(|r| r.pg.is_some()) {
        s.sources.push("postgres".into());
    }
    if rounds.iter().any(|r| r.redis.is_some()) {
        s.sources.push("redis".into());
    }

    // Time series: one sample per round with whatever answered.
    let mut prev: Option<&Round> = None;
    for r in rounds {
        let mut v = BTreeMap::new();
        if let Some(p) = &r.prom {
            gauges(p, &mut v);
            if let Some((pt, Some(pp))) = prev.map(|x| (x.t, x.prom.as_ref())) {
                let dt = (r.t - pt).max(1e-3);
                rates(pp, p, dt, &mut v);
            }
        }
        if let Some(pg) = &r.pg {
            v.extend(pg.iter().map(|(k, x)| (k.clone(), *x)));
            if let (Some(max), Some(n)) = (pg_max, pg.get("pg_connections")) {
                v.insert("pg_connection_usage".into(), n / max);
            }
        }
        if let Some(rd) = &r.redis {
            v.extend(rd.iter().map(|(k, x)| (k.clone(), *x)));
            if let (Some(used), Some(max)) =
                (rd.get("redis_used_memory"), rd.get("redis_maxmemory"))
                && *max > 0.0
            {
                v.insert("redis_memory_usage".into(), used / max);
            }
        }
        if !v.is_empty() {
            s.series.push(ServerSample { t: r.t, values: v });
        }
        prev = Some(r);
    }
    let max_of = |key: &str| {
        s.series
            .iter()
            .filter_map(|x| x.values.get(key).copied())
            .reduce(f64::max)
    };
    s.db_pool_usage_max = max_of("db_pool_usage");
    s.pg_connection_usage_max = max_of("pg_connection_usage");
    s.redis_memory_usage_max = max_of("redis_memory_usage");
    s.cpu_cores_max = max_of("cpu_cores");
    s.queue_depth_max = s
        .series
        .iter()
        .flat_map(|x| {
            x.values
                .iter()
                .filter(|(k, _)| k.starts_with("queue_depth:"))
                .map(|(_, v)| *v)
        })
        .reduce(f64::max);

    s.profile = prom.last().and_then(|(_, last)| server_profile(last));
    if let (Some((_, first)), Some((_, last))) = (prom.first(), prom.last()) {
        let inc = |name: &str, filter: &[(&str, &str)]| {
            Some(sum(last, name, filter)? - sum(first, name, filter).unwrap_or(0.0))
        };
        if let (Some(h), Some(m)) = (
            inc("pique_cache_hits_total", &[]),
            inc("pique_cache_misses_total", &[]),
        ) && h + m > 0.0
        {
            s.cache_hit_rate = Some(h / (h + m));
        }
        s.pdf_p95_s = histogram_quantile(first, last, "pique_pdf_duration_seconds", 0.95);
        s.checkout_p95_s = histogram_quantile(first, last, "pique_checkout_duration_seconds", 0.95);
        if let (Some(sum_s), Some(n)) = (
            inc("pique_db_query_duration_seconds_sum", &[]),
            inc("pique_db_query_duration_seconds_count", &[]),
        ) && n > 0.0
        {
            s.db_query_avg_ms = Some(sum_s / n * 1000.0);
        }
        s.emails_sent = inc("pique_emails_sent_total", &[]);
        for x in last.iter().filter(|x| x.name == "pique_jobs_done_total") {
            let q = x.label("queue").unwrap_or("").to_string();
            let before = first
                .iter()
                .find(|b| b.name == x.name && b.labels == x.labels)
                .map_or(0.0, |b| b.value);
            *s.jobs_done.entry(q).or_insert(0.0) += x.value - before;
        }
        for x in last
            .iter()
            .filter(|x| x.name == "pique_checkout_attempts_total")
        {
            let key = format!(
                "{}/{}",
                x.label("strategy").unwrap_or("?"),
                x.label("outcome").unwrap_or("?")
            );
            let before = first
                .iter()
                .find(|b| b.name == x.name && b.labels == x.labels)
                .map_or(0.0, |b| b.value);
            *s.checkout_attempts.entry(key).or_insert(0.0) += x.value - before;
        }
    }
    let redis: Vec<&BTreeMap<String, f64>> =
        rounds.iter().filter_map(|r| r.redis.as_ref()).collect();
    if let (Some(first), Some(last)) = (redis.first(), redis.last()) {
        let d = |k: &str| Some(last.get(k)? - first.get(k)?);
        if let (Some(h), Some(m)) = (d("redis_keyspace_hits"), d("redis_keyspace_misses"))
            && h + m > 0.0
        {
            s.redis_hit_rate = Some(h / (h + m));
        }
    }
    s
}

/// Point-in-time values from one scrape.
fn gauges(p: &[PromSample], v: &mut BTreeMap<String, f64>) {
    let in_use = sum(p, "pique_db_pool_connections", &[("state", "in_use")]);
    let idle = sum(p, "pique_db_pool_connections", &[("state", "idle")]);
    let max = sum(p, "pique_db_pool_max", &[]);
    if let Some(x) = in_use {
        v.insert("db_pool_in_use".into(), x);
    }
    if let Some(x) = idle {
        v.insert("db_pool_idle".into(), x);
    }
    if let Some(x) = max {
        v.insert("db_pool_max".into(), x);
    }
    if let (Some(u), Some(m)) = (in_use, max)
        && m > 0.0
    {
        v.insert("db_pool_usage".into(), u / m);
    }
    for s in p.iter().filter(|s| s.name == "pique_queue_depth") {
        let q = s.label("queue").unwrap_or("default");
        *v.entry(format!("queue_depth:{q}")).or_insert(0.0) += s.value;
    }
}

/// Per-second rates between two scrapes.
fn rates(before: &[PromSample], after: &[PromSample], dt: f64, v: &mut BTreeMap<String, f64>) {
    let rate = |name: &str| {
        Some(((sum(after, name, &[])? - sum(before, name, &[]).unwrap_or(0.0)) / dt).max(0.0))
    };
    if let Some(x) = rate("http_requests_total") {
        v.insert("server_rps".into(), x);
    }
    if let Some(x) = rate("pique_checkout_attempts_total") {
        v.insert("checkout_attempts_per_s".into(), x);
    }
    if let Some(x) = rate("pique_jobs_done_total") {
        v.insert("jobs_done_per_s".into(), x);
    }
    if let Some(x) = rate("process_cpu_seconds_total") {
        v.insert("cpu_cores".into(), x);
    }
    let d = |name: &str| Some(sum(after, name, &[])? - sum(before, name, &[]).unwrap_or(0.0));
    if let (Some(h), Some(m)) = (d("pique_cache_hits_total"), d("pique_cache_misses_total"))
        && h + m > 0.0
    {
        v.insert("cache_hit_rate".into(), h / (h + m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP http_requests_total Requests
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/v1/shows/",status="200"} 10
http_requests_total{method="POST",route="/checkout/",status="409"} 2 1700000000000
pique_db_pool_connections{state="in_use"} 3
pique_db_pool_connections{state="idle"} 7
pique_db_pool_max 10
pique_queue_depth{queue="pdf"} 4
weird{a="x\"y,z}"} 1.5
pique_pdf_duration_seconds_bucket{le="0.5"} 0
pique_pdf_duration_seconds_bucket{le="1"} 50
pique_pdf_duration_seconds_bucket{le="2"} 100
pique_pdf_duration_seconds_bucket{le="+Inf"} 100
"#;

    #[test]
    fn parses_prometheus_text() {
        let s = parse_prometheus(TEXT);
        assert_eq!(sum(&s, "http_requests_total", &[]), Some(12.0));
        assert_eq!(
            sum(&s, "http_requests_total", &[("method", "GET")]),
            Some(10.0)
        );
        assert_eq!(
            s.iter().find(|x| x.name == "weird").unwrap().label("a"),
            Some("x\"y,z}")
        );
        let mut v = BTreeMap::new();
        gauges(&s, &mut v);
        assert_eq!(v["db_pool_usage"], 0.3);
        assert_eq!(v["queue_depth:pdf"], 4.0);
        let p95 = histogram_quantile(&[], &s, "pique_pdf_duration_seconds", 0.95).unwrap();
        assert!((p95 - 1.9).abs() < 1e-9, "{p95}");
        assert_eq!(sum(&s, "absent", &[]), None);
    }

    #[test]
    fn reads_the_servers_profile() {
        let one = parse_prometheus(
            "pique_profile_info{profile=\"django-railway\",model=\"gunicorn gthread 1x2\"} 1\n",
        );
        assert_eq!(
            server_profile(&one).as_deref(),
            Some("django-railway (gunicorn gthread 1x2)")
        );
        let rust = parse_prometheus("pique_profile_info{profile=\"rust\",model=\"none\"} 1\n");
        assert_eq!(server_profile(&rust).as_deref(), Some("rust"));
        assert_eq!(
            server_profile(&parse_prometheus(TEXT)),
            None,
            "a server without it"
        );
    }

    #[test]
    fn parses_redis_info() {
        let v = parse_redis_info(
            "# Stats\r\nkeyspace_hits:80\r\nkeyspace_misses:20\r\nused_memory:1024\r\n",
        );
        assert_eq!(v["redis_keyspace_hits"], 80.0);
        assert_eq!(v.len(), 3);
    }
}
