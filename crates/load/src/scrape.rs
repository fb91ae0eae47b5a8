//! Server-side metrics during a run, each source optional: the Prometheus `/metrics` of the API
//! and of each worker, PostgreSQL (`pg_stat_activity`, `pg_stat_database`), and Redis (`INFO`,
//! and Celery's queue length with `LLEN celery` when the Redis is a Celery broker, which is how
//! a Django deployment's queue is measured). A missing source is noted, never invented.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, Observers};

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
    /// Prometheus endpoints: the API first (e.g. `http://127.0.0.1:8080/metrics`), then each
    /// worker (`http://127.0.0.1:9091/metrics` ...).
    pub metrics_urls: Vec<String>,
    /// PostgreSQL URL for `pg_stat_activity` and `pg_stat_database`.
    pub database_url: Option<String>,
    /// Redis URL for `INFO` (and `LLEN celery` when it is a Celery broker).
    pub redis_url: Option<String>,
    /// Time between scrapes.
    pub interval: Duration,
    /// Told the summary so far after every scrape (the web UI's server panel).
    pub observers: Observers,
}

/// One scrape: seconds since start and named values (see [`ServerSummary::series`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerSample {
    /// Seconds since the run started.
    pub t: f64,
    /// Values by name, e.g. `db_pool_in_use`, `queue_depth:pdf`, `pg_connections`. Values of
    /// metrics targets after the first (the API) carry the target's label: `cpu_cores@127.0.0.1:9091`.
    pub values: BTreeMap<String, f64>,
}

/// What the server side showed over the run; every field is `None` when not measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerSummary {
    /// Sources that answered (`metrics`, `postgres`, `redis`).
    pub sources: Vec<String>,
    /// Metrics endpoints that answered, the API's first.
    #[serde(default)]
    pub metrics_targets: Vec<String>,
    /// Why a source is missing or failed.
    pub notes: Vec<String>,
    /// Values over time.
    pub series: Vec<ServerSample>,
    /// Cache hits / lookups over the run, from `pique_cache_*_total`.
    pub cache_hit_rate: Option<f64>,
    /// Redis keyspace hits / lookups over the run.
    pub redis_hit_rate: Option<f64>,
    /// Highest `pique_db_pool_connections{state="in_use"}` / `pique_db_pool_max`, any target.
    pub db_pool_usage_max: Option<f64>,
    /// Highest PostgreSQL connections / `max_connections`.
    pub pg_connection_usage_max: Option<f64>,
    /// Highest Redis `used_memory / maxmemory` (only when maxmemory is set).
    pub redis_memory_usage_max: Option<f64>,
    /// Highest job queue depth (any queue).
    pub queue_depth_max: Option<f64>,
    /// Where the queue depth came from (`pique_queue_depth`, or `LLEN celery` on a broker).
    #[serde(default)]
    pub queue_depth_source: Option<String>,
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
    /// Failed e-mail attempts (`pique_jobs_retried_total` + `pique_jobs_dead_total` of the
    /// `email` queue).
    #[serde(default)]
    pub emails_failed: Option<f64>,
    /// Emails sent / e-mail attempts.
    #[serde(default)]
    pub email_delivery: Option<f64>,
    /// Increase of `pique_checkout_attempts_total` by `strategy/outcome`.
    pub checkout_attempts: BTreeMap<String, f64>,
    /// Highest API process CPU usage in cores, from `process_cpu_seconds_total`.
    pub cpu_cores_max: Option<f64>,
    /// The architecture profile the server ran, from `pique_profile_info` (e.g.
    /// `django-railway (gunicorn gthread 1x2)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Stripe API calls during the run (`pique_stripe_request_duration_seconds_count`).
    #[serde(default)]
    pub stripe_calls: Option<f64>,
    /// Failed Stripe calls by kind (`pique_stripe_errors_total`), e.g. `timeout`.
    #[serde(default)]
    pub stripe_errors: BTreeMap<String, f64>,
    /// p95 of `pique_stripe_request_duration_seconds` over the run, seconds.
    #[serde(default)]
    pub stripe_p95_s: Option<f64>,
    /// p95 of `pique_job_queue_wait_seconds` (due to started) over the run, seconds.
    #[serde(default)]
    pub queue_wait_p95_s: Option<f64>,
    /// Deadlocks PostgreSQL counted during the run (`pg_stat_database.deadlocks`).
    #[serde(default)]
    pub pg_deadlocks: Option<f64>,
    /// Keys Redis evicted during the run.
    #[serde(default)]
    pub redis_evicted: Option<f64>,
    /// Evicted keys / keyspace lookups during the run.
    #[serde(default)]
    pub redis_eviction_rate: Option<f64>,
}

impl ServerSummary {
    /// Recomputes the peaks (`*_max`) from [`ServerSummary::series`] (after samples were added).
    pub fn refresh_maxima(&mut self) {
        let max_of = |pred: &dyn Fn(&str) -> bool| {
            self.series
                .iter()
                .flat_map(|x| x.values.iter().filter(|(k, _)| pred(k)).map(|(_, v)| *v))
                .reduce(f64::max)
        };
        let db_pool_usage_max =
            max_of(&|k| k == "db_pool_usage" || k.starts_with("db_pool_usage@"));
        let pg_connection_usage_max = max_of(&|k| k == "pg_connection_usage");
        let redis_memory_usage_max = max_of(&|k| k == "redis_memory_usage");
        let cpu_cores_max = max_of(&|k| k == "cpu_cores");
        let queue_depth_max = max_of(&|k| k.starts_with("queue_depth:"));
        // Celery's queue (a Django target) is read from its broker when the target exports
        // no pique_queue_depth.
        let from_pique = self.series.iter().any(|x| {
            x.values
                .keys()
                .any(|k| k.starts_with("queue_depth:") && k != "queue_depth:celery")
        });
        self.db_pool_usage_max = db_pool_usage_max;
        self.pg_connection_usage_max = pg_connection_usage_max;
        self.redis_memory_usage_max = redis_memory_usage_max;
        self.cpu_cores_max = cpu_cores_max;
        self.queue_depth_max = queue_depth_max;
        self.queue_depth_source = queue_depth_max.map(|_| {
            if from_pique {
                "pique_queue_depth (peak, any queue)".to_string()
            } else {
                "Redis LLEN celery on the broker (peak)".to_string()
            }
        });
    }
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

/// A metrics endpoint and the label its values carry in the series.
struct Target {
    url: String,
    /// False once it failed (a target that does not answer is dropped with a note).
    alive: bool,
}

/// `host:port` of a URL, for labels.
fn label_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| {
            let host = u.host_str().unwrap_or("?").to_string();
            u.port_or_known_default()
                .map_or(host.clone(), |p| format!("{host}:{p}"))
        })
        .unwrap_or_else(|| url.to_string())
}

struct Sources {
    http: reqwest::Client,
    targets: Vec<Target>,
    pg: Option<sqlx::PgPool>,
    pg_max: Option<f64>,
    pg_reserved: f64,
    redis: Option<redis::aio::MultiplexedConnection>,
    /// The Redis is a Celery broker (it has Celery's `_kombu.binding.celery` key).
    celery: bool,
}

async fn connect(cfg: &ScrapeConfig, notes: &mut Vec<String>) -> Sources {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default();
    let mut pg = None;
    let (mut pg_max, mut pg_reserved) = (None, 0.0);
    if let Some(url) = &cfg.database_url {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await;
        match pool {
            Ok(p) => {
                let setting = |name: &'static str| {
                    let p = p.clone();
                    async move {
                        sqlx::query_scalar::<_, String>(
                            "SELECT setting FROM pg_settings WHERE name = $1",
                        )
                        .bind(name)
                        .fetch_one(&p)
                        .await
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                    }
                };
                pg_max = setting("max_connections").await;
                pg_reserved = setting("superuser_reserved_connections")
                    .await
                    .unwrap_or(0.0);
                pg = Some(p);
            }
            Err(e) => notes.push(format!("postgres not scraped: {e}")),
        }
    }
    let mut redis_con = None;
    let mut celery = false;
    if let Some(url) = &cfg.redis_url {
        let con = async {
            let client = redis::Client::open(url.as_str())?;
            client.get_multiplexed_async_connection().await
        };
        match tokio::time::timeout(Duration::from_secs(3), con).await {
            Ok(Ok(mut c)) => {
                celery = redis::cmd("EXISTS")
                    .arg("_kombu.binding.celery")
                    .query_async::<u64>(&mut c)
                    .await
                    .is_ok_and(|n| n > 0);
                redis_con = Some(c);
            }
            Ok(Err(e)) => notes.push(format!("redis not scraped: {e}")),
            Err(_) => notes.push("redis not scraped: connect timed out".into()),
        }
    }
    let targets = cfg
        .metrics_urls
        .iter()
        .map(|url| Target {
            url: url.clone(),
            alive: true,
        })
        .collect();
    Sources {
        http,
        targets,
        pg,
        pg_max,
        pg_reserved,
        redis: redis_con,
        celery,
    }
}

/// One round of scraping; `None` for sources that did not answer.
#[derive(Clone)]
struct Round {
    t: f64,
    /// One entry per metrics target, in [`ScrapeConfig::metrics_urls`] order.
    prom: Vec<Option<Vec<PromSample>>>,
    pg: Option<BTreeMap<String, f64>>,
    redis: Option<BTreeMap<String, f64>>,
}

async fn scrape_target(
    http: &reqwest::Client,
    target: &mut Target,
    notes: &mut Vec<String>,
) -> Option<Vec<PromSample>> {
    if !target.alive {
        return None;
    }
    let url = target.url.clone();
    let failed = |why: String, notes: &mut Vec<String>| {
        notes.push(format!("{url} {why}; metrics not scraped"));
    };
    match http.get(&url).send().await {
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
                failed("is not Prometheus text".into(), notes);
                target.alive = false;
                None
            } else {
                Some(samples)
            }
        }
        Ok(r) => {
            failed(format!("answered HTTP {}", r.status()), notes);
            target.alive = false;
            None
        }
        Err(e) => {
            failed(format!("unreachable ({e})"), notes);
            target.alive = false;
            None
        }
    }
}

async fn scrape_once(src: &mut Sources, t: f64, notes: &mut Vec<String>) -> Round {
    let mut prom = Vec::with_capacity(src.targets.len());
    for target in &mut src.targets {
        prom.push(scrape_target(&src.http, target, notes).await);
    }
    let mut round = Round {
        t,
        prom,
        pg: None,
        redis: None,
    };
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
                let deadlocks = sqlx::query_scalar::<_, i64>(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
                )
                .fetch_one(pool)
                .await;
                if let Ok(d) = deadlocks {
                    v.insert("pg_deadlocks_total".into(), d as f64);
                }
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
            Ok(Ok(text)) => {
                let mut v = parse_redis_info(&text);
                if src.celery {
                    // Celery's default queue is the Redis list `celery`.
                    if let Ok(n) = redis::cmd("LLEN")
                        .arg("celery")
                        .query_async::<u64>(con)
                        .await
                    {
                        v.insert("celery_queue".into(), n as f64);
                    }
                }
                round.redis = Some(v);
            }
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
        "maxclients",
        "rejected_connections",
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
        if !cfg.observers.is_empty() {
            let limits = PgLimits {
                max: src.pg_max,
                reserved: src.pg_reserved,
            };
            let labels: Vec<String> = src.targets.iter().map(|t| t.url.clone()).collect();
            let so_far = summary_so_far(&rounds, &labels, limits, src.celery, &notes);
            cfg.observers.server(&so_far);
        }
    }
    let t = start.elapsed().as_secs_f64();
    rounds.push(scrape_once(&mut src, t, &mut notes).await);
    if let Some(pool) = src.pg.take() {
        pool.close().await;
    }
    let limits = PgLimits {
        max: src.pg_max,
        reserved: src.pg_reserved,
    };
    let labels: Vec<String> = src.targets.iter().map(|t| t.url.clone()).collect();
    summarise(&rounds, &labels, limits, src.celery, notes)
}

/// PostgreSQL's connection limits: `max_connections` and the slots reserved for superusers.
#[derive(Debug, Clone, Copy, Default)]
struct PgLimits {
    max: Option<f64>,
    reserved: f64,
}

/// The first and last samples of every target that answered, concatenated: counters summed
/// over them give the run's increase across all processes.
fn first_and_last(rounds: &[Round], targets: usize) -> (Vec<PromSample>, Vec<PromSample>) {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for i in 0..targets {
        let mut answered = rounds.iter().filter_map(|r| r.prom.get(i)?.as_ref());
        if let Some(f) = answered.next() {
            first.extend(f.iter().cloned());
            last.extend(answered.next_back().unwrap_or(f).iter().cloned());
        }
    }
    (first, last)
}

/// The summary so far, cheaply: counter increases from the first to the last round, and the
/// series of the first, previous and last rounds only (so it ends with the newest sample; an
/// observer keeps the samples it was told, and the maxima over them are the run's).
fn summary_so_far(
    rounds: &[Round],
    targets: &[String],
    pg_limits: PgLimits,
    celery: bool,
    notes: &[String],
) -> ServerSummary {
    let n = rounds.len();
    let mut picked: Vec<usize> = vec![0, n.saturating_sub(2), n.saturating_sub(1)];
    picked.dedup();
    let few: Vec<Round> = picked
        .iter()
        .filter_map(|i| rounds.get(*i).cloned())
        .collect();
    summarise(&few, targets, pg_limits, celery, notes.to_vec())
}

fn summarise(
    rounds: &[Round],
    targets: &[String],
    pg_limits: PgLimits,
    celery: bool,
    notes: Vec<String>,
) -> ServerSummary {
    let mut s = ServerSummary {
        notes,
        ..ServerSummary::default()
    };
    let answered = |i: usize| {
        rounds
            .iter()
            .any(|r| r.prom.get(i).is_some_and(Option::is_some))
    };
    s.metrics_targets = (0..targets.len())
        .filter(|i| answered(*i))
        .map(|i| targets[i].clone())
        .collect();
    if !s.metrics_targets.is_empty() {
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
        let mut exhausted = Vec::new();
        for (i, p) in r.prom.iter().enumerate() {
            let Some(p) = p else { continue };
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("@{}", label_of(&targets[i]))
            };
            let mut own = BTreeMap::new();
            gauges(p, &mut own);
            if let Some(Some(pp)) = prev.and_then(|x| x.prom.get(i)) {
                let dt = (r.t - prev.map_or(0.0, |x| x.t)).max(1e-3);
                rates(pp, p, dt, &mut own);
            }
            if own.get("db_pool_usage").is_some_and(|u| *u >= 1.0) {
                exhausted.push("db_pool");
            }
            for (k, x) in own {
                match k.strip_prefix("queue_depth:") {
                    // Every process sampling the queues reports the same depth: keep the
                    // largest, do not add them up.
                    Some(_) => {
                        let e = v.entry(k).or_insert(x);
                        *e = e.max(x);
                    }
                    // Job and checkout rates add up across processes.
                    None if k.ends_with("_per_s") => *v.entry(k).or_insert(0.0) += x,
                    None => {
                        v.insert(format!("{k}{suffix}"), x);
                    }
                }
            }
        }
        if let Some(pg) = &r.pg {
            v.extend(pg.iter().map(|(k, x)| (k.clone(), *x)));
            if let (Some(max), Some(n)) = (pg_limits.max, pg.get("pg_connections")) {
                v.insert("pg_connection_usage".into(), n / max);
                if *n >= max - pg_limits.reserved {
                    exhausted.push("postgres");
                }
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
            let rejected = |r: &Round| {
                r.redis
                    .as_ref()
                    .and_then(|x| x.get("redis_rejected_connections").copied())
            };
            if let (Some(now), Some(before)) = (rejected(r), prev.and_then(rejected))
                && now > before
            {
                exhausted.push("redis");
            }
        }
        for kind in exhausted {
            v.insert(format!("connections_exhausted:{kind}"), 1.0);
        }
        if !v.is_empty() {
            s.series.push(ServerSample { t: r.t, values: v });
        }
        prev = Some(r);
    }
    let has_depth = s
        .series
        .iter()
        .any(|x| x.values.keys().any(|k| k.starts_with("queue_depth:")));
    if !has_depth && celery {
        // A Django target: Celery's queue length straight from its Redis broker.
        for x in &mut s.series {
            if let Some(n) = x.values.get("celery_queue").copied() {
                x.values.insert("queue_depth:celery".into(), n);
            }
        }
    }
    s.refresh_maxima();

    // The profile the API ran (its last answered scrape).
    s.profile = rounds
        .iter()
        .rev()
        .find_map(|r| r.prom.first()?.as_ref())
        .and_then(|last| server_profile(last));
    let (first, last) = first_and_last(rounds, targets.len());
    if !last.is_empty() {
        let inc = |name: &str, filter: &[(&str, &str)]| {
            Some(sum(&last, name, filter)? - sum(&first, name, filter).unwrap_or(0.0))
        };
        if let (Some(h), Some(m)) = (
            inc("pique_cache_hits_total", &[]),
            inc("pique_cache_misses_total", &[]),
        ) && h + m > 0.0
        {
            s.cache_hit_rate = Some(h / (h + m));
        }
        s.pdf_p95_s = histogram_quantile(&first, &last, "pique_pdf_duration_seconds", 0.95);
        s.checkout_p95_s =
            histogram_quantile(&first, &last, "pique_checkout_duration_seconds", 0.95);
        s.queue_wait_p95_s =
            histogram_quantile(&first, &last, "pique_job_queue_wait_seconds", 0.95);
        s.stripe_p95_s =
            histogram_quantile(&first, &last, "pique_stripe_request_duration_seconds", 0.95);
        s.stripe_calls = inc("pique_stripe_request_duration_seconds_count", &[]);
        if let (Some(sum_s), Some(n)) = (
            inc("pique_db_query_duration_seconds_sum", &[]),
            inc("pique_db_query_duration_seconds_count", &[]),
        ) && n > 0.0
        {
            s.db_query_avg_ms = Some(sum_s / n * 1000.0);
        }
        s.emails_sent = inc("pique_emails_sent_total", &[]);
        let email_failed = [
            inc("pique_jobs_retried_total", &[("queue", "email")]),
            inc("pique_jobs_dead_total", &[("queue", "email")]),
        ];
        if s.emails_sent.is_some() || email_failed.iter().any(Option::is_some) {
            let failed: f64 = email_failed.iter().flatten().sum();
            let sent = s.emails_sent.unwrap_or(0.0);
            s.emails_failed = Some(failed);
            if sent + failed > 0.0 {
                s.email_delivery = Some(sent / (sent + failed));
            }
        }
        let by_label = |name: &str, key: &dyn Fn(&PromSample) -> String| {
            let mut out: BTreeMap<String, f64> = BTreeMap::new();
            for x in last.iter().filter(|x| x.name == name) {
                let before = first
                    .iter()
                    .find(|b| b.name == x.name && b.labels == x.labels)
                    .map_or(0.0, |b| b.value);
                *out.entry(key(x)).or_insert(0.0) += x.value - before;
            }
            out
        };
        s.jobs_done = by_label("pique_jobs_done_total", &|x| {
            x.label("queue").unwrap_or("").to_string()
        });
        s.checkout_attempts = by_label("pique_checkout_attempts_total", &|x| {
            format!(
                "{}/{}",
                x.label("strategy").unwrap_or("?"),
                x.label("outcome").unwrap_or("?")
            )
        });
        s.stripe_errors = by_label("pique_stripe_errors_total", &|x| {
            x.label("kind").unwrap_or("?").to_string()
        });
    }
    let redis: Vec<&BTreeMap<String, f64>> =
        rounds.iter().filter_map(|r| r.redis.as_ref()).collect();
    if let (Some(first), Some(last)) = (redis.first(), redis.last()) {
        let d = |k: &str| Some(last.get(k)? - first.get(k)?);
        if let (Some(h), Some(m)) = (d("redis_keyspace_hits"), d("redis_keyspace_misses")) {
            if h + m > 0.0 {
                s.redis_hit_rate = Some(h / (h + m));
            }
            s.redis_evicted = d("redis_evicted_keys");
            if let Some(e) = s.redis_evicted
                && h + m > 0.0
            {
                s.redis_eviction_rate = Some(e / (h + m));
            }
        }
    }
    let pg: Vec<&BTreeMap<String, f64>> = rounds.iter().filter_map(|r| r.pg.as_ref()).collect();
    if let (Some(first), Some(last)) = (pg.first(), pg.last()) {
        s.pg_deadlocks =
            (|| Some(last.get("pg_deadlocks_total")? - first.get("pg_deadlocks_total")?))();
    }
    s
}

/// Point-in-time values from one scrape of one target.
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
    if let Some(x) = sum(p, "process_resident_memory_bytes", &[]) {
        v.insert("rss_bytes".into(), x);
    }
    for s in p.iter().filter(|s| s.name == "pique_queue_depth") {
        let q = s.label("queue").unwrap_or("default");
        *v.entry(format!("queue_depth:{q}")).or_insert(0.0) += s.value;
    }
}

/// Per-second rates between two scrapes of one target.
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

    fn round(t: f64, prom: Vec<Option<&str>>, pg: &[(&str, f64)], redis: &[(&str, f64)]) -> Round {
        let map = |kv: &[(&str, f64)]| -> Option<BTreeMap<String, f64>> {
            (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        };
        Round {
            t,
            prom: prom.into_iter().map(|p| p.map(parse_prometheus)).collect(),
            pg: map(pg),
            redis: map(redis),
        }
    }

    #[test]
    fn several_targets_add_counters_and_keep_gauges_apart() {
        let api0 = "process_cpu_seconds_total 10\nprocess_resident_memory_bytes 100000000\n\
            pique_stripe_request_duration_seconds_count 0\n\
            pique_db_pool_connections{state=\"in_use\"} 1\npique_db_pool_max 10\n";
        let api1 = "process_cpu_seconds_total 11\nprocess_resident_memory_bytes 101000000\n\
            pique_stripe_request_duration_seconds_count 40\n\
            pique_stripe_errors_total{op=\"create\",kind=\"timeout\"} 2\n\
            pique_db_pool_connections{state=\"in_use\"} 10\npique_db_pool_max 10\n";
        let w0 = "pique_queue_depth{queue=\"pdf\"} 2\npique_emails_sent_total 0\n\
            pique_job_queue_wait_seconds_bucket{queue=\"pdf\",le=\"0.5\"} 0\n\
            pique_job_queue_wait_seconds_bucket{queue=\"pdf\",le=\"+Inf\"} 0\n";
        let w1 = "pique_queue_depth{queue=\"pdf\"} 7\npique_emails_sent_total 99\n\
            pique_jobs_retried_total{queue=\"email\"} 1\n\
            pique_job_queue_wait_seconds_bucket{queue=\"pdf\",le=\"0.5\"} 100\n\
            pique_job_queue_wait_seconds_bucket{queue=\"pdf\",le=\"+Inf\"} 100\n";
        let rounds = vec![
            round(
                0.0,
                vec![Some(api0), Some(w0), None],
                &[("pg_connections", 10.0), ("pg_deadlocks_total", 3.0)],
                &[
                    ("redis_keyspace_hits", 0.0),
                    ("redis_keyspace_misses", 0.0),
                    ("redis_evicted_keys", 0.0),
                    ("redis_rejected_connections", 0.0),
                ],
            ),
            round(
                2.0,
                vec![Some(api1), Some(w1), None],
                &[("pg_connections", 97.0), ("pg_deadlocks_total", 4.0)],
                &[
                    ("redis_keyspace_hits", 150.0),
                    ("redis_keyspace_misses", 50.0),
                    ("redis_evicted_keys", 4.0),
                    ("redis_rejected_connections", 1.0),
                ],
            ),
        ];
        let targets = [
            "http://api:8080/metrics".to_string(),
            "http://w:9091/metrics".to_string(),
            "http://gone:9092/metrics".to_string(),
        ];
        let limits = PgLimits {
            max: Some(100.0),
            reserved: 3.0,
        };
        let s = summarise(&rounds, &targets, limits, false, vec![]);
        assert_eq!(s.metrics_targets, targets[..2]);
        assert_eq!(s.cpu_cores_max, Some(0.5));
        assert_eq!(s.queue_depth_max, Some(7.0));
        assert_eq!(s.stripe_calls, Some(40.0));
        assert_eq!(s.stripe_errors.get("timeout"), Some(&2.0));
        assert_eq!(s.email_delivery, Some(0.99));
        assert!(s.queue_wait_p95_s.is_some_and(|p| p <= 0.5));
        assert_eq!(s.pg_deadlocks, Some(1.0));
        assert_eq!(s.redis_evicted, Some(4.0));
        assert_eq!(s.redis_eviction_rate, Some(0.02));
        let last = &s.series[1].values;
        assert_eq!(last.get("rss_bytes"), Some(&101_000_000.0));
        for kind in ["db_pool", "postgres", "redis"] {
            assert!(
                last.contains_key(&format!("connections_exhausted:{kind}")),
                "{kind}: {last:?}"
            );
        }
        assert!(
            !s.series[0]
                .values
                .keys()
                .any(|k| k.starts_with("connections_exhausted"))
        );
    }

    #[test]
    fn a_celery_broker_gives_the_queue_length_of_a_django_target() {
        let rounds = vec![
            round(0.0, vec![None], &[], &[("celery_queue", 3.0)]),
            round(1.0, vec![None], &[], &[("celery_queue", 12.0)]),
        ];
        let targets = ["http://django:8000/metrics".to_string()];
        let s = summarise(&rounds, &targets, PgLimits::default(), true, vec![]);
        assert_eq!(s.queue_depth_max, Some(12.0));
        assert!(
            s.queue_depth_source
                .as_deref()
                .is_some_and(|x| x.contains("LLEN celery"))
        );
        let not_broker = summarise(&rounds, &targets, PgLimits::default(), false, vec![]);
        assert_eq!(not_broker.queue_depth_max, None);
    }
}
