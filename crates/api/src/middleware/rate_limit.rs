//! Rate limiting per client IP and route class (`docs/decisions.md`), with governor's keyed
//! GCRA limiters: 429 `{"detail": "Request was throttled. ..."}` with `Retry-After`.
//!
//! Classes and defaults (requests per period, burst), each overridable by an environment
//! variable (`N/s|min|hour[:burst]` or `off`):
//!
//! | class | routes | default | variable |
//! |---|---|---|---|
//! | login | `POST /auth/login/` | 5/min, burst 5 | `PIQUE_RATE_LIMIT_LOGIN` |
//! | checkout | `POST /checkout/`, `/success/`, `/cancel/`, `/validate-promo/` | 120/min, burst 200 | `PIQUE_RATE_LIMIT_CHECKOUT` |
//! | subscribe | `POST /api/v1/subscriber/create/` | 30/min, burst 10 | `PIQUE_RATE_LIMIT_SUBSCRIBE` |
//! | portal | `/auth/*`, `/api/v1/portal/*`, `/api/v1/producers/*/...`, `/api/v1/checkin/` | 1200/min, burst 300 | `PIQUE_RATE_LIMIT_PORTAL` |
//! | read | everything else | 1000/s, burst 2000 | `PIQUE_RATE_LIMIT_READ` |
//!
//! Never limited: `/health/`, `/metrics`, the docs, Stripe webhooks (Stripe retries, but
//! throttling it only delays paid orders) and email tracking pixels.
//!
//! Why these numbers: login is the brute-force target, so it is strict whatever it costs. The
//! others must not trip the project's own load plans, which run from one IP: the smoke plans
//! stay well inside them, and public reads (cache hits, the cheapest thing the server does)
//! are limited only against a runaway client. Full-scale plans (`mixed.toml` logs 50
//! producer users in from one machine; `read-heavy.toml` reaches 500 req/s) need
//! `PIQUE_RATE_LIMIT=off` or raised limits, which is also the fair setting when comparing
//! with the original, which has no rate limiting at all. The whole layer is absent under the
//! `django-*` profiles (`Config::rate_limiting_enabled`).
//!
//! IPv6 clients are keyed by their /64, since one host commonly holds a whole /64.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use pique_core::Config;

use crate::ApiError;

/// A route class: requests of one class share one limit per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `POST /auth/login/`.
    Login,
    /// The money path.
    Checkout,
    /// Mailing-list sign-up.
    Subscribe,
    /// Authenticated producer routes and the door.
    Portal,
    /// Public reads and anything else.
    Read,
    /// Never limited.
    Exempt,
}

impl RouteClass {
    /// The label in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Login => "login",
            RouteClass::Checkout => "checkout",
            RouteClass::Subscribe => "subscribe",
            RouteClass::Portal => "portal",
            RouteClass::Read => "read",
            RouteClass::Exempt => "exempt",
        }
    }
}

/// The class of a request.
pub fn classify(method: &Method, path: &str) -> RouteClass {
    let p = path.trim_end_matches('/');
    let post = method == Method::POST;
    match p {
        "/auth/login" if post => return RouteClass::Login,
        "/checkout" | "/success" | "/cancel" | "/validate-promo" if post => {
            return RouteClass::Checkout;
        }
        "/api/v1/subscriber/create" if post => return RouteClass::Subscribe,
        "/health"
        | "/metrics"
        | "/api/openapi.json"
        | "/stripe/webhook"
        | "/api/v1/stripe/webhook" => {
            return RouteClass::Exempt;
        }
        _ => {}
    }
    if p.starts_with("/api/docs") || p.starts_with("/email-tracking/") {
        RouteClass::Exempt
    } else if p.starts_with("/auth/")
        || p.starts_with("/api/v1/portal/")
        || p == "/api/v1/portal"
        || p.starts_with("/api/v1/producers/")
        || p == "/api/v1/checkin"
    {
        RouteClass::Portal
    } else {
        RouteClass::Read
    }
}

/// One class's limit: `count` requests per `period`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per period (sustained rate).
    pub count: NonZeroU32,
    /// The period.
    pub period: Duration,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Limit {
    /// `count` per `period`, burst `burst` (zeros become one).
    pub fn new(count: u32, period: Duration, burst: u32) -> Limit {
        Limit {
            count: NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN),
            period,
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }

    fn quota(self) -> Option<Quota> {
        let per_cell = self.period / self.count.get();
        Quota::with_period(per_cell).map(|q| q.allow_burst(self.burst))
    }

    /// Parses `N/unit[:burst]` (units `s`, `min`, `hour`; burst defaults to N) or `off`.
    pub fn parse(raw: &str) -> Result<Option<Limit>, String> {
        let raw = raw.trim();
        if matches!(raw, "off" | "none" | "0") {
            return Ok(None);
        }
        let bad = || {
            format!("expected N/s, N/min or N/hour with an optional :burst, or off (got {raw:?})")
        };
        let (rate, burst) = match raw.split_once(':') {
            Some((r, b)) => (r, Some(b.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (raw, None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 || burst == Some(0) {
            return Err(bad());
        }
        Ok(Some(Limit::new(count, period, burst.unwrap_or(count))))
    }
}

/// The limit of every class; `None` = unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Login attempts.
    pub login: Option<Limit>,
    /// Checkout, success, cancel, promo validation.
    pub checkout: Option<Limit>,
    /// Subscriber sign-up.
    pub subscribe: Option<Limit>,
    /// Portal, producer actions, check-in.
    pub portal: Option<Limit>,
    /// Public reads.
    pub read: Option<Limit>,
}

/// Environment variables of [`RateLimitSettings::from_lookup`].
pub mod env {
    /// Login class.
    pub const LOGIN: &str = "PIQUE_RATE_LIMIT_LOGIN";
    /// Checkout class.
    pub const CHECKOUT: &str = "PIQUE_RATE_LIMIT_CHECKOUT";
    /// Subscribe class.
    pub const SUBSCRIBE: &str = "PIQUE_RATE_LIMIT_SUBSCRIBE";
    /// Portal class.
    pub const PORTAL: &str = "PIQUE_RATE_LIMIT_PORTAL";
    /// Read class.
    pub const READ: &str = "PIQUE_RATE_LIMIT_READ";
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            login: Some(Limit::new(5, Duration::from_secs(60), 5)),
            checkout: Some(Limit::new(120, Duration::from_secs(60), 200)),
            subscribe: Some(Limit::new(30, Duration::from_secs(60), 10)),
            portal: Some(Limit::new(1200, Duration::from_secs(60), 300)),
            read: Some(Limit::new(1000, Duration::from_secs(1), 2000)),
        }
    }
}

impl RateLimitSettings {
    /// Defaults overridden by the variables `lookup` knows.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = RateLimitSettings::default();
        for (name, slot) in [
            (env::LOGIN, &mut s.login),
            (env::CHECKOUT, &mut s.checkout),
            (env::SUBSCRIBE, &mut s.subscribe),
            (env::PORTAL, &mut s.portal),
            (env::READ, &mut s.read),
        ] {
            if let Some(v) = lookup(name).filter(|v| !v.trim().is_empty()) {
                *slot = Limit::parse(&v).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        Ok(s)
    }

    /// From the configuration; a bad value is logged and the defaults are kept (the server
    /// must still start, and limits are a safety net, not a feature).
    pub fn from_config(config: &Config) -> Self {
        RateLimitSettings::from_lookup(|k| config.rate_limit_classes.get(k).cloned())
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "bad rate limit setting; using the defaults");
                RateLimitSettings::default()
            })
    }
}

type KeyedLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// The live limiters, one per limited class.
pub struct Limiters {
    login: Option<KeyedLimiter>,
    checkout: Option<KeyedLimiter>,
    subscribe: Option<KeyedLimiter>,
    portal: Option<KeyedLimiter>,
    read: Option<KeyedLimiter>,
    requests: AtomicU64,
}

/// Every this many limited requests, state of clients idle long enough to be full again is
/// dropped, so memory follows the number of recent clients, not of all clients ever seen.
const SWEEP_EVERY: u64 = 8192;

impl Limiters {
    /// Limiters for `settings`.
    pub fn new(settings: &RateLimitSettings) -> Limiters {
        let make = |l: Option<Limit>| l.and_then(Limit::quota).map(RateLimiter::keyed);
        Limiters {
            login: make(settings.login),
            checkout: make(settings.checkout),
            subscribe: make(settings.subscribe),
            portal: make(settings.portal),
            read: make(settings.read),
            requests: AtomicU64::new(0),
        }
    }

    fn for_class(&self, class: RouteClass) -> Option<&KeyedLimiter> {
        match class {
            RouteClass::Login => self.login.as_ref(),
            RouteClass::Checkout => self.checkout.as_ref(),
            RouteClass::Subscribe => self.subscribe.as_ref(),
            RouteClass::Portal => self.portal.as_ref(),
            RouteClass::Read => self.read.as_ref(),
            RouteClass::Exempt => None,
        }
    }

    /// `Ok` if `ip` may make a request of `class` now, else the seconds to wait (at least 1).
    pub fn check(&self, class: RouteClass, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = self.for_class(class) else {
            return Ok(());
        };
        if self.requests.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for l in [
                &self.login,
                &self.checkout,
                &self.subscribe,
                &self.portal,
                &self.read,
            ]
            .into_iter()
            .flatten()
            {
                l.retain_recent();
            }
        }
        limiter.check_key(&client_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            // Round up: a client that waits exactly Retry-After seconds must get through.
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Wraps `router` in the limiter when the configuration enables rate limiting; limits come
/// from [`RateLimitSettings::from_config`].
pub fn apply(router: Router, config: &Config) -> Router {
    if !config.rate_limiting_enabled() {
        return router;
    }
    apply_with(router, &RateLimitSettings::from_config(config))
}

/// Wraps `router` in a limiter with explicit settings.
pub fn apply_with(router: Router, settings: &RateLimitSettings) -> Router {
    let limiters = Arc::new(Limiters::new(settings));
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let limiters = limiters.clone();
            async move { limit(&limiters, req, next).await }
        },
    ))
}

async fn limit(limiters: &Limiters, request: Request, next: Next) -> Response {
    let class = classify(request.method(), request.uri().path());
    // Without the peer address (a router driven in-process, not through `serve`) there is no
    // client to key on; such callers are trusted code.
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip
        && let Err(retry_after) = limiters.check(class, ip)
    {
        metrics::counter!("pique_rate_limited_total", "class" => class.as_str()).increment(1);
        return ApiError::TooManyRequests(retry_after).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_routes() {
        assert_eq!(classify(&Method::POST, "/auth/login/"), RouteClass::Login);
        assert_eq!(classify(&Method::GET, "/auth/login/"), RouteClass::Portal);
        assert_eq!(classify(&Method::POST, "/checkout/"), RouteClass::Checkout);
        assert_eq!(
            classify(&Method::POST, "/validate-promo"),
            RouteClass::Checkout
        );
        assert_eq!(
            classify(&Method::POST, "/api/v1/subscriber/create/"),
            RouteClass::Subscribe
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/portal/shows/"),
            RouteClass::Portal
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/producers/stripe-balance/"),
            RouteClass::Portal
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/producers/"),
            RouteClass::Read
        );
        assert_eq!(
            classify(&Method::POST, "/api/v1/checkin/"),
            RouteClass::Portal
        );
        assert_eq!(classify(&Method::GET, "/api/v1/shows/"), RouteClass::Read);
        assert_eq!(classify(&Method::GET, "/health/"), RouteClass::Exempt);
        assert_eq!(
            classify(&Method::POST, "/stripe/webhook/"),
            RouteClass::Exempt
        );
        assert_eq!(
            classify(&Method::GET, "/email-tracking/open/x.gif"),
            RouteClass::Exempt
        );
    }

    #[test]
    fn parses_limits() {
        assert_eq!(
            Limit::parse("5/min").unwrap(),
            Some(Limit::new(5, Duration::from_secs(60), 5))
        );
        assert_eq!(
            Limit::parse("10/s:50").unwrap(),
            Some(Limit::new(10, Duration::from_secs(1), 50))
        );
        assert_eq!(Limit::parse("off").unwrap(), None);
        assert!(Limit::parse("5").is_err());
        assert!(Limit::parse("5/week").is_err());
        assert!(Limit::parse("0/min").is_err());
        let s =
            RateLimitSettings::from_lookup(|k| (k == env::LOGIN).then(|| "2/min:1".to_string()))
                .unwrap();
        assert_eq!(s.login, Some(Limit::new(2, Duration::from_secs(60), 1)));
        assert_eq!(s.read, RateLimitSettings::default().read);
        assert!(
            RateLimitSettings::from_lookup(|k| (k == env::READ).then(|| "fast".to_string()))
                .is_err()
        );
    }

    #[test]
    fn login_burst_then_retry_after() {
        let l = Limiters::new(&RateLimitSettings::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert!(l.check(RouteClass::Login, ip).is_ok());
        }
        let wait = l.check(RouteClass::Login, ip).unwrap_err();
        assert!((1..=12).contains(&wait), "{wait}");
        // Another client and another class are unaffected.
        assert!(
            l.check(RouteClass::Login, "10.0.0.2".parse().unwrap())
                .is_ok()
        );
        assert!(l.check(RouteClass::Read, ip).is_ok());
        assert!(l.check(RouteClass::Exempt, ip).is_ok());
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }
}
