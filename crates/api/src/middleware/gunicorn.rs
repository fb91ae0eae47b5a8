//! A Gunicorn deployment as a layer in front of the replica's handlers, so the replica's
//! capacity under a Django profile is the deployment's and not Rust's.
//!
//! What the model does with each request, and what Gunicorn 23 does that it copies:
//!
//! 1. **Accept.** A request goes to the accepting worker holding the fewest requests, if one
//!    holds fewer than `worker_connections` (Gunicorn's workers race to `accept()` on the
//!    shared socket, and a busy worker's main thread, waiting for its interpreter lock, is
//!    slower to win). Otherwise it waits in the listen queue (`backlog`) until a worker takes
//!    it. Beyond the backlog the kernel drops the connection; here the request is answered
//!    503 at once (what the proxy in front of a hosted deployment answers).
//! 2. **Thread.** It waits, first come first served, for one of its worker's `threads`
//!    (the worker's `ThreadPoolExecutor` queue).
//! 3. **I/O part.** The replica's real handler runs; its time counts toward the route's I/O
//!    part (database and Redis waits, which do not hold the lock), and the rest of that part
//!    is slept. Threads overlap here.
//! 4. **CPU part**, in slices of the switch interval (5 ms), each holding the worker's
//!    interpreter lock (and a core, when the profile has fewer cores than workers). Threads of
//!    one worker take turns; workers run side by side.
//! 5. **Restart.** The request that brings a worker to `max_requests` (+ jitter) stops it
//!    accepting; the worker finishes what it holds, answering with `Connection: close`, and
//!    `restart_secs` after it empties its replacement accepts again. Meanwhile requests go to other
//!    workers or wait in the listen queue.
//! 6. **Timeout.** A `sync` worker whose request runs past `timeout` is killed and restarted;
//!    the client gets 502, as from a proxy whose upstream closed the connection. A `gthread`
//!    worker's heartbeat comes from its main thread, so `timeout` never kills a request there:
//!    a long request just holds its thread, as in Gunicorn.
//!
//! Time is kept on virtual timelines (when each lock and core is next free), so tokio's
//! millisecond timer never adds up: a saturated worker serves exactly `1 / cpu` per second.
//! Response bodies are the handlers' real ones.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Json,
    extract::{MatchedPath, Request},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use pique_core::profile::{CacheState, Gunicorn, Profile, WorkerClass, standard_normal};
use serde_json::json;
use tokio::{
    sync::{Semaphore, oneshot},
    time::Instant,
};

use crate::ApiError;

/// Routes the model leaves alone: the replica's own instrumentation, which the deployment it
/// imitates does not have (and which a load run scrapes while the workers are saturated).
const UNMODELLED: &[&str] = &["/metrics"];

/// One deployment's workers, shared by every request.
pub struct Model {
    profile: Profile,
    spec: Gunicorn,
    /// Each worker's threads.
    threads: Vec<Semaphore>,
    dispatch: Mutex<Dispatch>,
    clock: Mutex<Clock>,
}

/// Who holds what: requests per worker, and the listen queue.
struct Dispatch {
    workers: Vec<WorkerState>,
    /// Requests no worker has taken yet, oldest first.
    listen: VecDeque<oneshot::Sender<Admission>>,
    /// Where the next search for the least busy worker starts (ties go round the workers).
    next: usize,
}

struct WorkerState {
    /// Requests in this worker: waiting for a thread or being served.
    held: u32,
    accepting: bool,
    restarting: bool,
    /// Requests started in this worker's life.
    started: u64,
    /// Requests this life serves before restarting.
    limit: Option<u64>,
}

/// One resource's virtual timeline: when it is next free, and the idle gaps before that.
///
/// A thread ready at `t` books the resource from `t` (or when it frees). Threads book when
/// their task runs, and on a busy machine a task may run a little after the moment it became
/// ready, after another thread that became ready later booked. Without the gaps, that later
/// booking would leave the resource idle in between for good; with them, the late thread
/// takes the gap it was ready for, as it would have in the deployment.
struct Timeline {
    free: Instant,
    gaps: Vec<(Instant, Instant)>,
}

/// Gaps that ended this long ago are forgotten (no thread is that late).
const GAP_MEMORY: Duration = Duration::from_millis(250);

impl Timeline {
    fn new(now: Instant) -> Timeline {
        Timeline {
            free: now,
            gaps: Vec::new(),
        }
    }

    /// Books `len` from the earliest moment at or after `ready` when the resource is free;
    /// returns that moment.
    fn book(&mut self, ready: Instant, len: Duration) -> Instant {
        let horizon = Instant::now().checked_sub(GAP_MEMORY);
        self.gaps
            .retain(|&(_, end)| horizon.is_none_or(|h| end > h));
        for i in 0..self.gaps.len() {
            let (from, to) = self.gaps[i];
            let start = from.max(ready);
            if start + len <= to {
                self.gaps.remove(i);
                if start + len < to {
                    self.gaps.insert(i, (start + len, to));
                }
                if start > from {
                    self.gaps.insert(i, (from, start));
                }
                return start;
            }
        }
        let start = ready.max(self.free);
        if start > self.free {
            self.gaps.push((self.free, start));
        }
        self.free = start + len;
        start
    }
}

/// Virtual timelines: when each worker's lock, each of its threads, and each core is next
/// free.
struct Clock {
    locks: Vec<Timeline>,
    /// Per worker, when each thread not in use became free (a request takes the earliest).
    thread_free: Vec<Vec<Instant>>,
    /// Empty when there are at least as many cores as workers (no core contention).
    core_free: Vec<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The sections below never panic; a poisoned lock still holds consistent counts.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request's place in a worker; leaving it (however the request ends) frees the place.
pub struct Admission {
    model: Arc<Model>,
    worker: usize,
    armed: bool,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.armed {
            self.model.depart(self.worker);
        }
    }
}

impl Model {
    /// The model of `profile`, or `None` for a profile without one.
    pub fn new(profile: &Profile) -> Option<Arc<Model>> {
        let spec = profile.gunicorn.clone()?;
        let workers = spec.workers as usize;
        let now = Instant::now();
        let cores = if spec.usable_cores() < spec.workers {
            spec.usable_cores() as usize
        } else {
            0
        };
        let model = Model {
            threads: (0..workers)
                .map(|_| Semaphore::new(spec.threads_per_worker() as usize))
                .collect(),
            dispatch: Mutex::new(Dispatch {
                workers: (0..workers)
                    .map(|_| WorkerState {
                        held: 0,
                        accepting: true,
                        restarting: false,
                        started: 0,
                        limit: spec.requests_before_restart(rand::random()),
                    })
                    .collect(),
                listen: VecDeque::new(),
                next: 0,
            }),
            clock: Mutex::new(Clock {
                locks: (0..workers).map(|_| Timeline::new(now)).collect(),
                thread_free: vec![vec![now; spec.threads_per_worker() as usize]; workers],
                core_free: vec![now; cores],
            }),
            profile: profile.clone(),
            spec,
        };
        Some(Arc::new(model))
    }

    /// Serves `request` through the model (the axum middleware).
    pub async fn handle(self: Arc<Self>, request: Request, next: Next) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        if route.as_deref().is_some_and(|r| UNMODELLED.contains(&r)) {
            return next.run(request).await;
        }
        let Some(admission) = self.clone().admit().await else {
            metrics::counter!("pique_profile_rejected_total").increment(1);
            let mut response = ApiError::Unavailable(
                "Server is at capacity: every worker and the listen queue are full.".into(),
            )
            .into_response();
            close_connection(&mut response);
            return response;
        };
        let worker = admission.worker;
        let admitted = Instant::now();
        let Ok(_thread) = self.threads[worker].acquire().await else {
            return ApiError::Unavailable("Server is shutting down.".into()).into_response();
        };
        self.start(worker);
        // On the thread's timeline the request starts when the thread was freed (or when the
        // worker took it, if later), not when this task got to run again.
        let began = self.take_thread(worker).max(admitted);
        let method = request.method().as_str().to_owned();
        let route = route.unwrap_or_else(|| request.uri().path().to_owned());
        let work = self.serve(worker, began, &method, &route, request, next);
        let (mut response, ended) = match self.spec.worker_class {
            WorkerClass::Gthread => work.await,
            WorkerClass::Sync => match tokio::time::timeout(self.spec.timeout(), work).await {
                Ok(done) => done,
                Err(_) => {
                    self.give_thread(worker, Instant::now());
                    self.retire(worker, "timeout");
                    return worker_timeout(self.spec.timeout_secs);
                }
            },
        };
        self.give_thread(worker, ended);
        if self.retiring(worker) {
            close_connection(&mut response);
        }
        response
    }

    /// Steps 3 and 4: the handler within the I/O part, then the CPU part under the lock;
    /// returns the response and when, on the timelines, the request ended.
    async fn serve(
        &self,
        worker: usize,
        began: Instant,
        method: &str,
        route: &str,
        request: Request,
        next: Next,
    ) -> (Response, Instant) {
        let started = Instant::now();
        let response = next.run(request).await;
        let handler = started.elapsed();
        let cache = CacheState::from_header(
            response
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok()),
        );
        let Some(cost) = self.profile.cost(method, route, cache) else {
            return (response, began + handler);
        };
        let io = cost.io.at(normal());
        let cpu = cost.cpu.at(normal());
        // The handler's own time is part of the I/O part; a slower handler lengthens it.
        let io_end = began + io.max(handler);
        tokio::time::sleep_until(io_end).await;
        let ended = self.spend_cpu(worker, io_end, cpu).await;
        (response, ended)
    }

    /// The earliest free time among `worker`'s idle threads (now, if none is recorded).
    fn take_thread(&self, worker: usize) -> Instant {
        let mut clock = lock(&self.clock);
        let free = &mut clock.thread_free[worker];
        match free.iter().enumerate().min_by_key(|(_, t)| **t) {
            Some((i, _)) => free.swap_remove(i),
            None => Instant::now(),
        }
    }

    /// A thread of `worker` is free again from `at`.
    fn give_thread(&self, worker: usize, at: Instant) {
        let threads = self.spec.threads_per_worker() as usize;
        let mut clock = lock(&self.clock);
        let free = &mut clock.thread_free[worker];
        if free.len() < threads {
            free.push(at);
        }
    }

    /// Holds `worker`'s lock (and a core) for `cpu` in switch-interval slices, starting no
    /// earlier than `cursor`. Each slice is booked on the virtual timelines, then slept to its
    /// end, so other threads can book the next slice meanwhile: they take turns as CPython's
    /// threads do. Returns the end of the last slice.
    async fn spend_cpu(&self, worker: usize, mut cursor: Instant, cpu: Duration) -> Instant {
        let switch = self.spec.switch_interval();
        let mut left = cpu;
        while !left.is_zero() {
            let slice = left.min(switch);
            let end = {
                let mut clock = lock(&self.clock);
                let start = if clock.core_free.is_empty() {
                    clock.locks[worker].book(cursor, slice)
                } else {
                    // Cores are scarce: the slice needs the lock and a core at once, booked
                    // at the end of both timelines.
                    let (core, free) = clock
                        .core_free
                        .iter()
                        .copied()
                        .enumerate()
                        .min_by_key(|(_, t)| *t)
                        .unwrap_or((0, cursor));
                    let after = cursor.max(free).max(clock.locks[worker].free);
                    let start = clock.locks[worker].book(after, slice);
                    if let Some(c) = clock.core_free.get_mut(core) {
                        *c = start + slice;
                    }
                    start
                };
                start + slice
            };
            tokio::time::sleep_until(end).await;
            cursor = end;
            left -= slice;
        }
        cursor
    }

    /// Step 1: a place in a worker, now or after waiting in the listen queue; `None` when the
    /// listen queue is full too.
    async fn admit(self: Arc<Self>) -> Option<Admission> {
        let waiting = {
            let mut d = lock(&self.dispatch);
            if let Some(worker) = self.pick(&mut d) {
                d.workers[worker].held += 1;
                return Some(Admission {
                    model: self.clone(),
                    worker,
                    armed: true,
                });
            }
            if d.listen.len() >= self.spec.backlog as usize {
                // Clients that gave up while queued no longer count.
                d.listen.retain(|waiter| !waiter.is_closed());
                if d.listen.len() >= self.spec.backlog as usize {
                    return None;
                }
            }
            let (tx, rx) = oneshot::channel();
            d.listen.push_back(tx);
            metrics::gauge!("pique_profile_listen_queue").set(d.listen.len() as f64);
            rx
        };
        waiting.await.ok()
    }

    /// The accepting worker with room that holds the fewest requests.
    fn pick(&self, d: &mut Dispatch) -> Option<usize> {
        let n = d.workers.len();
        let capacity = self.spec.worker_capacity();
        let best = (0..n)
            .map(|i| (d.next + i) % n)
            .filter(|&w| d.workers[w].accepting && d.workers[w].held < capacity)
            .min_by_key(|&w| d.workers[w].held)?;
        d.next = (best + 1) % n;
        Some(best)
    }

    /// Hands queued requests to workers with room.
    fn fill(self: &Arc<Self>, d: &mut Dispatch) {
        while !d.listen.is_empty() {
            let Some(worker) = self.pick(d) else { break };
            let Some(waiter) = d.listen.pop_front() else {
                break;
            };
            d.workers[worker].held += 1;
            let admission = Admission {
                model: self.clone(),
                worker,
                armed: true,
            };
            if let Err(mut gone) = waiter.send(admission) {
                // The client left while queued: undo without re-entering this lock.
                gone.armed = false;
                d.workers[worker].held -= 1;
            }
        }
        metrics::gauge!("pique_profile_listen_queue").set(d.listen.len() as f64);
    }

    /// Counts a request starting in `worker`; the one that reaches the life's limit stops the
    /// worker accepting (it still serves what it holds).
    fn start(&self, worker: usize) {
        let mut d = lock(&self.dispatch);
        let w = &mut d.workers[worker];
        w.started += 1;
        if w.limit.is_some_and(|limit| w.started >= limit) && w.accepting {
            w.accepting = false;
            metrics::counter!("pique_profile_worker_restarts_total", "reason" => "max_requests")
                .increment(1);
        }
    }

    /// Whether `worker` is finishing its life (Gunicorn then closes every connection it
    /// answers).
    fn retiring(&self, worker: usize) -> bool {
        !lock(&self.dispatch).workers[worker].accepting
    }

    /// Stops `worker` accepting; it restarts once empty.
    fn retire(&self, worker: usize, reason: &'static str) {
        let mut d = lock(&self.dispatch);
        if d.workers[worker].accepting {
            d.workers[worker].accepting = false;
            metrics::counter!("pique_profile_worker_restarts_total", "reason" => reason)
                .increment(1);
        }
    }

    /// A request leaves `worker`.
    fn depart(self: &Arc<Self>, worker: usize) {
        let mut d = lock(&self.dispatch);
        let w = &mut d.workers[worker];
        w.held = w.held.saturating_sub(1);
        if w.accepting {
            self.fill(&mut d);
        } else if w.held == 0 && !w.restarting {
            w.restarting = true;
            let model = self.clone();
            let pause = self.spec.restart();
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                model.reopen(worker);
            });
        }
    }

    /// The replacement worker is up: a new life, and the listen queue drains into it.
    fn reopen(self: &Arc<Self>, worker: usize) {
        let mut d = lock(&self.dispatch);
        let w = &mut d.workers[worker];
        w.accepting = true;
        w.restarting = false;
        w.started = 0;
        w.limit = self.spec.requests_before_restart(rand::random());
        self.fill(&mut d);
    }
}

/// A standard normal deviate.
fn normal() -> f64 {
    standard_normal(rand::random(), rand::random())
}

/// Gunicorn closes the connection after a worker's last response, and a refused client's.
fn close_connection(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// What a client behind a proxy sees when the arbiter kills its request's worker.
fn worker_timeout(timeout_secs: f64) -> Response {
    let mut response = (
        StatusCode::BAD_GATEWAY,
        Json(json!({
            "detail": format!(
                "The worker serving this request was killed after {timeout_secs} s (worker timeout) and restarted."
            )
        })),
    )
        .into_response();
    close_connection(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    /// A profile with `gunicorn` settings and one route entry for every route.
    fn profile(gunicorn: &str, cost: &str) -> Profile {
        let text =
            format!("name = \"test\"\n[gunicorn]\n{gunicorn}\n[[routes]]\npath = \"*\"\n{cost}\n");
        Profile::from_toml(&text, "test").expect("valid test profile")
    }

    /// A router behind the model whose handler sleeps `handler_ms` and counts how many run at
    /// once.
    fn app(profile: &Profile, handler_ms: u64, peak: Arc<AtomicUsize>) -> Router {
        let running = Arc::new(AtomicUsize::new(0));
        let model = Model::new(profile).expect("a model");
        Router::new()
            .route(
                "/",
                get(move || {
                    let (running, peak) = (running.clone(), peak.clone());
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(handler_ms)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        "ok"
                    }
                }),
            )
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| model.clone().handle(req, next),
            ))
    }

    /// Sends `n` requests at once; returns each one's status, `Connection` header and
    /// completion time after the start.
    async fn burst(app: &Router, n: usize) -> Vec<(StatusCode, bool, Duration)> {
        let start = Instant::now();
        let calls = (0..n).map(|_| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .uri("/")
                    .body(Body::empty())
                    .expect("request");
                let resp = app.oneshot(req).await.expect("infallible");
                let close = resp.headers().get(header::CONNECTION).is_some();
                (resp.status(), close, start.elapsed())
            }
        });
        futures::future::join_all(calls).await
    }

    fn last(results: &[(StatusCode, bool, Duration)]) -> Duration {
        results.iter().map(|r| r.2).max().unwrap_or_default()
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_that_books_late_takes_the_gap_it_was_ready_for() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut lock = Timeline::new(t0);
        // Ready at +2 ms, booked first: the lock idles from 0 to 2 ms...
        assert_eq!(lock.book(t0 + ms(2), ms(4)), t0 + ms(2));
        // ...unless a thread ready at 0 books afterwards: it takes the gap if it fits.
        assert_eq!(lock.book(t0, ms(2)), t0);
        assert_eq!(lock.book(t0, ms(1)), t0 + ms(6), "no gap left");
        assert_eq!(lock.free, t0 + ms(7));
        // A gap too short is left alone.
        let mut lock = Timeline::new(t0);
        lock.book(t0 + ms(1), ms(1));
        assert_eq!(lock.book(t0, ms(3)), t0 + ms(2));
    }

    #[tokio::test(start_paused = true)]
    async fn threads_of_one_worker_take_turns_at_the_lock() {
        let p = profile("workers = 1\nthreads = 4", "cpu = { p50_ms = 10 }");
        let results = burst(&app(&p, 0, Arc::default()), 8).await;
        // Four threads, but one lock: 8 x 10 ms one after the other.
        assert_eq!(ms(last(&results)), 80);
        assert!(results.iter().all(|r| r.0 == StatusCode::OK));
    }

    #[tokio::test(start_paused = true)]
    async fn workers_overlap_up_to_the_cores() {
        let p = profile("workers = 2\nthreads = 1", "cpu = { p50_ms = 10 }");
        assert_eq!(ms(last(&burst(&app(&p, 0, Arc::default()), 8).await)), 40);
        let p = profile(
            "workers = 4\nthreads = 1\ncores = 2",
            "cpu = { p50_ms = 10 }",
        );
        assert_eq!(ms(last(&burst(&app(&p, 0, Arc::default()), 8).await)), 40);
        let p = profile(
            "workers = 4\nthreads = 1\ncores = 1",
            "cpu = { p50_ms = 10 }",
        );
        assert_eq!(ms(last(&burst(&app(&p, 0, Arc::default()), 8).await)), 80);
    }

    #[tokio::test(start_paused = true)]
    async fn io_overlaps_and_the_handler_counts_toward_it() {
        // 4 threads, 10 ms of I/O each and no CPU: 8 requests in two rounds.
        let p = profile(
            "workers = 1\nthreads = 4",
            "cpu = { p50_ms = 0 }\nio = { p50_ms = 10 }",
        );
        let peak = Arc::new(AtomicUsize::new(0));
        let results = burst(&app(&p, 6, peak.clone()), 8).await;
        assert_eq!(
            ms(last(&results)),
            20,
            "the 6 ms handler runs inside the 10 ms"
        );
        assert_eq!(peak.load(Ordering::SeqCst), 4, "one handler per thread");
        // A handler slower than the modelled I/O makes the request that much later.
        let results = burst(&app(&p, 15, Arc::default()), 4).await;
        assert_eq!(ms(last(&results)), 15);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_does_not_block_its_workers_other_threads_lock_turns() {
        // One 50 ms request and four 5 ms ones on a 2-thread worker: the short ones get
        // turns in between, as with CPython's 5 ms switch interval, instead of waiting 50 ms.
        let p = profile("workers = 1\nthreads = 2", "cpu = { p50_ms = 5 }");
        let mut long = p.clone();
        long.routes[0].cpu.p50_ms = 50.0;
        long.routes.push(p.routes[0].clone());
        long.routes[1].path = "/short".into();
        let model = Model::new(&long).expect("model");
        let app = Router::new()
            .route("/", get(|| async { "long" }))
            .route("/short", get(|| async { "short" }))
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| model.clone().handle(req, next),
            ));
        let start = Instant::now();
        let send = |uri: &'static str| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .uri(uri)
                    .body(Body::empty())
                    .expect("request");
                let _ = app.oneshot(req).await;
                start.elapsed()
            }
        };
        let (long_done, shorts) = tokio::join!(
            send("/"),
            futures::future::join_all((0..4).map(|_| send("/short")))
        );
        let first_short = shorts.iter().min().copied().unwrap_or_default();
        assert!(
            ms(first_short) <= 10,
            "first short request at {first_short:?}"
        );
        assert_eq!(ms(long_done), 70, "50 ms of its own + 4 x 5 ms of others'");
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_worker_and_the_listen_queue_requests_are_refused() {
        // 1 worker holding 2 requests, 3 more in the listen queue: of 10, 5 are refused.
        let p = profile(
            "workers = 1\nthreads = 1\nworker_connections = 2\nbacklog = 3",
            "cpu = { p50_ms = 10 }",
        );
        let results = burst(&app(&p, 0, Arc::default()), 10).await;
        let refused: Vec<_> = results
            .iter()
            .filter(|r| r.0 == StatusCode::SERVICE_UNAVAILABLE)
            .collect();
        assert_eq!(refused.len(), 5);
        assert!(
            refused.iter().all(|r| r.1 && r.2.is_zero()),
            "refused at once, closed"
        );
        assert_eq!(ms(last(&results)), 50, "the 5 accepted ones served in turn");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_restarts_after_max_requests_and_pauses() {
        let p = profile(
            "workers = 1\nthreads = 1\nmax_requests = 3\nrestart_secs = 0.1",
            "cpu = { p50_ms = 1 }",
        );
        let app = app(&p, 0, Arc::default());
        let mut times = Vec::new();
        let start = Instant::now();
        for _ in 0..7 {
            let results = burst(&app, 1).await;
            times.push((results[0].1, ms(start.elapsed())));
        }
        // Requests 3 and 6 end their worker's life (Connection: close); requests 4 and 7
        // wait out the 100 ms restart.
        let closes: Vec<bool> = times.iter().map(|t| t.0).collect();
        assert_eq!(closes, [false, false, true, false, false, true, false]);
        let at: Vec<u128> = times.iter().map(|t| t.1).collect();
        assert_eq!(at, [1, 2, 3, 104, 105, 106, 207]);
    }

    #[tokio::test(start_paused = true)]
    async fn another_worker_serves_while_one_restarts() {
        let p = profile(
            "workers = 2\nthreads = 1\nworker_connections = 1\nmax_requests = 2\nrestart_secs = 1",
            "cpu = { p50_ms = 10 }",
        );
        // 6 requests on 2 workers holding one each: each worker's 2nd request retires it, and
        // the 5th and 6th wait a whole second for a replacement.
        let results = burst(&app(&p, 0, Arc::default()), 6).await;
        assert_eq!(ms(last(&results)), 1030);
        let p = profile(
            "workers = 2\nthreads = 1\nworker_connections = 1\nmax_requests = 4\nrestart_secs = 1",
            "cpu = { p50_ms = 10 }",
        );
        let results = burst(&app(&p, 0, Arc::default()), 6).await;
        assert_eq!(ms(last(&results)), 30, "no restart before the 4th request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_worker_past_its_timeout_is_killed_and_restarted() {
        let p = profile(
            "worker_class = \"sync\"\nworkers = 1\ntimeout_secs = 1\nrestart_secs = 0.5",
            "cpu = { p50_ms = 1 }",
        );
        let app = app(&p, 2000, Arc::default());
        let results = burst(&app, 2).await;
        let mut results: Vec<_> = results.iter().map(|r| (r.0, ms(r.2))).collect();
        results.sort_by_key(|r| r.1);
        // The first is killed at 1 s; the second waits for the replacement (1.5 s) and is
        // killed in its turn at 2.5 s.
        assert_eq!(
            results,
            [
                (StatusCode::BAD_GATEWAY, 1000),
                (StatusCode::BAD_GATEWAY, 2500)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gthread_worker_never_kills_a_long_request() {
        let p = profile(
            "workers = 1\nthreads = 2\ntimeout_secs = 1",
            "cpu = { p50_ms = 1 }",
        );
        let results = burst(&app(&p, 3000, Arc::default()), 2).await;
        assert!(results.iter().all(|r| r.0 == StatusCode::OK));
        assert_eq!(ms(last(&results)), 3002);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_leaves_the_listen_queue_frees_its_place() {
        let p = profile(
            "workers = 1\nthreads = 1\nworker_connections = 1\nbacklog = 1",
            "cpu = { p50_ms = 10 }",
        );
        let app = app(&p, 0, Arc::default());
        // One served, one queued then abandoned, then two more: one queued, one refused.
        let first = tokio::spawn(burst_owned(app.clone(), 1));
        tokio::task::yield_now().await;
        let abandoned = tokio::spawn(burst_owned(app.clone(), 1));
        tokio::task::yield_now().await;
        abandoned.abort();
        let _ = abandoned.await;
        let later = burst(&app, 2).await;
        let statuses: Vec<StatusCode> = later.iter().map(|r| r.0).collect();
        assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
        assert!(
            first
                .await
                .expect("first")
                .iter()
                .all(|r| r.0 == StatusCode::OK)
        );
        // Nothing leaked: after all that, the worker takes a fresh request at once.
        let again = burst(&app, 1).await;
        assert_eq!(again[0].0, StatusCode::OK);
    }

    async fn burst_owned(app: Router, n: usize) -> Vec<(StatusCode, bool, Duration)> {
        burst(&app, n).await
    }
}
