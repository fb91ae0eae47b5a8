//! `pique demo`: the newcomer's first command.
//!
//! Migrates a fresh `pique_demo` database, seeds it, starts the API, the workers and
//! stripe-sim in this one process, runs a short mixed load plan with live progress, writes the
//! HTML report and prints its path and the graded verdict. If nothing answers at
//! `DATABASE_URL` / `REDIS_URL`, private throwaway instances are started and removed after.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use pique_core::Config;
use sqlx::{Connection, postgres::PgConnectOptions};

use super::services::PrivateServices;

/// Name of the database the demo (re)creates; nothing else on the server is touched.
const DEMO_DATABASE: &str = "pique_demo";

/// Flags of `pique demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fixture preset to seed (small, medium, large).
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Simulated users: enough that every user class of the mixed plan (down to the 5 %
    /// that pay and trigger PDFs and emails) gets at least one.
    #[arg(long, default_value_t = 20)]
    pub users: u32,
    /// How long the load runs (e.g. 30s, 2m).
    #[arg(long, default_value = "20s", value_parser = pique_load::duration::parse_duration)]
    pub run_time: Duration,
    /// Where run reports go.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Keep the API, workers and stripe-sim running after the load run (Ctrl-C to stop).
    #[arg(long)]
    pub keep_running: bool,
}

/// Where the demo's services log: `<out>/demo.log`, so their lines never interleave with the
/// live display of the load run.
pub fn log_path(args: &DemoArgs) -> PathBuf {
    args.out.join("demo.log")
}

/// Runs the demo; the exit code is the load run's (0 pass, 1 a threshold failed).
pub async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<u8> {
    let preset = pique_store::seed::Preset::by_name(&args.preset).with_context(|| {
        format!(
            "unknown preset {:?}; use small, medium or large",
            args.preset
        )
    })?;
    let mut private = PrivateServices::default();

    step("PostgreSQL");
    let server = server_url(&config.database_url)?;
    if !postgres_answers(&server).await {
        println!(
            "  nothing answers at {}; starting a private PostgreSQL",
            pique_core::config::mask_url_password(&server)
        );
        let url = tokio::task::block_in_place(|| private.start_postgres())?;
        config.database_url = with_database(&url, DEMO_DATABASE)?;
    } else {
        config.database_url = with_database(&config.database_url, DEMO_DATABASE)?;
    }
    recreate_database(&config.database_url).await?;
    super::migrate::run(&config).await?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let report = pique_store::seed::seed(&pool, preset, false)
        .await
        .context("seeding failed")?;
    println!(
        "  database {DEMO_DATABASE}: {} shows, {} tiers seeded in {} ms",
        report.shows, report.tickets, report.millis
    );

    step("Redis");
    if !redis_answers(&config.redis_url).await {
        println!(
            "  nothing answers at {}; starting a private Redis",
            config.redis_url
        );
        config.redis_url = tokio::task::block_in_place(|| private.start_redis())?;
    }
    println!("  {}", config.redis_url);

    step("API, stripe-sim and workers");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let run_dir_mail = args.out.join("demo-mail");
    let sim = stripe_sim::spawn(stripe_sim::SimConfig {
        webhook_url: Some(format!("{api}/stripe/webhook/")),
        webhook_secret: config.stripe_webhook_secret.clone(),
        ..stripe_sim::SimConfig::ephemeral()
    })
    .await?;
    config.stripe_api_base = sim.base_url();
    config.public_url = api.clone();
    config.mail_dir = run_dir_mail.clone();
    config.media_dir = args.out.join("demo-media");
    // One IP sends all the load: per-IP limits would only measure themselves.
    config.rate_limit = false;
    let state = pique_api::AppState::new(config.clone(), pool.clone(), cache(&config)?)?;
    // API and workers share this process and so one metrics recorder: install the API's
    // first, so `/metrics` (which the load run scrapes and grades) shows both.
    pique_api::metrics::handle();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_task = tokio::spawn(pique_api::serve(
        state.clone(),
        listener,
        wait(stop_rx.clone()),
    ));
    let jobs = pique_jobs::JobsConfig {
        namespace: format!("pique-demo-{}", std::process::id()),
        ..pique_jobs::JobsConfig::from_core(&config)
    };
    let options = pique_jobs::WorkerOptions {
        queues: pique_jobs::process::queue_specs(
            &[
                "pdf".into(),
                "email".into(),
                "checkout".into(),
                "maintenance".into(),
            ],
            "4",
            4,
        )?,
        name: format!("demo-{}", std::process::id()),
    };
    let worker_task = tokio::spawn(pique_jobs::process::run(
        pool.clone(),
        jobs,
        state.checkout.clone(),
        options,
        None,
        wait(stop_rx.clone()),
    ));
    println!("  API        {api}   (docs {api}/api/docs/, metrics {api}/metrics)");
    println!("  stripe-sim {}", sim.base_url());
    println!(
        "  producer logins: producer1..producer{} / {}",
        report.producers,
        pique_store::seed::DEMO_PASSWORD
    );
    println!("  emails as .eml files in {}", run_dir_mail.display());
    println!(
        "  logs of the API, workers and stripe-sim in {}",
        log_path(&args).display()
    );

    step("Load: the mixed plan (60% reads, 25% producer portal, 10% checkout, 5% paid orders)");
    let plan = pique_load::demo_plan()?;
    let options = pique_load::RunOptions {
        hosts: vec![api.clone()],
        out_dir: args.out.clone(),
        users: Some(args.users),
        spawn_rate: Some(f64::from(args.users)),
        run_time: Some(args.run_time),
        metrics_urls: vec![format!("{api}/metrics")],
        database_url: Some(config.database_url.clone()),
        redis_url: Some(config.redis_url.clone()),
        vars: vec![("stripe_base".into(), sim.base_url())],
        label: Some(format!(
            "pique demo, profile {}, checkout {}",
            config.profile, config.checkout_strategy
        )),
        ..pique_load::RunOptions::default()
    };
    let outcome = pique_load::run_plan(&plan, &options).await;

    if args.keep_running && outcome.is_ok() {
        println!("\nStill running at {api}; Ctrl-C to stop.");
        super::shutdown_signal().await;
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(35), async {
        let _ = api_task.await;
        let _ = worker_task.await;
    })
    .await;
    let _ = sim.shutdown().await;
    pool.close().await;
    drop(private);

    let outcome = outcome?;
    step("Result");
    println!("  report:  {}", outcome.report_path.display());
    println!("  verdict: {}", outcome.verdict);
    Ok(u8::try_from(outcome.exit_code).unwrap_or(2))
}

fn step(title: &str) {
    println!("\n== {title}");
}

async fn wait(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

fn cache(config: &Config) -> anyhow::Result<pique_store::cache::Cache> {
    Ok(pique_store::cache::Cache::new(
        &config.redis_url,
        &format!("pique-demo-{}", std::process::id()),
        config.redis.cache_ttl,
        config.redis.socket_timeout,
    )?)
}

/// `url` pointing at database `name` instead.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url).context("DATABASE_URL is not a URL")?;
    u.set_path(&format!("/{name}"));
    Ok(u.to_string())
}

fn server_url(url: &str) -> anyhow::Result<String> {
    with_database(url, "postgres")
}

async fn postgres_answers(server: &str) -> bool {
    let Ok(options) = PgConnectOptions::from_str(server) else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect_with(&options)
        )
        .await,
        Ok(Ok(_))
    )
}

async fn redis_answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), ping).await,
        Ok(Ok(_))
    )
}

/// Drops and recreates the demo database so every demo starts from the same state.
async fn recreate_database(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url)?;
    if options.get_database() != Some(DEMO_DATABASE) {
        bail!("refusing to recreate a database not named {DEMO_DATABASE}");
    }
    pique_store::db::recreate_database(url).await?;
    Ok(())
}
