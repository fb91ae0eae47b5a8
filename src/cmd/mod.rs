//! One module per subcommand, plus the flags every subcommand shares.

pub mod check;
pub mod demo;
pub mod jobs;
pub mod load;
pub mod migrate;
pub mod profile;
pub mod seed;
pub mod serve;
pub mod services;
pub mod worker;

use clap::Args;
use pique_core::{Config, config::LogFormat};

/// Flags that override the environment for any subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// PostgreSQL URL [env: DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Redis URL [env: REDIS_URL]
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Architecture profile: rust, django-railway, django-recommended, or a profile file's
    /// path [env: PIQUE_PROFILE]
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Checkout strategy: reservation, redis-lock, queue [env: CHECKOUT_STRATEGY]
    #[arg(long, global = true)]
    pub checkout_strategy: Option<String>,
}

impl GlobalArgs {
    /// The environment's configuration with these flags applied on top.
    pub fn config(&self) -> Result<Config, pique_core::config::ConfigError> {
        use pique_core::config::env;
        let overrides = [
            (env::DATABASE_URL, &self.database_url),
            (env::REDIS_URL, &self.redis_url),
            (env::PROFILE, &self.profile),
            (env::CHECKOUT_STRATEGY, &self.checkout_strategy),
        ];
        Config::from_lookup(|key| {
            overrides
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| (*v).clone())
                .or_else(|| std::env::var(key).ok())
        })
    }
}

/// Logs to stderr, as text or one JSON object per line (`LOG_FORMAT`), filtered by `RUST_LOG`;
/// or, with `file`, appended to that file instead (`pique demo`, whose terminal shows the load
/// run and its verdict, not the services' logs). If the file cannot be opened, only warnings
/// and errors reach stderr.
pub fn init_tracing(config: &Config, file: Option<&std::path::Path>) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, filter, ansi) = match file.map(open_log) {
        None => (BoxMakeWriter::new(std::io::stderr), filter(), true),
        Some(Ok(f)) => (
            BoxMakeWriter::new(std::sync::Mutex::new(f)),
            filter(),
            false,
        ),
        Some(Err(_)) => (
            BoxMakeWriter::new(std::io::stderr),
            EnvFilter::new("warn"),
            true,
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// `pique config`.
pub fn print_config(config: &Config) {
    for (name, value) in config.redacted() {
        println!("{name}={value}");
    }
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
