//! Artillery configs, run as they are: `pique load run some.yml` converts the YAML into a plan
//! (the same TOML `pique load convert some.yml` prints) and runs it on the same engine.
//!
//! Supported: `config.target`, `config.phases` (`duration`, `arrivalRate`, `rampTo`,
//! `arrivalCount`, `pause`, `maxVusers`, `name`), `config.http.timeout`, `config.defaults.headers`,
//! `config.ensure` (`p50`/`median`, `p95`, `p99`, `max`, `maxErrorRate`, and
//! `thresholds: [{ "http.response_time.p95": 200 }]`), `config.processor` (a warning: pique runs
//! no JavaScript), and `scenarios` with `name`, `weight` and a `flow` of `get`, `post`, `put`,
//! `patch`, `delete`, `head`, `options` (`url`, `json`, `headers`, `capture` with a JSONPath
//! `json` and `as`, `expect` with `statusCode` and `hasProperty`), `think` and `loop` (with
//! `count`). Anything else is an error that names the key.
//!
//! Artillery's arrivals are an open model: every arrival runs its scenario once, whatever the
//! server does, so the plan is an `[arrival]` plan. Artillery does not count a response as an
//! error because of its status code; neither does the converted plan, except for 5xx: a server
//! error is a failure of the server, and the grading is about the server.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_yaml::{Mapping, Value as Yaml};

use crate::duration::{format_duration, parse_duration};
use crate::error::{Location, PlanError};

/// A converted config: the plan's TOML and what the user should know about the conversion.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The equivalent plan, as TOML.
    pub toml: String,
    /// Things that were accepted but not run (a processor file, `log` steps).
    pub warnings: Vec<String>,
}

/// Whether `path` names a YAML file (Artillery's format).
pub fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// Most times a `loop` is unrolled.
const MAX_LOOP: u64 = 100;
/// Busy users allowed when no phase says `maxVusers`.
const DEFAULT_MAX_USERS: u32 = 1000;

#[derive(Serialize)]
struct TomlPlan {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout: Option<String>,
    arrival: TomlArrival,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    thresholds: BTreeMap<String, Vec<String>>,
    users: Vec<TomlUser>,
}

#[derive(Serialize)]
struct TomlArrival {
    max_users: u32,
    stages: Vec<TomlStage>,
}

#[derive(Serialize)]
struct TomlStage {
    duration: String,
    rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ramp_to: Option<f64>,
}

#[derive(Serialize)]
struct TomlUser {
    name: String,
    weight: u32,
    tasks: Vec<TomlTask>,
}

#[derive(Serialize)]
struct TomlTask {
    name: String,
    steps: Vec<TomlStep>,
}

#[derive(Serialize, Clone)]
struct TomlStep {
    method: String,
    path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    capture: Vec<TomlCapture>,
    checks: TomlChecks,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<f64>,
}

#[derive(Serialize, Clone)]
struct TomlCapture {
    var: String,
    pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pick: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    then: String,
}

#[derive(Serialize, Clone, Default)]
struct TomlChecks {
    status: Vec<toml::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    json: Vec<TomlJsonCheck>,
}

#[derive(Serialize, Clone)]
struct TomlJsonCheck {
    pointer: String,
    exists: bool,
}

/// Converts an Artillery YAML config (read from `origin`; a relative `processor` is looked
/// up next to it) into a plan.
pub fn convert(src: &str, origin: &str) -> Result<Converted, PlanError> {
    let mut c = Converter {
        src,
        origin,
        warnings: Vec::new(),
    };
    let doc: Yaml = serde_yaml::from_str(src).map_err(|e| PlanError::Syntax {
        origin: origin.to_string(),
        location: e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        }),
        message: e.to_string(),
    })?;
    let root = c.map(&doc, "the document")?;
    c.only(root, "", &["config", "scenarios"])?;
    let config = c.map(
        root.get("config")
            .ok_or_else(|| c.err("config", "an Artillery config needs `config`".into()))?,
        "config",
    )?;
    c.only(
        config,
        "config.",
        &[
            "target",
            "phases",
            "processor",
            "http",
            "defaults",
            "ensure",
            "plugins",
        ],
    )?;
    if config.get("plugins").is_some() {
        return Err(c.err(
            "plugins",
            "config.plugins: plugins are not supported (pique grades the run itself; for \
             `expect`, write `expect` on the steps, which pique checks without the plugin)"
                .into(),
        ));
    }
    let host = match config.get("target") {
        Some(Yaml::String(t)) => Some(t.clone()),
        Some(_) => return Err(c.err("target", "config.target must be a URL".into())),
        None => None,
    };
    if let Some(p) = config.get("processor") {
        c.processor(p, origin);
    }
    let request_timeout = c.http(config)?;
    let default_headers = c.default_headers(config)?;
    let (arrival, phase_names) = c.phases(config)?;
    let thresholds = c.ensure(config)?;
    let scenarios = match root.get("scenarios") {
        Some(Yaml::Sequence(s)) if !s.is_empty() => s,
        _ => {
            return Err(c.err(
                "scenarios",
                "an Artillery config needs a non-empty `scenarios` list".into(),
            ));
        }
    };
    let mut users = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        users.push(c.scenario(sc, i, &default_headers)?);
    }
    let stem = Path::new(origin)
        .file_stem()
        .map_or_else(|| "artillery".into(), |s| s.to_string_lossy().into_owned());
    let plan = TomlPlan {
        name: stem,
        description: format!("Converted from the Artillery config {origin}: {phase_names}."),
        host,
        request_timeout,
        arrival,
        thresholds,
        users,
    };
    let body = toml::to_string_pretty(&plan)
        .map_err(|e| c.err("", format!("cannot write the plan: {e}")))?;
    let mut toml = format!(
        "# Converted from {origin} by `pique load convert`.\n\
         # Artillery counts no status code as an error; this plan accepts 1xx-4xx and fails 5xx\n\
         # (or exactly the `expect`ed statuses).\n"
    );
    for w in &c.warnings {
        toml.push_str(&format!("# warning: {w}\n"));
    }
    toml.push('\n');
    toml.push_str(&body);
    Ok(Converted {
        toml,
        warnings: c.warnings,
    })
}

struct Converter<'a> {
    src: &'a str,
    origin: &'a str,
    warnings: Vec<String>,
}

impl Converter<'_> {
    fn err(&self, needle: &str, message: String) -> PlanError {
        PlanError::Invalid {
            origin: self.origin.to_string(),
            location: Location::find(self.src, needle),
            message,
        }
    }

    fn map<'v>(&self, v: &'v Yaml, what: &str) -> Result<&'v Mapping, PlanError> {
        v.as_mapping()
            .ok_or_else(|| self.err("", format!("{what} must be a mapping")))
    }

    /// Errors on any key of `m` outside `known`, naming it with its path.
    fn only(&self, m: &Mapping, path: &str, known: &[&str]) -> Result<(), PlanError> {
        for key in m.keys() {
            let k = key.as_str().unwrap_or("?");
            if !known.contains(&k) {
                return Err(self.err(
                    k,
                    format!(
                        "{path}{k}: not supported by pique (supported here: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn processor(&mut self, p: &Yaml, origin: &str) {
        let name = p.as_str().unwrap_or("?");
        let file = Path::new(origin)
            .parent()
            .unwrap_or(Path::new("."))
            .join(name);
        let what = if file.exists() {
            "is not run"
        } else {
            "was not found and is not needed"
        };
        self.warnings.push(format!(
            "config.processor {name} {what}: pique runs no JavaScript, so flows cannot call its \
             functions"
        ));
    }

    fn http(&self, config: &Mapping) -> Result<Option<String>, PlanError> {
        let Some(http) = config.get("http") else {
            return Ok(None);
        };
        let http = self.map(http, "config.http")?;
        self.only(http, "config.http.", &["timeout"])?;
        Ok(match http.get("timeout") {
            Some(t) => Some(format_duration(self.seconds(t, "config.http.timeout")?)),
            None => None,
        })
    }

    fn default_headers(&self, config: &Mapping) -> Result<BTreeMap<String, String>, PlanError> {
        let Some(d) = config.get("defaults") else {
            return Ok(BTreeMap::new());
        };
        let d = self.map(d, "config.defaults")?;
        self.only(d, "config.defaults.", &["headers"])?;
        match d.get("headers") {
            Some(h) => self.headers(h, "config.defaults.headers"),
            None => Ok(BTreeMap::new()),
        }
    }

    fn headers(&self, v: &Yaml, path: &str) -> Result<BTreeMap<String, String>, PlanError> {
        let m = self.map(v, path)?;
        m.iter()
            .map(|(k, v)| {
                let k = k.as_str().unwrap_or("?").to_string();
                let v = match v {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => return Err(self.err(&k, format!("{path}.{k}: a header is text"))),
                };
                Ok((k, v))
            })
            .collect()
    }

    /// A duration in seconds (`60`) or as text (`"2m"`, `"1h30m"`).
    fn seconds(&self, v: &Yaml, path: &str) -> Result<std::time::Duration, PlanError> {
        let parsed = match v {
            Yaml::Number(n) => n
                .as_f64()
                .filter(|s| *s >= 0.0)
                .map(std::time::Duration::from_secs_f64)
                .ok_or_else(|| format!("bad duration {n}")),
            Yaml::String(s) => parse_duration(s),
            _ => Err("a duration is a number of seconds or text like 2m".into()),
        };
        parsed.map_err(|e| {
            self.err(
                path.rsplit('.').next().unwrap_or(path),
                format!("{path}: {e}"),
            )
        })
    }

    fn number(&self, v: &Yaml, path: &str) -> Result<f64, PlanError> {
        v.as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                self.err(
                    path.rsplit('.').next().unwrap_or(path),
                    format!("{path}: expected a number >= 0"),
                )
            })
    }

    fn phases(&self, config: &Mapping) -> Result<(TomlArrival, String), PlanError> {
        let phases = match config.get("phases") {
            Some(Yaml::Sequence(p)) if !p.is_empty() => p,
            _ => {
                return Err(self.err(
                    "phases",
                    "config.phases: at least one phase (duration + arrivalRate) is needed".into(),
                ));
            }
        };
        let mut stages = Vec::new();
        let mut names = Vec::new();
        let mut max_users = None::<u32>;
        for (i, p) in phases.iter().enumerate() {
            let path = format!("config.phases[{i}]");
            let p = self.map(p, &path)?;
            self.only(
                p,
                &format!("{path}."),
                &[
                    "duration",
                    "arrivalRate",
                    "rampTo",
                    "arrivalCount",
                    "pause",
                    "maxVusers",
                    "name",
                ],
            )?;
            let name = p
                .get("name")
                .and_then(Yaml::as_str)
                .map_or_else(|| format!("phase {}", i + 1), str::to_string);
            if let Some(m) = p.get("maxVusers") {
                let m = self.number(m, &format!("{path}.maxVusers"))? as u32;
                max_users = Some(max_users.map_or(m, |x| x.max(m)));
            }
            let (duration, rate, ramp_to) = if let Some(pause) = p.get("pause") {
                (self.seconds(pause, &format!("{path}.pause"))?, 0.0, None)
            } else {
                let duration = self.seconds(
                    p.get("duration").ok_or_else(|| {
                        self.err("phases", format!("{path}: a phase needs `duration`"))
                    })?,
                    &format!("{path}.duration"),
                )?;
                if duration.is_zero() {
                    return Err(self.err("duration", format!("{path}.duration must be positive")));
                }
                match (p.get("arrivalRate"), p.get("arrivalCount")) {
                    (Some(r), None) => {
                        let rate = self.number(r, &format!("{path}.arrivalRate"))?;
                        let ramp = p
                            .get("rampTo")
                            .map(|x| self.number(x, &format!("{path}.rampTo")))
                            .transpose()?;
                        (duration, rate, ramp)
                    }
                    (None, Some(n)) => {
                        let n = self.number(n, &format!("{path}.arrivalCount"))?;
                        (duration, n / duration.as_secs_f64(), None)
                    }
                    _ => {
                        return Err(self.err(
                            "phases",
                            format!("{path}: give `arrivalRate` (or `arrivalCount`, or `pause`)"),
                        ));
                    }
                }
            };
            names.push(match ramp_to {
                Some(to) => format!(
                    "{name} ({} from {rate}/s to {to}/s)",
                    format_duration(duration)
                ),
                None => format!("{name} ({} at {rate}/s)", format_duration(duration)),
            });
            stages.push(TomlStage {
                duration: format_duration(duration),
                rate,
                ramp_to,
            });
        }
        Ok((
            TomlArrival {
                max_users: max_users.unwrap_or(DEFAULT_MAX_USERS).max(1),
                stages,
            },
            names.join(", "),
        ))
    }

    fn ensure(&self, config: &Mapping) -> Result<BTreeMap<String, Vec<String>>, PlanError> {
        let mut out = BTreeMap::new();
        let Some(e) = config.get("ensure") else {
            return Ok(out);
        };
        let e = self.map(e, "config.ensure")?;
        self.only(
            e,
            "config.ensure.",
            &[
                "p50",
                "median",
                "p95",
                "p99",
                "p999",
                "max",
                "min",
                "maxErrorRate",
                "thresholds",
            ],
        )?;
        let mut list = Vec::new();
        for (k, v) in e {
            let k = k.as_str().unwrap_or("?");
            let path = format!("config.ensure.{k}");
            match k {
                "thresholds" => {
                    let Yaml::Sequence(items) = v else {
                        return Err(self.err(k, format!("{path}: a list of {{metric: limit}}")));
                    };
                    for item in items {
                        let m = self.map(item, &path)?;
                        for (metric, limit) in m {
                            let metric = metric.as_str().unwrap_or("?");
                            let stat = metric.strip_prefix("http.response_time.").ok_or_else(|| {
                                self.err(
                                    metric,
                                    format!(
                                        "{path}: `{metric}` is not supported (http.response_time.p95, .p99, .max ...)"
                                    ),
                                )
                            })?;
                            let ms = self.number(limit, &path)?;
                            list.push(format!("{} < {ms}ms", latency_stat(stat)));
                        }
                    }
                }
                "maxErrorRate" => {
                    let pct = self.number(v, &path)?;
                    list.push(format!("error_rate < {pct}%"));
                }
                stat => {
                    let ms = self.number(v, &path)?;
                    list.push(format!("{} < {ms}ms", latency_stat(stat)));
                }
            }
        }
        if !list.is_empty() {
            out.insert("*".to_string(), list);
        }
        Ok(out)
    }

    fn scenario(
        &mut self,
        sc: &Yaml,
        i: usize,
        default_headers: &BTreeMap<String, String>,
    ) -> Result<TomlUser, PlanError> {
        let path = format!("scenarios[{i}]");
        let m = self.map(sc, &path)?;
        self.only(m, &format!("{path}."), &["name", "weight", "flow"])?;
        let name = m
            .get("name")
            .and_then(Yaml::as_str)
            .map_or_else(|| format!("scenario {}", i + 1), str::to_string);
        let weight = match m.get("weight") {
            Some(w) => {
                let w = self.number(w, &format!("{path}.weight"))?;
                if w < 1.0 || w.fract() != 0.0 {
                    return Err(self.err("weight", format!("{path}.weight: a whole number >= 1")));
                }
                w as u32
            }
            None => 1,
        };
        let flow = match m.get("flow") {
            Some(Yaml::Sequence(f)) if !f.is_empty() => f,
            _ => return Err(self.err(&name, format!("{path}: a non-empty `flow` is needed"))),
        };
        let mut steps = Vec::new();
        self.flow(flow, &format!("{path}.flow"), default_headers, &mut steps)?;
        if steps.is_empty() {
            return Err(self.err(&name, format!("{path}: the flow sends no request")));
        }
        Ok(TomlUser {
            name: name.clone(),
            weight,
            tasks: vec![TomlTask { name, steps }],
        })
    }

    fn flow(
        &mut self,
        flow: &[Yaml],
        path: &str,
        default_headers: &BTreeMap<String, String>,
        steps: &mut Vec<TomlStep>,
    ) -> Result<(), PlanError> {
        for (j, item) in flow.iter().enumerate() {
            let p = format!("{path}[{j}]");
            let m = self.map(item, &p)?;
            if let Some(t) = m.get("think") {
                let secs = self.seconds(t, &format!("{p}.think"))?.as_secs_f64();
                let last = steps.last_mut().ok_or_else(|| {
                    self.err(
                        "think",
                        format!("{p}.think: a pause before the first request is not supported"),
                    )
                })?;
                last.think = Some(last.think.unwrap_or(0.0) + secs);
                continue;
            }
            if let Some(body) = m.get("loop") {
                self.only(m, &format!("{p}."), &["loop", "count"])?;
                let count = match m.get("count") {
                    Some(c) => self.number(c, &format!("{p}.count"))? as u64,
                    None => {
                        return Err(self.err(
                            "loop",
                            format!("{p}.loop: only loops with a `count` are supported (not `over` or endless loops)"),
                        ));
                    }
                };
                if count > MAX_LOOP {
                    return Err(self.err("count", format!("{p}.count: at most {MAX_LOOP}")));
                }
                let Yaml::Sequence(inner) = body else {
                    return Err(self.err("loop", format!("{p}.loop: a list of steps")));
                };
                let mut once = Vec::new();
                self.flow(inner, &format!("{p}.loop"), default_headers, &mut once)?;
                for _ in 0..count {
                    steps.extend(once.iter().cloned());
                }
                continue;
            }
            if let Some(msg) = m.get("log") {
                self.warnings.push(format!(
                    "{p}.log ({}) is not printed",
                    msg.as_str().unwrap_or("...")
                ));
                continue;
            }
            const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];
            let Some((method, req)) = METHODS.iter().find_map(|k| m.get(*k).map(|r| (*k, r)))
            else {
                let key = m.keys().next().and_then(Yaml::as_str).unwrap_or("?");
                return Err(self.err(
                    key,
                    format!(
                        "{p}.{key}: not supported by pique (a step is get, post, put, patch, delete, head, options, think, loop or log)"
                    ),
                ));
            };
            self.only(m, &format!("{p}."), &[method])?;
            steps.push(self.request(method, req, &format!("{p}.{method}"), default_headers)?);
        }
        Ok(())
    }

    fn request(
        &self,
        method: &str,
        req: &Yaml,
        path: &str,
        default_headers: &BTreeMap<String, String>,
    ) -> Result<TomlStep, PlanError> {
        let m = self.map(req, path)?;
        self.only(
            m,
            &format!("{path}."),
            &["url", "json", "headers", "capture", "expect", "name"],
        )?;
        let url = m
            .get("url")
            .and_then(Yaml::as_str)
            .ok_or_else(|| self.err(method, format!("{path}: a request needs `url`")))?
            .to_string();
        let mut headers = default_headers.clone();
        if let Some(h) = m.get("headers") {
            headers.extend(self.headers(h, &format!("{path}.headers"))?);
        }
        let body = match m.get("json") {
            Some(j) => Some(self.json(j, &format!("{path}.json"))?),
            None => None,
        };
        let mut capture = Vec::new();
        match m.get("capture") {
            None => {}
            Some(Yaml::Sequence(list)) => {
                for c in list {
                    capture.push(self.capture(c, &format!("{path}.capture"))?);
                }
            }
            Some(c) => capture.push(self.capture(c, &format!("{path}.capture"))?),
        }
        let checks = match m.get("expect") {
            Some(e) => self.expect(e, &format!("{path}.expect"))?,
            None => TomlChecks {
                status: ["1xx", "2xx", "3xx", "4xx"]
                    .iter()
                    .map(|c| toml::Value::String((*c).to_string()))
                    .collect(),
                json: Vec::new(),
            },
        };
        Ok(TomlStep {
            method: method.to_ascii_uppercase(),
            path: url,
            headers,
            body,
            capture,
            checks,
            think: None,
        })
    }

    fn json(&self, v: &Yaml, path: &str) -> Result<serde_json::Value, PlanError> {
        let json = serde_json::to_value(v)
            .map_err(|e| self.err("json", format!("{path}: not JSON: {e}")))?;
        if contains_null(&json) {
            return Err(self.err(
                "json",
                format!("{path}: null values cannot be written in a plan"),
            ));
        }
        Ok(json)
    }

    fn capture(&self, c: &Yaml, path: &str) -> Result<TomlCapture, PlanError> {
        let m = self.map(c, path)?;
        self.only(m, &format!("{path}."), &["json", "as"])?;
        let var = m
            .get("as")
            .and_then(Yaml::as_str)
            .ok_or_else(|| self.err("capture", format!("{path}: a capture needs `as`")))?;
        let expr = m.get("json").and_then(Yaml::as_str).ok_or_else(|| {
            self.err(
                "capture",
                format!("{path}: only `json` captures are supported (not header, regexp, xpath)"),
            )
        })?;
        let (pointer, pick, then) = json_path(expr).ok_or_else(|| {
            self.err(
                expr,
                format!(
                    "{path}.json: `{expr}` is beyond the JSONPath pique reads ($, $.a.b, $[0], $.a[*].b)"
                ),
            )
        })?;
        Ok(TomlCapture {
            var: var.to_string(),
            pointer,
            pick: pick.then(|| "random".to_string()),
            then,
        })
    }

    fn expect(&self, e: &Yaml, path: &str) -> Result<TomlChecks, PlanError> {
        let items: Vec<&Yaml> = match e {
            Yaml::Sequence(s) => s.iter().collect(),
            other => vec![other],
        };
        let mut checks = TomlChecks::default();
        for item in items {
            let m = self.map(item, path)?;
            self.only(m, &format!("{path}."), &["statusCode", "hasProperty"])?;
            if let Some(code) = m.get("statusCode") {
                let codes: Vec<&Yaml> = match code {
                    Yaml::Sequence(s) => s.iter().collect(),
                    one => vec![one],
                };
                for c in codes {
                    let n = self.number(c, &format!("{path}.statusCode"))?;
                    checks.status.push(toml::Value::Integer(n as i64));
                }
            }
            if let Some(p) = m.get("hasProperty").and_then(Yaml::as_str) {
                let pointer = p.split('.').fold(String::new(), |mut acc, seg| {
                    acc.push('/');
                    acc.push_str(seg);
                    acc
                });
                checks.json.push(TomlJsonCheck {
                    pointer,
                    exists: true,
                });
            }
        }
        if checks.status.is_empty() {
            checks.status = ["1xx", "2xx", "3xx", "4xx"]
                .iter()
                .map(|c| toml::Value::String((*c).to_string()))
                .collect();
        }
        Ok(checks)
    }
}

fn contains_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(contains_null),
        serde_json::Value::Object(o) => o.values().any(contains_null),
        _ => false,
    }
}

/// `p95` -> `p95`, `median` -> `p50`, `max` -> `max`.
fn latency_stat(stat: &str) -> String {
    match stat {
        "median" => "p50".into(),
        other => other.to_string(),
    }
}

/// Translates the JSONPath subset Artillery configs use into a JSON pointer: `$` -> ``,
/// `$.a.b` -> `/a/b`, `$[0].id` -> `/0/id`, `$["a b"]` -> `/a b`. A single `[*]` picks one
/// element at random, as Artillery does with several matches: `$.shows[*].id` -> pointer
/// `/shows`, pick random, then `/id`. Returns (pointer, pick, then).
pub fn json_path(expr: &str) -> Option<(String, bool, String)> {
    let rest = expr.trim().strip_prefix('$')?;
    let mut before = String::new();
    let mut after = String::new();
    let mut star = false;
    let mut chars = rest.chars().peekable();
    let push = |seg: &str, star: bool, before: &mut String, after: &mut String| {
        let escaped = seg.replace('~', "~0").replace('/', "~1");
        let out = if star { after } else { before };
        out.push('/');
        out.push_str(&escaped);
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut seg = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    seg.push(n);
                    chars.next();
                }
                if seg.is_empty() || seg == "*" {
                    return None;
                }
                push(&seg, star, &mut before, &mut after);
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if inner == "*" {
                    if star {
                        return None;
                    }
                    star = true;
                } else if let Some(q) = inner
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                {
                    push(q, star, &mut before, &mut after);
                } else if inner.parse::<usize>().is_ok() {
                    push(inner, star, &mut before, &mut after);
                } else {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some((before, star, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
config:
  target: "http://localhost:8080"
  phases:
    - duration: 60
      arrivalRate: 10
      name: "Warm up"
    - duration: 120
      arrivalRate: 50
      name: "Sustained load"
  processor: "./processor.js"
scenarios:
  - name: "Show browsing"
    weight: 70
    flow:
      - get:
          url: "/api/v1/shows/"
      - think: 3
      - get:
          url: "/api/v1/featured-shows/"
  - name: "Checkout flow"
    weight: 30
    flow:
      - get:
          url: "/api/v1/shows/"
      - think: 5
      - post:
          url: "/checkout/"
          json:
            show_id: 1
            tickets: [{ ticket_id: 1, quantity: 2 }]
"#;

    #[test]
    fn the_original_sample_converts_to_an_open_model_plan() {
        let c = convert(SAMPLE, "loadtests/artillery-sample.yml").unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("processor.js"));
        let plan = crate::Plan::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| {
            panic!("{e}\n{}", c.toml);
        });
        let crate::plan::ShapeRef::Arrival(a) = plan.shape() else {
            panic!("not an open model")
        };
        assert_eq!(a.stages.len(), 2);
        assert_eq!(
            (a.stages[0].rate, a.stages[0].duration.0.as_secs()),
            (10.0, 60)
        );
        assert_eq!(
            (a.stages[1].rate, a.stages[1].duration.0.as_secs()),
            (50.0, 120)
        );
        assert_eq!(plan.host.as_deref(), Some("http://localhost:8080"));
        let weights: Vec<u32> = plan.users.iter().map(|u| u.weight).collect();
        assert_eq!(weights, [70, 30]);
        let checkout = &plan.users[1].tasks[0].steps;
        assert_eq!(checkout[0].think, Some(5.0));
        assert_eq!(checkout[1].method, "POST");
        assert!(checkout[1].body.is_some());
        assert!(c.toml.contains("Warm up (1m at 10/s)"), "{}", c.toml);
    }

    #[test]
    fn unsupported_keys_are_errors_that_name_them() {
        let bad = SAMPLE.replace("  processor:", "  variables: { a: [1] }\n  processor:");
        let e = convert(&bad, "x.yml").unwrap_err().to_string();
        assert!(e.contains("config.variables"), "{e}");
        let bad = SAMPLE.replace("      - think: 5\n", "      - function: \"pick\"\n");
        let e = convert(&bad, "x.yml").unwrap_err().to_string();
        assert!(e.contains("scenarios[1].flow[1].function"), "{e}");
        let bad = SAMPLE.replace(
            "url: \"/checkout/\"",
            "url: \"/checkout/\"\n          form: { a: 1 }",
        );
        let e = convert(&bad, "x.yml").unwrap_err().to_string();
        assert!(e.contains(".post.form"), "{e}");
        assert!(convert("config: [", "x.yml").is_err());
    }

    #[test]
    fn loops_captures_expectations_and_ensure() {
        let src = r#"
config:
  target: "http://h"
  phases: [{ duration: "2m", arrivalRate: 1, rampTo: 5 }, { pause: 10 }]
  ensure: { p95: 200, maxErrorRate: 1, thresholds: [{ "http.response_time.p99": 900 }] }
  defaults: { headers: { x-team: load } }
scenarios:
  - flow:
      - get:
          url: "/shows/"
          capture: [{ json: "$[*].id", as: "id" }, { json: "$.meta.count", as: "n" }]
          expect: [{ statusCode: 200 }, { hasProperty: "meta.count" }]
      - loop:
          - get: { url: "/shows/{{ id }}/" }
        count: 3
      - log: "done"
"#;
        let c = convert(src, "x.yml").unwrap();
        let plan = crate::Plan::from_toml_str(&c.toml, "converted").unwrap_or_else(|e| {
            panic!("{e}\n{}", c.toml);
        });
        let steps = &plan.users[0].tasks[0].steps;
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0].capture[0].pointer, "");
        assert_eq!(steps[0].capture[0].then, "/id");
        assert_eq!(steps[0].capture[1].pointer, "/meta/count");
        assert_eq!(steps[0].checks.json[0].pointer, "/meta/count");
        assert_eq!(steps[0].headers.len(), 1);
        assert!(steps[0].checks.status[0].matches(200) && !steps[0].checks.status[0].matches(404));
        // Without `expect`, 4xx is a response, 5xx a failure.
        assert!(steps[1].checks.status.iter().any(|s| s.matches(404)));
        assert!(!steps[1].checks.status.iter().any(|s| s.matches(503)));
        let t: Vec<&str> = plan.thresholds["*"]
            .iter()
            .map(|t| t.source.as_str())
            .collect();
        assert_eq!(t, ["p95 < 200ms", "error_rate < 1%", "p99 < 900ms"]);
        let crate::plan::ShapeRef::Arrival(a) = plan.shape() else {
            panic!()
        };
        assert_eq!(a.stages[0].ramp_to, Some(5.0));
        assert_eq!(a.stages[1].rate, 0.0);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_path("$"), Some((String::new(), false, String::new())));
        assert_eq!(
            json_path("$.a.b"),
            Some(("/a/b".into(), false, String::new()))
        );
        assert_eq!(
            json_path("$[0].id"),
            Some(("/0/id".into(), false, String::new()))
        );
        assert_eq!(
            json_path("$[\"a/b\"]"),
            Some(("/a~1b".into(), false, String::new()))
        );
        assert_eq!(
            json_path("$.shows[*].id"),
            Some(("/shows".into(), true, "/id".into()))
        );
        assert_eq!(json_path("$..id"), None);
        assert_eq!(json_path("$[?(@.a)]"), None);
        assert_eq!(json_path("id"), None);
    }
}
