//! `run_plan`: applies command-line overrides to a plan, runs it with scraping and progress,
//! grades it, evaluates thresholds and writes the outputs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::distributed::{self, DistributedOptions};
use crate::duration::{Dur, format_duration};
use crate::engine::{self, EngineConfig, Steering};
use crate::error::LoadError;
use crate::judge::{self, Judge};
use crate::observe::{Model, Observer, Observers, RunStarted};
use crate::plan::{Plan, ShapeRef, Stage, check_host};
use crate::progress::Progress;
use crate::report::{self, PlanInfo, Settings, Summary};
use crate::scrape::{ScrapeConfig, Scraper};

/// Options of one run (what `pique load run` flags set).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Target base URLs; override the plan's `host`. With several, users are spread over them
    /// round-robin (user n talks to host n mod len, all its requests), for API replicas
    /// without a load balancer in front.
    pub hosts: Vec<String>,
    /// Parent directory of run directories (default `runs`).
    pub out_dir: PathBuf,
    /// No live progress line.
    pub quiet: bool,
    /// Replace the shape's users: a single stage for closed plans, `max_users` for arrival and
    /// capacity plans (Locust's `--users`).
    pub users: Option<u32>,
    /// Spawn rate for every stage (Locust's `--spawn-rate`).
    pub spawn_rate: Option<f64>,
    /// Cap on the run time (the shape may end sooner).
    pub run_time: Option<Duration>,
    /// Cap on requests sent.
    pub max_requests: Option<u64>,
    /// Prometheus endpoints, the API's first, then each worker's; default `<host>/metrics`.
    /// An endpoint that does not answer is dropped with a note.
    pub metrics_urls: Vec<String>,
    /// PostgreSQL URL to sample `pg_stat_activity`.
    pub database_url: Option<String>,
    /// Redis URL to sample `INFO`.
    pub redis_url: Option<String>,
    /// Variables for every user (`--var stripe_base=http://...`); numbers and booleans stay typed.
    pub vars: Vec<(String, String)>,
    /// Free label recorded in the report (e.g. the target's `PIQUE_PROFILE`).
    pub label: Option<String>,
    /// Runs the plan's shape faster: every duration of the shape (stages, arrival stages,
    /// capacity steps, the plan's `run_time`) and every grading window is multiplied by this
    /// factor in (0, 1]; spawn rates are divided by it. Think and wait times stay as written.
    pub time_scale: f64,
    /// Run on load workers instead of in this process (`--workers N`).
    pub distributed: Option<DistributedOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            out_dir: PathBuf::from("runs"),
            quiet: false,
            users: None,
            spawn_rate: None,
            run_time: None,
            max_requests: None,
            metrics_urls: Vec::new(),
            database_url: None,
            redis_url: None,
            vars: Vec::new(),
            label: None,
            time_scale: 1.0,
            distributed: None,
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory (`runs/<UTC time>-<plan>`).
    pub run_dir: PathBuf,
    /// Path of report.html.
    pub report_path: PathBuf,
    /// The full summary (also in summary.json).
    pub summary: Summary,
    /// Grading verdict (`PASS (target)`, `FAIL (...)` ...).
    pub verdict: String,
    /// 0 all thresholds held, 1 a threshold failed (errors are `Err`, exit code 2).
    pub exit_code: i32,
}

/// Multiplies every duration of the plan's shape by `f` (and divides spawn rates by it, though
/// no ramp gets shorter than a second), so the shape keeps its proportions in `f` of the time.
fn scale_shape(plan: &mut Plan, f: f64) {
    let scale = |d: &mut Dur| d.0 = d.0.mul_f64(f);
    let mut previous = 0u32;
    for s in &mut plan.stages {
        scale(&mut s.duration);
        // A ramp is never shorter than a second (the sampling period), so a scaled run does
        // not start all its users, and their first requests, in the same instant; a stage
        // lasts at least as long as its ramp.
        let delta = f64::from(s.users.abs_diff(previous));
        if let Some(r) = s.spawn_rate {
            let scaled = (r / f).min(delta.max(1.0)).max(r);
            s.spawn_rate = Some(scaled);
            let ramp = Duration::from_secs_f64(delta / scaled);
            s.duration.0 = s.duration.0.max(ramp);
        }
        previous = s.users;
    }
    if let Some(a) = &mut plan.arrival {
        a.stages.iter_mut().for_each(|s| scale(&mut s.duration));
    }
    if let Some(c) = &mut plan.capacity {
        scale(&mut c.step_every);
        c.spawn_rate = c.spawn_rate.map(|r| r / f);
    }
    if let Some(rt) = &mut plan.run_time {
        scale(rt);
    }
    // More samples of the server in a shorter run (memory growth needs a slope), but not
    // more often than four times a second.
    let interval = plan.scrape_interval.map_or(Duration::from_secs(2), |d| d.0);
    plan.scrape_interval = Some(Dur(interval.mul_f64(f).max(Duration::from_millis(250))));
}

/// Applies `--time-scale`, then `--users`, `--spawn-rate` and `--run-time` (wall-clock, not
/// scaled) to the plan's shape.
fn apply_overrides(plan: &mut Plan, opts: &RunOptions) -> Result<(), LoadError> {
    let f = opts.time_scale;
    if !(f > 0.0 && f <= 1.0) {
        return Err(LoadError::Options(format!(
            "--time-scale must be in (0, 1], got {f}"
        )));
    }
    if f < 1.0 {
        scale_shape(plan, f);
    }
    if let Some(r) = opts.spawn_rate
        && !(r > 0.0 && r.is_finite())
    {
        return Err(LoadError::Options("--spawn-rate must be positive".into()));
    }
    if let Some(users) = opts.users {
        if users == 0 {
            return Err(LoadError::Options("--users must be > 0".into()));
        }
        if let Some(a) = &mut plan.arrival {
            a.max_users = users;
        } else if let Some(c) = &mut plan.capacity {
            c.max_users = users.max(c.start_users);
        } else {
            // Locust semantics: N users at the spawn rate for the whole run.
            let duration = opts
                .run_time
                .or(plan.run_time.map(|d| d.0))
                .unwrap_or_else(|| plan.stages.iter().map(|s| s.duration.0).sum());
            plan.stages = vec![Stage {
                duration: Dur(duration),
                users,
                spawn_rate: Some(opts.spawn_rate.unwrap_or(f64::from(users))),
            }];
        }
    }
    if let Some(rate) = opts.spawn_rate {
        plan.stages
            .iter_mut()
            .for_each(|s| s.spawn_rate = Some(rate));
        if let Some(c) = &mut plan.capacity {
            c.spawn_rate = Some(rate);
        }
    }
    if let Some(rt) = opts.run_time {
        if rt.is_zero() {
            return Err(LoadError::Options("--run-time must be positive".into()));
        }
        plan.run_time = Some(Dur(rt));
    }
    if let Some(m) = opts.max_requests {
        plan.max_requests = Some(m);
    }
    Ok(())
}

pub(crate) fn describe_shape(plan: &Plan) -> String {
    match plan.shape() {
        ShapeRef::Stages(st) => {
            let parts: Vec<String> = st
                .iter()
                .map(|s| match s.spawn_rate {
                    Some(r) => format!(
                        "{} users @ {r}/s for {}",
                        s.users,
                        format_duration(s.duration.0)
                    ),
                    None => format!(
                        "ramp to {} users over {}",
                        s.users,
                        format_duration(s.duration.0)
                    ),
                })
                .collect();
            format!("stages: {}", parts.join(" -> "))
        }
        ShapeRef::Arrival(a) => {
            let parts: Vec<String> = a
                .stages
                .iter()
                .map(|s| match s.ramp_to {
                    Some(to) => format!(
                        "{}/s -> {to}/s over {}",
                        s.rate,
                        format_duration(s.duration.0)
                    ),
                    None => format!("{}/s for {}", s.rate, format_duration(s.duration.0)),
                })
                .collect();
            format!(
                "open model (max {} users): {}",
                a.max_users,
                parts.join(", ")
            )
        }
        ShapeRef::Capacity(c) => format!(
            "capacity: {} users +{} every {} up to {}, stop at errors > {} or p95 > {}",
            c.start_users,
            c.step_users,
            format_duration(c.step_every.0),
            c.max_users,
            c.stop_error_rate
                .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            c.stop_p95_ms.map_or("-".into(), |p| format!("{p} ms")),
        ),
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable url)".into(),
    }
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "plan".into() } else { s }
}

fn parse_var(v: &str) -> Value {
    // Numbers and booleans stay typed (so `"{{show_id}}"` in a body is a number); the rest is text.
    match serde_json::from_str::<Value>(v) {
        Ok(x @ (Value::Number(_) | Value::Bool(_))) => x,
        _ => Value::String(v.to_string()),
    }
}

/// Lets other tasks watch, steer and stop a run (the web UI, the Prometheus exporter).
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Cancel to stop the run early; outputs are still written.
    pub stop: tokio_util::sync::CancellationToken,
    /// Set to change the users while the run goes.
    pub steering: Arc<Steering>,
    /// Told about the run as it goes (see [`crate::observe`]).
    pub observers: Observers,
}

/// Runs a plan against its host and writes `report.html`, CSVs and `summary.json`.
///
/// The run always ends by itself (shape end, `run_time`, `max_requests`, or a capacity break);
/// Ctrl-C ends it early and the outputs are still written, like Locust.
pub async fn run_plan(plan: &Plan, opts: &RunOptions) -> Result<RunOutcome, LoadError> {
    run_plan_controlled(plan, opts, &RunControl::default()).await
}

/// [`run_plan`] with a [`RunControl`] to stop it, steer it and watch it from elsewhere.
pub async fn run_plan_controlled(
    plan: &Plan,
    opts: &RunOptions,
    control: &RunControl,
) -> Result<RunOutcome, LoadError> {
    let outcome = run_controlled(plan, opts, control).await;
    control.observers.finished(outcome.as_ref());
    outcome
}

pub(crate) fn model_of(plan: &Plan) -> Model {
    match plan.shape() {
        ShapeRef::Stages(_) => Model::Closed,
        ShapeRef::Arrival(_) => Model::Open,
        ShapeRef::Capacity(_) => Model::Capacity,
    }
}

pub(crate) fn first_spawn_rate(plan: &Plan) -> Option<f64> {
    match plan.shape() {
        ShapeRef::Stages(st) => st.first().and_then(|s| s.spawn_rate),
        ShapeRef::Capacity(c) => c.spawn_rate,
        ShapeRef::Arrival(_) => None,
    }
}

async fn run_controlled(
    plan: &Plan,
    opts: &RunOptions,
    control: &RunControl,
) -> Result<RunOutcome, LoadError> {
    let mut plan = plan.clone();
    apply_overrides(&mut plan, opts)?;
    let hosts = target_hosts(&opts.hosts, plan.host.as_deref())?;
    let host = hosts.join(", ");

    let mut vars: HashMap<String, Value> = plan.vars.clone().into_iter().collect();
    for (k, v) in &opts.vars {
        vars.insert(k.clone(), parse_var(v));
    }

    let started = chrono::Utc::now();
    let run_dir = unique_dir(
        &opts.out_dir,
        &format!("{}-{}", started.format("%Y%m%dT%H%M%SZ"), slug(&plan.name)),
    );

    // By default every host's /metrics: several replicas' counters add up in the report.
    let metrics_urls = if opts.metrics_urls.is_empty() {
        hosts.iter().map(|h| format!("{h}/metrics")).collect()
    } else {
        opts.metrics_urls.clone()
    };
    let scrape_cfg = ScrapeConfig {
        metrics_urls: metrics_urls.clone(),
        database_url: opts.database_url.clone(),
        redis_url: opts.redis_url.clone(),
        interval: plan.scrape_interval.map_or(Duration::from_secs(2), |d| d.0),
        observers: control.observers.clone(),
    };
    let plan = Arc::new(plan);
    let time_scale = opts.time_scale;
    let judge = Arc::new(Judge::new(plan.clone(), &vars, time_scale));
    let shape_len = engine::shape_duration(&plan);
    let limit = plan.run_time.map_or(shape_len, |r| r.0.min(shape_len));
    control.observers.started(&RunStarted {
        plan: plan.name.clone(),
        description: plan.description.clone(),
        origin: plan.origin.clone(),
        host: host.clone(),
        shape: describe_shape(&plan),
        model: model_of(&plan),
        target_users: plan.target_users(),
        spawn_rate: first_spawn_rate(&plan),
        limit,
        run_dir: run_dir.clone(),
        started_at: started,
        distributed: opts.distributed.is_some(),
        keys: plan.request_keys.clone(),
        judge: judge.clone(),
    });
    let progress = Progress::new(opts.quiet, &plan.name);
    let scraper = Scraper::start(scrape_cfg, tokio::time::Instant::now());
    let cfg = EngineConfig {
        bases: hosts.clone(),
        run_time: plan.run_time.map(|d| d.0),
        max_requests: plan.max_requests,
        vars: vars.clone(),
        stop: control.stop.clone(),
        steering: control.steering.clone(),
        observers: control.observers.clone(),
    };
    let (result, distributed) = match &opts.distributed {
        None => (engine::run(plan.clone(), cfg, &progress).await, None),
        Some(d) => match distributed::master::run(plan.clone(), cfg, d, &progress, limit).await {
            Ok((result, report)) => (Ok(result), Some(report)),
            Err(e) => (Err(e), None),
        },
    };
    let server = scraper.finish().await;
    progress.finish();
    let result = result?;

    let fin = result.stats.finish(result.run_secs);
    let grades = judge.grade(
        &result.stats,
        &fin.aggregated,
        &fin.methods,
        result.run_secs,
        &fin.series,
        &server,
        result.capacity.as_ref(),
    );
    let (verdict, generator) = judge::verdict(&grades, &fin.series);
    let thresholds = judge.thresholds(&result.stats, &fin.requests, result.run_secs);
    let exit_code = judge::exit_code(&thresholds);

    let summary = Summary {
        tool: concat!("pique-load ", env!("CARGO_PKG_VERSION")).into(),
        plan: PlanInfo {
            name: plan.name.clone(),
            description: plan.description.clone(),
            origin: plan.origin.clone(),
            source: plan.source.clone(),
            warnings: plan.warnings.clone(),
        },
        settings: Settings {
            host,
            hosts,
            label: opts.label.clone(),
            shape: describe_shape(&plan),
            time_scale,
            run_time_cap: plan.run_time.map(|d| format_duration(d.0)),
            max_requests: plan.max_requests,
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            started_at_unix: started.timestamp(),
            duration_s: result.run_secs,
            stop_reason: result.stop_reason.clone(),
            peak_users: result.peak_users,
            metrics_url: server.metrics_targets.first().cloned(),
            database_url: opts.database_url.as_deref().map(redact),
            redis_url: opts.redis_url.as_deref().map(redact),
            vars: opts.vars.clone(),
        },
        requests: fin.requests,
        aggregated: fin.aggregated,
        methods: fin.methods,
        failures: fin.failures,
        lag: result.lag,
        capacity: result.capacity,
        thresholds,
        grading: judge.rules().clone(),
        generator,
        grades,
        verdict: verdict.clone(),
        exit_code,
        timeseries: fin.series,
        server,
        distributed,
    };
    let report_path = report::write_all(&run_dir, &summary)?;
    Ok(RunOutcome {
        run_dir,
        report_path,
        summary,
        verdict,
        exit_code,
    })
}

/// The hosts a run targets: the `--host` flags, else the plan's `host`; each checked, without
/// a trailing slash, no duplicates (a duplicate would silently double one replica's share).
fn target_hosts(flags: &[String], plan_host: Option<&str>) -> Result<Vec<String>, LoadError> {
    let given: Vec<&str> = if flags.is_empty() {
        plan_host.into_iter().collect()
    } else {
        flags.iter().map(String::as_str).collect()
    };
    if given.is_empty() {
        return Err(LoadError::Options(
            "no host: give --host or set `host` in the plan".into(),
        ));
    }
    let mut hosts: Vec<String> = Vec::with_capacity(given.len());
    for h in given {
        check_host(h).map_err(LoadError::Options)?;
        let h = h.trim_end_matches('/').to_string();
        if hosts.contains(&h) {
            return Err(LoadError::Options(format!("--host {h} given twice")));
        }
        hosts.push(h);
    }
    Ok(hosts)
}

fn unique_dir(parent: &std::path::Path, base: &str) -> PathBuf {
    let first = parent.join(base);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| parent.join(format!("{base}-{i}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(slug("Read heavy 70/20/10"), "read-heavy-70-20-10");
        assert_eq!(parse_var("5"), Value::from(5));
        assert_eq!(parse_var("http://x"), Value::from("http://x"));
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn hosts_come_from_the_flags_else_the_plan() {
        let flags = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            target_hosts(&flags(&["http://a:1/", "http://b:2"]), Some("http://p")).unwrap(),
            vec!["http://a:1", "http://b:2"]
        );
        assert_eq!(
            target_hosts(&[], Some("http://p/")).unwrap(),
            vec!["http://p"]
        );
        assert!(target_hosts(&[], None).is_err());
        assert!(target_hosts(&flags(&["http://a", "http://a/"]), None).is_err());
        assert!(target_hosts(&flags(&["http://a", "ftp://b"]), None).is_err());
    }
}
