//! The engine: shared run state, the per-second sampler, and the run's lifecycle (start the
//! shape's scheduler, enforce the caps, stop gracefully).

mod bodies;
pub(crate) mod http;
mod scheduler;
pub mod steer;
mod user;
pub mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::LoadError;
use crate::observe::{Observer, Observers, Second};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::stats::Stats;

pub use scheduler::{CapacityResult, CapacityStep};
pub(crate) use scheduler::{judge_step, shape_duration};
pub use steer::{Steer, Steering};

/// How the engine should run a (possibly overridden) plan.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Base URLs, no trailing slash; users are spread over them round-robin.
    pub bases: Vec<String>,
    /// Hard cap on run time.
    pub run_time: Option<Duration>,
    /// Hard cap on requests.
    pub max_requests: Option<u64>,
    /// Initial variables of every user.
    pub vars: HashMap<String, Value>,
    /// Cancelling this token stops the run early (the web UI's Stop button).
    pub stop: CancellationToken,
    /// Changes of the users while the run goes (the web UI's Edit).
    pub steering: Arc<Steering>,
    /// Told about every second.
    pub observers: Observers,
}

/// Counters of the open model falling behind its schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lag {
    /// Iterations that started more than 10 ms after their intended time (all users busy or the
    /// generator overloaded). Their latency still counts from the intended time.
    pub late_iterations: u64,
    /// Iterations not started at all because the backlog was full.
    pub dropped_iterations: u64,
    /// Largest delay between intended and actual start, ms.
    pub max_lag_ms: f64,
}

/// What the engine measured, before reporting.
pub struct EngineResult {
    /// The statistics.
    pub stats: Arc<Stats>,
    /// Wall-clock seconds from start to stop.
    pub run_secs: f64,
    /// Why the run ended.
    pub stop_reason: String,
    /// Most users running at once.
    pub peak_users: u32,
    /// Open-model lag counters.
    pub lag: Lag,
    /// Capacity search outcome, for capacity plans.
    pub capacity: Option<CapacityResult>,
}

/// State shared by the schedulers and every simulated user.
pub(crate) struct Shared {
    pub plan: Arc<Plan>,
    /// Per-request timeout (each user's connections apply it).
    pub timeout: Duration,
    /// Base URLs; user n talks to `bases[n % len]` (see [`Shared::host_of`]).
    pub bases: Vec<String>,
    pub stats: Arc<Stats>,
    pub stop: CancellationToken,
    /// Users asked for while the run goes, read by the schedulers.
    pub steering: Arc<Steering>,
    pub init_vars: crate::template::Vars,
    /// Parsed JSON bodies shared by every user (see [`bodies`]).
    pub bodies: bodies::SharedBodies,
    /// Cumulative task weights per class (for weighted picks by binary search).
    pub task_weights: Vec<Vec<u32>>,
    /// Cumulative class weights.
    pub class_weights: Vec<u32>,
    /// Pre-parsed URLs of steps whose path has no template, per base URL then by
    /// [`crate::plan::Step::index`] (parsing a URL per request is a measurable share of the
    /// generator's CPU).
    pub literal_urls: Vec<Vec<Option<url::Url>>>,
    /// Users currently running (closed) or busy (open); use [`Shared::set_users`].
    pub users: AtomicU32,
    peak: AtomicU32,
    budget: Option<u64>,
    sent: AtomicU64,
    user_ids: AtomicU64,
    stop_reason: Mutex<Option<String>>,
    tasks: Mutex<JoinSet<()>>,
    late: AtomicU64,
    dropped: AtomicU64,
    max_lag_us: AtomicU64,
    /// The capacity search so far (every judged step), for capacity plans.
    pub capacity: Mutex<CapacityResult>,
}

impl Shared {
    /// Reserves one request from the `max_requests` budget; false (and stop) when it is spent.
    pub fn take_budget(&self) -> bool {
        match self.budget {
            None => true,
            Some(max) => {
                if self.sent.fetch_add(1, Ordering::Relaxed) < max {
                    true
                } else {
                    self.stop_with("max_requests reached");
                    false
                }
            }
        }
    }

    /// Stops the run, remembering the first reason given.
    pub fn stop_with(&self, reason: &str) {
        let mut r = self.stop_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason.to_string());
        }
        drop(r);
        self.stop.cancel();
    }

    /// Publishes the number of running users and tracks the peak.
    pub fn set_users(&self, n: u32) {
        self.users.store(n, Ordering::Relaxed);
        self.peak.fetch_max(n, Ordering::Relaxed);
    }

    /// A fresh user number.
    pub fn next_user_id(&self) -> u64 {
        self.user_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Which base URL user `id` talks to: round-robin over the hosts, so N users on H hosts
    /// put N/H users (and their sessions, carts and logins) on each.
    pub fn host_of(&self, id: u64) -> usize {
        let n = self.bases.len().max(1) as u64;
        usize::try_from(id % n).unwrap_or(0)
    }

    /// Spawns a user task into the run's task set (so shutdown can wait for or abort it).
    pub fn spawn<F>(&self, fut: F) -> AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut set = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished tasks so the set does not grow with every open-model iteration.
        while set.try_join_next().is_some() {}
        set.spawn(fut)
    }

    /// Notes that an open-model iteration started `lag` after its intended time.
    pub fn note_lag(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.max_lag_us.fetch_max(us, Ordering::Relaxed);
        if lag > Duration::from_millis(10) {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes an open-model iteration dropped because the backlog is full.
    pub fn note_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn cumulative(weights: impl Iterator<Item = u32>) -> Vec<u32> {
    weights
        .scan(0u32, |acc, w| {
            *acc = acc.saturating_add(w);
            Some(*acc)
        })
        .collect()
}

/// Runs `plan` to completion (shape end, a cap, or a capacity break) and returns the statistics.
pub async fn run(
    plan: Arc<Plan>,
    cfg: EngineConfig,
    progress: &Progress,
) -> Result<EngineResult, LoadError> {
    let timeout = plan.request_timeout();
    let stats = Arc::new(Stats::new(plan.request_keys.clone())?);
    let cfg_stop = cfg.stop.clone();
    let bases: Vec<String> = cfg
        .bases
        .iter()
        .map(|b| b.trim_end_matches('/').to_string())
        .collect();
    if bases.is_empty() {
        return Err(LoadError::Options("no host to send to".into()));
    }
    let mut literal_urls = Vec::with_capacity(bases.len());
    for base in &bases {
        let mut urls = Vec::new();
        for (_, step) in plan.steps() {
            let url = step.path.is_literal().then(|| {
                let p = step.path.source();
                if p.starts_with("http://") || p.starts_with("https://") {
                    url::Url::parse(p)
                } else {
                    url::Url::parse(&format!("{base}{p}"))
                }
            });
            let url = url.transpose().map_err(|e| {
                LoadError::Options(format!("bad URL for `{}`: {e}", step.path.source()))
            })?;
            urls.push(url);
        }
        literal_urls.push(urls);
    }
    let sh = Arc::new(Shared {
        literal_urls,
        task_weights: plan
            .users
            .iter()
            .map(|c| cumulative(c.tasks.iter().map(|t| t.weight)))
            .collect(),
        class_weights: cumulative(plan.users.iter().map(|c| c.weight)),
        plan: plan.clone(),
        timeout,
        bases,
        stats: stats.clone(),
        stop: CancellationToken::new(),
        steering: cfg.steering,
        init_vars: cfg
            .vars
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect(),
        bodies: bodies::SharedBodies::default(),
        users: AtomicU32::new(0),
        peak: AtomicU32::new(0),
        budget: cfg.max_requests,
        sent: AtomicU64::new(0),
        user_ids: AtomicU64::new(0),
        stop_reason: Mutex::new(None),
        tasks: Mutex::new(JoinSet::new()),
        late: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        max_lag_us: AtomicU64::new(0),
        capacity: Mutex::new(CapacityResult::default()),
    });

    let start = Instant::now();
    let shape_len = scheduler::shape_duration(&plan);
    let limit = cfg.run_time.map_or(shape_len, |r| r.min(shape_len));
    let watch = watch::Watch::start(sh.stop.clone());
    let sampler = tokio::spawn(sample(
        sh.clone(),
        watch.clone(),
        start,
        limit,
        progress.clone(),
        cfg.observers,
    ));

    // The run_time cap races the shape only when it is shorter; otherwise the shape ends the run
    // (a backstop a little after its end guards against a driver that never returns).
    let (cap, cap_reason) = match cfg.run_time {
        Some(r) if r < shape_len => (r, "run_time reached"),
        _ => (shape_len + Duration::from_secs(5), "load shape finished"),
    };
    tokio::select! {
        () = scheduler::drive(sh.clone(), start) => sh.stop_with("load shape finished"),
        _ = tokio::time::sleep(cap) => sh.stop_with(cap_reason),
        // Like Locust: Ctrl-C ends the run early but still produces the report.
        Ok(()) = tokio::signal::ctrl_c() => sh.stop_with("interrupted (Ctrl-C)"),
        _ = cfg_stop.cancelled() => sh.stop_with("stopped by the user"),
        _ = sh.stop.cancelled() => {}
    }
    sh.stop.cancel();
    let stopped_at = start.elapsed();
    let users_at_stop = sh.users.load(Ordering::Relaxed);

    // Graceful stop: waiting users exit at once; in-flight requests get a short grace period
    // so the last second is not silently truncated, then anything left is aborted.
    let mut set = std::mem::take(&mut *sh.tasks.lock().unwrap_or_else(|p| p.into_inner()));
    let grace = timeout.min(Duration::from_secs(3));
    if tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
    sh.users.store(0, Ordering::Relaxed);
    sampler.abort();
    let _ = sampler.await;
    // Final partial second, so the series accounts for every request.
    let since_last = stats.last_tick_t();
    let now = start.elapsed().as_secs_f64();
    stats.tick(
        now,
        users_at_stop,
        (now - since_last).max(1e-3),
        watch.sample(),
    );

    let peak_users = sh.peak.load(Ordering::Relaxed);
    let stop_reason = sh
        .stop_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| "stopped".into());
    let capacity = matches!(plan.shape(), crate::plan::ShapeRef::Capacity(_)).then(|| {
        let mut c = sh
            .capacity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let finished = c.breaking_users.is_some()
            || c.steps.last().is_some_and(|s| {
                plan.capacity
                    .as_ref()
                    .is_some_and(|cap| s.users >= cap.max_users)
            });
        if !finished {
            c.stopped_by = Some(stop_reason.clone());
        }
        c
    });
    Ok(EngineResult {
        stats,
        run_secs: stopped_at.as_secs_f64().max(1e-3),
        stop_reason,
        peak_users,
        lag: Lag {
            late_iterations: sh.late.load(Ordering::Relaxed),
            dropped_iterations: sh.dropped.load(Ordering::Relaxed),
            max_lag_ms: sh.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
        },
        capacity,
    })
}

/// Closes a one-second window every second and feeds the progress display and the observers.
async fn sample(
    sh: Arc<Shared>,
    watch: Arc<watch::Watch>,
    start: Instant,
    limit: Duration,
    progress: Progress,
    observers: Observers,
) {
    let capacity_plan = matches!(sh.plan.shape(), crate::plan::ShapeRef::Capacity(_));
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = start;
    loop {
        let now = tick.tick().await;
        let users = sh.users.load(Ordering::Relaxed);
        let window = now.duration_since(last).as_secs_f64();
        last = now;
        let p = sh.stats.tick(
            now.duration_since(start).as_secs_f64(),
            users,
            window,
            watch.sample(),
        );
        progress.update(&p, now.duration_since(start), limit);
        if !observers.is_empty() {
            let capacity = capacity_plan.then(|| {
                sh.capacity
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            });
            observers.second(&Second {
                point: &p,
                stats: &sh.stats,
                capacity: capacity.as_ref(),
            });
        }
    }
}
