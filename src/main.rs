//! `pique`: the PiqueTickets replica, its workers, a local Stripe, and the load generator that
//! runs the original team's load-testing plan, in one binary.
//!
//! This file only parses the command line and dispatches; each subcommand lives in
//! `cmd/<name>.rs` and the real work in the `crates/`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The PiqueTickets replica and its load generator.
#[derive(Debug, Parser)]
#[command(name = "pique", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the replica of the Django service).
    Serve(cmd::serve::ServeArgs),
    /// Apply database migrations (creating the database if needed).
    Migrate,
    /// Fill the database with deterministic fixtures.
    Seed(cmd::seed::SeedArgs),
    /// Print the effective configuration (secrets masked).
    Config,
    /// The newcomer's first command: database, fixtures, API, workers, stripe-sim and a short
    /// graded load run, all in one process.
    Demo(cmd::demo::DemoArgs),
    /// Run the job workers (PDF, email, checkout queue, maintenance).
    Worker(cmd::worker::WorkerArgs),
    /// Inspect and retry dead-lettered jobs.
    Jobs(cmd::jobs::JobsArgs),
    /// Verify the checkout invariants (no oversell, no stuck hold, paid orders fulfilled);
    /// exits 1 when one fails.
    Check(cmd::check::CheckArgs),
    /// Run the local Stripe stand-in.
    StripeSim(stripe_sim::SimArgs),
    /// The load generator: run the original team's plans and grade them.
    #[command(subcommand)]
    Load(cmd::load::LoadCommand),
    /// Architecture profiles: list, show, and calibrate one against a real deployment.
    #[command(subcommand)]
    Profile(cmd::profile::ProfileCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.global.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The demo's terminal shows its steps, the load run and the verdict; the services' logs
    // go to a file beside the run reports.
    let log_file = match &cli.command {
        Command::Demo(args) => Some(cmd::demo::log_path(args)),
        _ => None,
    };
    cmd::init_tracing(&config, log_file.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(config, args).await.map(|()| 0),
            Command::Migrate => cmd::migrate::run(&config).await.map(|()| 0),
            Command::Seed(args) => cmd::seed::run(&config, args).await.map(|()| 0),
            Command::Worker(args) => cmd::worker::run(config, args).await.map(|()| 0),
            Command::Jobs(args) => cmd::jobs::run(config, args).await.map(|()| 0),
            Command::Check(args) => cmd::check::run(config, args).await,
            Command::StripeSim(args) => stripe_sim::serve(args.into())
                .await
                .map(|()| 0)
                .map_err(Into::into),
            Command::Load(command) => cmd::load::run(command).await,
            Command::Profile(command) => cmd::profile::run(command).await,
            Command::Demo(args) => cmd::demo::run(config, args).await,
            Command::Config => {
                cmd::print_config(&config);
                Ok(0)
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
