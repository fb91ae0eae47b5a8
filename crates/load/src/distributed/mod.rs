//! Distributed runs: one master and any number of load workers, coordinated through Redis
//! (see [`protocol`] for the keys and messages).
//!
//! - `pique load worker --redis-url URL` joins a cluster and waits for runs ([`worker`]).
//! - `pique load run PLAN --workers N --redis-url URL` waits for N workers, gives each its
//!   share of the load (by weight), merges the per-second statistics they stream, and writes
//!   the same report as a local run plus a per-worker table ([`master`]).
//!
//! A worker that stops mid-run is not replaced: its users are not re-spread, the run goes on
//! with the others and is marked *degraded* in the progress line and the report (a capacity
//! search is the exception: the master steers every step's users over the workers still alive).

pub mod master;
pub mod protocol;
pub mod worker;

use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use crate::error::LoadError;

pub use master::{DistributedReport, WorkerRow};
pub use worker::{WorkerOptions, run_worker};

/// How a `pique load run` uses workers.
#[derive(Debug, Clone)]
pub struct DistributedOptions {
    /// Workers to wait for (exactly this many take part; more stay idle).
    pub workers: u32,
    /// Redis that coordinates the cluster.
    pub redis_url: String,
    /// Cluster name: the prefix of every key (workers and master must agree).
    pub cluster: String,
    /// How long to wait for the workers before giving up.
    pub wait: Duration,
}

/// Default cluster name.
pub const DEFAULT_CLUSTER: &str = "pique-load";

/// A connection whose commands may block (BLPOP) or wait on a busy machine for up to 5 s,
/// instead of the client's default 500 ms.
pub(crate) async fn connect(url: &str) -> Result<MultiplexedConnection, LoadError> {
    let client = redis::Client::open(url)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// Pops the next message of `list`, waiting up to `wait` (`None` when nothing came).
pub(crate) async fn pop(
    con: &mut MultiplexedConnection,
    list: &str,
    wait: Duration,
) -> Result<Option<String>, LoadError> {
    let got: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(list)
        .arg(wait.as_secs_f64())
        .query_async(con)
        .await?;
    Ok(got.map(|(_, v)| v))
}

/// Appends a JSON message to `list` and keeps the list from outliving the cluster's use.
pub(crate) async fn push<T: serde::Serialize>(
    con: &mut MultiplexedConnection,
    list: &str,
    message: &T,
) -> Result<(), LoadError> {
    let text = serde_json::to_string(message).map_err(|source| LoadError::Json {
        context: "encode a message".into(),
        source,
    })?;
    redis::pipe()
        .rpush(list, text)
        .ignore()
        .expire(list, protocol::LIST_TTL.as_secs() as i64)
        .ignore()
        .query_async::<()>(con)
        .await?;
    Ok(())
}

/// This machine's name, for workers' default names and the report.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
