//! `pique load worker`: joins a cluster, keeps a heartbeat, runs its share of each run it is
//! given and streams a [`Delta`] of its statistics every second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{
    Command, Done, Event, Hello, Keys, MASTER_BEAT, PROTOCOL, Start, VERSION, WORKER_BEAT,
    WORKER_TTL, apply_share,
};
use super::{connect, host_name, pop, push};
use crate::duration::Dur;
use crate::engine::{self, EngineConfig, Steer, Steering};
use crate::error::LoadError;
use crate::observe::{Observer, Observers, Second};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::stats::{Delta, EncodedHistogram, Snapshot};

/// What `pique load worker` flags set.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Redis that coordinates the cluster.
    pub redis_url: String,
    /// Cluster name (key prefix).
    pub cluster: String,
    /// Name shown in the master's tables (default: host name and process id).
    pub name: Option<String>,
    /// Relative share of the load.
    pub weight: f64,
    /// Version announced instead of this build's (only to test the master's refusal).
    pub announce_version: Option<String>,
}

/// Joins the cluster and runs whatever the master asks until Ctrl-C, or until a master
/// refuses this worker (an error saying why).
pub async fn run_worker(opts: WorkerOptions) -> Result<(), LoadError> {
    if !(opts.weight > 0.0 && opts.weight.is_finite()) {
        return Err(LoadError::Options("--weight must be positive".into()));
    }
    let keys = Keys::new(&opts.cluster);
    let pid = std::process::id();
    let host = host_name();
    let name = opts.name.clone().unwrap_or_else(|| format!("{host}-{pid}"));
    let id = format!("{name}-{:08x}", rand::random::<u32>());
    let hello = Arc::new(Mutex::new(Hello {
        id: id.clone(),
        name: name.clone(),
        host,
        pid,
        version: opts
            .announce_version
            .clone()
            .unwrap_or_else(|| VERSION.into()),
        protocol: PROTOCOL,
        weight: opts.weight,
        cores: engine::watch::cores(),
        joined_unix_ms: chrono::Utc::now().timestamp_millis(),
        busy: None,
    }));
    let mut con = connect(&opts.redis_url).await?;
    beat(&mut con, &keys, &hello).await?;
    println!(
        "worker {name} ({id}) joined cluster `{}`; waiting for a run",
        opts.cluster
    );

    let quit = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat(
        con.clone(),
        keys.clone(),
        hello.clone(),
        quit.clone(),
    ));
    // Commands arrive on their own connection (BLPOP blocks it) and wait in a channel, so a
    // run can react to Stop and Steer while its users go.
    let (cmd_tx, mut commands) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_commands(
        opts.redis_url.clone(),
        keys.commands(&id),
        cmd_tx,
        quit.clone(),
    ));

    let outcome = loop {
        let command = tokio::select! {
            c = commands.recv() => c,
            Ok(()) = tokio::signal::ctrl_c() => break Ok(()),
        };
        match command {
            None => {
                break Err(LoadError::Distributed(
                    "lost the connection to Redis".into(),
                ));
            }
            Some(Command::Refuse { reason }) => {
                break Err(LoadError::Distributed(format!(
                    "refused by the master: {reason}"
                )));
            }
            Some(Command::Start(start)) => {
                let run = start.run.clone();
                set_busy(&hello, Some(run.clone()));
                let _ = beat(&mut con, &keys, &hello).await;
                let result = run_share(&mut con, &keys, &id, *start, &mut commands).await;
                set_busy(&hello, None);
                let _ = beat(&mut con, &keys, &hello).await;
                match result {
                    Ok(Some(refused)) => break Err(refused),
                    Ok(None) => println!("run {run} finished; waiting for the next run"),
                    Err(e) => eprintln!("run {run} failed: {e}; waiting for the next run"),
                }
            }
            // Stop and Steer of a run this worker is not running: stale, ignore.
            Some(_) => {}
        }
    };
    quit.cancel();
    let _ = heartbeat.await;
    reader.abort();
    let _ = redis::pipe()
        .del(keys.hello(&id))
        .srem(keys.workers(), &id)
        .del(keys.commands(&id))
        .query_async::<()>(&mut con)
        .await;
    outcome
}

fn set_busy(hello: &Mutex<Hello>, run: Option<String>) {
    hello.lock().unwrap_or_else(|p| p.into_inner()).busy = run;
}

/// Renews the heartbeat: the hello with its TTL, and the id in the cluster's set.
async fn beat(
    con: &mut MultiplexedConnection,
    keys: &Keys,
    hello: &Mutex<Hello>,
) -> Result<(), LoadError> {
    let (id, text) = {
        let h = hello.lock().unwrap_or_else(|p| p.into_inner());
        (h.id.clone(), serde_json::to_string(&*h).unwrap_or_default())
    };
    redis::pipe()
        .pset_ex(keys.hello(&id), text, WORKER_TTL.as_millis() as u64)
        .ignore()
        .sadd(keys.workers(), &id)
        .ignore()
        .expire(keys.workers(), super::protocol::LIST_TTL.as_secs() as i64)
        .ignore()
        .query_async::<()>(con)
        .await?;
    Ok(())
}

async fn heartbeat(
    mut con: MultiplexedConnection,
    keys: Keys,
    hello: Arc<Mutex<Hello>>,
    quit: CancellationToken,
) {
    let mut tick = tokio::time::interval(WORKER_BEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = quit.cancelled() => return,
        }
        if let Err(e) = beat(&mut con, &keys, &hello).await {
            eprintln!("heartbeat failed: {e}");
        }
    }
}

async fn read_commands(
    url: String,
    list: String,
    tx: mpsc::UnboundedSender<Command>,
    quit: CancellationToken,
) {
    let mut con = match connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot read commands: {e}");
            return;
        }
    };
    let mut failures = 0;
    while !quit.is_cancelled() {
        match pop(&mut con, &list, Duration::from_secs(1)).await {
            Ok(Some(text)) => match serde_json::from_str::<Command>(&text) {
                Ok(c) => {
                    if tx.send(c).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("ignored a command that does not parse: {e}"),
            },
            Ok(None) => failures = 0,
            Err(e) => {
                failures += 1;
                eprintln!("reading commands failed: {e}");
                if failures > 10 {
                    // Dropping the sender tells the worker Redis is gone.
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Streams every closed second of the worker's run as an [`Event::Second`].
struct Streamer {
    worker: String,
    previous: Mutex<Option<Snapshot>>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Streamer {
    /// The delta since the previous call.
    fn delta(&self, now: Snapshot) -> Delta {
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let delta = Delta::between(previous.as_ref(), &now);
        *previous = Some(now);
        delta
    }
}

impl Observer for Streamer {
    fn second(&self, second: &Second<'_>) {
        let delta = self.delta(second.stats.snapshot());
        let _ = self.tx.send(Event::Second {
            worker: self.worker.clone(),
            t: second.point.t,
            users: second.point.users,
            cpu_cores: second.point.generator.cpu_cores,
            lag_ms: second.point.generator.lag_ms,
            delta,
        });
    }
}

/// Runs this worker's share of a run. `Ok(Some(error))` when the master refused the worker
/// meanwhile.
async fn run_share(
    con: &mut MultiplexedConnection,
    keys: &Keys,
    id: &str,
    start: Start,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Result<Option<LoadError>, LoadError> {
    let run = start.run.clone();
    let events = keys.events(&run);
    // Every message goes through one publisher task, in order: the seconds, then Done.
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut pub_con = con.clone();
    let events_key = events.clone();
    let publisher = tokio::spawn(async move {
        // Ends after Done (the engine may still hold a sender).
        while let Some(e) = rx.recv().await {
            let last = matches!(e, Event::Done(_));
            if let Err(err) = push(&mut pub_con, &events_key, &e).await {
                eprintln!("could not send to the master: {err}");
            }
            if last {
                break;
            }
        }
    });

    let mut plan = match Plan::from_source(&start.plan_source, &start.plan_origin) {
        Ok(p) => p,
        Err(e) => {
            // Tell the master at once rather than letting it wait for a heartbeat to lapse.
            let _ = tx.send(Event::Done(Box::new(Done {
                worker: id.to_string(),
                requests: 0,
                failures: 0,
                hist: EncodedHistogram::default(),
                peak_users: 0,
                lag: engine::Lag::default(),
                stop_reason: format!("plan rejected: {e}"),
                run_secs: 0.0,
            })));
            drop(tx);
            let _ = publisher.await;
            return Err(e.into());
        }
    };
    apply_share(&mut plan, &start.shape);
    plan.run_time = start.run_time_s.map(|s| Dur(Duration::from_secs_f64(s)));
    plan.max_requests = start.max_requests;
    println!(
        "run {run}: {} against {}",
        crate::run::describe_shape(&plan),
        start.hosts.join(", ")
    );
    let streamer = Arc::new(Streamer {
        worker: id.to_string(),
        previous: Mutex::new(None),
        tx: tx.clone(),
    });
    let stop = CancellationToken::new();
    let steering = Arc::new(Steering::default());
    let cfg = EngineConfig {
        bases: start.hosts.clone(),
        run_time: plan.run_time.map(|d| d.0),
        max_requests: plan.max_requests,
        vars: start.vars.clone().into_iter().collect::<HashMap<_, _>>(),
        stop: stop.clone(),
        steering: steering.clone(),
        observers: Observers::default().with(streamer.clone()),
    };
    let _ = tx.send(Event::Started {
        worker: id.to_string(),
    });
    let plan = Arc::new(plan);
    let quiet = Progress::new(true, &plan.name);
    let engine = engine::run(plan.clone(), cfg, &quiet);
    tokio::pin!(engine);
    let mut master_check = tokio::time::interval(MASTER_BEAT);
    // Looks in a row that found no master key: two are needed, so a master whose renewal was
    // late on a busy machine is not taken for gone (2 s TTL + two looks 0.5 s apart stays
    // well within the 5 s in which workers must stop).
    let mut missing = 0u32;
    let mut refused = None;
    let result = loop {
        tokio::select! {
            r = &mut engine => break r,
            c = commands.recv() => match c {
                Some(Command::Stop { run: r, reason }) if r == run => {
                    println!("run {run}: stopped by the master ({reason})");
                    stop.cancel();
                }
                Some(Command::Steer { run: r, users, spawn_rate }) if r == run => {
                    steering.set(Steer { users, spawn_rate });
                }
                Some(Command::Refuse { reason }) => {
                    refused = Some(LoadError::Distributed(format!("refused by the master: {reason}")));
                    stop.cancel();
                }
                None => stop.cancel(),
                Some(_) => {}
            },
            _ = master_check.tick() => {
                let alive: bool = redis::cmd("EXISTS")
                    .arg(keys.master(&run))
                    .query_async::<u32>(con)
                    .await
                    .map(|n| n > 0)
                    // A Redis hiccup is not a dead master; the next look decides.
                    .unwrap_or(true);
                missing = if alive { 0 } else { missing + 1 };
                if missing >= 2 && !stop.is_cancelled() {
                    println!("run {run}: the master is gone; stopping the users");
                    stop.cancel();
                }
            }
        }
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            publisher.abort();
            return Err(e);
        }
    };
    // The last partial second, then the worker's own account of the run.
    let last = result.stats.snapshot();
    let (requests, failures, hist) = last.requests(result.stats.keys());
    let delta = streamer.delta(last);
    let _ = tx.send(Event::Second {
        worker: id.to_string(),
        t: result.run_secs,
        users: 0,
        cpu_cores: 0.0,
        lag_ms: 0.0,
        delta,
    });
    let _ = tx.send(Event::Done(Box::new(Done {
        worker: id.to_string(),
        requests,
        failures,
        hist: EncodedHistogram::encode(&hist),
        peak_users: result.peak_users,
        lag: result.lag.clone(),
        stop_reason: result.stop_reason.clone(),
        run_secs: result.run_secs,
    })));
    let _ = publisher.await;
    println!(
        "run {run} done: {requests} requests, {failures} failures ({})",
        result.stop_reason
    );
    Ok(refused)
}
