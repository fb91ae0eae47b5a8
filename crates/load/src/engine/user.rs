//! One simulated user: its variables and RNG, and how it runs steps, tasks and waits.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

use super::Shared;
use super::http::{Connections, HttpError, OutRequest};
use crate::plan::{Capture, Checks, Pick, Step, Until, Wait};
use crate::stats::ErrorKind;
use crate::template::{Ctx, RenderError, Vars};

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
    /// Index of the base URL this user talks to (see [`Shared::host_of`]).
    host: usize,
    vars: Vars,
    rng: SmallRng,
    iteration: u64,
    /// This user's own keep-alive connections.
    http: Connections,
    /// When the last request of the current task was sent (a polling step times its
    /// completion from there: the accept it waits on).
    last_sent: Option<Instant>,
}

impl VirtualUser {
    /// A fresh user with the run's initial variables.
    pub fn new(sh: &Shared, class: usize) -> Self {
        let id = sh.next_user_id();
        Self {
            class,
            id,
            host: sh.host_of(id),
            vars: sh.init_vars.clone(),
            rng: SmallRng::seed_from_u64(rand::random()),
            iteration: 0,
            http: Connections::new(sh.timeout),
            last_sent: None,
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
        self.last_sent = None;
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
            sh.stats.unmet(step.key);
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
        if let Some(until) = &step.until {
            return self.poll(sh, step, until, request).await;
        }
        if !sh.take_budget() {
            return StepResult::Stopped;
        }
        let start = intended.unwrap_or_else(Instant::now);
        self.last_sent = Some(start);
        // The clock stops at the last byte of the body; parsing it is the generator's work.
        let (outcome, bytes, body) = send(&mut self.http, request).await;
        let latency = start.elapsed();
        let json = match (&outcome, body) {
            (Ok(_), Some(body)) if needs_json(step) => sh.bodies.parse(body).await,
            _ => None,
        };
        let error = match outcome {
            Err(e) => Some(e),
            Ok(status) => judge_status(&step.checks, status, latency)
                .or_else(|| judge_json(&step.checks, json.as_deref())),
        };
        let failed = error.is_some();
        sh.stats.record(step.key, latency, bytes, error);
        self.apply_captures(step, json.as_ref(), failed);
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

    /// Sets (or unsets) the step's captured variables from a response.
    fn apply_captures(&mut self, step: &Step, json: Option<&Arc<Value>>, failed: bool) {
        for c in &step.capture {
            let value = if failed {
                None
            } else {
                capture(c, json, &mut self.rng)
            };
            match value {
                Some(v) => self.vars.insert(c.var.clone(), v),
                // Unset rather than keep a stale value from an earlier iteration.
                None => self.vars.remove(&c.var),
            };
        }
    }

    /// A polling step: sends `request` every `every` until the answer satisfies `until` or
    /// `timeout` passes. Each request is recorded under the step's poll key; the completion,
    /// timed from the task's previous request (the accept), under its own key.
    async fn poll(
        &mut self,
        sh: &Shared,
        step: &Step,
        until: &Until,
        request: OutRequest,
    ) -> StepResult {
        let every = step.every.map_or(Duration::from_secs(1), |d| d.0);
        let limit = step.timeout.map_or(Duration::from_secs(60), |d| d.0);
        let began = Instant::now();
        let accepted = self.last_sent.unwrap_or(began);
        let result = loop {
            if !sh.take_budget() {
                return StepResult::Stopped;
            }
            let start = Instant::now();
            let (outcome, bytes, body) = send(&mut self.http, request.clone()).await;
            let latency = start.elapsed();
            let status_error = match &outcome {
                Err(e) => Some(e.clone()),
                Ok(status) => judge_status(&step.checks, *status, latency),
            };
            sh.stats
                .record(step.poll_key, latency, bytes, status_error.clone());
            if let Some(e) = status_error {
                break Some(e);
            }
            let json = match body {
                Some(body) => sh.bodies.parse(body).await,
                None => None,
            };
            if json.as_ref().is_some_and(|doc| until.holds(doc)) {
                let error = judge_json(&step.checks, json.as_deref());
                self.apply_captures(step, json.as_ref(), error.is_some());
                break error;
            }
            if began.elapsed() + every > limit {
                let seen = json
                    .as_ref()
                    .and_then(|doc| doc.pointer(&until.pointer))
                    .map_or("nothing".to_string(), Value::to_string);
                break Some(ErrorKind::Check(format!(
                    "{} still {seen} after {}",
                    until.pointer,
                    crate::duration::format_duration(limit)
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = sh.stop.cancelled() => return StepResult::Stopped,
            }
        };
        let failed = result.is_some();
        if failed {
            self.apply_captures(step, None, true);
        }
        sh.stats.record(step.key, accepted.elapsed(), 0, result);
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
            self.vars.insert(name.clone(), Arc::new(v));
        }
        let method = hyper::Method::from_bytes(step.method.as_bytes()).unwrap_or_default();
        let url = match sh
            .literal_urls
            .get(self.host)
            .and_then(|urls| urls.get(step.index))
        {
            Some(Some(url)) => url.clone(),
            _ => {
                let path = step.path.render(&mut self.ctx())?;
                let full = if path.starts_with("http://") || path.starts_with("https://") {
                    path
                } else {
                    let base = sh.bases.get(self.host).map_or("", String::as_str);
                    format!("{base}{path}")
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

fn is_set(vars: &Vars, name: &str) -> bool {
    match vars.get(name).map(|v| &**v) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn needs_json(step: &Step) -> bool {
    !step.capture.is_empty() || !step.checks.json.is_empty()
}

/// Sends the request and reads the whole body; returns the status (or the error category), the
/// body size and the body.
async fn send(
    http: &mut Connections,
    req: OutRequest,
) -> (Result<u16, ErrorKind>, u64, Option<bytes::Bytes>) {
    match http.send(req).await {
        Ok(resp) => (Ok(resp.status), resp.body.len() as u64, Some(resp.body)),
        Err(HttpError::Timeout) => (Err(ErrorKind::Timeout), 0, None),
        Err(HttpError::Connection(msg)) => (Err(ErrorKind::Connection(msg)), 0, None),
    }
}

/// Applies the step's status and latency checks to a response.
fn judge_status(checks: &Checks, status: u16, latency: Duration) -> Option<ErrorKind> {
    let status_ok = if checks.status.is_empty() {
        status < 400
    } else {
        checks.status.iter().any(|m| m.matches(status))
    };
    if !status_ok {
        return Some(ErrorKind::Status(status));
    }
    if let Some(max) = checks.max_ms
        && latency.as_secs_f64() * 1000.0 > max
    {
        return Some(ErrorKind::Check(format!("slower than {max} ms")));
    }
    None
}

/// Applies the step's JSON checks to a response body.
fn judge_json(checks: &Checks, json: Option<&Value>) -> Option<ErrorKind> {
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

/// Extracts a capture's value from a JSON response. Capturing the whole body shares the parsed
/// tree (no copy); a pointed or picked value is copied out (it is small).
fn capture(c: &Capture, json: Option<&Arc<Value>>, rng: &mut SmallRng) -> Option<Arc<Value>> {
    let doc = json?;
    if c.pointer.is_empty() && c.pick.is_none() {
        return (!doc.is_null()).then(|| doc.clone());
    }
    let v = doc.pointer(&c.pointer)?;
    let Some(pick) = c.pick else {
        return (!v.is_null()).then(|| Arc::new(v.clone()));
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
    item.pointer(&c.then)
        .filter(|v| !v.is_null())
        .map(|v| Arc::new(v.clone()))
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
        let body = Arc::new(body);
        for _ in 0..10 {
            assert_eq!(
                capture(&c, Some(&body), &mut rng).as_deref(),
                Some(&json!(2))
            );
        }
        let whole = Capture {
            var: "all".into(),
            pointer: "".into(),
            pick: None,
            filter: BTreeMap::new(),
            then: "".into(),
        };
        let captured = capture(&whole, Some(&body), &mut rng).unwrap();
        assert!(
            Arc::ptr_eq(&captured, &body),
            "the whole body is shared, not copied"
        );
    }

    #[test]
    fn checks_judge_status_body_and_latency() {
        let checks = Checks {
            status: vec![crate::plan::StatusMatch::Code(200)],
            json: vec![crate::plan::JsonCheck {
                pointer: "/ok".into(),
                exists: None,
                equals: Some(json!(true)),
            }],
            max_ms: Some(100.0),
        };
        let fast = Duration::from_millis(5);
        let judge = |status, latency, json: Option<&Value>| {
            judge_status(&checks, status, latency).or_else(|| judge_json(&checks, json))
        };
        assert_eq!(judge(200, fast, Some(&json!({"ok": true}))), None);
        assert_eq!(judge(409, fast, None), Some(ErrorKind::Status(409)));
        assert!(matches!(
            judge(200, Duration::from_secs(1), Some(&json!({"ok": true}))),
            Some(ErrorKind::Check(_))
        ));
        assert!(matches!(
            judge(200, fast, Some(&json!({"ok": false}))),
            Some(ErrorKind::Check(_))
        ));
        let classes = Checks {
            status: vec![
                crate::plan::StatusMatch::Code(201),
                crate::plan::StatusMatch::Class(4),
            ],
            json: vec![],
            max_ms: None,
        };
        assert_eq!(judge_status(&classes, 409, fast), None);
        assert_eq!(judge_status(&classes, 201, fast), None);
        assert_eq!(
            judge_status(&classes, 500, fast),
            Some(ErrorKind::Status(500))
        );
    }
}
