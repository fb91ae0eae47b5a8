//! `pique serve`: the API.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use pique_core::Config;

/// Flags of `pique serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address [env: PIQUE_BIND, default 0.0.0.0:8080]
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Apply migrations before serving.
    #[arg(long)]
    pub migrate: bool,
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if args.migrate {
        super::migrate::run(&config).await?;
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(
        bind = %config.bind, profile = %config.profile, strategy = %config.checkout_strategy,
        "pique API listening"
    );
    let state = pique_api::AppState::from_config(config)?;
    pique_api::serve(state, listener, super::shutdown_signal()).await?;
    Ok(())
}
