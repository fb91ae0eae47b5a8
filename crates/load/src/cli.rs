//! Command-line argument structs for the `pique load` subcommands (the binary owns the clap
//! tree; these are flattened into it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::distributed::{DistributedOptions, WorkerOptions};
use crate::duration::parse_duration;
use crate::error::PlanError;
use crate::plan::Plan;
use crate::run::RunOptions;

fn parse_run_time(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!(
            "`{s}`: a factor in (0, 1], e.g. 0.01 runs a 2 h plan in 72 s"
        )),
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}`: empty variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `pique load run PLAN [options]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Plan file: TOML (e.g. loadtests/baseline.toml) or an Artillery config (.yml, .yaml).
    pub plan: PathBuf,
    /// Target base URL (overrides the plan's `host`), e.g. http://127.0.0.1:8080. Repeat it
    /// for several API replicas without a load balancer: users are spread over the hosts
    /// round-robin, each user keeping its host for the whole run.
    #[arg(long = "host", short = 'H', value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Run N users for the whole run instead of the plan's shape (Locust --users); for arrival
    /// and capacity plans, the maximum users.
    #[arg(long, short = 'u')]
    pub users: Option<u32>,
    /// Users started per second (Locust --spawn-rate).
    #[arg(long, short = 'r')]
    pub spawn_rate: Option<f64>,
    /// Stop after this long: 30s, 5m, 2h, 1h30m.
    #[arg(long, short = 't', value_parser = parse_run_time)]
    pub run_time: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Directory for run directories.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// No live progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Prometheus endpoint to scrape, repeatable: the API's first, then each worker's (with
    /// docker compose: http://127.0.0.1:8080/metrics, :9091 for worker-pdf, :9092 for
    /// worker-email). Default: HOST/metrics, skipped with a note if absent.
    #[arg(long = "metrics-url")]
    pub metrics_urls: Vec<String>,
    /// PostgreSQL URL to sample pg_stat_activity during the run.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Redis URL to sample INFO during the run.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Variable for every user, NAME=VALUE (repeatable), e.g. --var stripe_base=http://127.0.0.1:12111.
    #[arg(long = "var", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    /// Label recorded in the report, e.g. the target's profile (django-railway, rust).
    #[arg(long)]
    pub label: Option<String>,
    /// Run the plan's shape F times as long (0 < F <= 1): stages, arrival stages, capacity
    /// steps, the plan's run_time and every grading window are multiplied by F, so a 2 h soak
    /// runs as 72 s with 0.01 and is graded by the same rules. Think and wait times stay as
    /// written; --run-time stays wall-clock.
    #[arg(long, value_parser = parse_time_scale, default_value = "1")]
    pub time_scale: f64,
    /// Serve the load generator's own metrics for Prometheus at http://ADDR/metrics (users,
    /// requests, failures and response-time histograms per request name).
    #[arg(long, value_name = "ADDR", env = "PIQUE_LOAD_PROMETHEUS_LISTEN")]
    pub prometheus_listen: Option<SocketAddr>,
    /// Run on N load workers (`pique load worker`) instead of in this process: wait for N
    /// workers in the cluster on --redis-url, split users, spawn and arrival rates over them
    /// by weight, merge their statistics. --redis-url is then required (and also sampled).
    #[arg(long, value_name = "N", env = "PIQUE_LOAD_WORKERS")]
    pub workers: Option<u32>,
    /// Cluster name shared by the master and its workers (prefix of every Redis key).
    #[arg(long, default_value = crate::distributed::DEFAULT_CLUSTER, env = "PIQUE_LOAD_CLUSTER")]
    pub cluster: String,
    /// How long to wait for --workers workers before giving up.
    #[arg(long, value_parser = parse_run_time, default_value = "60s")]
    pub workers_timeout: Duration,
}

impl RunArgs {
    /// Loads and validates the plan file.
    pub fn load_plan(&self) -> Result<Plan, PlanError> {
        Plan::load(&self.plan)
    }

    /// The run options these arguments describe.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            hosts: self.hosts.clone(),
            out_dir: self.out.clone(),
            quiet: self.quiet,
            users: self.users,
            spawn_rate: self.spawn_rate,
            run_time: self.run_time,
            max_requests: self.max_requests,
            metrics_urls: self.metrics_urls.clone(),
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            vars: self.vars.clone(),
            label: self.label.clone(),
            time_scale: self.time_scale,
            distributed: self.workers.map(|workers| DistributedOptions {
                workers,
                redis_url: self.redis_url.clone().unwrap_or_default(),
                cluster: self.cluster.clone(),
                wait: self.workers_timeout,
            }),
        }
    }

    /// Checks flags that only make sense together (--workers needs --redis-url).
    pub fn check(&self) -> Result<(), String> {
        if self.workers.is_some() && self.redis_url.is_none() {
            return Err("--workers needs --redis-url (the Redis the workers joined)".into());
        }
        if self.workers == Some(0) {
            return Err("--workers must be at least 1".into());
        }
        Ok(())
    }
}

/// `pique load worker --redis-url URL [--name N] [--weight W] [--cluster C]`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Redis that coordinates the cluster (the master's --redis-url).
    #[arg(long, env = "PIQUE_LOAD_REDIS_URL")]
    pub redis_url: String,
    /// Name in the master's tables (default: host name and process id).
    #[arg(long, env = "PIQUE_LOAD_WORKER_NAME")]
    pub name: Option<String>,
    /// Share of the load relative to the other workers (a worker with weight 2 gets twice
    /// the users and arrival rate of one with weight 1).
    #[arg(long, default_value = "1", env = "PIQUE_LOAD_WORKER_WEIGHT")]
    pub weight: f64,
    /// Cluster name shared with the master (prefix of every Redis key).
    #[arg(long, default_value = crate::distributed::DEFAULT_CLUSTER, env = "PIQUE_LOAD_CLUSTER")]
    pub cluster: String,
    /// Announce this version instead of the build's (tests of the master's refusal).
    #[arg(long, hide = true)]
    pub announce_version: Option<String>,
}

impl WorkerArgs {
    /// The worker options these arguments describe.
    pub fn options(&self) -> WorkerOptions {
        WorkerOptions {
            redis_url: self.redis_url.clone(),
            cluster: self.cluster.clone(),
            name: self.name.clone(),
            weight: self.weight,
            announce_version: self.announce_version.clone(),
        }
    }
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> Self {
        a.options()
    }
}

/// `pique load run PLAN [options] [--ui [ADDR]]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunCommand {
    /// The plan and its options.
    #[command(flatten)]
    pub run: RunArgs,
    /// Also serve a live view of this run at http://ADDR (default 127.0.0.1:8089): charts,
    /// tables, failures, the server side, grading so far, Stop and a users form. It closes
    /// when the run ends.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8089"
    )]
    pub ui: Option<SocketAddr>,
}

/// `pique load compare A B [--out FILE]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// First run directory (or its summary.json), e.g. the Django run.
    pub a: PathBuf,
    /// Second run directory (or its summary.json), e.g. the Rust run.
    pub b: PathBuf,
    /// Output HTML file (default: runs/compare-<a>-vs-<b>.html).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

impl CompareArgs {
    /// The output path, defaulted from the two run names.
    pub fn out_path(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let name = |p: &PathBuf| {
                p.file_name()
                    .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
            };
            PathBuf::from("runs").join(format!(
                "compare-{}-vs-{}.html",
                name(&self.a),
                name(&self.b)
            ))
        })
    }
}

/// `pique load ui PLAN [--bind 127.0.0.1:8089] [--plans loadtests] [run options]`: the web
/// UI; the run options are the defaults every run starts from.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Address to serve the UI on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub bind: SocketAddr,
    /// Directory of the plans the new-run form offers (and its smoke/ directory).
    #[arg(long, default_value = "loadtests")]
    pub plans: PathBuf,
    /// Plan and default run options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `pique load convert CONFIG.yml`: print the TOML plan equivalent to an Artillery config.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// The Artillery config (YAML).
    pub config: PathBuf,
}

impl ConvertArgs {
    /// Converts the config; the TOML and the warnings.
    pub fn convert(&self) -> Result<crate::artillery::Converted, PlanError> {
        let src = std::fs::read_to_string(&self.config).map_err(|source| PlanError::Io {
            path: self.config.clone(),
            source,
        })?;
        crate::artillery::convert(&src, &self.config.display().to_string())
    }
}

/// `pique load report RUN_DIR`: re-render report.html and the CSVs from summary.json.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Run directory (or its summary.json).
    pub run_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_become_options() {
        let cli = Cli::try_parse_from([
            "x",
            "plan.toml",
            "--host",
            "http://h",
            "-H",
            "http://h2:8081",
            "-u",
            "10",
            "--run-time",
            "5m",
            "--var",
            "stripe_base=http://s:1",
            "--quiet",
            "--label",
            "rust",
            "--time-scale",
            "0.01",
            "--metrics-url",
            "http://h/metrics",
            "--metrics-url",
            "http://w:9091/metrics",
        ])
        .unwrap();
        let o = cli.run.options();
        assert_eq!(o.hosts, vec!["http://h", "http://h2:8081"]);
        assert_eq!(o.users, Some(10));
        assert_eq!(o.run_time, Some(Duration::from_secs(300)));
        assert_eq!(
            o.vars,
            vec![("stripe_base".to_string(), "http://s:1".to_string())]
        );
        assert!(o.quiet);
        assert_eq!(o.time_scale, 0.01);
        assert_eq!(o.metrics_urls.len(), 2);
        assert!(Cli::try_parse_from(["x", "p", "--var", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["x", "p", "--time-scale", "2"]).is_err());
        assert!(Cli::try_parse_from(["x", "p", "--time-scale", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "p", "--run-time", "5x"]).is_err());
    }
}
