//! The simulated Stripe objects as plain Rust data; `objects.rs` renders them as Stripe JSON.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// Lifecycle of a Checkout Session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Waiting for the customer.
    Open,
    /// Paid.
    Complete,
    /// Expired by the API, or because `expires_at` passed.
    Expired,
}

impl SessionStatus {
    /// Stripe's wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Expired => "expired",
        }
    }
}

/// One `line_items[n]` of a session, always given inline with `price_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    /// `li_...`.
    pub id: String,
    /// Id of the inline Price Stripe creates for `price_data`.
    pub price_id: String,
    /// Id of the inline Product Stripe creates for `product_data` (or the given `product`).
    pub product_id: String,
    /// `price_data[product_data][name]`.
    pub name: String,
    /// `price_data[unit_amount]`, in the currency's minor unit.
    pub unit_amount: i64,
    /// `quantity`.
    pub quantity: i64,
}

/// The validated parameters of `POST /v1/checkout/sessions`.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Lower-case ISO currency shared by all lines.
    pub currency: String,
    /// The purchased lines.
    pub line_items: Vec<LineItem>,
    /// `mode` (`payment`; `setup`/`subscription` are accepted but behave like `payment`).
    pub mode: String,
    /// Redirect after payment; `{CHECKOUT_SESSION_ID}` is substituted.
    pub success_url: Option<String>,
    /// Link shown on the hosted page to abandon the payment.
    pub cancel_url: Option<String>,
    /// The integrator's reference (the replica's order id).
    pub client_reference_id: Option<String>,
    /// Prefilled customer email.
    pub customer_email: Option<String>,
    /// `metadata[...]`.
    pub metadata: Map<String, Value>,
    /// `expires_at`, already checked against Stripe's 30 min .. 24 h window.
    pub expires_at: i64,
    /// `payment_intent_data[application_fee_amount]` (Connect).
    pub application_fee_amount: Option<i64>,
    /// `payment_intent_data[transfer_data][destination]` (Connect destination charge).
    pub destination: Option<String>,
    /// `payment_intent_data[transfer_data][amount]`: what the destination gets (default: the
    /// amount minus the application fee).
    pub transfer_amount: Option<i64>,
    /// `payment_intent_data[metadata][...]`, copied onto the PaymentIntent.
    pub payment_intent_metadata: Map<String, Value>,
}

/// A stored Checkout Session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `cs_test_...`.
    pub id: String,
    /// Connected account the session was created on (`Stripe-Account`), if any.
    pub account: Option<String>,
    /// Whether it was created with a live key.
    pub livemode: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Parameters it was created with.
    pub params: NewSession,
    /// Sum of `unit_amount * quantity`.
    pub amount_total: i64,
    /// Current status.
    pub status: SessionStatus,
    /// PaymentIntent created on completion.
    pub payment_intent: Option<String>,
}

/// A stored PaymentIntent (created when a session completes).
#[derive(Debug, Clone)]
pub struct PaymentIntent {
    /// `pi_...`.
    pub id: String,
    /// Account the payment belongs to (direct charges), if any.
    pub account: Option<String>,
    /// Live or test.
    pub livemode: bool,
    /// Creation time.
    pub created: i64,
    /// Charged amount.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// The charge id (`latest_charge`).
    pub charge: String,
    /// Platform fee of a Connect charge.
    pub application_fee_amount: Option<i64>,
    /// Destination of a Connect destination charge.
    pub destination: Option<String>,
    /// `transfer_data[amount]`, if set.
    pub transfer_amount: Option<i64>,
    /// From `payment_intent_data[metadata]`.
    pub metadata: Map<String, Value>,
    /// Total refunded so far.
    pub amount_refunded: i64,
}

impl PaymentIntent {
    /// What a Connect charge hands to the connected account: `transfer_data[amount]`, or the
    /// amount minus the application fee.
    pub fn transferred(&self) -> i64 {
        self.transfer_amount
            .unwrap_or(self.amount - self.application_fee_amount.unwrap_or(0))
    }
}

/// A stored Refund.
#[derive(Debug, Clone)]
pub struct Refund {
    /// `re_...`.
    pub id: String,
    /// Creation time.
    pub created: i64,
    /// Refunded amount.
    pub amount: i64,
    /// Currency of the payment.
    pub currency: String,
    /// Refunded PaymentIntent.
    pub payment_intent: String,
    /// Its charge.
    pub charge: String,
    /// `reason` parameter.
    pub reason: Option<String>,
    /// `metadata[...]`.
    pub metadata: Map<String, Value>,
}

/// A stored connected Account.
#[derive(Debug, Clone)]
pub struct Account {
    /// `acct_...`.
    pub id: String,
    /// Creation time.
    pub created: i64,
    /// `express`, `standard` or `custom`.
    pub kind: String,
    /// `country` (default `US`).
    pub country: String,
    /// `email`.
    pub email: Option<String>,
    /// `business_type`.
    pub business_type: Option<String>,
    /// `metadata[...]`.
    pub metadata: Map<String, Value>,
    /// Set once the onboarding link was visited.
    pub details_submitted: bool,
}

/// Per-account balances: `None` is the platform, amounts by currency.
#[derive(Debug, Clone, Default)]
pub struct Balances(HashMap<Option<String>, BTreeMap<String, i64>>);

impl Balances {
    /// Adds `amount` (may be negative) to an account's balance.
    pub fn credit(&mut self, account: Option<&str>, currency: &str, amount: i64) {
        *self
            .0
            .entry(account.map(str::to_owned))
            .or_default()
            .entry(currency.to_owned())
            .or_insert(0) += amount;
    }

    /// An account's balance by currency (empty if it never received money).
    pub fn of(&self, account: Option<&str>) -> BTreeMap<String, i64> {
        self.0
            .get(&account.map(str::to_owned))
            .cloned()
            .unwrap_or_default()
    }
}

/// Currencies whose amounts have no minor unit (Stripe's zero-decimal list).
pub fn is_zero_decimal(currency: &str) -> bool {
    matches!(
        currency,
        "bif"
            | "clp"
            | "djf"
            | "gnf"
            | "jpy"
            | "kmf"
            | "krw"
            | "mga"
            | "pyg"
            | "rwf"
            | "ugx"
            | "vnd"
            | "vuv"
            | "xaf"
            | "xof"
            | "xpf"
    )
}
