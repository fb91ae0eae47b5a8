//! `pique load run|compare|report|ui`: the load generator (crate `pique-load`).

use clap::Subcommand;
use pique_load::{CompareArgs, ConvertArgs, ReportArgs, RunArgs, UiArgs};

/// What `pique load` can do.
#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Run a plan file (e.g. loadtests/baseline.toml, or an Artillery .yml) against a host and
    /// grade it.
    Run(RunArgs),
    /// Print the TOML plan equivalent to an Artillery config.
    Convert(ConvertArgs),
    /// Put two runs side by side (Django vs Rust, strategy vs strategy).
    Compare(CompareArgs),
    /// Re-render the HTML report of a finished run directory.
    Report(ReportArgs),
    /// Locust-like web UI (start/stop, users, spawn rate, live charts) on :8089.
    Ui(UiArgs),
}

/// Runs the subcommand; the exit code is the plan's verdict (0 pass, 1 threshold failed).
pub async fn run(command: LoadCommand) -> anyhow::Result<u8> {
    match command {
        LoadCommand::Run(args) => {
            let plan = args.load_plan()?;
            for w in &plan.warnings {
                eprintln!("warning: {w}");
            }
            let outcome = pique_load::run_plan(&plan, &args.options()).await?;
            println!("report: {}", outcome.report_path.display());
            println!("verdict: {}", outcome.verdict);
            Ok(u8::try_from(outcome.exit_code).unwrap_or(2))
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
            let plan = args.run.load_plan()?;
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            println!("load UI on http://{}", args.bind);
            pique_load::serve_ui(listener, plan, args.run.options()).await?;
            Ok(0)
        }
    }
}
