//! Every Stripe call the replica makes, through async-stripe against the configured base URL
//! (stripe-sim locally, Stripe itself with a real key): Checkout Sessions and refunds for the
//! money path, and Connect (Express accounts, onboarding links, balances) for producers.
//!
//! Every call has a per-attempt timeout and is retried on 5xx, 429, timeouts and connection
//! errors with a short backoff (the SDK's own backoff starts at one second, too slow for a
//! request path). Retries are safe because every mutating call carries an idempotency key
//! derived from the order, so a retried create returns the session the first attempt made.
//! No call here is ever made inside a database transaction or while a lock is held.

use std::{collections::HashMap, time::Duration};

use pique_core::{Config, money, pricing::PricedLine};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::{
    CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus,
    checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, ExpireCheckoutSession, ProductData,
        RetrieveCheckoutSession,
    },
};
use stripe_connect::{
    account::{CreateAccount, CreateAccountType, RetrieveAccount},
    account_link::{CreateAccountLink, CreateAccountLinkType},
};
use stripe_core::{balance::RetrieveForMyAccountBalance, refund::CreateRefund};

/// Attempts per Stripe call (first try included).
const ATTEMPTS: u32 = 3;
/// Per-attempt timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stripe's shortest Checkout Session life.
const MIN_SESSION_SECS: i64 = 30 * 60;

/// A failed Stripe call.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Stripe did not answer usefully after the retries (5xx, 429, timeout, network).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the request (4xx other than 429).
    #[error("the payment provider refused the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Stripe's message.
        message: String,
    },
}

impl PaymentError {
    /// Whether Stripe answered 404 (unknown object).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PaymentError::Rejected { status: 404, .. })
    }
}

/// A created Checkout Session.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// `cs_...`
    pub id: String,
    /// The hosted payment page.
    pub url: Option<String>,
}

/// What the success path needs to know about a session.
#[derive(Debug, Clone)]
pub struct SessionState {
    /// `cs_...`
    pub id: String,
    /// Payment collected.
    pub paid: bool,
    /// Session expired without payment.
    pub expired: bool,
    /// The PaymentIntent (for refunds).
    pub payment_intent: Option<String>,
    /// Our order uuid.
    pub client_reference_id: Option<String>,
}

impl SessionState {
    /// From an SDK session object (also what a webhook event carries).
    pub fn from_session(s: &stripe_checkout::CheckoutSession) -> Self {
        SessionState {
            id: s.id.as_str().to_string(),
            paid: matches!(
                s.payment_status,
                CheckoutSessionPaymentStatus::Paid
                    | CheckoutSessionPaymentStatus::NoPaymentRequired
            ),
            expired: s.status == Some(CheckoutSessionStatus::Expired),
            payment_intent: s
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_string()),
            client_reference_id: s.client_reference_id.clone(),
        }
    }
}

/// What a session is created for.
#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    /// Order id (metadata).
    pub order_id: i64,
    /// Order uuid (`client_reference_id`, idempotency key).
    pub order_uuid: uuid::Uuid,
    /// Buyer email.
    pub email: &'a str,
    /// Show title, prefixed to line names.
    pub show_title: &'a str,
    /// The priced lines.
    pub lines: &'a [PricedLine],
    /// End of the hold (unix seconds); the session lives at least Stripe's 30 minutes.
    pub hold_expires_at: i64,
}

/// The Stripe client and the URLs it sends buyers back to. Built once per process: building
/// one sets up a TLS connector, too slow to repeat per request.
#[derive(Clone)]
pub struct Payments {
    client: Client,
    public_url: String,
    webhook_secret: String,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Payments {
    /// A client on `config.stripe_api_base` with `config.stripe_secret_key`.
    pub fn from_config(config: &Config) -> Result<Payments, PaymentError> {
        let client = ClientBuilder::new(config.stripe_secret_key.clone())
            .url(config.stripe_api_base.clone())
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| {
                PaymentError::Unavailable(format!("cannot build the Stripe client: {e}"))
            })?;
        Ok(Payments {
            client,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            webhook_secret: config.stripe_webhook_secret.clone(),
        })
    }

    /// Verifies a webhook's `Stripe-Signature` (HMAC-SHA256 with the webhook secret, 5 minute
    /// tolerance) and parses its event.
    pub fn verify_webhook(
        &self,
        payload: &str,
        signature: &str,
    ) -> Result<stripe_webhook::Event, stripe_webhook::WebhookError> {
        stripe_webhook::Webhook::construct_event(payload, signature, &self.webhook_secret)
    }

    /// Creates the Checkout Session of an order: one line item per order line, priced at the
    /// line's total after discount (so Stripe charges exactly our total, to the cent).
    pub async fn create_session(
        &self,
        req: &SessionRequest<'_>,
    ) -> Result<CreatedSession, PaymentError> {
        let mut items = Vec::with_capacity(req.lines.len());
        for line in req.lines {
            let cents = money::cents(line.line_total).ok_or_else(|| PaymentError::Rejected {
                status: 400,
                message: "amount out of range".into(),
            })?;
            if cents == 0 {
                continue;
            }
            let mut price =
                CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::USD);
            price.unit_amount = Some(cents);
            let name = format!("{} - {} x {}", req.show_title, line.name, line.quantity);
            price.product_data = Some(ProductData::new(name));
            let mut item = CreateCheckoutSessionLineItems::new();
            item.price_data = Some(price);
            item.quantity = Some(1);
            items.push(item);
        }
        let now = chrono::Utc::now().timestamp();
        let expires_at = req
            .hold_expires_at
            .max(now + MIN_SESSION_SECS + 5)
            .min(now + 24 * 3600 - 60);
        let metadata: HashMap<String, String> = [
            ("order_id".to_string(), req.order_id.to_string()),
            ("order_uuid".to_string(), req.order_uuid.to_string()),
        ]
        .into();
        let create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .line_items(items)
            .success_url(format!(
                "{}/success/?session_id={{CHECKOUT_SESSION_ID}}",
                self.public_url
            ))
            .cancel_url(format!(
                "{}/cancel/?order_id={}",
                self.public_url, req.order_uuid
            ))
            .client_reference_id(req.order_uuid.to_string())
            .customer_email(req.email)
            .expires_at(expires_at)
            .metadata(metadata);
        let key = format!("checkout-session-{}", req.order_uuid);
        let session = retry("create_session", || async {
            create
                .customize()
                .request_strategy(idempotent(&key))
                .send(&self.client)
                .await
        })
        .await?;
        Ok(CreatedSession {
            id: session.id.as_str().to_string(),
            url: session.url,
        })
    }

    /// The current state of a session.
    pub async fn retrieve(&self, session_id: &str) -> Result<SessionState, PaymentError> {
        let get = RetrieveCheckoutSession::new(session_id);
        let s = retry("retrieve_session", || async {
            get.send(&self.client).await
        })
        .await?;
        Ok(SessionState::from_session(&s))
    }

    /// Expires an open session so it can no longer be paid. A session that is already
    /// expired or complete is not an error (Stripe answers 400 for those).
    pub async fn expire(&self, session_id: &str) -> Result<(), PaymentError> {
        let expire = ExpireCheckoutSession::new(session_id);
        match retry("expire_session", || async {
            expire.send(&self.client).await
        })
        .await
        {
            Ok(_) => Ok(()),
            Err(PaymentError::Rejected { status: 400, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Refunds a payment in full (idempotent per order).
    pub async fn refund(
        &self,
        payment_intent: &str,
        order_uuid: uuid::Uuid,
    ) -> Result<String, PaymentError> {
        let key = format!("refund-{order_uuid}");
        let refund = CreateRefund::new().payment_intent(payment_intent);
        match retry("refund", || async {
            refund
                .customize()
                .request_strategy(idempotent(&key))
                .send(&self.client)
                .await
        })
        .await
        {
            Ok(r) => Ok(r.id.as_str().to_string()),
            Err(PaymentError::Rejected {
                status: 400,
                message,
            }) if message.contains("already been refunded") => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Creates an Express account for producer `producer_id` (idempotent per producer, so a
    /// retried call cannot make two accounts).
    pub async fn create_express_account(
        &self,
        producer_id: i64,
        email: Option<&str>,
    ) -> Result<String, PaymentError> {
        let metadata: HashMap<String, String> =
            [("producer_id".to_string(), producer_id.to_string())].into();
        let mut create = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .metadata(metadata);
        if let Some(email) = email.filter(|e| !e.is_empty()) {
            create = create.email(email.to_string());
        }
        let key = format!("connect-account-{producer_id}");
        let account = retry("connect_create_account", || async {
            create
                .customize()
                .request_strategy(idempotent(&key))
                .send(&self.client)
                .await
        })
        .await?;
        Ok(account.id.as_str().to_string())
    }

    /// A fresh onboarding link for `account_id`.
    pub async fn account_link(
        &self,
        account_id: &str,
        return_url: &str,
        refresh_url: &str,
    ) -> Result<AccountLink, PaymentError> {
        let create = CreateAccountLink::new(account_id, CreateAccountLinkType::AccountOnboarding)
            .return_url(return_url)
            .refresh_url(refresh_url);
        let link = retry("connect_account_link", || async {
            create.send(&self.client).await
        })
        .await?;
        Ok(AccountLink {
            url: link.url,
            expires_at: link.expires_at,
        })
    }

    /// What Stripe knows about a connected account's onboarding.
    pub async fn account(&self, account_id: &str) -> Result<AccountState, PaymentError> {
        let get = RetrieveAccount::new(account_id);
        let account = retry("connect_account", || async { get.send(&self.client).await }).await?;
        Ok(AccountState {
            charges_enabled: account.charges_enabled.unwrap_or(false),
            details_submitted: account.details_submitted.unwrap_or(false),
            payouts_enabled: account.payouts_enabled.unwrap_or(false),
        })
    }

    /// A connected account's balance (amounts in minor units, as Stripe gives them).
    pub async fn balance(&self, account_id: &str) -> Result<AccountBalance, PaymentError> {
        let get = RetrieveForMyAccountBalance::new();
        let balance = retry("connect_balance", || async {
            get.customize()
                .account_id(stripe::AccountId::from(account_id))
                .send(&self.client)
                .await
        })
        .await?;
        let amounts = |list: &[stripe_core::BalanceAmount]| {
            list.iter()
                .map(|a| BalanceAmount {
                    amount: a.amount,
                    currency: a.currency.to_string(),
                })
                .collect()
        };
        Ok(AccountBalance {
            available: amounts(&balance.available),
            pending: amounts(&balance.pending),
        })
    }
}

/// An onboarding link of a connected account.
#[derive(Debug, Clone)]
pub struct AccountLink {
    /// Where to send the producer.
    pub url: String,
    /// When the link stops working (unix seconds).
    pub expires_at: i64,
}

/// The onboarding state of a connected account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    /// The account can take payments.
    pub charges_enabled: bool,
    /// The producer finished the onboarding form.
    pub details_submitted: bool,
    /// The account can be paid out.
    pub payouts_enabled: bool,
}

/// One amount of a balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceAmount {
    /// Minor units (cents).
    pub amount: i64,
    /// ISO currency, lower case.
    pub currency: String,
}

/// A connected account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountBalance {
    /// Available for payout.
    pub available: Vec<BalanceAmount>,
    /// Not yet available.
    pub pending: Vec<BalanceAmount>,
}

fn idempotent(key: &str) -> RequestStrategy {
    match IdempotencyKey::new(key) {
        Ok(k) => RequestStrategy::Idempotent(k),
        Err(_) => RequestStrategy::Once,
    }
}

/// `pique_stripe_errors_total{kind}`: `timeout`, `network`, `rate_limited`, `server` (5xx),
/// `rejected` (other 4xx) or `invalid` (an answer the client could not read).
fn error_kind(e: &StripeError) -> &'static str {
    match e {
        StripeError::Timeout => "timeout",
        StripeError::ClientError(_) => "network",
        StripeError::Stripe(_, 429) => "rate_limited",
        StripeError::Stripe(_, 500..=599) => "server",
        StripeError::Stripe(..) => "rejected",
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => "invalid",
    }
}

fn retryable(e: &StripeError) -> bool {
    match e {
        StripeError::Stripe(_, status) => matches!(status, 409 | 429 | 500..=599),
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

/// Runs `call` up to [`ATTEMPTS`] times, timing each attempt into
/// `pique_stripe_request_duration_seconds{op}` and counting failed ones into
/// `pique_stripe_errors_total{op, kind}`.
async fn retry<T, F, Fut>(op: &'static str, call: F) -> Result<T, PaymentError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StripeError>>,
{
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // 100 ms, 300 ms: enough for a rate-limit window or a transient 5xx to pass.
            tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempt - 1))).await;
        }
        let started = std::time::Instant::now();
        let result = call().await;
        metrics::histogram!("pique_stripe_request_duration_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            metrics::counter!("pique_stripe_errors_total", "op" => op, "kind" => error_kind(e))
                .increment(1);
        }
        match result {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) => {
                tracing::warn!(op, attempt, error = %e, "stripe call failed; retrying");
                last = Some(e);
            }
            Err(StripeError::Stripe(err, status)) => {
                return Err(PaymentError::Rejected {
                    status,
                    message: err.message.clone().unwrap_or_default(),
                });
            }
            Err(e) => return Err(PaymentError::Unavailable(e.to_string())),
        }
    }
    Err(PaymentError::Unavailable(
        last.map(|e| e.to_string()).unwrap_or_default(),
    ))
}
