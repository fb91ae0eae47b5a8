//! `pique load run|compare|report|ui`: the load generator (crate `pique-load`).

use std::sync::Arc;

use clap::Subcommand;
use pique_load::{
    CompareArgs, ConvertArgs, Exporter, Observers, ReportArgs, RunArgs, RunCommand, UiArgs,
    UiConfig, WorkerArgs,
};

/// What `pique load` can do.
#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Run a plan file (e.g. loadtests/baseline.toml, or an Artillery .yml) against a host and
    /// grade it.
    Run(RunCommand),
    /// Print the TOML plan equivalent to an Artillery config.
    Convert(ConvertArgs),
    /// Put two runs side by side (Django vs Rust, strategy vs strategy).
    Compare(CompareArgs),
    /// Re-render the HTML report of a finished run directory.
    Report(ReportArgs),
    /// A load worker: join the cluster on --redis-url and run the share of each distributed
    /// run (`pique load run PLAN --workers N`) its master gives it.
    Worker(WorkerArgs),
    /// The web UI on :8089: start runs of any plan in loadtests/, change users while they
    /// go, live charts and tables, server side, grading, downloads.
    Ui(UiArgs),
}

/// Observers every run of this process gets: the Prometheus exporter with
/// `--prometheus-listen`.
async fn observers(args: &RunArgs) -> anyhow::Result<Observers> {
    let mut observers = Observers::default();
    if let Some(addr) = args.prometheus_listen {
        let exporter: Arc<Exporter> = Exporter::listen(addr).await?;
        println!("load generator metrics on http://{addr}/metrics");
        observers.add(exporter);
    }
    Ok(observers)
}

fn ui_config(args: &RunArgs, plans_dir: std::path::PathBuf, observers: Observers) -> UiConfig {
    UiConfig {
        plan_path: args.plan.clone(),
        plans_dir,
        opts: args.options(),
        observers,
    }
}

/// Runs the subcommand; the exit code is the plan's verdict (0 pass, 1 threshold failed).
pub async fn run(command: LoadCommand) -> anyhow::Result<u8> {
    match command {
        LoadCommand::Run(cmd) => {
            let args = &cmd.run;
            args.check().map_err(anyhow::Error::msg)?;
            let plan = args.load_plan()?;
            for w in &plan.warnings {
                eprintln!("warning: {w}");
            }
            let observers = observers(args).await?;
            let outcome = match cmd.ui {
                Some(addr) => {
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    println!("live view on http://{addr}");
                    let plans_dir = args
                        .plan
                        .parent()
                        .map_or_else(|| ".".into(), |p| p.to_path_buf());
                    let cfg = ui_config(args, plans_dir, observers);
                    pique_load::run_with_ui(listener, plan, cfg).await?
                }
                None => {
                    let control = pique_load::RunControl {
                        observers,
                        ..Default::default()
                    };
                    pique_load::run_plan_controlled(&plan, &args.options(), &control).await?
                }
            };
            println!("report: {}", outcome.report_path.display());
            println!("verdict: {}", outcome.verdict);
            Ok(u8::try_from(outcome.exit_code).unwrap_or(2))
        }
        LoadCommand::Worker(args) => {
            pique_load::run_worker(args.options()).await?;
            Ok(0)
        }
        LoadCommand::Convert(args) => {
            let converted = args.convert()?;
            for w in &converted.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", converted.toml);
            Ok(0)
        }
        LoadCommand::Compare(args) => {
            let path = pique_load::compare(&args.a, &args.b, &args.out_path())?;
            println!("comparison: {}", path.display());
            Ok(0)
        }
        LoadCommand::Report(args) => {
            let path = pique_load::rerender(&args.run_dir)?;
            println!("report: {}", path.display());
            Ok(0)
        }
        LoadCommand::Ui(args) => {
            // Fail now on a bad plan rather than in the browser.
            args.run.load_plan()?;
            let observers = observers(&args.run).await?;
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            println!("load UI on http://{} (Ctrl-C to stop)", args.bind);
            let cfg = ui_config(&args.run, args.plans.clone(), observers);
            pique_load::serve_ui(listener, cfg).await?;
            Ok(0)
        }
    }
}
