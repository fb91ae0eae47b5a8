//! Runs the simulator in the foreground, configured like `pique stripe-sim`:
//! `cargo run -p stripe-sim --example serve -- --webhook-url http://127.0.0.1:8080/hook`.

use clap::Parser;

/// stripe-sim, standalone.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: stripe_sim::SimArgs,
}

#[tokio::main]
async fn main() -> Result<(), stripe_sim::SimError> {
    let cli = Cli::parse();
    stripe_sim::serve(cli.sim.into()).await
}
