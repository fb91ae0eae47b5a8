//! `pique profile calibrate`: measure a deployment's public reads and fit an architecture
//! profile (see `docs/profiles.md`) that makes the replica behave like it.
//!
//! [`measure`] sends the requests (only bodiless GETs), [`fit`] turns the measurements into a
//! profile with pure functions, and [`calibrate`] runs both and writes the file.

pub mod fit;
pub mod measure;

use std::{path::PathBuf, time::Duration};

use pique_core::profile::{AppSettings, Gunicorn, Profile};
use url::Url;

use crate::engine::http::Connections;
use fit::{Measurements, Probe};
use measure::Target;

/// Why calibration could not run.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// The arguments cannot work.
    #[error("{0}")]
    Options(String),
    /// The target did not answer as a PiqueTickets API does.
    #[error("{0}")]
    Target(String),
    /// The profile file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The fitted profile did not validate (a bug).
    #[error("the fitted profile is invalid: {0}")]
    Invalid(String),
}

fn parse_level_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(s)
}

/// `pique profile calibrate --host URL --out FILE [deployment settings]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateArgs {
    /// The deployment's base URL, e.g. https://api.example.com or http://127.0.0.1:8080.
    #[arg(long, short = 'H')]
    pub host: String,
    /// Where to write the profile, e.g. profiles/my-deployment.toml.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// The profile's name (default: the output file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Gunicorn `workers` of the deployment.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Gunicorn `threads` per worker.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// CPU cores of the deployment's machine (default: as many as workers).
    #[arg(long)]
    pub cores: Option<u32>,
    /// Gunicorn `worker_class`: gthread or sync.
    #[arg(long, default_value = "gthread", value_parser = ["gthread", "sync"])]
    pub worker_class: String,
    /// Gunicorn `worker_connections`.
    #[arg(long, default_value_t = 100)]
    pub worker_connections: u32,
    /// Gunicorn `backlog`.
    #[arg(long, default_value_t = 2048)]
    pub backlog: u32,
    /// Gunicorn `timeout`, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Gunicorn `max_requests` (0: estimated from the restart pauses seen, if any).
    #[arg(long, default_value_t = 500)]
    pub max_requests: u32,
    /// Gunicorn `max_requests_jitter`.
    #[arg(long, default_value_t = 50)]
    pub max_requests_jitter: u32,
    /// Checkout strategy the replica should use under this profile (reservation, redis-lock,
    /// queue); the deployment's own cannot be measured without writing.
    #[arg(long)]
    pub checkout_strategy: Option<String>,
    /// How long each concurrency level runs: 3s, 10s.
    #[arg(long, default_value = "3s", value_parser = parse_level_duration)]
    pub level_duration: Duration,
    /// Most requests per level (cold-cache levels send at most 100).
    #[arg(long, default_value_t = 5000)]
    pub max_requests_per_level: usize,
}

impl CalibrateArgs {
    /// The deployment's Gunicorn settings as given (restart time still unknown).
    pub fn deployment(&self) -> Result<Gunicorn, CalibrateError> {
        let class = match self.worker_class.as_str() {
            "sync" => "sync",
            _ => "gthread",
        };
        let text = format!(
            "name = \"x\"\n[gunicorn]\nworker_class = \"{class}\"\nworkers = {}\nthreads = {}\n\
             worker_connections = {}\nbacklog = {}\ntimeout_secs = {}\nmax_requests = {}\n\
             max_requests_jitter = {}\n{}",
            self.workers,
            self.threads,
            self.worker_connections,
            self.backlog,
            self.timeout,
            self.max_requests,
            self.max_requests_jitter,
            self.cores
                .map(|c| format!("cores = {c}\n"))
                .unwrap_or_default(),
        );
        Profile::from_toml(&text, "command line")
            .map_err(|e| CalibrateError::Options(e.to_string()))?
            .gunicorn
            .ok_or_else(|| CalibrateError::Options("no deployment settings".into()))
    }

    fn app(&self) -> Result<AppSettings, CalibrateError> {
        let checkout_strategy = match &self.checkout_strategy {
            None => None,
            Some(s) => Some(s.parse().map_err(|e: String| {
                CalibrateError::Options(format!("--checkout-strategy {s}: {e}"))
            })?),
        };
        Ok(AppSettings {
            rate_limit: false,
            checkout_strategy,
        })
    }

    fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.out
                .file_stem()
                .map_or_else(|| "calibrated".into(), |s| s.to_string_lossy().into_owned())
        })
    }
}

/// What a calibration produced.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The fitted profile.
    pub profile: Profile,
    /// Where it was written.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// The public reads measured, with the cache outcome each one stands for.
fn targets(show_id: i64, base_secs: u64) -> Vec<(String, pique_core::profile::CacheState, Target)> {
    use pique_core::profile::CacheState::{Any, Hit, Miss};
    let fixed = |p: &str| Target::Fixed(p.to_string());
    vec![
        (
            "/api/v1/shows/{id}/".into(),
            Any,
            fixed(&format!("/api/v1/shows/{show_id}/")),
        ),
        ("/api/v1/shows/".into(), Hit, fixed("/api/v1/shows/")),
        (
            "/api/v1/shows/".into(),
            Miss,
            Target::ColdShowList { base_secs },
        ),
        (
            "/api/v1/featured-shows/".into(),
            Any,
            fixed("/api/v1/featured-shows/"),
        ),
        (
            "/api/v1/active-cities/".into(),
            Any,
            fixed("/api/v1/active-cities/"),
        ),
        ("/api/v1/venues/".into(), Any, fixed("/api/v1/venues/")),
        (
            "/api/v1/performers/".into(),
            Any,
            fixed("/api/v1/performers/"),
        ),
        (
            "/api/v1/producers/".into(),
            Any,
            fixed("/api/v1/producers/"),
        ),
    ]
}

/// Measures the deployment at `args.host` and fits a profile, reporting progress through
/// `say`; writes nothing anywhere (see [`calibrate`] for the file).
pub async fn measure_and_fit(
    args: &CalibrateArgs,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(fit::Fitted, Measurements), CalibrateError> {
    let deployment = args.deployment()?;
    let app = args.app()?;
    let base = Url::parse(&format!("{}/", args.host.trim_end_matches('/')))
        .map_err(|e| CalibrateError::Options(format!("--host {}: {e}", args.host)))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(CalibrateError::Options(
            "--host must be http:// or https://".into(),
        ));
    }
    let timeout = Duration::from_secs(30);
    let rtt_ms = measure::round_trip_ms(&base).await.ok_or_else(|| {
        CalibrateError::Target(format!("{} does not accept connections", args.host))
    })?;
    // Find a show to read, and warm the list's cache.
    let mut conns = Connections::new(timeout);
    let list = measure::fetch(&mut conns, &base, "/api/v1/shows/")
        .await
        .map_err(|e| CalibrateError::Target(format!("GET /api/v1/shows/: {e:?}")))?;
    if list.status != 200 {
        return Err(CalibrateError::Target(format!(
            "GET /api/v1/shows/ answered {}: is this a PiqueTickets API?",
            list.status
        )));
    }
    let show_id = measure::first_show_id(&list.body).ok_or_else(|| {
        CalibrateError::Target(
            "GET /api/v1/shows/ lists no show to read: seed the target first".into(),
        )
    })?;
    let lanes = deployment.workers * deployment.threads_per_worker();
    let mut levels = vec![1, deployment.threads_per_worker(), lanes, 2 * lanes];
    levels.dedup();
    levels.sort_unstable();
    levels.dedup();
    let base_secs = (chrono::Utc::now().timestamp().unsigned_abs()) % 3_000_000;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    say(&format!(
        "calibrating {} (round trip {rtt_ms:.2} ms) as gunicorn {}x{}: concurrency {levels:?}, {} per level",
        args.host,
        deployment.workers,
        deployment.threads_per_worker(),
        crate::duration::format_duration(args.level_duration),
    ));
    let mut probes = Vec::new();
    for (pattern, cache, target) in targets(show_id, base_secs) {
        // Request numbers run on across levels (the warm-up takes number 0).
        let numbers = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
        let example = target.path(0);
        // One request first: warms a cached route, and skips routes the target lacks.
        let first = measure::fetch(&mut conns, &base, &example).await;
        match first {
            Ok(r) if r.status < 400 => {}
            Ok(r) => {
                say(&format!("  {example}: {} - skipped", r.status));
                continue;
            }
            Err(e) => {
                say(&format!("  {example}: {e:?} - skipped"));
                continue;
            }
        }
        let cap = match target {
            Target::ColdShowList { .. } => 100.min(args.max_requests_per_level),
            Target::Fixed(_) => args.max_requests_per_level,
        };
        let mut measured = Vec::new();
        for &n in &levels {
            let level = measure::level(
                &base,
                &target,
                &numbers,
                n,
                args.level_duration,
                cap,
                timeout,
            )
            .await;
            let s = fit::level_stats(&level, cache);
            say(&format!(
                "  GET {pattern}{} x{n}: {} ok, {} failed, {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms{}",
                match cache {
                    pique_core::profile::CacheState::Hit => " [hit]",
                    pique_core::profile::CacheState::Miss => " [miss]",
                    pique_core::profile::CacheState::Any => "",
                },
                s.ok,
                s.failed,
                s.running_rate,
                s.p50_ms,
                s.p99_ms,
                if s.stalls.is_empty() {
                    String::new()
                } else {
                    format!(", {} restart pause(s)", s.stalls.len())
                }
            ));
            measured.push(level);
        }
        probes.push(Probe {
            method: "GET".into(),
            pattern,
            example,
            cache,
            levels: measured,
        });
    }
    let m = Measurements {
        host: args.host.clone(),
        started_at,
        rtt_ms,
        probes,
    };
    let fitted = fit::fit(&m, &args.name(), &deployment, app);
    Ok((fitted, m))
}

/// Measures, fits, and writes the profile file.
pub async fn calibrate(
    args: &CalibrateArgs,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Calibration, CalibrateError> {
    let (fitted, m) = measure_and_fit(args, say).await?;
    let text = fit::to_toml(&fitted, &m);
    let profile = Profile::from_toml(&text, &args.out.display().to_string())
        .map_err(|e| CalibrateError::Invalid(e.to_string()))?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CalibrateError::Write {
            path: args.out.clone(),
            source,
        })?;
    }
    std::fs::write(&args.out, &text).map_err(|source| CalibrateError::Write {
        path: args.out.clone(),
        source,
    })?;
    Ok(Calibration {
        profile,
        path: args.out.clone(),
        text,
    })
}
