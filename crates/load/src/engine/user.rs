//! One simulated user: its variables and RNG, and how it runs steps, tasks and waits.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

use super::Shared;
use super::http::{Connections, HttpError, OutRequest};
use crate::plan::{Capture, Checks, Pick, Step, Wait};
use crate::stats::ErrorKind;
use crate::template::{Ctx, RenderError};

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepResult {
    /// The request was sent and passed its checks.
    Ok,
    /// The request was sent and failed.
    Failed,
    /// Not run: `when` unmet or `probability` said no (not counted).
    NotRun,
    /// Not run because a variable was missing (counted as skipped).
    Skipped,
    /// The run is stopping (budget exhausted or cancelled).
    Stopped,
}

/// A simulated user of one class.
pub(crate) struct VirtualUser {
    /// Index of the user class in the plan.
    pub class: usize,
    id: u64,
    vars: HashMap<String, Value>,
    rng: SmallRng,
    iteration: u64,
    /// This user's own keep-alive connections.
    http: Connections,
}

impl VirtualUser {
    /// A fresh user with the run's initial variables.
    pub fn new(sh: &Shared, class: usize) -> Self {
        Self {
            class,
            id: sh.next_user_id(),
            vars: sh.init_vars.clone(),
            rng: SmallRng::seed_from_u64(rand::random()),
            iteration: 0,
            http: Connections::new(sh.timeout),
        }
    }

    /// Runs the class's `on_start` steps once.
    pub async fn on_start(&mut self, sh: &Shared) {
        let class = &sh.plan.users[self.class];
        for step in &class.on_start {
            if self.run_step(sh, step, None).await == StepResult::Stopped {
                return;
            }
        }
    }

    /// Closed model: start, then run weighted tasks with waits until the run stops.
    pub async fn run_closed(mut self, sh: std::sync::Arc<Shared>) {
        self.on_start(&sh).await;
        let wait = sh.plan.users[self.class].wait;
        while !sh.stop.is_cancelled() {
            let started = Instant::now();
            self.run_task(&sh, None).await;
            let pause = self.wait_time(wait, started.elapsed());
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = sh.stop.cancelled() => break,
                }
            } else {
                // Zero wait: yield anyway. A task that sent nothing never awaited I/O and could
                // monopolise the worker; and even after a request, yielding lets hyper's
                // connection tasks run before this user queues its next request, which measured
                // faster (and fairer) than looping straight back.
                tokio::task::yield_now().await;
            }
        }
    }

    /// Picks a task by weight and runs its steps. In the open model `intended` is when the
    /// iteration was scheduled: the first request is timed from then, so queueing delay caused
    /// by a slow server shows up in the latency (no coordinated omission).
    /// Returns whether any request was sent.
    pub async fn run_task(&mut self, sh: &Shared, intended: Option<Instant>) -> bool {
        self.iteration += 1;
        let class = &sh.plan.users[self.class];
        let cum = &sh.task_weights[self.class];
        let total = cum.last().copied().unwrap_or(1);
        let r = self.rng.random_range(0..total);
        let idx = cum.partition_point(|c| *c <= r);
        let Some(task) = class.tasks.get(idx) else {
            return false;
        };
        let mut intended = intended;
        let mut sent = false;
        for step in &task.steps {
            let res = self.run_step(sh, step, intended).await;
            if matches!(res, StepResult::Ok | StepResult::Failed) {
                intended = None;
                sent = true;
            }
            match res {
                StepResult::Stopped => break,
                StepResult::Failed if task.stop_on_failure => break,
                _ => {}
            }
        }
        sent
    }

    fn wait_time(&mut self, wait: Wait, task_took: Duration) -> Duration {
        let secs = match wait {
            Wait::Constant(s) => s,
            Wait::Between([a, b]) if b > a => self.rng.random_range(a..=b),
            Wait::Between([a, _]) => a,
            Wait::Pacing(p) => (p - task_took.as_secs_f64()).max(0.0),
        };
        Duration::from_secs_f64(secs)
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            vars: &self.vars,
            rng: &mut self.rng,
            user_id: self.id,
            iteration: self.iteration,
        }
    }

    /// Renders, sends and judges one step.
    pub async fn run_step(
        &mut self,
        sh: &Shared,
        step: &Step,
        intended: Option<Instant>,
    ) -> StepResult {
        if sh.stop.is_cancelled() {
            return StepResult::Stopped;
        }
        if !step.when.iter().all(|v| is_set(&self.vars, v)) {
            return StepResult::NotRun;
        }
        if let Some(p) = step.probability
            && self.rng.random::<f64>() >= p
        {
            return StepResult::NotRun;
        }
        let request = match self.build(sh, step) {
            Ok(r) => r,
            Err(_) => {
                sh.stats.skip(step.key);
                return StepResult::Skipped;
            }
        };
        if !sh.take_budget() {
            return StepResult::Stopped;
        }
        let start = intended.unwrap_or_else(Instant::now);
        let (outcome, bytes, json) = send(&mut self.http, request, needs_json(step)).await;
        let latency = start.elapsed();
        let error = match outcome {
            Err(e) => Some(e),
            Ok(status) => judge(&step.checks, status, latency, json.as_ref()),
        };
        let failed = error.is_some();
        sh.stats.record(step.key, latency, bytes, error);
        for c in &step.capture {
            let value = if failed {
                None
            } else {
                capture(c, json.as_ref(), &mut self.rng)
            };
            match value {
                Some(v) => self.vars.insert(c.var.clone(), v),
                // Unset rather than keep a stale value from an earlier iteration.
                None => self.vars.remove(&c.var),
            };
        }
        if let Some(t) = step.think.filter(|t| *t > 0.0) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(t)) => {}
                _ = sh.stop.cancelled() => return StepResult::Stopped,
            }
        }
        if failed {
            StepResult::Failed
        } else {
            StepResult::Ok
        }
    }

    /// Applies `set`, renders URL, headers and body.
    fn build(&mut self, sh: &Shared, step: &Step) -> Result<OutRequest, RenderError> {
        for (name, t) in &step.set {
            let v = t.render_value(&mut self.ctx())?;
            self.vars.insert(name.clone(), v);
        }
        let method = hyper::Method::from_bytes(step.method.as_bytes()).unwrap_or_default();
        let url = match sh.literal_urls.get(step.index) {
            Some(Some(url)) => url.clone(),
            _ => {
                let path = step.path.render(&mut self.ctx())?;
                let full = if path.starts_with("http://") || path.starts_with("https://") {
                    path
                } else {
                    format!("{}{}", sh.base, path)
                };
                url::Url::parse(&full)
                    .map_err(|e| RenderError::Invalid(format!("bad URL {full:?}: {e}")))?
            }
        };
        let mut headers = Vec::with_capacity(step.headers.len());
        for (k, t) in &step.headers {
            let value = t.render(&mut self.ctx())?;
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| RenderError::Invalid(format!("bad header name {k:?}: {e}")))?;
            let value = hyper::header::HeaderValue::from_str(&value)
                .map_err(|e| RenderError::Invalid(format!("bad header value for {k}: {e}")))?;
            headers.push((name, value));
        }
        let json = match &step.body {
            Some(b) => Some(bytes::Bytes::from(
                serde_json::to_vec(&b.render(&mut self.ctx())?)
                    .map_err(|e| RenderError::Invalid(format!("body: {e}")))?,
            )),
            None => None,
        };
        Ok(OutRequest {
            method,
            url,
            headers,
            json,
        })
    }
}

fn is_set(vars: &HashMap<String, Value>, name: &str) -> bool {
    match vars.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn needs_json(step: &Step) -> bool {
    !step.capture.is_empty() || !step.checks.json.is_empty()
}

/// Sends the request and reads the whole body; returns the status (or the error category), the
/// body size, and the parsed JSON when asked for and valid.
async fn send(
    http: &mut Connections,
    req: OutRequest,
    want_json: bool,
) -> (Result<u16, ErrorKind>, u64, Option<Value>) {
    match http.send(req).await {
        Ok(resp) => {
            let json = if want_json {
                serde_json::from_slice(&resp.body).ok()
            } else {
                None
            };
            (Ok(resp.status), resp.body.len() as u64, json)
        }
        Err(HttpError::Timeout) => (Err(ErrorKind::Timeout), 0, None),
        Err(HttpError::Connection(msg)) => (Err(ErrorKind::Connection(msg)), 0, None),
    }
}

/// Applies the step's checks to a response.
fn judge(
    checks: &Checks,
    status: u16,
    latency: Duration,
    json: Option<&Value>,
) -> Option<ErrorKind> {
    let status_ok = if checks.status.is_empty() {
        status < 400
    } else {
        checks.status.contains(&status)
    };
    if !status_ok {
        return Some(ErrorKind::Status(status));
    }
    if let Some(max) = checks.max_ms
        && latency.as_secs_f64() * 1000.0 > max
    {
        return Some(ErrorKind::Check(format!("slower than {max} ms")));
    }
    for c in &checks.json {
        let Some(doc) = json else {
            return Some(ErrorKind::Check("body is not JSON".into()));
        };
        let found = doc.pointer(&c.pointer);
        if let Some(want) = c.exists
            && found.is_some() != want
        {
            let what = if want { "missing" } else { "present" };
            return Some(ErrorKind::Check(format!("{} {what}", c.pointer)));
        }
        if let Some(want) = &c.equals
            && found != Some(want)
        {
            return Some(ErrorKind::Check(format!("{} != {want}", c.pointer)));
        }
    }
    None
}

/// Extracts a capture's value from a JSON response.
fn capture(c: &Capture, json: Option<&Value>, rng: &mut SmallRng) -> Option<Value> {
    let v = json?.pointer(&c.pointer)?;
    let Some(pick) = c.pick else {
        return (!v.is_null()).then(|| v.clone());
    };
    let items: Vec<&Value> = v
        .as_array()?
        .iter()
        .filter(|item| {
            c.filter
                .iter()
                .all(|(ptr, want)| item.pointer(ptr) == Some(want))
        })
        .collect();
    let item = match pick {
        _ if items.is_empty() => return None,
        Pick::Random => items[rng.random_range(0..items.len())],
        Pick::First => items[0],
        Pick::Last => items[items.len() - 1],
    };
    item.pointer(&c.then).filter(|v| !v.is_null()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn capture_picks_filters_and_walks() {
        let mut rng = SmallRng::seed_from_u64(7);
        let body = json!({"tickets": [
            {"id": 1, "is_donation_based": true},
            {"id": 2, "is_donation_based": false}
        ]});
        let mut filter = BTreeMap::new();
        filter.insert("/is_donation_based".to_string(), json!(false));
        let c = Capture {
            var: "t".into(),
            pointer: "/tickets".into(),
            pick: Some(Pick::Random),
            filter,
            then: "/id".into(),
        };
        for _ in 0..10 {
            assert_eq!(capture(&c, Some(&body), &mut rng), Some(json!(2)));
        }
        let whole = Capture {
            var: "all".into(),
            pointer: "".into(),
            pick: None,
            filter: BTreeMap::new(),
            then: "".into(),
        };
        assert_eq!(capture(&whole, Some(&body), &mut rng), Some(body.clone()));
    }

    #[test]
    fn checks_judge_status_body_and_latency() {
        let checks = Checks {
            status: vec![200],
            json: vec![crate::plan::JsonCheck {
                pointer: "/ok".into(),
                exists: None,
                equals: Some(json!(true)),
            }],
            max_ms: Some(100.0),
        };
        let fast = Duration::from_millis(5);
        assert_eq!(judge(&checks, 200, fast, Some(&json!({"ok": true}))), None);
        assert_eq!(
            judge(&checks, 409, fast, None),
            Some(ErrorKind::Status(409))
        );
        assert!(matches!(
            judge(
                &checks,
                200,
                Duration::from_secs(1),
                Some(&json!({"ok": true}))
            ),
            Some(ErrorKind::Check(_))
        ));
        assert!(matches!(
            judge(&checks, 200, fast, Some(&json!({"ok": false}))),
            Some(ErrorKind::Check(_))
        ));
    }
}
