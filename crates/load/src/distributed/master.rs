//! The master of a distributed run: waits for its workers, gives each its share, merges the
//! per-second deltas they stream into one [`Stats`] (the same aggregation a local run fills
//! request by request), watches their heartbeats, and hands the run to the usual grading and
//! report code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::protocol::{
    Command, Done, Event, Hello, Keys, MASTER_BEAT, MASTER_TTL, ShapeShare, Start, split_count,
    split_shape,
};
use super::{DistributedOptions, connect, pop, push};
use crate::engine::watch::{self, Watch};
use crate::engine::{CapacityResult, EngineConfig, EngineResult, Lag, judge_step};
use crate::error::LoadError;
use crate::observe::{Observer, Second, WorkerStatus};
use crate::plan::{Capacity, Plan, ShapeRef};
use crate::progress::Progress;
use crate::shape::CapacitySteps;
use crate::stats::{EncodedHistogram, GeneratorSample, Stats};

/// What happens to a lost worker's users, as recorded in every distributed report.
pub const LOST_WORKER_POLICY: &str = "a lost worker's users are not re-spread: the run goes on \
     with the other workers and is marked degraded (a capacity search steers each later step's \
     users over the workers still alive)";

/// How long the master waits for workers to report after it told them to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One worker's part in a distributed run (a row of the report's worker table).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerRow {
    /// Worker id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Host it ran on.
    pub host: String,
    /// Its weight.
    pub weight: f64,
    /// Users its share asked for at most (the cap on busy users, for the open model).
    pub users: u32,
    /// Most users it ran at once.
    pub peak_users: u32,
    /// Requests merged from its deltas.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// Requests by its own final account (absent when it was lost before reporting).
    pub reported_requests: Option<u64>,
    /// Failures by its own final account.
    pub reported_failures: Option<u64>,
    /// Mean CPU it used, cores.
    pub cpu_avg: f64,
    /// Most CPU it used in a second, cores.
    pub cpu_max: f64,
    /// Cores it had.
    pub cores: f64,
    /// `finished`, or `lost` (missed its heartbeats, or never reported after a stop).
    pub state: String,
    /// When it was noticed lost, seconds since the start.
    pub lost_at_s: Option<f64>,
    /// Why its run ended, by its own account.
    pub stop_reason: Option<String>,
    /// All its response times (µs), by its own account, HdrHistogram V2.
    pub hist: Option<EncodedHistogram>,
}

/// The distributed part of a run's summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DistributedReport {
    /// Cluster name.
    pub cluster: String,
    /// Run id (the key of its events in Redis).
    pub run: String,
    /// Workers asked for.
    pub workers_wanted: u32,
    /// What happens when a worker is lost.
    pub policy: String,
    /// Whether a worker was lost: the load was smaller than the plan's from then on.
    pub degraded: bool,
    /// The workers that took part.
    pub workers: Vec<WorkerRow>,
    /// Workers that were present but not needed, or joined late: they waited.
    pub idle: Vec<String>,
    /// Workers refused (another version), with why.
    pub refused: Vec<String>,
    /// Mean CPU of the master process over the run, cores.
    pub master_cpu_avg: f64,
    /// Most CPU of the master process in a second, cores.
    pub master_cpu_max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Running,
    Finished,
    Lost,
}

struct Worker {
    hello: Hello,
    share_users: u32,
    state: State,
    users: u32,
    peak_users: u32,
    requests: u64,
    failures: u64,
    cpu_sum: f64,
    cpu_n: u64,
    cpu_max: f64,
    /// This second's CPU and lag, for the merged generator sample.
    second: Option<(f64, f64)>,
    lost_at: Option<f64>,
    done: Option<Done>,
    last_seen: chrono::DateTime<chrono::Utc>,
}

impl Worker {
    fn state_name(&self) -> &'static str {
        match self.state {
            State::Running => "running",
            State::Finished => "finished",
            State::Lost => "lost",
        }
    }
}

fn peak_users_of(share: &ShapeShare) -> u32 {
    match share {
        ShapeShare::Stages { stages } => stages.iter().map(|s| s.users).max().unwrap_or(0),
        ShapeShare::Arrival { max_users, .. } => *max_users,
        ShapeShare::Steered { .. } => 0,
    }
}

/// The live workers of a cluster: (id, hello), with stale ids dropped from the set.
async fn present(con: &mut MultiplexedConnection, keys: &Keys) -> Result<Vec<Hello>, LoadError> {
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.workers())
        .query_async(con)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hello_keys: Vec<String> = ids.iter().map(|id| keys.hello(id)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&hello_keys).query_async(con).await?;
    let mut out = Vec::new();
    for (id, v) in ids.iter().zip(values) {
        match v.and_then(|t| serde_json::from_str::<Hello>(&t).ok()) {
            Some(h) => out.push(h),
            None => {
                let _: Result<(), _> = redis::cmd("SREM")
                    .arg(keys.workers())
                    .arg(id)
                    .query_async(con)
                    .await;
            }
        }
    }
    out.sort_by(|a, b| {
        a.joined_unix_ms
            .cmp(&b.joined_unix_ms)
            .then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Tells incompatible workers they are refused (once each); the refusals so far.
async fn refuse_incompatible(
    con: &mut MultiplexedConnection,
    keys: &Keys,
    hellos: &[Hello],
    refused: &mut BTreeMap<String, String>,
    progress: &Progress,
) -> Result<(), LoadError> {
    for h in hellos {
        let Some(why) = h.incompatibility() else {
            continue;
        };
        if refused.contains_key(&h.id) {
            continue;
        }
        push(
            con,
            &keys.commands(&h.id),
            &Command::Refuse {
                reason: why.clone(),
            },
        )
        .await?;
        progress.println(&format!("refused {}: {why}", h.id));
        refused.insert(h.id.clone(), why);
    }
    Ok(())
}

async fn wait_for_workers(
    con: &mut MultiplexedConnection,
    keys: &Keys,
    dist: &DistributedOptions,
    refused: &mut BTreeMap<String, String>,
    progress: &Progress,
    stop: &CancellationToken,
) -> Result<(Vec<Hello>, Vec<Hello>), LoadError> {
    let wanted = dist.workers as usize;
    let deadline = Instant::now() + dist.wait;
    let mut shown = None;
    loop {
        let hellos = present(con, keys).await?;
        refuse_incompatible(con, keys, &hellos, refused, progress).await?;
        let mut ready: Vec<Hello> = hellos
            .into_iter()
            .filter(|h| h.incompatibility().is_none() && h.busy.is_none())
            .collect();
        if ready.len() >= wanted {
            let extra = ready.split_off(wanted);
            return Ok((ready, extra));
        }
        if shown != Some(ready.len()) {
            progress.println(&format!(
                "waiting for workers in cluster `{}`: {}/{wanted} ready",
                dist.cluster,
                ready.len()
            ));
            shown = Some(ready.len());
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = ready.iter().map(|h| h.name.as_str()).collect();
            let mut msg = format!(
                "waited {} for {wanted} worker(s) in cluster `{}`: {} ready{}",
                crate::duration::format_duration(dist.wait),
                dist.cluster,
                ready.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                }
            );
            for why in refused.values() {
                msg.push_str(&format!("; refused: {why}"));
            }
            msg.push_str(&format!(
                ". Start workers with `pique load worker --redis-url URL --cluster {}` \
                 (same Redis, same cluster) or raise --workers-timeout",
                dist.cluster
            ));
            return Err(LoadError::Distributed(msg));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.cancelled() => {
                return Err(LoadError::Distributed("stopped while waiting for workers".into()));
            }
            Ok(()) = tokio::signal::ctrl_c() => {
                return Err(LoadError::Distributed("interrupted while waiting for workers".into()));
            }
        }
    }
}

/// Reads a run's events on a connection of its own (BLPOP blocks it).
async fn read_events(
    url: String,
    list: String,
    tx: mpsc::UnboundedSender<Event>,
    quit: CancellationToken,
) {
    let Ok(mut con) = connect(&url).await else {
        return;
    };
    while !quit.is_cancelled() {
        match pop(&mut con, &list, Duration::from_millis(500)).await {
            Ok(Some(text)) => match serde_json::from_str::<Event>(&text) {
                Ok(e) => {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("ignored an event that does not parse: {e}"),
            },
            Ok(None) => {}
            Err(e) => {
                eprintln!("reading worker events failed: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// A capacity search driven by the master: each step's users are split over the live
/// workers, and the step is judged on the merged statistics.
struct CapacityDrive {
    cap: Capacity,
    steps: CapacitySteps,
    step: u32,
    step_start: Instant,
    result: CapacityResult,
}

/// Everything the master's loop keeps.
struct Master {
    keys: Keys,
    con: MultiplexedConnection,
    run: String,
    workers: Vec<Worker>,
    stats: Arc<Stats>,
    start: Instant,
    stop_reason: Option<String>,
    stop_sent: Option<Instant>,
    progress: Progress,
}

impl Master {
    fn since_start(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    async fn stop_all(&mut self, reason: &str) {
        if self.stop_reason.is_none() {
            self.stop_reason = Some(reason.to_string());
        }
        if self.stop_sent.is_some() {
            return;
        }
        self.stop_sent = Some(Instant::now());
        let stop = Command::Stop {
            run: self.run.clone(),
            reason: reason.to_string(),
        };
        for i in 0..self.workers.len() {
            if self.workers[i].state == State::Running {
                let list = self.keys.commands(&self.workers[i].hello.id);
                if let Err(e) = push(&mut self.con, &list, &stop).await {
                    eprintln!("could not tell a worker to stop: {e}");
                }
            }
        }
    }

    /// Sends each live worker its share of `users` (capacity search).
    async fn steer(&mut self, users: u32, spawn_rate: Option<f64>) {
        let live: Vec<usize> = (0..self.workers.len())
            .filter(|i| self.workers[*i].state == State::Running)
            .collect();
        let weights: Vec<f64> = live.iter().map(|i| self.workers[*i].hello.weight).collect();
        let sum: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let counts = split_count(u64::from(users), &weights);
        for ((i, w), n) in live.iter().zip(&weights).zip(counts) {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            self.workers[*i].share_users = self.workers[*i].share_users.max(n);
            let cmd = Command::Steer {
                run: self.run.clone(),
                users: n,
                spawn_rate: spawn_rate.map(|r| r * w / sum),
            };
            let list = self.keys.commands(&self.workers[*i].hello.id);
            if let Err(e) = push(&mut self.con, &list, &cmd).await {
                eprintln!("could not steer a worker: {e}");
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let id = match &event {
            Event::Started { worker } | Event::Second { worker, .. } => worker.clone(),
            Event::Done(d) => d.worker.clone(),
        };
        let Some(w) = self.workers.iter_mut().find(|w| w.hello.id == id) else {
            return;
        };
        w.last_seen = chrono::Utc::now();
        match event {
            Event::Started { .. } => {}
            Event::Second {
                users,
                cpu_cores,
                lag_ms,
                delta,
                ..
            } => {
                // Seconds of a worker noticed lost still count: its requests happened.
                if let Err(e) = self.stats.absorb(&delta) {
                    eprintln!("ignored a second of {id}: {e}");
                    return;
                }
                let (requests, failures) = delta.requests(self.stats.keys());
                w.requests += requests;
                w.failures += failures;
                w.users = users;
                w.peak_users = w.peak_users.max(users);
                if cpu_cores > 0.0 || lag_ms > 0.0 {
                    w.cpu_sum += cpu_cores;
                    w.cpu_n += 1;
                    w.cpu_max = w.cpu_max.max(cpu_cores);
                    let share = cpu_cores / w.hello.cores.max(1.0);
                    let (s, l) = w.second.unwrap_or((0.0, 0.0));
                    w.second = Some((s.max(share), l.max(lag_ms)));
                }
            }
            Event::Done(done) => {
                w.users = 0;
                w.peak_users = w.peak_users.max(done.peak_users);
                if w.state == State::Running {
                    w.state = State::Finished;
                }
                w.done = Some(*done);
            }
        }
    }

    fn lose(&mut self, i: usize, why: &str) {
        let t = self.since_start();
        let w = &mut self.workers[i];
        if w.state != State::Running {
            return;
        }
        w.state = State::Lost;
        w.lost_at = Some(t);
        w.users = 0;
        let alive = self
            .workers
            .iter()
            .filter(|w| w.state != State::Lost)
            .count();
        self.progress.println(&format!(
            "worker {} lost at {t:.1} s ({why}): the run goes on degraded with {alive} of {} \
             workers",
            self.workers[i].hello.name,
            self.workers.len()
        ));
    }

    /// The progress line's note on the workers.
    fn note(&self) -> String {
        let lost: Vec<&str> = self
            .workers
            .iter()
            .filter(|w| w.state == State::Lost)
            .map(|w| w.hello.name.as_str())
            .collect();
        let running = self
            .workers
            .iter()
            .filter(|w| w.state == State::Running)
            .count();
        if lost.is_empty() {
            format!("workers {running}/{}", self.workers.len())
        } else {
            format!(
                "workers {running}/{} DEGRADED (lost: {})",
                self.workers.len(),
                lost.join(", ")
            )
        }
    }

    fn statuses(&self) -> Vec<WorkerStatus> {
        self.workers
            .iter()
            .map(|w| WorkerStatus {
                name: w.hello.name.clone(),
                users: w.users,
                requests: w.requests,
                failures: w.failures,
                cpu_cores: w.second.map_or(0.0, |s| s.0 * w.hello.cores),
                last_seen: w
                    .last_seen
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                state: w.state_name().into(),
            })
            .collect()
    }

    /// The generator sample of the merged second: the busiest worker's share of its own
    /// cores (in this machine's cores, so the usual saturation rule applies to each worker),
    /// and the worst scheduler lag of any worker.
    fn generator_sample(&mut self) -> GeneratorSample {
        let mut share: f64 = 0.0;
        let mut lag: f64 = 0.0;
        for w in &mut self.workers {
            if let Some((s, l)) = w.second.take() {
                share = share.max(s);
                lag = lag.max(l);
            }
        }
        GeneratorSample {
            cpu_cores: share * watch::cores(),
            lag_ms: lag,
        }
    }

    fn all_reported(&self) -> bool {
        self.workers.iter().all(|w| w.state != State::Running)
    }
}

/// Runs `plan` (already overridden) on the cluster's workers; the merged result and the
/// distributed report.
pub(crate) async fn run(
    plan: Arc<Plan>,
    cfg: EngineConfig,
    dist: &DistributedOptions,
    progress: &Progress,
    limit: Duration,
) -> Result<(EngineResult, DistributedReport), LoadError> {
    if dist.workers == 0 {
        return Err(LoadError::Options("--workers must be at least 1".into()));
    }
    let keys = Keys::new(&dist.cluster);
    let mut con = connect(&dist.redis_url).await?;
    let mut refused = BTreeMap::new();
    let (chosen, extra) =
        wait_for_workers(&mut con, &keys, dist, &mut refused, progress, &cfg.stop).await?;
    let mut idle: BTreeSet<String> = extra.iter().map(|h| h.id.clone()).collect();
    for h in &extra {
        progress.println(&format!(
            "worker {} is not needed ({} asked for): it waits for the next run",
            h.name, dist.workers
        ));
    }

    let run_id = format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    );
    let quit = CancellationToken::new();
    let beat = |mut con: MultiplexedConnection, key: String, quit: CancellationToken| async move {
        let mut tick = tokio::time::interval(MASTER_BEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = quit.cancelled() => break,
            }
            let _: Result<(), _> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("PX")
                .arg(MASTER_TTL.as_millis() as u64)
                .query_async(&mut con)
                .await;
        }
        let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut con).await;
    };
    redis::cmd("SET")
        .arg(keys.master(&run_id))
        .arg(1)
        .arg("PX")
        .arg(MASTER_TTL.as_millis() as u64)
        .query_async::<()>(&mut con)
        .await?;
    let beat_task = tokio::spawn(beat(con.clone(), keys.master(&run_id), quit.clone()));

    let (tx, mut events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_events(
        dist.redis_url.clone(),
        keys.events(&run_id),
        tx,
        quit.clone(),
    ));

    let weights: Vec<f64> = chosen.iter().map(|h| h.weight).collect();
    // A steered worker (capacity search) keeps going until the master stops it; the margin
    // only matters if the master vanished without its key expiring.
    let shares = split_shape(&plan, &weights, limit.as_secs_f64() + 30.0);
    let caps = plan.max_requests.map(|m| split_count(m, &weights));
    let vars: BTreeMap<String, serde_json::Value> = cfg.vars.clone().into_iter().collect();
    let stats = Arc::new(Stats::new(plan.request_keys.clone())?);
    let mut workers = Vec::new();
    for (i, (h, share)) in chosen.iter().zip(&shares).enumerate() {
        let start = Start {
            run: run_id.clone(),
            plan_source: plan.source.clone(),
            plan_origin: plan.origin.clone(),
            hosts: cfg.bases.clone(),
            vars: vars.clone(),
            shape: share.clone(),
            run_time_s: cfg.run_time.map(|d| d.as_secs_f64()),
            max_requests: caps.as_ref().map(|c| c[i]),
        };
        push(
            &mut con,
            &keys.commands(&h.id),
            &Command::Start(Box::new(start)),
        )
        .await?;
        workers.push(Worker {
            hello: h.clone(),
            share_users: peak_users_of(share),
            state: State::Running,
            users: 0,
            peak_users: 0,
            requests: 0,
            failures: 0,
            cpu_sum: 0.0,
            cpu_n: 0,
            cpu_max: 0.0,
            second: None,
            lost_at: None,
            done: None,
            last_seen: chrono::Utc::now(),
        });
    }
    let names: Vec<&str> = chosen.iter().map(|h| h.name.as_str()).collect();
    progress.println(&format!(
        "run {run_id} started on {} worker(s): {}",
        chosen.len(),
        names.join(", ")
    ));

    let start = Instant::now();
    let self_watch = Watch::start(quit.clone());
    let mut m = Master {
        keys: keys.clone(),
        con: con.clone(),
        run: run_id.clone(),
        workers,
        stats: stats.clone(),
        start,
        stop_reason: None,
        stop_sent: None,
        progress: progress.clone(),
    };
    let mut capacity = match plan.shape() {
        ShapeRef::Capacity(c) => Some(CapacityDrive {
            cap: c.clone(),
            steps: CapacitySteps { cap: c.clone() },
            step: 0,
            step_start: start,
            result: CapacityResult::default(),
        }),
        _ => None,
    };
    if let Some(c) = &capacity {
        let users = c.steps.users_in_step(0);
        let rate = c.cap.spawn_rate;
        m.steer(users, rate).await;
    }

    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut liveness = tokio::time::interval(MASTER_BEAT);
    let mut last_tick = start;
    let mut peak_users = 0u32;
    let mut master_cpu: Vec<f64> = Vec::new();
    let backstop = start + limit + Duration::from_secs(20);
    let run_cap = cfg.run_time.map(|r| start + r + Duration::from_secs(2));
    let far = start + Duration::from_secs(365 * 24 * 3600);

    while !m.all_reported() {
        let step_end = capacity
            .as_ref()
            .filter(|_| m.stop_sent.is_none())
            .map_or(far, |c| c.step_start + c.cap.step_every.0);
        let stop_deadline = m.stop_sent.map_or(far, |t| t + STOP_GRACE);
        tokio::select! {
            Some(event) = events.recv() => m.handle(event),
            now = tick.tick() => {
                let users: u32 = m.workers.iter().filter(|w| w.state == State::Running).map(|w| w.users).sum();
                peak_users = peak_users.max(users);
                let generator = m.generator_sample();
                let own = self_watch.sample();
                master_cpu.push(own.cpu_cores);
                let window = now.duration_since(last_tick).as_secs_f64();
                last_tick = now;
                let p = stats.tick(now.duration_since(start).as_secs_f64(), users, window, generator);
                progress.set_note(&m.note());
                progress.update(&p, now.duration_since(start), limit);
                if !cfg.observers.is_empty() {
                    cfg.observers.second(&Second {
                        point: &p,
                        stats: &stats,
                        capacity: capacity.as_ref().map(|c| &c.result),
                    });
                    cfg.observers.workers(&m.statuses());
                }
            }
            _ = liveness.tick() => {
                let hellos = present(&mut m.con, &keys).await.unwrap_or_default();
                let alive: BTreeSet<&str> = hellos.iter().map(|h| h.id.as_str()).collect();
                for i in 0..m.workers.len() {
                    if m.workers[i].state == State::Running && !alive.contains(m.workers[i].hello.id.as_str()) {
                        m.lose(i, "no heartbeat");
                    }
                }
                let _ = refuse_incompatible(&mut m.con, &keys, &hellos, &mut refused, progress).await;
                for h in &hellos {
                    let known = m.workers.iter().any(|w| w.hello.id == h.id) || idle.contains(&h.id);
                    if !known && h.incompatibility().is_none() {
                        progress.println(&format!(
                            "worker {} joined during the run: it waits for the next run",
                            h.name
                        ));
                        idle.insert(h.id.clone());
                    }
                }
            }
            _ = tokio::time::sleep_until(step_end) => {
                if let Some(c) = capacity.as_mut() {
                    let now = Instant::now();
                    let secs = now.duration_since(c.step_start).as_secs_f64();
                    let iv = stats.take_interval();
                    let target = c.steps.users_in_step(c.step);
                    let since = |t: Instant| t.duration_since(start).as_secs_f64();
                    let (step, reason) = judge_step(&c.cap, target, &iv, secs, since(c.step_start), since(now));
                    c.result.steps.push(step);
                    c.step += 1;
                    c.step_start = now;
                    if let Some(r) = reason {
                        c.result.breaking_users = Some(target);
                        c.result.reason = Some(r);
                        m.stop_all("load shape finished").await;
                    } else {
                        c.result.last_good_users = Some(target);
                        if c.step >= c.steps.step_count() {
                            m.stop_all("load shape finished").await;
                        } else {
                            let users = c.steps.users_in_step(c.step);
                            let rate = c.cap.spawn_rate;
                            m.steer(users, rate).await;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(run_cap.unwrap_or(far)), if m.stop_sent.is_none() => {
                // Workers stop themselves at run_time; this catches one that did not.
                m.stop_all("run_time reached").await;
            }
            _ = tokio::time::sleep_until(backstop), if m.stop_sent.is_none() => {
                m.stop_all("workers did not finish in time").await;
            }
            _ = tokio::time::sleep_until(stop_deadline) => {
                for i in 0..m.workers.len() {
                    m.lose(i, "no report after the stop");
                }
            }
            _ = cfg.stop.cancelled(), if m.stop_sent.is_none() => m.stop_all("stopped by the user").await,
            Ok(()) = tokio::signal::ctrl_c(), if m.stop_sent.is_none() => m.stop_all("interrupted (Ctrl-C)").await,
        }
    }
    // Events that arrived with the last reports.
    while let Ok(event) = events.try_recv() {
        m.handle(event);
    }
    let elapsed = start.elapsed();
    let since_last = stats.last_tick_t();
    let now = elapsed.as_secs_f64();
    let generator = m.generator_sample();
    stats.tick(now, 0, (now - since_last).max(1e-3), generator);
    quit.cancel();
    let _ = beat_task.await;
    reader.abort();
    let _: Result<(), _> = redis::cmd("DEL")
        .arg(keys.events(&run_id))
        .query_async(&mut con)
        .await;

    let reports: Vec<&Done> = m.workers.iter().filter_map(|w| w.done.as_ref()).collect();
    let run_secs = reports
        .iter()
        .map(|d| d.run_secs)
        .fold(0.0, f64::max)
        .max(if reports.is_empty() { now } else { 0.0 })
        .max(1e-3);
    let stop_reason = m
        .stop_reason
        .clone()
        .or_else(|| reports.first().map(|d| d.stop_reason.clone()))
        .unwrap_or_else(|| "every worker was lost".into());
    let lag = reports.iter().fold(Lag::default(), |mut acc, d| {
        acc.late_iterations += d.lag.late_iterations;
        acc.dropped_iterations += d.lag.dropped_iterations;
        acc.max_lag_ms = acc.max_lag_ms.max(d.lag.max_lag_ms);
        acc
    });
    let capacity = capacity.map(|c| {
        let mut r = c.result;
        let finished = r.breaking_users.is_some()
            || r.steps.last().is_some_and(|s| s.users >= c.cap.max_users);
        if !finished {
            r.stopped_by = Some(stop_reason.clone());
        }
        r
    });
    let degraded = m.workers.iter().any(|w| w.lost_at.is_some());
    let rows = m
        .workers
        .iter()
        .map(|w| WorkerRow {
            id: w.hello.id.clone(),
            name: w.hello.name.clone(),
            host: w.hello.host.clone(),
            weight: w.hello.weight,
            users: w.share_users,
            peak_users: w.peak_users,
            requests: w.requests,
            failures: w.failures,
            reported_requests: w.done.as_ref().map(|d| d.requests),
            reported_failures: w.done.as_ref().map(|d| d.failures),
            cpu_avg: if w.cpu_n == 0 {
                0.0
            } else {
                w.cpu_sum / w.cpu_n as f64
            },
            cpu_max: w.cpu_max,
            cores: w.hello.cores,
            state: w.state_name().into(),
            lost_at_s: w.lost_at,
            stop_reason: w.done.as_ref().map(|d| d.stop_reason.clone()),
            hist: w.done.as_ref().map(|d| d.hist.clone()),
        })
        .collect();
    let report = DistributedReport {
        cluster: dist.cluster.clone(),
        run: run_id,
        workers_wanted: dist.workers,
        policy: LOST_WORKER_POLICY.into(),
        degraded,
        workers: rows,
        idle: idle.into_iter().collect(),
        refused: refused.into_values().collect(),
        master_cpu_avg: if master_cpu.is_empty() {
            0.0
        } else {
            master_cpu.iter().sum::<f64>() / master_cpu.len() as f64
        },
        master_cpu_max: master_cpu.iter().copied().fold(0.0, f64::max),
    };
    let result = EngineResult {
        stats,
        run_secs,
        stop_reason,
        peak_users,
        lag,
        capacity,
    };
    Ok((result, report))
}
