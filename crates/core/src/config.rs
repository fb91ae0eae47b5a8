//! Typed configuration (12-factor: environment variables, overridable by flags).
//!
//! Defaults copy the original deployment's settings (seed: `settings.py`, `gunicorn_config.py`):
//! Postgres connect timeout 10 s, statement timeout 30 s, connections recycled after 60 s and
//! tested before use; Redis cache TTL 300 s, socket timeout 5 s with one retry.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

pub use crate::profile::Profile;

/// Environment variable names, in one place so docs, docker-compose and tests agree.
pub mod env {
    /// PostgreSQL URL.
    pub const DATABASE_URL: &str = "DATABASE_URL";
    /// Redis URL (cache, locks and job queues).
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Prefix of the API's Redis keys (cache, cache generation, checkout locks): every API
    /// replica of one deployment must use the same one; deployments (or tests) sharing a
    /// Redis use different ones.
    pub const REDIS_PREFIX: &str = "PIQUE_REDIS_PREFIX";
    /// Address the API listens on.
    pub const BIND: &str = "PIQUE_BIND";
    /// Public base URL used in links (Stripe return URLs, emails, check-in links).
    pub const PUBLIC_URL: &str = "PIQUE_PUBLIC_URL";
    /// Stripe API base URL (stripe-sim locally, `https://api.stripe.com` for real).
    pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";
    /// Stripe secret key.
    pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
    /// Secret used to verify `Stripe-Signature` on webhooks.
    pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
    /// SMTP server for outgoing mail, e.g. `smtp://127.0.0.1:1025`.
    pub const SMTP_URL: &str = "SMTP_URL";
    /// Directory for `.eml` files when no SMTP server is configured.
    pub const MAIL_DIR: &str = "MAIL_DIR";
    /// Directory for generated files (PDF tickets).
    pub const MEDIA_DIR: &str = "MEDIA_DIR";
    /// Architecture profile: `rust`, a profile shipped in `profiles/` (`django-railway`,
    /// `django-recommended`) or the path of a profile file.
    pub const PROFILE: &str = "PIQUE_PROFILE";
    /// Checkout strategy: `reservation`, `redis-lock`, `queue`.
    pub const CHECKOUT_STRATEGY: &str = "CHECKOUT_STRATEGY";
    /// Log format: `text` or `json`.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    /// Maximum PostgreSQL connections in the API's pool.
    pub const DB_MAX_CONNECTIONS: &str = "PIQUE_DB_MAX_CONNECTIONS";
    /// Cache TTL in seconds.
    pub const CACHE_TTL_SECS: &str = "PIQUE_CACHE_TTL_SECS";
    /// How long a pending order holds its seats, in seconds.
    pub const HOLD_TTL_SECS: &str = "PIQUE_HOLD_TTL_SECS";
    /// Rate limiting switch (`on`/`off`); the `django-railway` profile forces it off.
    pub const RATE_LIMIT: &str = "PIQUE_RATE_LIMIT";
    /// Per-class rate limits (`N/s|min|hour[:burst]` or `off`), parsed by the API.
    pub const RATE_LIMIT_CLASSES: [&str; 5] = [
        "PIQUE_RATE_LIMIT_LOGIN",
        "PIQUE_RATE_LIMIT_CHECKOUT",
        "PIQUE_RATE_LIMIT_SUBSCRIBE",
        "PIQUE_RATE_LIMIT_PORTAL",
        "PIQUE_RATE_LIMIT_READ",
    ];
    /// Seconds a client has to send a request's complete header block (slow clients).
    pub const HEADER_READ_TIMEOUT_SECS: &str = "PIQUE_HEADER_READ_TIMEOUT_SECS";
    /// Most client connections the API holds open at once.
    pub const MAX_CONNECTIONS: &str = "PIQUE_MAX_CONNECTIONS";
    /// Seconds an export's database query may run (it no longer waits for the client).
    pub const EXPORT_QUERY_TIMEOUT_SECS: &str = "PIQUE_EXPORT_QUERY_TIMEOUT_SECS";
    /// Every variable read by [`super::Config::from_lookup`], for `pique config` and tests.
    pub const ALL: &[&str] = &[
        DATABASE_URL,
        REDIS_URL,
        REDIS_PREFIX,
        BIND,
        PUBLIC_URL,
        STRIPE_API_BASE,
        STRIPE_SECRET_KEY,
        STRIPE_WEBHOOK_SECRET,
        SMTP_URL,
        MAIL_DIR,
        MEDIA_DIR,
        PROFILE,
        CHECKOUT_STRATEGY,
        LOG_FORMAT,
        DB_MAX_CONNECTIONS,
        CACHE_TTL_SECS,
        HOLD_TTL_SECS,
        RATE_LIMIT,
        HEADER_READ_TIMEOUT_SECS,
        MAX_CONNECTIONS,
        EXPORT_QUERY_TIMEOUT_SECS,
    ];
}

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message} (got {value:?})")]
pub struct ConfigError {
    /// The variable or flag.
    pub name: String,
    /// What was given.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

/// How `POST /checkout/` protects seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CheckoutStrategy {
    /// Today's production: per-tier Redis locks, then `SELECT ... FOR UPDATE`.
    RedisLock,
    /// One transaction with conditional updates and an expiring hold; no Redis in the path.
    #[default]
    Reservation,
    /// Validate, enqueue, answer 202; the client polls for the result.
    Queue,
}

impl CheckoutStrategy {
    /// The name used in configuration, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStrategy::RedisLock => "redis-lock",
            CheckoutStrategy::Reservation => "reservation",
            CheckoutStrategy::Queue => "queue",
        }
    }
}

impl FromStr for CheckoutStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redis-lock" => Ok(CheckoutStrategy::RedisLock),
            "reservation" => Ok(CheckoutStrategy::Reservation),
            "queue" => Ok(CheckoutStrategy::Queue),
            _ => Err("expected one of reservation, redis-lock, queue".into()),
        }
    }
}

impl fmt::Display for CheckoutStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// The strategy that created an order is stored on it (`orders.checkout_strategy`).
sqlx_text!(CheckoutStrategy);

/// PostgreSQL pool settings, mirroring Django's `DATABASES` options.
#[derive(Debug, Clone, Serialize)]
pub struct PgSettings {
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `statement_timeout`, applied to every connection.
    pub statement_timeout: Duration,
    /// `CONN_MAX_AGE`: connections are recycled after this long.
    pub max_lifetime: Duration,
    /// `CONN_HEALTH_CHECKS`: test a connection before handing it out.
    pub test_before_acquire: bool,
    /// Pool size.
    pub max_connections: u32,
}

/// Redis settings, mirroring Django's cache options.
#[derive(Debug, Clone, Serialize)]
pub struct RedisSettings {
    /// Prefix of the API's keys (`{prefix}:cache:generation`, `{prefix}:c:...`, locks).
    pub key_prefix: String,
    /// `socket_timeout`.
    pub socket_timeout: Duration,
    /// `retry_on_timeout`: one retry.
    pub retries: u32,
    /// Cache `TIMEOUT`.
    pub cache_ttl: Duration,
}

/// Protection against slow and idle clients (slowloris, stalled downloads).
#[derive(Debug, Clone, Serialize)]
pub struct HttpSettings {
    /// A connection that has not sent a complete request header block within this time after
    /// it opened (or after its previous response) is closed. nginx's `client_header_timeout`
    /// is 60 s; a real client sends its headers in milliseconds, so 10 s only cuts off
    /// clients that hold a connection without using it.
    pub header_read_timeout: Duration,
    /// Most client connections held at once; further connections wait in the listen backlog
    /// until one closes. Each costs a file descriptor and a task, so this keeps the process
    /// under its descriptor limit whatever clients do.
    pub max_connections: usize,
    /// Longest an export's query may run. Exports are spooled to a temporary file as fast as
    /// PostgreSQL delivers rows, so this bounds database work, not the client's download.
    pub export_query_timeout: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The effective configuration of every `pique` process.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// API listen address.
    pub bind: SocketAddr,
    /// Base URL the outside world reaches the API at.
    pub public_url: String,
    /// Stripe API base URL.
    pub stripe_api_base: String,
    /// Stripe secret key.
    pub stripe_secret_key: String,
    /// Stripe webhook signing secret.
    pub stripe_webhook_secret: String,
    /// SMTP server; when absent mail goes to `mail_dir`.
    pub smtp_url: Option<String>,
    /// Directory for `.eml` files.
    pub mail_dir: PathBuf,
    /// Directory for PDFs.
    pub media_dir: PathBuf,
    /// Architecture profile.
    pub profile: Profile,
    /// Checkout strategy.
    pub checkout_strategy: CheckoutStrategy,
    /// Log format.
    pub log_format: LogFormat,
    /// PostgreSQL settings.
    pub pg: PgSettings,
    /// Redis settings.
    pub redis: RedisSettings,
    /// How long a pending order holds its seats (Stripe's minimum session life: 30 min).
    pub hold_ttl: Duration,
    /// Rate limiting requested (still off under a Django profile).
    pub rate_limit: bool,
    /// The per-class limits that were set, by variable name (see
    /// [`env::RATE_LIMIT_CLASSES`]); the API parses them.
    pub rate_limit_classes: std::collections::BTreeMap<String, String>,
    /// Slow-client limits.
    pub http: HttpSettings,
}

/// Default values, shared with `docker-compose.yml` and the README.
pub mod defaults {
    /// Default `DATABASE_URL`.
    pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/pique";
    /// Default `REDIS_URL`.
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
    /// Default `PIQUE_REDIS_PREFIX`.
    pub const REDIS_PREFIX: &str = "pique";
    /// Default `PIQUE_BIND`: the port the seed's clients use.
    pub const BIND: &str = "0.0.0.0:8080";
    /// Default `STRIPE_API_BASE`: stripe-sim.
    pub const STRIPE_API_BASE: &str = "http://127.0.0.1:12111";
    /// Default `STRIPE_SECRET_KEY`: a test-mode key stripe-sim accepts.
    pub const STRIPE_SECRET_KEY: &str = "sk_test_pique_local";
    /// Default `STRIPE_WEBHOOK_SECRET`.
    pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_pique_dev";
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let bind_s = or(env::BIND, defaults::BIND);
        let bind: SocketAddr = parse(env::BIND, &bind_s)?;
        let public_url = get(env::PUBLIC_URL)
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", bind.port()))
            .trim_end_matches('/')
            .to_string();
        let profile_name = or(env::PROFILE, crate::profile::RUST);
        let profile = Profile::resolve(&profile_name)
            .map_err(|e| err(env::PROFILE, &profile_name, &e.to_string()))?;
        // A profile may name its deployment's checkout (production uses the Redis lock).
        let default_strategy = profile.app.checkout_strategy.unwrap_or_default().as_str();
        let log_format = match or(env::LOG_FORMAT, "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(err(env::LOG_FORMAT, other, "expected text or json")),
        };
        let rate_limit = match or(env::RATE_LIMIT, "on").as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => return Err(err(env::RATE_LIMIT, other, "expected on or off")),
        };
        Ok(Config {
            database_url: or(env::DATABASE_URL, defaults::DATABASE_URL),
            redis_url: or(env::REDIS_URL, defaults::REDIS_URL),
            bind,
            public_url,
            stripe_api_base: or(env::STRIPE_API_BASE, defaults::STRIPE_API_BASE),
            stripe_secret_key: or(env::STRIPE_SECRET_KEY, defaults::STRIPE_SECRET_KEY),
            stripe_webhook_secret: or(env::STRIPE_WEBHOOK_SECRET, defaults::STRIPE_WEBHOOK_SECRET),
            smtp_url: get(env::SMTP_URL),
            mail_dir: PathBuf::from(or(env::MAIL_DIR, "mail")),
            media_dir: PathBuf::from(or(env::MEDIA_DIR, "media")),
            profile,
            checkout_strategy: parse(
                env::CHECKOUT_STRATEGY,
                &or(env::CHECKOUT_STRATEGY, default_strategy),
            )?,
            log_format,
            pg: PgSettings {
                connect_timeout: Duration::from_secs(10),
                statement_timeout: Duration::from_secs(30),
                max_lifetime: Duration::from_secs(60),
                test_before_acquire: true,
                max_connections: parse(
                    env::DB_MAX_CONNECTIONS,
                    &or(env::DB_MAX_CONNECTIONS, "20"),
                )?,
            },
            redis: RedisSettings {
                key_prefix: or(env::REDIS_PREFIX, defaults::REDIS_PREFIX),
                socket_timeout: Duration::from_secs(5),
                retries: 1,
                cache_ttl: Duration::from_secs(parse(
                    env::CACHE_TTL_SECS,
                    &or(env::CACHE_TTL_SECS, "300"),
                )?),
            },
            hold_ttl: Duration::from_secs(parse(
                env::HOLD_TTL_SECS,
                &or(env::HOLD_TTL_SECS, "1800"),
            )?),
            rate_limit,
            rate_limit_classes: env::RATE_LIMIT_CLASSES
                .iter()
                .filter_map(|k| get(k).map(|v| (k.to_string(), v)))
                .collect(),
            http: HttpSettings {
                header_read_timeout: secs(
                    env::HEADER_READ_TIMEOUT_SECS,
                    &or(env::HEADER_READ_TIMEOUT_SECS, "10"),
                )?,
                max_connections: positive(env::MAX_CONNECTIONS, &or(env::MAX_CONNECTIONS, "4096"))?,
                export_query_timeout: secs(
                    env::EXPORT_QUERY_TIMEOUT_SECS,
                    &or(env::EXPORT_QUERY_TIMEOUT_SECS, "120"),
                )?,
            },
        })
    }

    /// Whether rate limiting is actually in force (requested, and allowed by the profile).
    pub fn rate_limiting_enabled(&self) -> bool {
        self.rate_limit && self.profile.allows_rate_limiting()
    }

    /// The profile's name, and its file when it came from one.
    pub fn profile_label(&self) -> String {
        match self.profile.origin.as_str() {
            "built-in" | "embedded" => self.profile.name.clone(),
            path => format!("{} ({path})", self.profile.name),
        }
    }

    /// `(name, value)` pairs for display, with secrets and URL passwords masked.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        vec![
            (env::DATABASE_URL, mask_url_password(&self.database_url)),
            (env::REDIS_URL, mask_url_password(&self.redis_url)),
            (env::REDIS_PREFIX, self.redis.key_prefix.clone()),
            (env::BIND, self.bind.to_string()),
            (env::PUBLIC_URL, self.public_url.clone()),
            (env::STRIPE_API_BASE, self.stripe_api_base.clone()),
            (env::STRIPE_SECRET_KEY, mask_secret(&self.stripe_secret_key)),
            (
                env::STRIPE_WEBHOOK_SECRET,
                mask_secret(&self.stripe_webhook_secret),
            ),
            (
                env::SMTP_URL,
                self.smtp_url
                    .as_deref()
                    .map(mask_url_password)
                    .unwrap_or_default(),
            ),
            (env::MAIL_DIR, self.mail_dir.display().to_string()),
            (env::MEDIA_DIR, self.media_dir.display().to_string()),
            (env::PROFILE, self.profile_label()),
            (env::CHECKOUT_STRATEGY, self.checkout_strategy.to_string()),
            (
                env::LOG_FORMAT,
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            (env::DB_MAX_CONNECTIONS, self.pg.max_connections.to_string()),
            (
                env::CACHE_TTL_SECS,
                self.redis.cache_ttl.as_secs().to_string(),
            ),
            (env::HOLD_TTL_SECS, self.hold_ttl.as_secs().to_string()),
            (
                env::RATE_LIMIT,
                if self.rate_limiting_enabled() {
                    "on"
                } else {
                    "off"
                }
                .to_string(),
            ),
            (
                env::HEADER_READ_TIMEOUT_SECS,
                self.http.header_read_timeout.as_secs().to_string(),
            ),
            (env::MAX_CONNECTIONS, self.http.max_connections.to_string()),
            (
                env::EXPORT_QUERY_TIMEOUT_SECS,
                self.http.export_query_timeout.as_secs().to_string(),
            ),
        ]
    }
}

fn err(name: &str, value: &str, message: &str) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

/// A whole number of seconds, at least 1 (0 would disable or break the limit).
fn secs(name: &str, value: &str) -> Result<Duration, ConfigError> {
    positive(name, value).map(Duration::from_secs)
}

/// A number that must be at least 1.
fn positive<T: FromStr + PartialOrd + From<u8>>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    let n: T = parse(name, value)?;
    if n < T::from(1) {
        return Err(err(name, value, "must be at least 1"));
    }
    Ok(n)
}

fn parse<T: FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| err(name, value, &e.to_string()))
}

/// Keeps the first 7 characters of a secret (`sk_test`), masks the rest.
pub fn mask_secret(secret: &str) -> String {
    let keep: String = secret.chars().take(7).collect();
    if secret.chars().count() > 7 {
        format!("{keep}****")
    } else {
        "****".to_string()
    }
}

/// Replaces the password in `scheme://user:password@host/...` with `****`.
pub fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_mirror_the_original_settings() {
        let c = from(&[]).expect("defaults parse");
        assert_eq!(c.database_url, defaults::DATABASE_URL);
        assert_eq!(c.bind.port(), 8080);
        assert_eq!(c.pg.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.pg.statement_timeout, Duration::from_secs(30));
        assert_eq!(c.pg.max_lifetime, Duration::from_secs(60));
        assert!(c.pg.test_before_acquire);
        assert_eq!(c.redis.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.redis.socket_timeout, Duration::from_secs(5));
        assert_eq!(c.redis.key_prefix, "pique");
        assert_eq!(
            from(&[(env::REDIS_PREFIX, "staging")])
                .expect("prefix")
                .redis
                .key_prefix,
            "staging"
        );
        assert_eq!(c.hold_ttl, Duration::from_secs(1800));
        assert!(c.profile.is_rust());
        assert_eq!(c.checkout_strategy, CheckoutStrategy::Reservation);
        assert!(c.rate_limiting_enabled());
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.http.max_connections, 4096);
        assert_eq!(c.http.export_query_timeout, Duration::from_secs(120));
    }

    #[test]
    fn slow_client_limits_are_configurable_and_never_zero() {
        let c = from(&[
            (env::HEADER_READ_TIMEOUT_SECS, "3"),
            (env::MAX_CONNECTIONS, "100"),
            (env::EXPORT_QUERY_TIMEOUT_SECS, "600"),
        ])
        .expect("parses");
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.http.max_connections, 100);
        assert_eq!(c.http.export_query_timeout, Duration::from_secs(600));
        for name in [
            env::HEADER_READ_TIMEOUT_SECS,
            env::MAX_CONNECTIONS,
            env::EXPORT_QUERY_TIMEOUT_SECS,
        ] {
            let e = from(&[(name, "0")]).expect_err("0 is refused");
            assert_eq!(e.name, name);
            assert!(from(&[(name, "ten")]).is_err());
        }
    }

    #[test]
    fn railway_profile_uses_redis_lock_and_no_rate_limit() {
        let c = from(&[(env::PROFILE, "django-railway")]).expect("parses");
        assert_eq!(c.checkout_strategy, CheckoutStrategy::RedisLock);
        assert!(!c.rate_limiting_enabled());
        assert_eq!(c.profile.model_summary(), "gunicorn gthread 1x2");
        let c = from(&[
            (env::PROFILE, "django-railway"),
            (env::CHECKOUT_STRATEGY, "queue"),
        ])
        .expect("parses");
        assert_eq!(c.checkout_strategy, CheckoutStrategy::Queue);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = from(&[(env::PROFILE, "gunicorn")]).expect_err("must fail");
        assert_eq!(e.name, env::PROFILE);
        assert!(e.message.contains("django-recommended"), "{e}");
        let e = from(&[(env::BIND, "nope")]).expect_err("must fail");
        assert!(e.to_string().starts_with("PIQUE_BIND"));
        assert!(from(&[(env::CACHE_TTL_SECS, "-1")]).is_err());
    }

    #[test]
    fn redaction_hides_secrets_and_passwords() {
        let c = from(&[
            (env::DATABASE_URL, "postgres://app:hunter2@db:5432/pique"),
            (env::STRIPE_SECRET_KEY, "sk_live_abcdefghijkl"),
        ])
        .expect("parses");
        let shown: HashMap<_, _> = c.redacted().into_iter().collect();
        assert!(!shown[env::DATABASE_URL].contains("hunter2"));
        assert!(shown[env::DATABASE_URL].contains("****"));
        assert_eq!(shown[env::STRIPE_SECRET_KEY], "sk_live****");
        assert_eq!(shown.len(), env::ALL.len());
    }
}
