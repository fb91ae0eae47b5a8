//! Schedulers: turn the plan's shape into users (closed model, capacity search) or into
//! timed iterations (open model).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::Shared;
use super::user::VirtualUser;
use crate::plan::{Capacity, Plan, ShapeRef};
use crate::shape::{ArrivalSchedule, CapacitySteps, StageController};
use crate::stats::IntervalStats;

/// How often the closed-model controller adjusts the user count.
const TICK: Duration = Duration::from_millis(100);

/// One step of a capacity search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapacityStep {
    /// Users during the step.
    pub users: u32,
    /// When the step started, seconds since the run started.
    #[serde(default)]
    pub start_s: f64,
    /// When it ended.
    #[serde(default)]
    pub end_s: f64,
    /// Requests completed in the step.
    pub requests: u64,
    /// Requests per second in the step.
    pub rps: f64,
    /// Failures / requests in the step.
    pub error_rate: f64,
    /// p95 latency in the step, ms.
    pub p95_ms: f64,
    /// Whether this step broke a limit.
    pub broke: bool,
}

/// The outcome of a capacity search.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CapacityResult {
    /// Every completed step.
    pub steps: Vec<CapacityStep>,
    /// Users at the first step that broke a limit (None: nothing broke up to `max_users`).
    pub breaking_users: Option<u32>,
    /// Users of the last step that held.
    pub last_good_users: Option<u32>,
    /// Which limit broke, in words.
    pub reason: Option<String>,
    /// Why the search ended before a limit broke or the last step finished (`run_time
    /// reached`, `stopped by the user`); the steps above are every step it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// Length of the plan's shape.
pub(crate) fn shape_duration(plan: &Plan) -> Duration {
    match plan.shape() {
        ShapeRef::Stages(s) => StageController::new(s).duration(),
        ShapeRef::Arrival(a) => ArrivalSchedule::new(a).duration(),
        ShapeRef::Capacity(c) => CapacitySteps { cap: c.clone() }.duration(),
    }
}

/// Runs the plan's shape until it ends or the run is stopped.
pub(crate) async fn drive(sh: Arc<Shared>, start: Instant) {
    let plan = sh.plan.clone();
    match plan.shape() {
        ShapeRef::Stages(stages) => {
            let mut pool = UserPool::new(&sh);
            let mut ctl = StageController::new(stages);
            let end = start + ctl.duration();
            let mut tick = tokio::time::interval(TICK);
            let mut last = start;
            // The user level once the run was steered (it then leaves the plan's stages).
            let mut steered: Option<f64> = None;
            loop {
                tokio::select! {
                    now = tick.tick() => {
                        if now >= end {
                            break;
                        }
                        let dt = now.duration_since(last).as_secs_f64();
                        last = now;
                        let mut want = ctl.advance(now.duration_since(start).as_secs_f64(), dt);
                        if let Some(steer) = sh.steering.get() {
                            let level = steered.unwrap_or(pool.running.len() as f64);
                            let level = steer.advance(level, dt);
                            steered = Some(level);
                            want = level.round() as u32;
                        }
                        pool.resize(&sh, want);
                    }
                    _ = sh.stop.cancelled() => break,
                }
            }
        }
        ShapeRef::Capacity(cap) => capacity(&sh, cap, start).await,
        ShapeRef::Arrival(a) => {
            open_model(&sh, &ArrivalSchedule::new(a), a.max_users, start).await;
        }
    }
}

/// Closed-model users, started and stopped to follow a target count.
struct UserPool {
    running: Vec<(usize, AbortHandle)>,
    per_class: Vec<u32>,
}

impl UserPool {
    fn new(sh: &Shared) -> Self {
        Self {
            running: Vec::new(),
            per_class: vec![0; sh.plan.users.len()],
        }
    }

    /// Starts or stops users until `want` run. Classes are filled deterministically in
    /// proportion to their weights (like Locust), so small runs get the exact mix.
    fn resize(&mut self, sh: &Arc<Shared>, want: u32) {
        let want = want as usize;
        while self.running.len() < want && !sh.stop.is_cancelled() {
            let class = self.next_class(sh);
            let user = VirtualUser::new(sh, class);
            let handle = sh.spawn(user.run_closed(sh.clone()));
            self.per_class[class] += 1;
            self.running.push((class, handle));
        }
        while self.running.len() > want {
            if let Some((class, handle)) = self.running.pop() {
                handle.abort();
                self.per_class[class] -= 1;
            }
        }
        sh.set_users(self.running.len() as u32);
    }

    fn next_class(&self, sh: &Shared) -> usize {
        let total = f64::from(sh.class_weights.last().copied().unwrap_or(1));
        let n = (self.running.len() + 1) as f64;
        let mut best = (0, f64::MIN);
        for (i, class) in sh.plan.users.iter().enumerate() {
            let deficit = f64::from(class.weight) / total * n - f64::from(self.per_class[i]);
            if deficit > best.1 {
                best = (i, deficit);
            }
        }
        best.0
    }
}

/// Adds users step by step and judges each step; stops at the first broken limit. Every
/// judged step is published in [`Shared::capacity`] at once, so a run stopped early (by
/// `--run-time`, Ctrl-C or the UI) still reports every step it finished.
async fn capacity(sh: &Arc<Shared>, cap: &Capacity, run_start: Instant) {
    let steps = CapacitySteps { cap: cap.clone() };
    let mut pool = UserPool::new(sh);
    for i in 0..steps.step_count() {
        let target = steps.users_in_step(i);
        let step_start = Instant::now();
        sh.stats.take_interval();
        // Ramp to the step's users at spawn_rate (or all at once), then hold.
        let mut tick = tokio::time::interval(TICK);
        let step_end = step_start + cap.step_every.0;
        loop {
            tokio::select! {
                now = tick.tick() => {
                    if now >= step_end {
                        break;
                    }
                    let want = match cap.spawn_rate {
                        Some(rate) => {
                            let ramped = f64::from(pool.running.len() as u32)
                                + rate * TICK.as_secs_f64();
                            (ramped.ceil() as u32).min(target)
                        }
                        None => target,
                    };
                    pool.resize(sh, want);
                }
                _ = sh.stop.cancelled() => return,
            }
        }
        let secs = step_start.elapsed().as_secs_f64();
        let iv = sh.stats.take_interval();
        let since = |t: Instant| t.duration_since(run_start).as_secs_f64();
        let (step, reason) = judge_step(
            cap,
            target,
            &iv,
            secs,
            since(step_start),
            since(Instant::now()),
        );
        let mut result = sh.capacity.lock().unwrap_or_else(|p| p.into_inner());
        result.steps.push(step);
        if let Some(r) = reason {
            result.breaking_users = Some(target);
            result.reason = Some(r);
            return;
        }
        result.last_good_users = Some(target);
    }
}

/// Judges one finished capacity step of `target` users from its interval statistics (`secs`
/// long, from `start_s` to `end_s` since the run started): the step, and which limit it broke.
/// A distributed run's master judges the merged statistics with the same rules.
pub(crate) fn judge_step(
    cap: &Capacity,
    target: u32,
    iv: &IntervalStats,
    secs: f64,
    start_s: f64,
    end_s: f64,
) -> (CapacityStep, Option<String>) {
    let error_rate = if iv.count == 0 {
        0.0
    } else {
        iv.failures as f64 / iv.count as f64
    };
    let mut reason = None;
    if let Some(max) = cap.stop_error_rate
        && error_rate > max
    {
        reason = Some(format!(
            "error rate {:.2}% > {:.2}% at {target} users",
            error_rate * 100.0,
            max * 100.0
        ));
    }
    if let Some(max) = cap.stop_p95_ms
        && iv.p95_ms > max
        && reason.is_none()
    {
        reason = Some(format!(
            "p95 {:.0} ms > {max:.0} ms at {target} users",
            iv.p95_ms
        ));
    }
    let step = CapacityStep {
        users: target,
        start_s,
        end_s,
        requests: iv.count,
        rps: iv.count as f64 / secs.max(1e-3),
        error_rate,
        p95_ms: iv.p95_ms,
        broke: reason.is_some(),
    };
    (step, reason)
}

/// Open model: start one iteration per scheduled arrival, whatever earlier ones are doing.
async fn open_model(sh: &Arc<Shared>, sched: &ArrivalSchedule, max_users: u32, start: Instant) {
    let permits = Arc::new(Semaphore::new(max_users as usize));
    // Idle users per class, reused so `on_start` and variables persist like k6's VUs.
    let idle: Arc<Vec<Mutex<Vec<VirtualUser>>>> = Arc::new(
        sh.plan
            .users
            .iter()
            .map(|_| Mutex::new(Vec::new()))
            .collect(),
    );
    let busy = Arc::new(AtomicU32::new(0));
    let backlog = Arc::new(AtomicU64::new(0));
    // Beyond this many waiting iterations the target is hopelessly overloaded; count the rest
    // as dropped instead of queueing without bound.
    let backlog_cap = u64::from(max_users).max(1000) * 10;
    // A Send RNG: this future is held across awaits (ThreadRng is not Send).
    let mut rng = rand::rngs::SmallRng::seed_from_u64(rand::random());
    let class_total = sh.class_weights.last().copied().unwrap_or(1);
    let mut cap = max_users;
    for k in 0u64.. {
        let Some(t) = sched.time_of(k) else { break };
        let at = start + Duration::from_secs_f64(t);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = sh.stop.cancelled() => break,
        }
        if let Some(steer) = sh.steering.get() {
            cap = recap(sh, &permits, cap, steer.users.max(1));
        }
        if backlog.load(Ordering::Relaxed) >= backlog_cap {
            sh.note_dropped();
            continue;
        }
        backlog.fetch_add(1, Ordering::Relaxed);
        let r = rng.random_range(0..class_total);
        let class = sh.class_weights.partition_point(|c| *c <= r);
        let (sh2, permits, idle, busy, backlog) = (
            sh.clone(),
            permits.clone(),
            idle.clone(),
            busy.clone(),
            backlog.clone(),
        );
        sh.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            backlog.fetch_sub(1, Ordering::Relaxed);
            sh2.note_lag(Instant::now().saturating_duration_since(at));
            sh2.set_users(busy.fetch_add(1, Ordering::Relaxed) + 1);
            let reused = idle[class].lock().unwrap_or_else(|p| p.into_inner()).pop();
            let (mut vu, intended) = match reused {
                Some(vu) => (vu, at),
                None => {
                    // A new user logs in first; its on_start time is not the target's queueing
                    // delay, so the iteration's clock starts after it.
                    let mut vu = VirtualUser::new(&sh2, class);
                    let before = Instant::now();
                    vu.on_start(&sh2).await;
                    (vu, at + before.elapsed())
                }
            };
            let _ = vu.run_task(&sh2, Some(intended)).await;
            idle[vu.class]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(vu);
            sh2.users
                .store(busy.fetch_sub(1, Ordering::Relaxed) - 1, Ordering::Relaxed);
        });
    }
}

/// Changes the open model's cap on concurrent users from `cap` to `wanted`: more permits at
/// once, or fewer as busy users finish (a task takes the surplus permits and forgets them).
fn recap(sh: &Shared, permits: &Arc<Semaphore>, cap: u32, wanted: u32) -> u32 {
    if wanted > cap {
        permits.add_permits((wanted - cap) as usize);
    } else if wanted < cap {
        let surplus = cap - wanted;
        let permits = permits.clone();
        let stop = sh.stop.clone();
        sh.spawn(async move {
            tokio::select! {
                Ok(p) = permits.acquire_many_owned(surplus) => p.forget(),
                _ = stop.cancelled() => {}
            }
        });
    }
    wanted
}
