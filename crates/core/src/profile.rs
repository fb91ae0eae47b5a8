//! Architecture profiles: how the replica imitates a given deployment.
//!
//! A profile is a TOML file. The `rust` profile is built in and models nothing: the replica runs
//! as fast as it can. A Gunicorn profile (`[gunicorn]` plus `[[routes]]`) describes a Django
//! deployment as Gunicorn runs it: `workers` processes of `threads` threads (`gthread`), each
//! process with one interpreter lock, a listen backlog, `max_requests` restarts, and for each
//! route how long a request takes, split into the part that holds the interpreter lock (CPU) and
//! the part that waits on PostgreSQL or Redis (I/O). The API's profile middleware turns this
//! description into behaviour; this module only parses, validates and answers questions about
//! it, without I/O beyond reading the file a path names.
//!
//! Profiles shipped with the project (`profiles/*.toml`) are embedded in the binary and selected
//! by name; any other file is selected by its path.

use std::{fmt, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use crate::config::CheckoutStrategy;

/// The profile with no model.
pub const RUST: &str = "rust";

/// Profiles shipped in `profiles/`, embedded at build time: `(name, TOML text)`.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "django-railway",
        include_str!("../../../profiles/django-railway.toml"),
    ),
    (
        "django-recommended",
        include_str!("../../../profiles/django-recommended.toml"),
    ),
];

/// The 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874_040_841;

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Neither a known name nor a path to a file.
    #[error("unknown profile {0:?}: expected {names} or the path of a .toml file", names = known_names().join(", "))]
    Unknown(String),
    /// The file named could not be read.
    #[error("cannot read profile {path}: {message}")]
    Read {
        /// The path given.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The file is not a valid profile.
    #[error("profile {origin}: {message}")]
    Invalid {
        /// Where the text came from (a name or a path).
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Names accepted by [`Profile::resolve`] without a path.
pub fn known_names() -> Vec<&'static str> {
    std::iter::once(RUST)
        .chain(EMBEDDED.iter().map(|(name, _)| *name))
        .collect()
}

/// A deployment the replica imitates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, reported in `/metrics` and load reports.
    pub name: String,
    /// One line on what the profile stands for.
    #[serde(default)]
    pub description: String,
    /// Where the profile came from: `built-in`, `embedded` or the file's path.
    #[serde(skip)]
    pub origin: String,
    /// Application behaviour that differs between deployments.
    #[serde(default)]
    pub app: AppSettings,
    /// The Gunicorn model; `None` = no model (the replica's own speed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gunicorn: Option<Gunicorn>,
    /// What each route costs under the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteCost>,
}

/// Application settings a profile decides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Whether per-IP rate limiting may be switched on (`PIQUE_RATE_LIMIT`). The original has
    /// none, so Django profiles say `false`.
    #[serde(default)]
    pub rate_limit: bool,
    /// The checkout strategy used unless `CHECKOUT_STRATEGY` says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_strategy: Option<CheckoutStrategy>,
}

/// Gunicorn's worker classes the model knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerClass {
    /// A thread pool per worker process; the main thread accepts connections and keeps the
    /// worker's heartbeat, so a long request never gets its worker killed by `timeout`.
    #[default]
    Gthread,
    /// One request at a time per worker; a request running past `timeout` gets its worker
    /// killed and restarted.
    Sync,
}

/// Gunicorn's settings, as in `gunicorn_config.py`, plus what the model needs of the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gunicorn {
    /// `worker_class`: `gthread` (default) or `sync`.
    #[serde(default)]
    pub worker_class: WorkerClass,
    /// `workers`: processes, each with its own interpreter lock.
    pub workers: u32,
    /// `threads` per worker (`gthread`); `sync` workers have one.
    #[serde(default = "one")]
    pub threads: u32,
    /// `worker_connections`: requests a worker holds at once (running or waiting for one of
    /// its threads); Gunicorn's default is 1000.
    #[serde(default = "default_worker_connections")]
    pub worker_connections: u32,
    /// `backlog`: requests waiting for any worker to take them (the listen queue); beyond it
    /// requests are refused. Gunicorn's default is 2048.
    #[serde(default = "default_backlog")]
    pub backlog: u32,
    /// `timeout` in seconds (Gunicorn's default 30): a `sync` worker whose request runs longer
    /// is killed and restarted. `gthread` workers are not (see [`WorkerClass::Gthread`]).
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// `max_requests`: a worker restarts after this many requests; 0 = never.
    #[serde(default)]
    pub max_requests: u32,
    /// `max_requests_jitter`: each worker life adds a uniform 0..=jitter to `max_requests`.
    #[serde(default)]
    pub max_requests_jitter: u32,
    /// Seconds from a worker's exit until its replacement accepts requests (fork and import
    /// of the application).
    #[serde(default)]
    pub restart_secs: f64,
    /// CPU cores available to the workers; `None` = as many as workers. With fewer cores than
    /// workers, CPU parts of different workers queue for a core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// The interpreter's switch interval (`sys.getswitchinterval()`, 5 ms): a thread that
    /// wants the lock waits at most this long for a CPU-bound holder to hand it over.
    #[serde(default = "default_switch_interval")]
    pub switch_interval_ms: f64,
}

fn one() -> u32 {
    1
}
fn default_worker_connections() -> u32 {
    1000
}
fn default_backlog() -> u32 {
    2048
}
fn default_timeout() -> f64 {
    30.0
}
fn default_switch_interval() -> f64 {
    5.0
}

/// Whether a response came from the cache; a route's cost may differ between the two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    /// Either (the route entry applies whatever the cache did).
    #[default]
    Any,
    /// Served from the cache.
    Hit,
    /// Computed (and stored in the cache).
    Miss,
}

impl CacheState {
    /// From the replica's `x-cache` header value (`hit-local`, `hit-redis`, `miss`).
    pub fn from_header(value: Option<&str>) -> CacheState {
        match value {
            Some(v) if v.starts_with("hit") => CacheState::Hit,
            Some("miss") => CacheState::Miss,
            _ => CacheState::Any,
        }
    }

    fn is_any(&self) -> bool {
        *self == CacheState::Any
    }
}

/// The cost of one route under the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCost {
    /// HTTP method; absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Route pattern as the router writes it (`/api/v1/shows/{id}/`), a prefix ending in `*`
    /// (`/api/v1/portal/*`), or `*` for every route not listed. A trailing slash is ignored.
    pub path: String,
    /// Which cache outcome this entry is for; absent = any.
    #[serde(default, skip_serializing_if = "CacheState::is_any")]
    pub cache: CacheState,
    /// Time that holds the worker's interpreter lock.
    pub cpu: Dist,
    /// Time spent waiting on the database, Redis or another service, without the lock. The
    /// replica's own handler runs during this part.
    #[serde(default)]
    pub io: Dist,
}

/// A duration distribution: lognormal with the given median and 99th percentile (a constant
/// when they are equal or `p99_ms` is absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds; absent = the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

impl Dist {
    /// A distribution from its median and 99th percentile in milliseconds.
    pub fn new(p50_ms: f64, p99_ms: f64) -> Dist {
        Dist {
            p50_ms,
            p99_ms: Some(p99_ms),
        }
    }

    /// The lognormal's sigma (0 for a constant).
    pub fn sigma(&self) -> f64 {
        match self.p99_ms {
            Some(p99) if self.p50_ms > 0.0 && p99 > self.p50_ms => (p99 / self.p50_ms).ln() / Z99,
            _ => 0.0,
        }
    }

    /// The value at standard-normal deviate `z` (`z = 0` is the median).
    pub fn at(&self, z: f64) -> Duration {
        let ms = self.p50_ms * (self.sigma() * z).exp();
        Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 3600.0))
    }

    /// The mean, milliseconds.
    pub fn mean_ms(&self) -> f64 {
        let s = self.sigma();
        self.p50_ms * (s * s / 2.0).exp()
    }

    /// The lognormal with this `sigma` whose mean is `mean_ms`.
    pub fn with_mean(mean_ms: f64, sigma: f64) -> Dist {
        let p50 = mean_ms / (sigma * sigma / 2.0).exp();
        Dist::new(round3(p50), round3(p50 * (sigma * Z99).exp()))
    }

    fn check(&self, what: &str) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !ok(self.p50_ms) {
            return Err(format!("{what}.p50_ms must be a number >= 0"));
        }
        match self.p99_ms {
            Some(p99) if !ok(p99) || p99 < self.p50_ms => {
                Err(format!("{what}.p99_ms must be >= {what}.p50_ms"))
            }
            _ => Ok(()),
        }
    }
}

/// Rounds to three decimals (microseconds when the unit is ms), for readable files.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A standard normal deviate from two uniforms in `[0, 1)` (Box-Muller).
pub fn standard_normal(u1: f64, u2: f64) -> f64 {
    let u1 = (1.0 - u1).clamp(f64::MIN_POSITIVE, 1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Gunicorn {
    /// Threads per worker (1 for `sync`).
    pub fn threads_per_worker(&self) -> u32 {
        match self.worker_class {
            WorkerClass::Gthread => self.threads,
            WorkerClass::Sync => 1,
        }
    }

    /// Requests a worker holds at once (`sync` workers accept one at a time).
    pub fn worker_capacity(&self) -> u32 {
        match self.worker_class {
            WorkerClass::Gthread => self.worker_connections.max(self.threads),
            WorkerClass::Sync => 1,
        }
    }

    /// Cores the workers' CPU parts can use at once.
    pub fn usable_cores(&self) -> u32 {
        self.cores.unwrap_or(self.workers).clamp(1, self.workers)
    }

    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    /// The restart pause as a duration.
    pub fn restart(&self) -> Duration {
        Duration::from_secs_f64(self.restart_secs)
    }

    /// The switch interval as a duration.
    pub fn switch_interval(&self) -> Duration {
        Duration::from_secs_f64(self.switch_interval_ms / 1000.0)
    }

    /// Requests a new worker life serves before restarting, given a random `draw`
    /// (Gunicorn: `max_requests + randint(0, max_requests_jitter)`); `None` = never.
    pub fn requests_before_restart(&self, draw: u32) -> Option<u64> {
        (self.max_requests > 0).then(|| {
            u64::from(self.max_requests) + u64::from(draw % (self.max_requests_jitter + 1))
        })
    }

    /// Requests per worker life on average.
    pub fn mean_requests_per_life(&self) -> Option<f64> {
        (self.max_requests > 0)
            .then(|| f64::from(self.max_requests) + f64::from(self.max_requests_jitter) / 2.0)
    }

    /// Long-run requests per second of a route when every thread is busy, by the model's
    /// arithmetic: each worker is bound by its lock (`1 / cpu`) or by its threads
    /// (`threads / (cpu + io)`), the machine by its cores, and each worker stops for
    /// `restart_secs` every `max_requests` (+ half the jitter) requests.
    pub fn saturated_throughput(&self, cost: &RouteCost) -> f64 {
        let cpu = cost.cpu.mean_ms() / 1000.0;
        let service = cpu + cost.io.mean_ms() / 1000.0;
        let workers = f64::from(self.workers);
        let lock_bound = if cpu > 0.0 {
            f64::from(self.usable_cores()) / cpu
        } else {
            f64::INFINITY
        };
        let thread_bound = if service > 0.0 {
            workers * f64::from(self.threads_per_worker()) / service
        } else {
            f64::INFINITY
        };
        let running = lock_bound.min(thread_bound);
        match self.mean_requests_per_life() {
            Some(n) if running.is_finite() => {
                let per_worker = running / workers;
                workers * n / (n / per_worker + self.restart_secs)
            }
            _ => running,
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("gunicorn.workers must be at least 1".into());
        }
        if self.threads == 0 {
            return Err("gunicorn.threads must be at least 1".into());
        }
        if self.worker_connections == 0 {
            return Err("gunicorn.worker_connections must be at least 1".into());
        }
        if self.cores == Some(0) {
            return Err("gunicorn.cores must be at least 1".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.timeout_secs) {
            return Err("gunicorn.timeout_secs must be > 0".into());
        }
        if !positive(self.switch_interval_ms) {
            return Err("gunicorn.switch_interval_ms must be > 0".into());
        }
        if !(self.restart_secs.is_finite() && self.restart_secs >= 0.0) {
            return Err("gunicorn.restart_secs must be >= 0".into());
        }
        Ok(())
    }
}

/// How well a route entry matches a request; higher wins.
fn specificity(entry: &RouteCost, method: &str, route: &str, cache: CacheState) -> Option<u32> {
    let method_score = match &entry.method {
        None => 0,
        Some(m) if m.eq_ignore_ascii_case(method) => 1,
        Some(_) => return None,
    };
    let cache_score = match entry.cache {
        CacheState::Any => 0,
        c if c == cache => 1,
        _ => return None,
    };
    let trim = |p: &str| -> String {
        let t = p.trim_end_matches('/');
        if t.is_empty() { "/".into() } else { t.into() }
    };
    let pattern = entry.path.trim();
    let path_score = if pattern == "*" {
        0
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        if !route.starts_with(prefix) {
            return None;
        }
        1 + u32::try_from(prefix.len()).unwrap_or(u32::MAX / 8)
    } else if trim(pattern) == trim(route) {
        u32::MAX / 4
    } else {
        return None;
    };
    Some(path_score.saturating_mul(4) + method_score * 2 + cache_score)
}

impl Profile {
    /// The built-in profile without a model.
    pub fn rust() -> Profile {
        Profile {
            name: RUST.into(),
            description: "The replica at its own speed: no model, rate limiting allowed.".into(),
            origin: "built-in".into(),
            app: AppSettings {
                rate_limit: true,
                checkout_strategy: None,
            },
            gunicorn: None,
            routes: Vec::new(),
        }
    }

    /// A profile by name (`rust`, a file shipped in `profiles/`) or by the path of a TOML file.
    pub fn resolve(name_or_path: &str) -> Result<Profile, ProfileError> {
        let wanted = name_or_path.trim();
        if wanted == RUST {
            return Ok(Profile::rust());
        }
        if let Some((name, text)) = EMBEDDED.iter().find(|(name, _)| *name == wanted) {
            let mut profile = Profile::from_toml(text, name)?;
            profile.origin = "embedded".into();
            return Ok(profile);
        }
        let path = Path::new(wanted);
        let looks_like_path =
            wanted.ends_with(".toml") || wanted.contains(std::path::MAIN_SEPARATOR);
        if !looks_like_path && !path.is_file() {
            return Err(ProfileError::Unknown(wanted.into()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read {
            path: wanted.into(),
            message: e.to_string(),
        })?;
        let mut profile = Profile::from_toml(&text, wanted)?;
        profile.origin = wanted.into();
        Ok(profile)
    }

    /// Parses and validates profile text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid {
            origin: origin.into(),
            message,
        };
        let mut profile: Profile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        profile.origin = origin.into();
        profile.check().map_err(invalid)?;
        Ok(profile)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.name == RUST && self.gunicorn.is_some() {
            return Err("the name `rust` is reserved for the profile without a model".into());
        }
        match &self.gunicorn {
            Some(g) => g.check()?,
            None if !self.routes.is_empty() => {
                return Err("[[routes]] need a [gunicorn] section to apply to".into());
            }
            None => {}
        }
        for (i, r) in self.routes.iter().enumerate() {
            let what = format!("routes[{i}] ({})", r.path);
            if r.path.trim().is_empty() {
                return Err(format!(
                    "{what}: path must not be empty (use \"*\" for any)"
                ));
            }
            r.cpu.check(&format!("{what}.cpu"))?;
            r.io.check(&format!("{what}.io"))?;
        }
        Ok(())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether this is the profile without a model.
    pub fn is_rust(&self) -> bool {
        self.gunicorn.is_none()
    }

    /// Whether rate limiting may be switched on under this profile.
    pub fn allows_rate_limiting(&self) -> bool {
        self.app.rate_limit
    }

    /// The model's one-line summary: `gunicorn gthread 1x2` or `none`.
    pub fn model_summary(&self) -> String {
        match &self.gunicorn {
            None => "none".into(),
            Some(g) => format!(
                "gunicorn {} {}x{}",
                match g.worker_class {
                    WorkerClass::Gthread => "gthread",
                    WorkerClass::Sync => "sync",
                },
                g.workers,
                g.threads_per_worker()
            ),
        }
    }

    /// The entry that prices a request: the most specific match of method, route pattern and
    /// cache outcome (an exact pattern beats a prefix, a prefix beats `*`).
    pub fn cost(&self, method: &str, route: &str, cache: CacheState) -> Option<&RouteCost> {
        self.routes
            .iter()
            .filter_map(|r| specificity(r, method, route, cache).map(|s| (s, r)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, r)| r)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Profile {
        Profile::from_toml(text, "test").expect("valid profile")
    }

    const SMALL: &str = r#"
        name = "small"
        [gunicorn]
        workers = 2
        threads = 4
        [[routes]]
        path = "*"
        cpu = { p50_ms = 2 }
        [[routes]]
        method = "GET"
        path = "/api/v1/shows/"
        cache = "hit"
        cpu = { p50_ms = 5, p99_ms = 10 }
        [[routes]]
        path = "/api/v1/shows/"
        cpu = { p50_ms = 40 }
        io = { p50_ms = 8 }
        [[routes]]
        path = "/api/v1/portal/*"
        cpu = { p50_ms = 7 }
    "#;

    #[test]
    fn every_embedded_profile_parses_under_its_own_name() {
        for (name, _) in EMBEDDED {
            let p = Profile::resolve(name).expect("embedded profile is valid");
            assert_eq!(p.name, *name);
            assert_eq!(p.origin, "embedded");
            assert!(p.gunicorn.is_some(), "{name} models gunicorn");
            assert!(
                !p.allows_rate_limiting(),
                "the original has no rate limiting"
            );
            assert!(
                p.cost("GET", "/anything/", CacheState::Any).is_some(),
                "{name} prices every route"
            );
        }
        assert!(Profile::resolve("rust").expect("built in").is_rust());
    }

    #[test]
    fn the_shipped_profiles_keep_the_originals_settings() {
        let railway = Profile::resolve("django-railway").expect("embedded");
        let g = railway.gunicorn.as_ref().expect("model");
        assert_eq!((g.workers, g.threads), (1, 2));
        assert_eq!(g.worker_class, WorkerClass::Gthread);
        assert_eq!(g.worker_connections, 100);
        assert_eq!(g.timeout_secs, 60.0);
        assert_eq!((g.max_requests, g.max_requests_jitter), (500, 50));
        assert_eq!(
            railway.app.checkout_strategy,
            Some(CheckoutStrategy::RedisLock)
        );
        let recommended = Profile::resolve("django-recommended").expect("embedded");
        let g = recommended.gunicorn.as_ref().expect("model");
        assert_eq!((g.workers, g.threads), (2, 4));
    }

    /// The shipped profiles reproduce the measurements they were calibrated on (the Django
    /// deployment's requests per second), by the model's own arithmetic, within 5 %.
    #[test]
    fn the_shipped_profiles_reproduce_their_calibration() {
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                (got / want - 1.0).abs() < 0.05,
                "{what}: model {got:.1} req/s, measured {want}"
            );
        };
        let railway = Profile::resolve("django-railway").expect("embedded");
        let g = railway.gunicorn.as_ref().expect("model");
        let rate = |p: &Profile, route: &str, cache: CacheState| {
            let g = p.gunicorn.as_ref().expect("model");
            g.saturated_throughput(p.cost("GET", route, cache).expect("priced"))
        };
        close(
            rate(&railway, "/api/v1/shows/{id}/", CacheState::Any),
            149.0,
            "1x2 show detail",
        );
        close(
            rate(&railway, "/api/v1/shows/", CacheState::Miss),
            21.0,
            "1x2 uncached list",
        );
        let cached = rate(&railway, "/api/v1/shows/", CacheState::Hit);
        assert!((94.0..=167.0).contains(&cached), "1x2 cached list {cached}");
        let recommended = Profile::resolve("django-recommended").expect("embedded");
        close(
            rate(&recommended, "/api/v1/shows/", CacheState::Hit),
            247.0,
            "2x4 cached list",
        );
        assert_eq!(g.mean_requests_per_life(), Some(525.0));
    }

    #[test]
    fn a_path_selects_a_file_and_errors_name_the_field() {
        let dir = std::env::temp_dir().join(format!("pique-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("mine.toml");
        std::fs::write(&path, SMALL).expect("write");
        let p = Profile::resolve(path.to_str().expect("utf-8 path")).expect("valid file");
        assert_eq!(p.name, "small");
        assert_eq!(p.origin, path.display().to_string());
        assert_eq!(p.model_summary(), "gunicorn gthread 2x4");

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "name = \"x\"\n[gunicorn]\nworkers = 0\n").expect("write");
        let e = Profile::resolve(bad.to_str().expect("utf-8")).expect_err("invalid");
        assert!(e.to_string().contains("gunicorn.workers"), "{e}");
        std::fs::write(&bad, "name = \"x\"\n[gunicorn]\nworkers = 1\nthreds = 2\n").expect("write");
        let e = Profile::resolve(bad.to_str().expect("utf-8")).expect_err("typo");
        assert!(e.to_string().contains("threds"), "{e}");
        let e = Profile::resolve(dir.join("absent.toml").to_str().expect("utf-8"))
            .expect_err("missing");
        assert!(matches!(e, ProfileError::Read { .. }), "{e}");
        let _ = std::fs::remove_dir_all(&dir);

        let e = Profile::resolve("gunicorn").expect_err("unknown name");
        assert!(e.to_string().contains("django-railway"), "{e}");
    }

    #[test]
    fn the_most_specific_route_entry_wins() {
        let p = profile(SMALL);
        let cpu = |m: &str, r: &str, c: CacheState| p.cost(m, r, c).expect("priced").cpu.p50_ms;
        assert_eq!(cpu("GET", "/api/v1/shows/", CacheState::Hit), 5.0);
        assert_eq!(
            cpu("GET", "/api/v1/shows", CacheState::Hit),
            5.0,
            "slash ignored"
        );
        assert_eq!(cpu("GET", "/api/v1/shows/", CacheState::Miss), 40.0);
        assert_eq!(cpu("HEAD", "/api/v1/shows/", CacheState::Hit), 40.0);
        assert_eq!(
            cpu("POST", "/api/v1/portal/shows/{id}/", CacheState::Any),
            7.0
        );
        assert_eq!(cpu("GET", "/health/", CacheState::Any), 2.0);
        let no_default = profile("name = \"n\"\n[gunicorn]\nworkers = 1\n");
        assert!(no_default.cost("GET", "/", CacheState::Any).is_none());
    }

    #[test]
    fn distributions_have_the_stated_median_and_tail() {
        let d = Dist::new(10.0, 30.0);
        assert_eq!(d.at(0.0), Duration::from_millis(10));
        let p99 = d.at(Z99).as_secs_f64() * 1000.0;
        assert!((p99 - 30.0).abs() < 1e-6, "{p99}");
        assert!(d.mean_ms() > 10.0 && d.mean_ms() < 30.0);
        let constant = Dist {
            p50_ms: 4.0,
            p99_ms: None,
        };
        assert_eq!(constant.at(3.0), Duration::from_millis(4));
        let m = Dist::with_mean(5.0, 0.4);
        assert!((m.mean_ms() - 5.0).abs() < 0.01, "{}", m.mean_ms());
        // Box-Muller gives the median at the middle of the range and no infinities.
        assert!(standard_normal(0.0, 0.0).is_finite());
        assert!(standard_normal(0.999_999, 0.25).abs() < 1e-6);
    }

    #[test]
    fn throughput_is_bound_by_the_lock_threads_cores_and_restarts() {
        let mut p = profile(SMALL);
        let route = p.routes[0].clone(); // 2 ms CPU, no I/O
        let g = p.gunicorn.as_mut().expect("model");
        // Two locks: 2 x 500/s.
        assert!((g.saturated_throughput(&route) - 1000.0).abs() < 1e-6);
        // One core for both workers: 500/s.
        g.cores = Some(1);
        assert!((g.saturated_throughput(&route) - 500.0).abs() < 1e-6);
        // Thread-bound: 2 ms CPU + 98 ms I/O on 2 x 4 threads = 80/s.
        g.cores = None;
        let mut slow = route.clone();
        slow.io = Dist::new(98.0, 98.0);
        assert!((g.saturated_throughput(&slow) - 80.0).abs() < 1e-6);
        // Restarts: 100 requests per life at 500/s (0.2 s) then 0.2 s paused: half.
        g.max_requests = 100;
        g.restart_secs = 0.2;
        assert!((g.saturated_throughput(&route) - 500.0).abs() < 1e-6);
        assert_eq!(g.requests_before_restart(7), Some(100));
        g.max_requests_jitter = 10;
        assert_eq!(g.requests_before_restart(7), Some(107));
        assert_eq!(g.requests_before_restart(11), Some(100));
    }
}
