//! Plan files: the TOML schema, its parsing and its semantic validation.
//!
//! A plan names user classes (weighted, with a wait time, `on_start` steps and weighted tasks),
//! a load shape (`[[stages]]`, `[arrival]` or `[capacity]`), caps (`run_time`, `max_requests`)
//! and `[thresholds]`. See `loadtests/README.md` for a walk-through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::duration::Dur;
use crate::error::{Location, PlanError};
use crate::grade::{Phase, Rules};
use crate::stats::{Key, KeyKind};
use crate::template::{BodyTemplate, Template};
use crate::threshold::{Metric, Threshold};

/// Variables every user has without declaring them.
const BUILTIN_VARS: &[&str] = &[];

/// A validated load plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Short name, used in run directory names and reports.
    pub name: String,
    /// Free text shown in reports.
    #[serde(default)]
    pub description: String,
    /// Default target (`--host` overrides it), e.g. `http://127.0.0.1:8080`.
    pub host: Option<String>,
    /// Hard cap on the run's duration; the shape may end sooner.
    pub run_time: Option<Dur>,
    /// Hard cap on the number of requests sent.
    pub max_requests: Option<u64>,
    /// Per-request timeout (default 60 s, the original deployment's gunicorn timeout).
    pub request_timeout: Option<Dur>,
    /// How often server-side metrics are scraped (default 2 s).
    pub scrape_interval: Option<Dur>,
    /// Initial variables of every user (strings, numbers, arrays ...); `--var` overrides.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Variables that may be supplied with `--var` but have no default (e.g. `stripe_base`);
    /// steps that need them are skipped while they are unset.
    #[serde(default)]
    pub params: Vec<String>,
    /// Closed model: users over time (k6 `stages` / Locust users + spawn rate).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Open model: task iterations per second over time.
    pub arrival: Option<Arrival>,
    /// Step-wise capacity search.
    pub capacity: Option<Capacity>,
    /// Thresholds by request name; the key `"*"` means all requests together.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<Threshold>>,
    /// Which graded criteria count towards the verdict.
    #[serde(default)]
    pub grading: Grading,
    /// User classes.
    #[serde(default)]
    pub users: Vec<UserClass>,
    /// Where the plan came from (file path or label), for messages.
    #[serde(skip)]
    pub origin: String,
    /// The plan text as written (the YAML, for an Artillery config), copied into reports.
    #[serde(skip)]
    pub source: String,
    /// What the user should know about how the plan was read (an Artillery config's processor
    /// that is not run ...); printed before the run and shown in the report.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Distinct statistics keys, indexed by [`Step::key`] (and [`Step::poll_key`]).
    #[serde(skip)]
    pub request_keys: Vec<Key>,
}

/// One closed-model stage: move to `users` and hold until `duration` has passed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long this stage lasts.
    pub duration: Dur,
    /// Target number of users.
    pub users: u32,
    /// Users started (or stopped) per second (Locust style). Without it the user count ramps
    /// linearly from the previous stage's target over `duration` (k6 style).
    pub spawn_rate: Option<f64>,
}

/// Open-model load: iterations arrive on a schedule whether or not earlier ones finished.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// Cap on concurrently busy users (k6 `maxVUs`); arrivals beyond it wait, timed from their
    /// intended start, and are counted as late.
    pub max_users: u32,
    /// Rate phases.
    pub stages: Vec<ArrivalStage>,
}

/// One open-model phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalStage {
    /// How long the phase lasts.
    pub duration: Dur,
    /// Iterations (one task each) started per second at the phase start.
    pub rate: f64,
    /// Rate at the phase end; the rate ramps linearly when given (Artillery `rampTo`).
    pub ramp_to: Option<f64>,
}

/// Capacity search: add users step by step until a limit breaks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Users in the first step.
    pub start_users: u32,
    /// Users added per step.
    pub step_users: u32,
    /// Length of each step.
    pub step_every: Dur,
    /// Last step's users (bounds the run).
    pub max_users: u32,
    /// Users started per second when a step begins (default: all at once).
    pub spawn_rate: Option<f64>,
    /// Stop when a step's error rate exceeds this fraction (0.05 = 5 %).
    pub stop_error_rate: Option<f64>,
    /// Stop when a step's p95 exceeds this many milliseconds.
    pub stop_p95_ms: Option<f64>,
}

/// Which success criteria the plan grades, and the windows that decide whether load held.
///
/// ```toml
/// [grading]
/// phase = "baseline"          # the phase's default criteria (see `pique_load::grade::Phase`)
/// criteria = ["p95", "error_rate"]   # or exactly these instead
/// exclude = ["cpu"]           # minus these
/// hold = "1m"                 # load counts as held when it lasted this long ...
/// held_p95 = "500ms"          # ... with p95 below this ...
/// held_error_rate = "0.1%"    # ... and errors below this
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grading {
    /// The phase of the original plan this plan runs; it picks the default criteria.
    #[serde(default)]
    pub phase: Phase,
    /// Criterion ids graded instead of the phase's defaults.
    pub criteria: Option<Vec<String>>,
    /// Criterion ids not graded (shown as "not graded by this plan").
    #[serde(default)]
    pub exclude: Vec<String>,
    /// How long load must hold to count for concurrent users, normal/peak load and throughput
    /// (default 1 minute).
    pub hold: Option<Dur>,
    /// How long the Sustained Load row needs (default 2 h, as in the original plan).
    pub sustain: Option<Dur>,
    /// The spike's window: users reached within this of the first user (default 1 minute).
    pub spike_within: Option<Dur>,
    /// Load holds while p95 stays below this (default 500 ms, the Target column).
    pub held_p95: Option<String>,
    /// ... and the error rate below this (default 0.1 %, the Target column).
    pub held_error_rate: Option<String>,
}

impl Grading {
    /// The ids this plan grades: the explicit list or the phase's, minus `exclude`.
    pub fn criteria_ids(&self) -> Vec<String> {
        let base: Vec<String> = match &self.criteria {
            Some(list) => list.clone(),
            None => self
                .phase
                .criteria()
                .into_iter()
                .map(String::from)
                .collect(),
        };
        base.into_iter()
            .filter(|id| !self.exclude.contains(id))
            .collect()
    }

    /// The resolved grading rules for a run at `time_scale` whose shape asks for at most
    /// `target_users` users.
    pub fn rules(&self, time_scale: f64, target_users: Option<u32>) -> Rules {
        let d = Rules::default();
        let scaled =
            |v: Option<Dur>, default: f64| v.map_or(default, |d| d.0.as_secs_f64()) * time_scale;
        Rules {
            phase: self.phase,
            criteria: self.criteria_ids(),
            hold_s: scaled(self.hold, d.hold_s),
            sustain_s: scaled(self.sustain, d.sustain_s),
            spike_within_s: scaled(self.spike_within, d.spike_within_s),
            held_p95_ms: self
                .held_p95
                .as_deref()
                .and_then(|t| parse_limit(t, Metric::Avg))
                .unwrap_or(d.held_p95_ms),
            held_error_rate: self
                .held_error_rate
                .as_deref()
                .and_then(|t| parse_limit(t, Metric::ErrorRate))
                .unwrap_or(d.held_error_rate),
            target_users,
            time_scale,
        }
    }
}

/// Parses a latency (`500ms`, `1s`) or a rate (`0.1%`, `0.001`) the way thresholds do.
fn parse_limit(text: &str, metric: Metric) -> Option<f64> {
    let name = if metric == Metric::ErrorRate {
        "error_rate"
    } else {
        "avg"
    };
    Threshold::parse(&format!("{name} < {text}"))
        .ok()
        .map(|t| t.limit)
}

/// A class of simulated users (a Locust `HttpUser` subclass).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserClass {
    /// Class name, shown in reports.
    pub name: String,
    /// Relative share of users (or of arrivals in the open model).
    #[serde(default = "one")]
    pub weight: u32,
    /// Wait between tasks.
    #[serde(default)]
    pub wait: Wait,
    /// Steps each user runs once when it starts (login, fetch the show list ...).
    #[serde(default)]
    pub on_start: Vec<Step>,
    /// Weighted tasks; each iteration runs one task picked by weight.
    pub tasks: Vec<Task>,
}

fn one() -> u32 {
    1
}

/// Wait time between two tasks of a user, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Wait {
    /// Uniformly random in `[min, max]` (Locust `between`): `wait = { between = [1, 5] }`.
    Between([f64; 2]),
    /// Always the same (Locust `constant`): `wait = { constant = 1 }`.
    Constant(f64),
    /// Task starts every N seconds whatever the task took (Locust `constant_pacing`).
    Pacing(f64),
}

impl Default for Wait {
    fn default() -> Self {
        Wait::Constant(0.0)
    }
}

/// A weighted sequence of steps (a Locust `@task`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Task name, shown in reports.
    #[serde(default)]
    pub name: String,
    /// Relative weight among the class's tasks.
    #[serde(default = "one")]
    pub weight: u32,
    /// Abandon the rest of the task after a failed step (default: carry on, like Locust).
    #[serde(default)]
    pub stop_on_failure: bool,
    /// The requests, in order.
    pub steps: Vec<Step>,
}

/// One HTTP request and what to do with its response.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// HTTP method (default GET).
    #[serde(default = "get", deserialize_with = "method")]
    pub method: String,
    /// Path on the host (`/api/v1/shows/`) or an absolute URL template (`{{stripe_base}}/...`).
    pub path: Template,
    /// Statistics key (Locust's `name=`); defaults to the path as written.
    pub name: Option<String>,
    /// JSON body; strings inside may be templates.
    #[serde(default, deserialize_with = "body")]
    pub body: Option<BodyTemplate>,
    /// Extra headers (values may be templates).
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// Variables set before the request is built, e.g. `set = { show_id = "{{pick shows /id}}" }`.
    #[serde(default)]
    pub set: BTreeMap<String, Template>,
    /// Values taken from the JSON response.
    #[serde(default)]
    pub capture: Vec<Capture>,
    /// What makes the response a success.
    #[serde(default)]
    pub checks: Checks,
    /// Run the step only with this probability (the original plan's "30 % validate promo").
    pub probability: Option<f64>,
    /// Run the step only when all these variables are set (not counted as skipped otherwise).
    #[serde(default, deserialize_with = "one_or_many")]
    pub when: Vec<String>,
    /// Seconds to pause after the step (Artillery `think`, k6 `sleep`).
    pub think: Option<f64>,
    /// Repeat the request until its JSON answer satisfies this condition (a queued checkout's
    /// `status` leaving `processing`). Each request counts under `poll_name`; the whole wait,
    /// from the start of the previous request of the task (the accept) to the answer that
    /// ended it, counts once under `name` (default: the path followed by ` [done]`).
    pub until: Option<Until>,
    /// Time between two polls (default 1 s).
    pub every: Option<Dur>,
    /// Give up polling after this long (default 60 s): the completion fails with a timeout.
    pub timeout: Option<Dur>,
    /// Statistics name of the poll requests (default: the path as written).
    pub poll_name: Option<String>,
    /// Index into [`Plan::request_keys`], assigned by validation.
    #[serde(skip)]
    pub key: usize,
    /// For a polling step, the statistics key of its individual requests.
    #[serde(skip)]
    pub poll_key: usize,
    /// Position of the step in the whole plan (0-based), assigned by validation.
    #[serde(skip)]
    pub index: usize,
}

fn get() -> String {
    "GET".to_string()
}

fn method<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let m = String::deserialize(d)?.to_ascii_uppercase();
    match m.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => Ok(m),
        _ => Err(serde::de::Error::custom(format!(
            "unsupported method `{m}` (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)"
        ))),
    }
}

fn body<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BodyTemplate>, D::Error> {
    let v = Value::deserialize(d)?;
    BodyTemplate::compile(&v)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A condition on a JSON answer that ends a polling step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    /// JSON pointer to the value tested (`/status`).
    pub pointer: String,
    /// Done when the value is one of these.
    #[serde(rename = "in")]
    pub is_in: Option<Vec<Value>>,
    /// Done when the value is none of these (a missing value counts as none of them).
    pub not_in: Option<Vec<Value>>,
    /// Done when the value equals this.
    pub equals: Option<Value>,
}

impl Until {
    /// Whether `doc` satisfies the condition.
    pub fn holds(&self, doc: &Value) -> bool {
        let found = doc.pointer(&self.pointer);
        if let Some(want) = &self.equals {
            return found == Some(want);
        }
        if let Some(list) = &self.is_in {
            return found.is_some_and(|v| list.contains(v));
        }
        if let Some(list) = &self.not_in {
            return found.is_none_or(|v| !list.contains(v));
        }
        false
    }
}

/// Takes a value from a JSON response into a user variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Variable to set (it is unset when the value is not found, so stale values never leak).
    pub var: String,
    /// JSON pointer into the response (`""` = the whole body, `/token`, `/tickets`).
    #[serde(default)]
    pub pointer: String,
    /// When the pointer yields an array: take one element (`random`, `first`, `last`).
    pub pick: Option<Pick>,
    /// Keep only array elements whose fields equal these values before picking,
    /// e.g. `where = { "/is_donation_based" = false }`.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
    /// Pointer applied after the pick (`/id`).
    #[serde(default)]
    pub then: String,
}

/// How to choose one element of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// Uniformly at random (Locust's `random.choice`).
    Random,
    /// The first element.
    First,
    /// The last element.
    Last,
}

/// Response checks; any failing check marks the request failed ("check failed").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Accepted status codes or classes (`[200, 201, "4xx"]`; default: anything below 400,
    /// like Locust).
    #[serde(default)]
    pub status: Vec<StatusMatch>,
    /// Conditions on the JSON body.
    #[serde(default)]
    pub json: Vec<JsonCheck>,
    /// Maximum response time in milliseconds (k6 `r.timings.duration < 500`).
    pub max_ms: Option<f64>,
}

/// An accepted status: a code (`201`) or a class (`"4xx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// Exactly this code.
    Code(u16),
    /// Any code of this hundred (`4` for `4xx`).
    Class(u16),
}

impl StatusMatch {
    /// Whether `status` is accepted.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Code(c) => c == status,
            StatusMatch::Class(h) => status / 100 == h,
        }
    }
}

impl<'de> Deserialize<'de> for StatusMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Class(String),
        }
        match Raw::deserialize(d)? {
            Raw::Code(c) if (100..=599).contains(&c) => Ok(StatusMatch::Code(c)),
            Raw::Code(c) => Err(serde::de::Error::custom(format!("bad status code {c}"))),
            Raw::Class(s) => {
                let bad =
                    || serde::de::Error::custom(format!("bad status class `{s}` (e.g. \"4xx\")"));
                let h = s
                    .strip_suffix("xx")
                    .and_then(|h| h.parse::<u16>().ok())
                    .filter(|h| (1..=5).contains(h))
                    .ok_or_else(bad)?;
                Ok(StatusMatch::Class(h))
            }
        }
    }
}

/// A condition on a JSON response.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCheck {
    /// JSON pointer to test.
    pub pointer: String,
    /// Whether the pointer must (true) or must not (false) resolve.
    pub exists: Option<bool>,
    /// Value the pointer must equal.
    pub equals: Option<Value>,
}

/// A load shape, borrowed from the plan.
#[derive(Debug, Clone, Copy)]
pub enum ShapeRef<'a> {
    /// Closed model stages.
    Stages(&'a [Stage]),
    /// Open model.
    Arrival(&'a Arrival),
    /// Capacity search.
    Capacity(&'a Capacity),
}

impl Plan {
    /// Parses and validates a plan; `origin` labels error messages (usually the file path).
    pub fn from_toml_str(src: &str, origin: &str) -> Result<Plan, PlanError> {
        let mut plan: Plan = toml::from_str(src).map_err(|e| PlanError::Syntax {
            origin: origin.to_string(),
            location: e.span().map(|s| Location::from_offset(src, s.start)),
            message: e.message().to_string(),
        })?;
        plan.origin = origin.to_string();
        plan.source = src.to_string();
        plan.validate()?;
        Ok(plan)
    }

    /// Reads, parses and validates a plan file: a TOML plan, or an Artillery config (`.yml`,
    /// `.yaml`), which is converted first (see [`crate::artillery`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Plan, PlanError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Plan::from_source(&src, &path.display().to_string())
    }

    /// Parses and validates a plan's text: an Artillery config when `origin` ends in `.yml` or
    /// `.yaml`, a TOML plan otherwise (what a load worker does with the text its master sends).
    pub fn from_source(src: &str, origin: &str) -> Result<Plan, PlanError> {
        if crate::artillery::is_yaml(Path::new(origin)) {
            let converted = crate::artillery::convert(src, origin)?;
            let mut plan = Plan::from_toml_str(&converted.toml, origin)?;
            plan.source = src.to_string();
            plan.warnings = converted.warnings;
            return Ok(plan);
        }
        Plan::from_toml_str(src, origin)
    }

    /// The plan's load shape (validation guarantees there is exactly one).
    pub fn shape(&self) -> ShapeRef<'_> {
        if let Some(a) = &self.arrival {
            ShapeRef::Arrival(a)
        } else if let Some(c) = &self.capacity {
            ShapeRef::Capacity(c)
        } else {
            ShapeRef::Stages(&self.stages)
        }
    }

    /// The request timeout (default 60 s).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
            .map_or(Duration::from_secs(60), |d| d.0)
    }

    /// All steps of the plan, in order, with their class index.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.users.iter().enumerate().flat_map(|(ci, c)| {
            c.on_start
                .iter()
                .chain(c.tasks.iter().flat_map(|t| t.steps.iter()))
                .map(move |s| (ci, s))
        })
    }

    fn invalid(&self, needle: &str, message: String) -> PlanError {
        PlanError::Invalid {
            origin: self.origin.clone(),
            location: Location::find(&self.source, needle),
            message,
        }
    }

    /// Semantic checks serde cannot do; also assigns statistics keys to steps.
    fn validate(&mut self) -> Result<(), PlanError> {
        if self.name.trim().is_empty() {
            return Err(self.invalid("name", "`name` must not be empty".into()));
        }
        self.validate_shape()?;
        self.validate_users()?;
        self.assign_keys();
        let names: BTreeSet<&str> = self.request_keys.iter().map(|k| k.name.as_str()).collect();
        for key in self.thresholds.keys() {
            if key != "*" && !names.contains(key.as_str()) {
                return Err(self.invalid(
                    key,
                    format!(
                        "threshold for unknown request name `{key}` (use \"*\" or a step's `name`)"
                    ),
                ));
            }
        }
        let named = self.grading.criteria.iter().flatten();
        for id in named.chain(&self.grading.exclude) {
            if crate::grade::criterion(id).is_none() {
                let known: Vec<&str> = crate::grade::CRITERIA.iter().map(|c| c.id).collect();
                return Err(self.invalid(
                    id,
                    format!(
                        "[grading]: unknown criterion `{id}` (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        for (field, text, metric) in [
            ("held_p95", &self.grading.held_p95, Metric::Avg),
            (
                "held_error_rate",
                &self.grading.held_error_rate,
                Metric::ErrorRate,
            ),
        ] {
            if let Some(t) = text
                && parse_limit(t, metric).is_none()
            {
                return Err(self.invalid(
                    field,
                    format!("[grading] {field}: cannot read `{t}` (e.g. 500ms, 0.1%)"),
                ));
            }
        }
        if let Some(host) = &self.host {
            check_host(host).map_err(|m| self.invalid(host, m))?;
        }
        Ok(())
    }

    fn validate_shape(&self) -> Result<(), PlanError> {
        let count = usize::from(!self.stages.is_empty())
            + usize::from(self.arrival.is_some())
            + usize::from(self.capacity.is_some());
        if count != 1 {
            return Err(self.invalid(
                "",
                "a plan needs exactly one load shape: [[stages]], [arrival] or [capacity]".into(),
            ));
        }
        if matches!(self.run_time, Some(d) if d.0.is_zero()) {
            return Err(self.invalid("run_time", "`run_time` must be positive".into()));
        }
        for s in &self.stages {
            if s.duration.0.is_zero() {
                return Err(self.invalid("[[stages]]", "stage duration must be positive".into()));
            }
            if matches!(s.spawn_rate, Some(r) if !(r > 0.0 && r.is_finite())) {
                return Err(self.invalid("spawn_rate", "`spawn_rate` must be positive".into()));
            }
        }
        if self.stages.iter().all(|s| s.users == 0) && !self.stages.is_empty() {
            return Err(self.invalid("[[stages]]", "every stage has 0 users".into()));
        }
        if let Some(a) = &self.arrival {
            if a.max_users == 0 {
                return Err(self.invalid("max_users", "`arrival.max_users` must be > 0".into()));
            }
            if a.stages.is_empty() {
                return Err(self.invalid("[arrival]", "`arrival.stages` is empty".into()));
            }
            for s in &a.stages {
                let rates = [Some(s.rate), s.ramp_to];
                if s.duration.0.is_zero()
                    || rates
                        .iter()
                        .flatten()
                        .any(|r| !(*r >= 0.0 && r.is_finite()))
                {
                    return Err(self.invalid(
                        "rate",
                        "arrival stages need a positive duration and rates >= 0".into(),
                    ));
                }
            }
            if a.stages
                .iter()
                .all(|s| s.rate == 0.0 && s.ramp_to.unwrap_or(0.0) == 0.0)
            {
                return Err(self.invalid("rate", "every arrival rate is 0".into()));
            }
        }
        if let Some(c) = &self.capacity {
            if c.start_users == 0 || c.step_users == 0 || c.max_users < c.start_users {
                return Err(self.invalid(
                    "[capacity]",
                    "capacity needs start_users > 0, step_users > 0, max_users >= start_users"
                        .into(),
                ));
            }
            if c.step_every.0.is_zero() {
                return Err(self.invalid("step_every", "`step_every` must be positive".into()));
            }
            if matches!(c.stop_error_rate, Some(r) if !(r > 0.0 && r <= 1.0)) {
                return Err(self.invalid(
                    "stop_error_rate",
                    "`stop_error_rate` is a fraction in (0, 1], e.g. 0.05 for 5 %".into(),
                ));
            }
            if matches!(c.stop_p95_ms, Some(p) if p <= 0.0) {
                return Err(self.invalid("stop_p95_ms", "`stop_p95_ms` must be positive".into()));
            }
        }
        Ok(())
    }

    fn validate_users(&self) -> Result<(), PlanError> {
        if self.users.is_empty() {
            return Err(self.invalid("", "a plan needs at least one [[users]] class".into()));
        }
        let mut seen = BTreeSet::new();
        for class in &self.users {
            let at = format!("\"{}\"", class.name);
            if !seen.insert(class.name.as_str()) {
                return Err(self.invalid(&at, format!("duplicate user class `{}`", class.name)));
            }
            if class.weight == 0 {
                return Err(
                    self.invalid(&at, format!("class `{}`: weight must be > 0", class.name))
                );
            }
            match class.wait {
                Wait::Between([a, b]) if !(a >= 0.0 && b >= a && b.is_finite()) => {
                    return Err(self.invalid(
                        "between",
                        format!("class `{}`: wait between needs 0 <= min <= max", class.name),
                    ));
                }
                Wait::Constant(s) | Wait::Pacing(s) if !(s >= 0.0 && s.is_finite()) => {
                    return Err(
                        self.invalid("wait", format!("class `{}`: wait must be >= 0", class.name))
                    );
                }
                _ => {}
            }
            if class.tasks.is_empty() {
                return Err(self.invalid(&at, format!("class `{}` has no tasks", class.name)));
            }
            for task in &class.tasks {
                if task.weight == 0 {
                    return Err(self.invalid(
                        "weight = 0",
                        format!("class `{}`: task weights must be > 0", class.name),
                    ));
                }
                if task.steps.is_empty() {
                    return Err(self.invalid(
                        &task.name,
                        format!("class `{}`: a task has no steps", class.name),
                    ));
                }
            }
            self.validate_steps(class)?;
        }
        Ok(())
    }

    fn validate_steps(&self, class: &UserClass) -> Result<(), PlanError> {
        let steps: Vec<&Step> = class
            .on_start
            .iter()
            .chain(class.tasks.iter().flat_map(|t| t.steps.iter()))
            .collect();
        // Variables this class can ever have: plan vars, declared params, captures and sets.
        let mut known: BTreeSet<&str> = self.vars.keys().map(String::as_str).collect();
        known.extend(self.params.iter().map(String::as_str));
        known.extend(BUILTIN_VARS);
        for s in &steps {
            known.extend(s.capture.iter().map(|c| c.var.as_str()));
            known.extend(s.set.keys().map(String::as_str));
        }
        for s in &steps {
            let path = s.path.source();
            if !(path.starts_with('/')
                || path.starts_with("http://")
                || path.starts_with("https://")
                || path.starts_with("{{"))
            {
                return Err(self.invalid(
                    path,
                    format!("path `{path}` must start with `/`, `http://` or a `{{{{var}}}}`"),
                ));
            }
            let mut refs: Vec<&str> = s.path.refs().collect();
            refs.extend(s.headers.values().flat_map(Template::refs));
            refs.extend(s.set.values().flat_map(Template::refs));
            refs.extend(s.when.iter().map(String::as_str));
            if let Some(b) = &s.body {
                refs.extend(b.refs());
            }
            if let Some(unknown) = refs.iter().find(|r| !known.contains(**r)) {
                return Err(self.invalid(
                    &format!("{{{{{unknown}"),
                    format!(
                        "class `{}`: step `{}` uses `{unknown}`, which is never captured, set, \
                         or declared in `vars`/`params`",
                        class.name, path
                    ),
                ));
            }
            if matches!(s.probability, Some(p) if !(p > 0.0 && p <= 1.0)) {
                return Err(self.invalid("probability", "`probability` must be in (0, 1]".into()));
            }
            if matches!(s.think, Some(t) if !(t >= 0.0 && t.is_finite())) {
                return Err(self.invalid("think", "`think` must be >= 0 seconds".into()));
            }
            self.validate_polling(s)?;
            for c in &s.capture {
                let pointers = [c.pointer.as_str(), c.then.as_str()];
                let ok = pointers.iter().all(|p| p.is_empty() || p.starts_with('/'))
                    && c.filter.keys().all(|p| p.starts_with('/'));
                if !ok {
                    return Err(self.invalid(
                        &c.var,
                        format!("capture `{}`: JSON pointers start with `/`", c.var),
                    ));
                }
                if !is_ident(&c.var) {
                    return Err(self.invalid(
                        &c.var,
                        format!("capture: `{}` is not a variable name", c.var),
                    ));
                }
                if c.pick.is_none() && (!c.filter.is_empty() || !c.then.is_empty()) {
                    return Err(self.invalid(
                        &c.var,
                        format!("capture `{}`: `where`/`then` need `pick`", c.var),
                    ));
                }
            }
            for j in &s.checks.json {
                if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
                    return Err(self.invalid(&j.pointer, "JSON pointers start with `/`".into()));
                }
            }
        }
        Ok(())
    }

    fn validate_polling(&self, s: &Step) -> Result<(), PlanError> {
        let path = s.path.source();
        let Some(u) = &s.until else {
            if s.every.is_some() || s.timeout.is_some() || s.poll_name.is_some() {
                return Err(self.invalid(
                    path,
                    format!("step `{path}`: `every`, `timeout` and `poll_name` need `until`"),
                ));
            }
            return Ok(());
        };
        if !(u.pointer.is_empty() || u.pointer.starts_with('/')) {
            return Err(self.invalid(&u.pointer, "JSON pointers start with `/`".into()));
        }
        let conditions = [u.is_in.is_some(), u.not_in.is_some(), u.equals.is_some()];
        if conditions.iter().filter(|c| **c).count() != 1 {
            return Err(self.invalid(
                "until",
                format!("step `{path}`: `until` needs exactly one of `in`, `not_in`, `equals`"),
            ));
        }
        if s.every.is_some_and(|d| d.0.is_zero()) || s.timeout.is_some_and(|d| d.0.is_zero()) {
            return Err(self.invalid(
                "every",
                format!("step `{path}`: `every` and `timeout` must be positive"),
            ));
        }
        Ok(())
    }

    /// Gives every step the index of its statistics key (and a polling step the key of its
    /// individual requests).
    fn assign_keys(&mut self) {
        let mut keys: Vec<Key> = Vec::new();
        let mut intern = |key: Key| {
            keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            })
        };
        let mut index = 0;
        for class in &mut self.users {
            let steps = class
                .on_start
                .iter_mut()
                .chain(class.tasks.iter_mut().flat_map(|t| t.steps.iter_mut()));
            for s in steps {
                let path = s.path.source().to_string();
                s.index = index;
                index += 1;
                let request = |name: String| Key {
                    method: s.method.clone(),
                    name,
                    kind: KeyKind::Request,
                };
                if s.until.is_some() {
                    let poll = s.poll_name.clone().unwrap_or_else(|| path.clone());
                    s.poll_key = intern(request(poll));
                    s.key = intern(Key {
                        method: s.method.clone(),
                        name: s.name.clone().unwrap_or_else(|| format!("{path} [done]")),
                        kind: KeyKind::Completion,
                    });
                } else {
                    s.key = intern(request(s.name.clone().unwrap_or(path)));
                    s.poll_key = s.key;
                }
            }
        }
        self.request_keys = keys;
    }

    /// The most users the plan's shape asks for.
    pub fn target_users(&self) -> u32 {
        match self.shape() {
            ShapeRef::Stages(st) => st.iter().map(|s| s.users).max().unwrap_or(0),
            ShapeRef::Arrival(a) => a.max_users,
            ShapeRef::Capacity(c) => c.max_users,
        }
    }
}

/// The short mixed plan `pique demo` runs (loadtests/smoke/mixed.toml, compiled in so the demo
/// works from any directory): 60/25/10/5 reads/portal/checkout/paid checkout, <= 10 s.
pub const DEMO_PLAN: &str = include_str!("../../../loadtests/smoke/mixed.toml");

/// Parses [`DEMO_PLAN`].
pub fn demo_plan() -> Result<Plan, PlanError> {
    Plan::from_toml_str(DEMO_PLAN, "loadtests/smoke/mixed.toml (built in)")
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a host is an `http://` or `https://` URL we can send to.
pub fn check_host(host: &str) -> Result<(), String> {
    let url = url::Url::parse(host).map_err(|e| format!("bad host `{host}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "host `{host}`: only http:// and https:// are supported"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[[stages]]
duration = "10s"
users = 2
[[users]]
name = "U"
[[users.tasks]]
[[users.tasks.steps]]
path = "/x"
"#;

    #[test]
    fn the_demo_plan_is_built_in() {
        let p = demo_plan().unwrap();
        assert_eq!(p.name, "mixed-smoke");
    }

    #[test]
    fn minimal_plan_parses() {
        let p = Plan::from_toml_str(MINIMAL, "t.toml").unwrap();
        assert_eq!(p.request_keys.len(), 1);
        assert_eq!(
            (
                p.request_keys[0].method.as_str(),
                p.request_keys[0].name.as_str()
            ),
            ("GET", "/x")
        );
        assert!(matches!(p.shape(), ShapeRef::Stages(s) if s.len() == 1));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let bad = MINIMAL.replace("users = 2", "users = \"two\"");
        let e = Plan::from_toml_str(&bad, "t.toml").unwrap_err();
        assert_eq!(e.line(), Some(5), "{e}");
        assert!(e.to_string().starts_with("t.toml:5:"), "{e}");
    }

    #[test]
    fn unknown_variables_are_reported_with_a_line() {
        let bad = MINIMAL.replace("path = \"/x\"", "path = \"/x/{{show_id}}/\"");
        let e = Plan::from_toml_str(&bad, "t.toml").unwrap_err();
        assert!(e.to_string().contains("show_id"), "{e}");
        assert_eq!(e.line(), Some(10));
    }

    #[test]
    fn zero_weights_and_missing_shapes_are_rejected() {
        let bad = MINIMAL.replace("name = \"U\"", "name = \"U\"\nweight = 0");
        assert!(Plan::from_toml_str(&bad, "t").is_err());
        let bad = MINIMAL.replace("[[stages]]\nduration = \"10s\"\nusers = 2\n", "");
        let e = Plan::from_toml_str(&bad, "t").unwrap_err();
        assert!(e.to_string().contains("load shape"), "{e}");
    }
}
