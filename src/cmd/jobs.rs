//! `pique jobs`: the dead-letter set (list, retry one, retry all).

use clap::{Args, Subcommand};
use pique_core::Config;
use pique_core::jobs::Queue;
use pique_jobs::{Queues, deadletter};

/// Flags of `pique jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Prefix of the Redis keys of the queues.
    #[arg(long, env = "PIQUE_QUEUE_NAMESPACE", default_value = "pique")]
    pub namespace: String,
    /// Only this queue (pdf, email, checkout, maintenance).
    #[arg(long)]
    pub queue: Option<String>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// What to do with the dead-letter set.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List dead jobs, oldest first.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-enqueue one dead job as a fresh first attempt.
    Retry {
        /// The id shown by `pique jobs list`.
        id: String,
    },
    /// Re-enqueue every dead job.
    RetryAll,
}

/// Runs the subcommand.
pub async fn run(config: Config, args: JobsArgs) -> anyhow::Result<()> {
    let selected: Vec<Queue> = match &args.queue {
        Some(q) => match q.parse() {
            Ok(queue) => vec![queue],
            Err(_) => {
                anyhow::bail!("unknown queue {q:?} (expected pdf, email, checkout, maintenance)")
            }
        },
        None => Queue::ALL.to_vec(),
    };
    let queues = Queues::open(&config.redis_url, &args.namespace)?;
    match args.command {
        JobsCommand::List { json } => {
            let dead = deadletter::list(&queues, &selected).await?;
            if json {
                for entry in &dead {
                    println!("{}", serde_json::to_string(entry)?);
                }
            } else if dead.is_empty() {
                println!("no dead jobs");
            } else {
                println!(
                    "{:<32}  {:<11}  {:<20}  {:<8}  {:<25}  error",
                    "id", "queue", "kind", "attempts", "failed at"
                );
                for e in &dead {
                    println!(
                        "{:<32}  {:<11}  {:<20}  {:<8}  {:<25}  {}",
                        e.id,
                        e.queue,
                        e.job.kind,
                        e.job.attempt,
                        e.failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        e.error
                    );
                }
            }
        }
        JobsCommand::Retry { id } => {
            if deadletter::retry(&queues, &selected, &id).await? {
                println!("re-enqueued {id}");
            } else {
                anyhow::bail!("no dead job {id}");
            }
        }
        JobsCommand::RetryAll => {
            let n = deadletter::retry_all(&queues, &selected).await?;
            println!("re-enqueued {n} job(s)");
        }
    }
    Ok(())
}
