//! `stripe-sim`: a local Stripe stand-in that async-stripe talks to over real HTTP.
//!
//! It speaks Stripe's wire format (form bodies in bracket notation, `Authorization: Bearer
//! sk_...`, `Stripe-Account`, Stripe's error JSON and status codes) and answers complete objects,
//! so the same client code works against it and against Stripe test mode by changing the base
//! URL and key.
//!
//! - API: Checkout Sessions (create/retrieve/expire), refunds, payment intents, Connect accounts,
//!   account links and balances.
//! - Hosted pages: `/pay/{session}` (Pay button -> 303 to `success_url`) and
//!   `/connect/onboard/{account}`.
//! - Signed webhooks (`checkout.session.completed`/`expired`, `account.updated`,
//!   `refund.created`) with retries.
//! - `Idempotency-Key` replay for `POST /v1/*`, so SDK retries never duplicate objects.
//! - Fault injection on `/v1/*`: latency and jitter, 5xx rate, rate limit (429), hangs.
//! - Controls under `/_sim/*`: complete/expire a session, knobs, stats, webhook deliveries.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stripe_sim::SimError> {
//! let sim = stripe_sim::spawn(stripe_sim::SimConfig::ephemeral()).await?;
//! // ClientBuilder::new("sk_test_123").url(sim.base_url()) ...
//! # Ok(()) }
//! ```

// The full Checkout Session object is one big `json!` literal.
#![recursion_limit = "256"]
#![warn(missing_docs)]

pub mod checkout_params;
pub mod config;
pub mod error;
pub mod form;
pub mod idempotency;
pub mod ids;
pub mod knobs;
pub mod model;
pub mod objects;
pub mod routes;
pub mod state;
pub mod stats;
pub mod store;
pub mod webhook;

use std::{net::SocketAddr, time::Duration};

use tokio::{sync::oneshot, task::JoinHandle};

pub use config::{Knobs, KnobsPatch, SimArgs, SimConfig};
pub use error::{ApiError, SimError};
pub use routes::router;
pub use state::SimState;
pub use stats::Stats;
pub use webhook::{Delivery, DeliveryStatus};

/// How often sessions past their `expires_at` are expired.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests; a request hung by the timeout knob could
/// otherwise hold it for `timeout_hang_ms`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running simulator (see [`spawn`]).
#[derive(Debug)]
pub struct StripeSim {
    addr: SocketAddr,
    state: SimState,
    shutdown: Option<oneshot::Sender<()>>,
    server: ServerTask,
    sweeper: JoinHandle<()>,
}

impl StripeSim {
    /// The API base URL to give async-stripe (`ClientBuilder::url`), e.g. `http://127.0.0.1:40123`
    /// (loopback when bound to a wildcard address).
    pub fn base_url(&self) -> String {
        format!("http://{}", reachable(self.addr))
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, to inspect objects, events, deliveries and stats in tests.
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Replaces the fault-injection knobs.
    pub fn set_knobs(&self, knobs: Knobs) -> Result<(), config::KnobsError> {
        self.state.set_knobs(knobs)
    }

    /// Current fault-injection knobs.
    pub fn knobs(&self) -> Knobs {
        self.state.knobs()
    }

    /// Points webhooks at `url` (or turns them off).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state.set_webhook_url(url);
    }

    /// Stops accepting connections and waits (up to 5 s) for in-flight requests to finish; then
    /// stops the server.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.sweeper.abort();
        stop(self.shutdown.take(), &mut self.server).await
    }
}

type ServerTask = JoinHandle<Result<(), std::io::Error>>;

/// Serves `state` on `listener` in a task that stops gracefully when `stop` fires.
fn spawn_server(
    listener: tokio::net::TcpListener,
    state: SimState,
    stop: oneshot::Receiver<()>,
) -> ServerTask {
    let serve = axum::serve(listener, router(state)).with_graceful_shutdown(async {
        let _ = stop.await;
    });
    tokio::spawn(serve.into_future())
}

/// The server task's outcome as a `SimError`; a cancelled or panicked task counts as stopped.
fn server_result(
    joined: Result<Result<(), std::io::Error>, tokio::task::JoinError>,
) -> Result<(), SimError> {
    match joined {
        Ok(result) => result.map_err(SimError::Serve),
        Err(_) => Ok(()),
    }
}

/// Asks the server to stop, waits up to [`SHUTDOWN_GRACE`] for in-flight requests, then aborts.
async fn stop(tx: Option<oneshot::Sender<()>>, server: &mut ServerTask) -> Result<(), SimError> {
    if let Some(tx) = tx {
        let _ = tx.send(());
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut *server).await {
        Ok(joined) => server_result(joined),
        Err(_) => {
            server.abort();
            Ok(())
        }
    }
}

/// Resolves the hosted pages' base URL: the configured one, or `http://{bound address}`, with a
/// wildcard bind (`0.0.0.0`, `::`) replaced by loopback, which a browser can actually open.
fn public_base(config: &SimConfig, addr: SocketAddr) -> String {
    if let Some(base) = &config.public_base {
        return base.clone();
    }
    format!("http://{}", reachable(addr))
}

/// The bound address, with a wildcard IP (`0.0.0.0`, `::`) replaced by loopback.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// Starts the background task that expires sessions whose `expires_at` passed, emitting
/// `checkout.session.expired` like Stripe. [`spawn`] and [`serve`] call it for you.
pub fn start_expiry_sweeper(state: SimState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            routes::checkout::expire_due(&state);
        }
    })
}

async fn bind(config: &SimConfig) -> Result<(tokio::net::TcpListener, SocketAddr), SimError> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    Ok((listener, addr))
}

/// Binds `config.bind` (port 0 allowed) and serves the simulator in a background task.
pub async fn spawn(config: SimConfig) -> Result<StripeSim, SimError> {
    let (listener, addr) = bind(&config).await?;
    let state = SimState::new(&config, &public_base(&config, addr))?;
    let (tx, rx) = oneshot::channel::<()>();
    let server = spawn_server(listener, state.clone(), rx);
    let sweeper = start_expiry_sweeper(state.clone());
    tracing::info!(%addr, "stripe-sim listening");
    Ok(StripeSim {
        addr,
        state,
        shutdown: Some(tx),
        server,
        sweeper,
    })
}

/// Runs the simulator in the foreground until Ctrl-C (for `pique stripe-sim`).
pub async fn serve(config: SimConfig) -> Result<(), SimError> {
    let (listener, addr) = bind(&config).await?;
    let state = SimState::new(&config, &public_base(&config, addr))?;
    let (tx, rx) = oneshot::channel::<()>();
    let mut server = spawn_server(listener, state.clone(), rx);
    let sweeper = start_expiry_sweeper(state);
    tracing::info!(
        %addr,
        webhook_url = ?config.webhook_url,
        "stripe-sim listening: point the Stripe client at http://{addr} with any sk_test_ key"
    );
    let result = tokio::select! {
        joined = &mut server => server_result(joined),
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("stripe-sim shutting down");
            stop(Some(tx), &mut server).await
        }
    };
    sweeper.abort();
    result
}
