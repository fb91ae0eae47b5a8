//! What the master and its load workers say to each other through Redis, and how a plan's
//! load is split between workers (pure functions, tested without Redis).
//!
//! Keys, all under the cluster's prefix (`pique-load` unless `--cluster` says otherwise):
//!
//! | key | type | written by | meaning |
//! |---|---|---|---|
//! | `P:workers` | set | worker | ids of workers that joined (stale ids are dropped by the master) |
//! | `P:worker:ID` | string, 3 s TTL | worker, every second | its [`Hello`]: the heartbeat |
//! | `P:cmd:ID` | list | master | [`Command`]s for one worker (BLPOP) |
//! | `P:run:RUN:events` | list | workers | [`Event`]s of one run for the master (BLPOP) |
//! | `P:run:RUN:master` | string, 2 s TTL | master, twice a second | the master of RUN is alive |
//!
//! Lists rather than pub/sub: a message sent while the other side reconnects waits for it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Dur;
use crate::engine::Lag;
use crate::plan::{Arrival, ArrivalStage, Plan, ShapeRef, Stage};
use crate::stats::{Delta, EncodedHistogram};

/// Bumped whenever a message changes shape; master and workers must agree on it and on the
/// crate version.
pub const PROTOCOL: u32 = 2;

/// The crate version a worker announces and a master expects.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A worker's heartbeat key lives this long; a worker that misses it is lost.
pub const WORKER_TTL: Duration = Duration::from_secs(3);
/// How often a worker renews its heartbeat.
pub const WORKER_BEAT: Duration = Duration::from_secs(1);
/// The master's liveness key lives this long; workers stop their users when it is gone.
pub const MASTER_TTL: Duration = Duration::from_secs(2);
/// How often the master renews it (and how often workers look).
pub const MASTER_BEAT: Duration = Duration::from_millis(500);
/// Lists and sets of a cluster expire after this long without use.
pub const LIST_TTL: Duration = Duration::from_secs(3600);

/// The Redis key names of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `cluster` (e.g. `pique-load`, or a test's unique name).
    pub fn new(cluster: &str) -> Self {
        Self {
            prefix: cluster.to_string(),
        }
    }
    /// Set of worker ids.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }
    /// A worker's heartbeat (its [`Hello`]).
    pub fn hello(&self, worker: &str) -> String {
        format!("{}:worker:{worker}", self.prefix)
    }
    /// A worker's command list.
    pub fn commands(&self, worker: &str) -> String {
        format!("{}:cmd:{worker}", self.prefix)
    }
    /// A run's event list.
    pub fn events(&self, run: &str) -> String {
        format!("{}:run:{run}:events", self.prefix)
    }
    /// A run's master liveness key.
    pub fn master(&self, run: &str) -> String {
        format!("{}:run:{run}:master", self.prefix)
    }
}

/// What a worker says about itself, every second, in its heartbeat key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Unique id (`NAME-xxxxxxxx`).
    pub id: String,
    /// Name given with `--name` (default: host name and process id).
    pub name: String,
    /// Host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Crate version.
    pub version: String,
    /// Message protocol ([`PROTOCOL`]).
    pub protocol: u32,
    /// Relative share of the load it takes (`--weight`, default 1).
    pub weight: f64,
    /// Cores it may use.
    pub cores: f64,
    /// Seconds since the Unix epoch when it joined (the master prefers early workers).
    pub joined_unix_ms: i64,
    /// The run it is busy with, if any.
    pub busy: Option<String>,
}

impl Hello {
    /// Why this worker cannot work for this master, if it cannot.
    pub fn incompatibility(&self) -> Option<String> {
        (self.version != VERSION || self.protocol != PROTOCOL).then(|| {
            format!(
                "worker {} runs pique-load {} (protocol {}), the master runs {VERSION} (protocol \
                 {PROTOCOL}); run the same version on both",
                self.name, self.version, self.protocol
            )
        })
    }
}

/// One stage of a worker's share of a closed-model plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageShare {
    /// Seconds.
    pub duration_s: f64,
    /// This worker's users.
    pub users: u32,
    /// This worker's spawn rate.
    pub spawn_rate: Option<f64>,
}

/// One phase of a worker's share of an open-model plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalShare {
    /// Seconds.
    pub duration_s: f64,
    /// This worker's iterations per second at the phase start.
    pub rate: f64,
    /// ... and at its end, when it ramps.
    pub ramp_to: Option<f64>,
}

/// The load one worker generates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ShapeShare {
    /// Its share of every stage's users and spawn rate.
    Stages {
        /// The stages.
        stages: Vec<StageShare>,
    },
    /// Its share of every phase's arrival rate and of the cap on busy users.
    Arrival {
        /// Cap on its busy users.
        max_users: u32,
        /// The phases.
        stages: Vec<ArrivalShare>,
    },
    /// No shape of its own: the master steers its users (a capacity search, judged by the
    /// master on the merged statistics).
    Steered {
        /// How long to keep going unless stopped, seconds.
        duration_s: f64,
    },
}

/// The start of a run, for one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// Run id.
    pub run: String,
    /// The plan text (TOML, or the Artillery YAML) and where it came from.
    pub plan_source: String,
    /// File name of the plan (decides TOML or YAML).
    pub plan_origin: String,
    /// Target base URLs (several: the worker spreads its users over them round-robin).
    pub hosts: Vec<String>,
    /// Variables of every user (the plan's, overridden by `--var`).
    pub vars: BTreeMap<String, Value>,
    /// This worker's load.
    pub shape: ShapeShare,
    /// Run-time cap, seconds.
    pub run_time_s: Option<f64>,
    /// This worker's share of the request cap.
    pub max_requests: Option<u64>,
}

/// A message from the master to one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Run this.
    Start(Box<Start>),
    /// Move to this many users (capacity search).
    Steer {
        /// Run id.
        run: String,
        /// Users wanted.
        users: u32,
        /// Users started per second on the way.
        spawn_rate: Option<f64>,
    },
    /// Stop the run now and report.
    Stop {
        /// Run id.
        run: String,
        /// Why.
        reason: String,
    },
    /// This master will not work with this worker (another version).
    Refuse {
        /// Why, in words.
        reason: String,
    },
}

/// A message from a worker to the master of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The worker started its users.
    Started {
        /// Worker id.
        worker: String,
    },
    /// One second of the worker's run.
    Second {
        /// Worker id.
        worker: String,
        /// Seconds since the worker started the run.
        t: f64,
        /// Users it runs.
        users: u32,
        /// CPU it used in the second, cores.
        cpu_cores: f64,
        /// Its scheduler's worst lag in the second, ms.
        lag_ms: f64,
        /// What it counted in the second.
        delta: Delta,
    },
    /// The worker's run ended; every [`Event::Second`] came before this.
    Done(Box<Done>),
}

/// A worker's own account of its run, from its local statistics (not from the deltas it
/// streamed), so the master's merge can be checked against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Worker id.
    pub worker: String,
    /// Requests it completed.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// All its response times, µs.
    pub hist: EncodedHistogram,
    /// Most users it ran at once.
    pub peak_users: u32,
    /// Its open-model lag.
    pub lag: Lag,
    /// Why its run ended.
    pub stop_reason: String,
    /// Seconds it ran.
    pub run_secs: f64,
}

/// Splits `total` into integers proportional to `weights` that add up to `total` (largest
/// remainder; ties go to the earlier worker).
pub fn split_count(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = total.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (exact[*a] - exact[*a].floor(), exact[*b] - exact[*b].floor());
        rb.total_cmp(&ra).then(a.cmp(b))
    });
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        out[*i] += 1;
        left -= 1;
    }
    out
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Each worker's load for `plan` (already overridden and time-scaled), in `weights` order:
/// users, spawn rates, arrival rates and busy-user caps in proportion to the weights.
/// `steered_s` is how long a steered (capacity) worker keeps going unless stopped.
pub fn split_shape(plan: &Plan, weights: &[f64], steered_s: f64) -> Vec<ShapeShare> {
    let sum: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    match plan.shape() {
        ShapeRef::Stages(stages) => {
            let users: Vec<Vec<u64>> = stages
                .iter()
                .map(|s| split_count(u64::from(s.users), weights))
                .collect();
            weights
                .iter()
                .enumerate()
                .map(|(i, w)| ShapeShare::Stages {
                    stages: stages
                        .iter()
                        .zip(&users)
                        .map(|(s, u)| StageShare {
                            duration_s: s.duration.0.as_secs_f64(),
                            users: to_u32(u[i]),
                            spawn_rate: s.spawn_rate.map(|r| r * w / sum),
                        })
                        .collect(),
                })
                .collect()
        }
        ShapeRef::Arrival(a) => {
            let caps = split_count(u64::from(a.max_users), weights);
            weights
                .iter()
                .zip(caps)
                .map(|(w, cap)| ShapeShare::Arrival {
                    // Every worker may run at least one user, or its arrivals would wait forever.
                    max_users: to_u32(cap).max(1),
                    stages: a
                        .stages
                        .iter()
                        .map(|s| ArrivalShare {
                            duration_s: s.duration.0.as_secs_f64(),
                            rate: s.rate * w / sum,
                            ramp_to: s.ramp_to.map(|r| r * w / sum),
                        })
                        .collect(),
                })
                .collect()
        }
        ShapeRef::Capacity(_) => weights
            .iter()
            .map(|_| ShapeShare::Steered {
                duration_s: steered_s,
            })
            .collect(),
    }
}

/// Replaces `plan`'s shape with a worker's share of it.
pub fn apply_share(plan: &mut Plan, share: &ShapeShare) {
    let secs = |s: f64| Dur(Duration::from_secs_f64(s.max(0.0)));
    plan.capacity = None;
    plan.arrival = None;
    plan.stages = Vec::new();
    match share {
        ShapeShare::Stages { stages } => {
            plan.stages = stages
                .iter()
                .map(|s| Stage {
                    duration: secs(s.duration_s),
                    users: s.users,
                    spawn_rate: s.spawn_rate,
                })
                .collect();
        }
        ShapeShare::Arrival { max_users, stages } => {
            plan.arrival = Some(Arrival {
                max_users: *max_users,
                stages: stages
                    .iter()
                    .map(|s| ArrivalStage {
                        duration: secs(s.duration_s),
                        rate: s.rate,
                        ramp_to: s.ramp_to,
                    })
                    .collect(),
            });
        }
        ShapeShare::Steered { duration_s } => {
            // No users until the master steers; spawn_rate None ramps 0 -> 0 (nothing).
            plan.stages = vec![Stage {
                duration: secs(*duration_s),
                users: 0,
                spawn_rate: None,
            }];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shape: &str) -> Plan {
        let src = format!(
            "name = \"t\"\nhost = \"http://127.0.0.1:1\"\n{shape}\n[[users]]\nname = \"u\"\n\
             [[users.tasks]]\nname = \"t\"\n[[users.tasks.steps]]\npath = \"/\"\n"
        );
        Plan::from_toml_str(&src, "t.toml").unwrap()
    }

    #[test]
    fn counts_split_by_weight_and_add_up() {
        assert_eq!(split_count(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
        assert_eq!(split_count(10, &[2.0, 1.0, 1.0]), vec![5, 3, 2]);
        assert_eq!(split_count(2, &[1.0, 1.0, 1.0]), vec![1, 1, 0]);
        assert_eq!(split_count(0, &[1.0, 1.0]), vec![0, 0]);
        assert_eq!(split_count(7, &[]), Vec::<u64>::new());
        for total in 0..50 {
            let parts = split_count(total, &[0.3, 1.7, 1.0, 2.5]);
            assert_eq!(parts.iter().sum::<u64>(), total);
        }
    }

    #[test]
    fn stages_arrival_and_capacity_are_shared() {
        let p = plan(
            "[[stages]]\nduration = \"10s\"\nusers = 10\nspawn_rate = 4\n\
             [[stages]]\nduration = \"5s\"\nusers = 3\n",
        );
        let shares = split_shape(&p, &[1.0, 1.0, 2.0], 99.0);
        let users: Vec<Vec<u32>> = shares
            .iter()
            .map(|s| match s {
                ShapeShare::Stages { stages } => stages.iter().map(|x| x.users).collect(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(users, vec![vec![3, 1], vec![2, 1], vec![5, 1]]);
        let ShapeShare::Stages { stages } = &shares[2] else {
            unreachable!()
        };
        assert_eq!(stages[0].spawn_rate, Some(2.0));
        assert_eq!(stages[1].spawn_rate, None);
        assert_eq!(stages[0].duration_s, 10.0);

        let mut worker = p.clone();
        apply_share(&mut worker, &shares[2]);
        assert_eq!(worker.stages.len(), 2);
        assert_eq!(worker.stages[0].users, 5);

        let p = plan(
            "[arrival]\nmax_users = 5\n[[arrival.stages]]\nduration = \"4s\"\nrate = 30\nramp_to = 60\n",
        );
        let shares = split_shape(&p, &[1.0, 2.0], 99.0);
        assert_eq!(
            shares[1],
            ShapeShare::Arrival {
                max_users: 3,
                stages: vec![ArrivalShare {
                    duration_s: 4.0,
                    rate: 20.0,
                    ramp_to: Some(40.0)
                }]
            }
        );
        let mut worker = p.clone();
        apply_share(&mut worker, &shares[0]);
        let a = worker.arrival.as_ref().unwrap();
        assert_eq!((a.max_users, a.stages[0].rate), (2, 10.0));

        let p = plan(
            "[capacity]\nstart_users = 2\nstep_users = 2\nstep_every = \"3s\"\nmax_users = 6\n",
        );
        let shares = split_shape(&p, &[1.0, 1.0], 20.0);
        assert_eq!(shares[0], ShapeShare::Steered { duration_s: 20.0 });
        let mut worker = p.clone();
        apply_share(&mut worker, &shares[0]);
        assert!(worker.capacity.is_none());
        assert_eq!(worker.stages[0].users, 0);
    }

    #[test]
    fn another_version_is_incompatible() {
        let mut h = Hello {
            id: "w-1".into(),
            name: "w".into(),
            host: "h".into(),
            pid: 1,
            version: VERSION.into(),
            protocol: PROTOCOL,
            weight: 1.0,
            cores: 2.0,
            joined_unix_ms: 0,
            busy: None,
        };
        assert_eq!(h.incompatibility(), None);
        h.version = "0.0.0-old".into();
        let why = h.incompatibility().unwrap();
        assert!(why.contains("0.0.0-old") && why.contains(VERSION), "{why}");
        h.version = VERSION.into();
        h.protocol = PROTOCOL + 1;
        assert!(h.incompatibility().is_some());
    }
}
