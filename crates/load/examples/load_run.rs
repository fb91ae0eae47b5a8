//! `pique load run` without the main binary (for benchmarks and trying plans):
//! `cargo run --release -p pique-load --example load_run -- PLAN --host URL [flags]`.
//! Exit code: 0 thresholds passed, 1 a threshold failed, 2 error.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: pique_load::RunArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.run.load_plan() {
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
        Ok(plan) => match pique_load::run_plan(&plan, &cli.run.options()).await {
            Ok(out) => {
                let a = &out.summary.aggregated;
                println!(
                    "{} requests, {} failed, {:.1} req/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                    a.count,
                    a.failures,
                    a.rps,
                    a.pct(0.5),
                    a.pct(0.95),
                    a.pct(0.99)
                );
                println!("report: {}", out.report_path.display());
                println!("verdict: {}", out.verdict);
                out.exit_code
            }
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
    };
    std::process::exit(code);
}
