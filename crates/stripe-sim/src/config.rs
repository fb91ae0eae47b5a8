//! Static configuration (`SimConfig`, `SimArgs`) and the runtime fault-injection knobs (`Knobs`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Default listen address of `pique stripe-sim` (the port stripe-mock uses).
pub const DEFAULT_BIND: &str = "127.0.0.1:12111";
/// Default webhook signing secret, shared with the replica's dev configuration.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_pique_dev";

/// Everything the simulator needs to start.
///
/// Fault-injection fields (`latency_ms` .. `timeout_rate`) are only the initial values: they can
/// be changed at runtime with `POST /_sim/config` or [`crate::StripeSim::set_knobs`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Base URL browsers use to reach the hosted pages (`{public_base}/pay/{id}`).
    /// Defaults to `http://{bound address}`.
    pub public_base: Option<String>,
    /// If set, the only accepted secret key. Otherwise any `sk_test_`/`sk_live_` key is accepted.
    pub secret_key: Option<String>,
    /// Where signed webhook events are POSTed; no webhooks are sent when `None`.
    pub webhook_url: Option<String>,
    /// Secret used to sign webhooks (`Stripe-Signature`), like an endpoint's `whsec_...`.
    pub webhook_secret: String,
    /// Mean latency added to every `/v1/*` request, in milliseconds.
    pub latency_ms: u64,
    /// Uniform jitter (+/-) around `latency_ms`, in milliseconds.
    pub jitter_ms: u64,
    /// Fraction (0..=1) of `/v1/*` requests answered with a Stripe `api_error` 500.
    pub error_rate: f64,
    /// Requests per second accepted on `/v1/*` before answering 429; `None` disables the limit.
    pub rate_limit_rps: Option<u32>,
    /// Fraction (0..=1) of `/v1/*` requests that hang (up to `timeout_hang_ms`) before failing.
    pub timeout_rate: f64,
    /// How long a request selected by `timeout_rate` hangs before the sim answers 500 itself.
    pub timeout_hang_ms: u64,
    /// Delay before the first delivery attempt of each webhook, e.g. to let the customer's
    /// redirect reach the app before the `checkout.session.completed` event does.
    pub webhook_delay_ms: u64,
    /// Maximum delivery attempts per webhook event (including the first).
    pub webhook_max_attempts: u32,
    /// Delay before the first webhook retry; doubled on every further retry.
    pub webhook_backoff_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 12111)),
            public_base: None,
            secret_key: None,
            webhook_url: None,
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            rate_limit_rps: None,
            timeout_rate: 0.0,
            timeout_hang_ms: 30_000,
            webhook_delay_ms: 0,
            webhook_max_attempts: 5,
            webhook_backoff_ms: 200,
        }
    }
}

impl SimConfig {
    /// A config listening on `127.0.0.1:0` (a free port), convenient for tests.
    pub fn ephemeral() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }

    /// The fault-injection knobs this config starts with.
    pub fn knobs(&self) -> Knobs {
        Knobs {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            error_rate: self.error_rate,
            rate_limit_rps: self.rate_limit_rps,
            timeout_rate: self.timeout_rate,
            timeout_hang_ms: self.timeout_hang_ms,
            webhook_delay_ms: self.webhook_delay_ms,
        }
    }
}

/// Command-line flags / environment variables of `pique stripe-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long = "bind", env = "STRIPE_SIM_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Public base URL of the hosted pay/onboarding pages (default: http://BIND).
    #[arg(long = "public-base", env = "STRIPE_SIM_PUBLIC_BASE")]
    pub public_base: Option<String>,
    /// Only accept this secret key (default: any sk_test_/sk_live_ key).
    #[arg(long = "secret-key", env = "STRIPE_SIM_SECRET_KEY")]
    pub secret_key: Option<String>,
    /// URL that receives signed webhook events (e.g. http://127.0.0.1:8000/api/v1/stripe/webhook/).
    #[arg(long = "webhook-url", env = "STRIPE_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Webhook signing secret.
    #[arg(long = "webhook-secret", env = "STRIPE_WEBHOOK_SECRET", default_value = DEFAULT_WEBHOOK_SECRET)]
    pub webhook_secret: String,
    /// Mean latency added to /v1 requests (ms).
    #[arg(
        long = "latency-ms",
        env = "STRIPE_SIM_LATENCY_MS",
        default_value_t = 0
    )]
    pub latency_ms: u64,
    /// Jitter around the mean latency (ms).
    #[arg(long = "jitter-ms", env = "STRIPE_SIM_JITTER_MS", default_value_t = 0)]
    pub jitter_ms: u64,
    /// Fraction of /v1 requests answered with a 500 api_error (0..1).
    #[arg(
        long = "error-rate",
        env = "STRIPE_SIM_ERROR_RATE",
        default_value_t = 0.0
    )]
    pub error_rate: f64,
    /// Requests per second accepted before answering 429 (unset: unlimited).
    #[arg(long = "rate-limit-rps", env = "STRIPE_SIM_RATE_LIMIT_RPS")]
    pub rate_limit_rps: Option<u32>,
    /// Fraction of /v1 requests that hang until the client times out (0..1).
    #[arg(
        long = "timeout-rate",
        env = "STRIPE_SIM_TIMEOUT_RATE",
        default_value_t = 0.0
    )]
    pub timeout_rate: f64,
    /// How long a "timed out" request hangs at most (ms).
    #[arg(
        long = "timeout-hang-ms",
        env = "STRIPE_SIM_TIMEOUT_HANG_MS",
        default_value_t = 30_000
    )]
    pub timeout_hang_ms: u64,
    /// Delay before each webhook's first delivery attempt (ms).
    #[arg(
        long = "webhook-delay-ms",
        env = "STRIPE_SIM_WEBHOOK_DELAY_MS",
        default_value_t = 0
    )]
    pub webhook_delay_ms: u64,
    /// Webhook delivery attempts per event.
    #[arg(
        long = "webhook-max-attempts",
        env = "STRIPE_SIM_WEBHOOK_MAX_ATTEMPTS",
        default_value_t = 5
    )]
    pub webhook_max_attempts: u32,
    /// First webhook retry delay (ms), doubled on each retry.
    #[arg(
        long = "webhook-backoff-ms",
        env = "STRIPE_SIM_WEBHOOK_BACKOFF_MS",
        default_value_t = 200
    )]
    pub webhook_backoff_ms: u64,
}

impl From<SimArgs> for SimConfig {
    fn from(a: SimArgs) -> Self {
        Self {
            bind: a.bind,
            public_base: a.public_base,
            secret_key: a.secret_key,
            webhook_url: a.webhook_url,
            webhook_secret: a.webhook_secret,
            latency_ms: a.latency_ms,
            jitter_ms: a.jitter_ms,
            error_rate: a.error_rate,
            rate_limit_rps: a.rate_limit_rps,
            timeout_rate: a.timeout_rate,
            timeout_hang_ms: a.timeout_hang_ms,
            webhook_delay_ms: a.webhook_delay_ms,
            webhook_max_attempts: a.webhook_max_attempts,
            webhook_backoff_ms: a.webhook_backoff_ms,
        }
    }
}

/// Fault-injection settings applied to `/v1/*` (and the webhook delay), changeable while the sim
/// runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    /// Mean added latency (ms).
    pub latency_ms: u64,
    /// Uniform jitter (+/-) around the mean (ms).
    pub jitter_ms: u64,
    /// Fraction of requests answered with a 500 `api_error`.
    pub error_rate: f64,
    /// Requests per second before 429 `rate_limit`; `None` = unlimited.
    pub rate_limit_rps: Option<u32>,
    /// Fraction of requests that hang for `timeout_hang_ms` and then fail.
    pub timeout_rate: f64,
    /// Hang duration of a "timed out" request (ms).
    pub timeout_hang_ms: u64,
    /// Delay before each webhook's first delivery attempt (ms).
    pub webhook_delay_ms: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        SimConfig::default().knobs()
    }
}

/// A partial update of [`Knobs`] (and of the webhook URL), the body of `POST /_sim/config`; absent fields are unchanged.
///
/// `rate_limit_rps: 0` (or `null`) turns the rate limit off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobsPatch {
    /// New mean latency (ms).
    pub latency_ms: Option<u64>,
    /// New jitter (ms).
    pub jitter_ms: Option<u64>,
    /// New 5xx rate.
    pub error_rate: Option<f64>,
    /// New rate limit; `Some(None)` (JSON `null`) or `Some(Some(0))` disables it.
    #[serde(default, with = "double_option")]
    pub rate_limit_rps: Option<Option<u32>>,
    /// New timeout rate.
    pub timeout_rate: Option<f64>,
    /// New hang duration (ms).
    pub timeout_hang_ms: Option<u64>,
    /// New webhook delay (ms).
    pub webhook_delay_ms: Option<u64>,
    /// New webhook URL (not a fault knob, but changeable at runtime too); `null` turns webhooks
    /// off. Ignored by [`Knobs::apply`].
    #[serde(default, with = "double_option_string")]
    pub webhook_url: Option<Option<String>>,
}

/// Why a knob update was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KnobsError {
    /// A rate was outside 0..=1 (or not a number).
    #[error("{0} must be between 0 and 1")]
    RateOutOfRange(&'static str),
}

impl Knobs {
    /// Checks that the rates are probabilities.
    pub fn validate(&self) -> Result<(), KnobsError> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("timeout_rate", self.timeout_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(KnobsError::RateOutOfRange(name));
            }
        }
        Ok(())
    }

    /// Returns these knobs with `patch` applied, validated.
    pub fn apply(&self, patch: &KnobsPatch) -> Result<Knobs, KnobsError> {
        let mut k = self.clone();
        if let Some(v) = patch.latency_ms {
            k.latency_ms = v;
        }
        if let Some(v) = patch.jitter_ms {
            k.jitter_ms = v;
        }
        if let Some(v) = patch.error_rate {
            k.error_rate = v;
        }
        if let Some(v) = patch.rate_limit_rps {
            k.rate_limit_rps = v.filter(|n| *n > 0);
        }
        if let Some(v) = patch.timeout_rate {
            k.timeout_rate = v;
        }
        if let Some(v) = patch.timeout_hang_ms {
            k.timeout_hang_ms = v;
        }
        if let Some(v) = patch.webhook_delay_ms {
            k.webhook_delay_ms = v;
        }
        k.validate()?;
        Ok(k)
    }
}

/// Serde helper telling an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<u32>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Option::<u32>::deserialize(d).map(Some)
    }
}

/// Same as `double_option`, for strings.
mod double_option_string {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_keeps_absent_fields_and_null_disables_rate_limit() {
        let base = Knobs {
            rate_limit_rps: Some(5),
            latency_ms: 7,
            ..Knobs::default()
        };
        let p: KnobsPatch = serde_json::from_str(r#"{"error_rate":0.5}"#).unwrap();
        let k = base.apply(&p).unwrap();
        assert_eq!(k.rate_limit_rps, Some(5));
        assert_eq!(k.latency_ms, 7);
        assert_eq!(k.error_rate, 0.5);
        let p: KnobsPatch = serde_json::from_str(r#"{"rate_limit_rps":null}"#).unwrap();
        assert_eq!(base.apply(&p).unwrap().rate_limit_rps, None);
        let p: KnobsPatch = serde_json::from_str(r#"{"timeout_rate":1.5}"#).unwrap();
        assert!(base.apply(&p).is_err());
        assert!(serde_json::from_str::<KnobsPatch>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn sim_args_parse_and_convert() {
        use clap::{CommandFactory, Parser};

        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: SimArgs,
        }
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "pique",
            "--bind",
            "127.0.0.1:0",
            "--error-rate",
            "0.5",
            "--rate-limit-rps",
            "10",
            "--webhook-url",
            "http://127.0.0.1:8000/hook",
        ])
        .unwrap();
        let cfg = SimConfig::from(cli.args);
        assert_eq!(cfg.bind.port(), 0);
        assert_eq!(cfg.error_rate, 0.5);
        assert_eq!(cfg.rate_limit_rps, Some(10));
        assert_eq!(
            cfg.webhook_url.as_deref(),
            Some("http://127.0.0.1:8000/hook")
        );
        assert_eq!(cfg.knobs().rate_limit_rps, Some(10));
    }
}
