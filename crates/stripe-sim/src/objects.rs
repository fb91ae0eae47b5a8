//! Renders the simulated objects as complete Stripe JSON.
//!
//! async-stripe parses responses strictly (miniserde): every non-optional field of its generated
//! types must be present, so these builders emit the full objects (with `null` where Stripe sends
//! `null`), not just the fields the replica reads.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::{Account, LineItem, PaymentIntent, Refund, Session, SessionStatus};

/// The API version async-stripe 1.0.0-rc.10 is generated for; events carry it so the SDK does not
/// warn about a version mismatch.
pub const API_VERSION: &str = "2026-09-30.endive";

/// A `checkout.session` object. `public_base` builds the hosted page `url` (set while open).
pub fn checkout_session(s: &Session, public_base: &str) -> Value {
    let p = &s.params;
    let complete = s.status == SessionStatus::Complete;
    let url = (s.status == SessionStatus::Open).then(|| format!("{public_base}/pay/{}", s.id));
    let customer_details = complete.then(|| {
        json!({
            "address": null,
            "business_name": null,
            "email": p.customer_email.clone().unwrap_or_else(|| "customer@example.com".into()),
            "individual_name": null,
            "name": "Sim Customer",
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": []
        })
    });
    json!({
        "id": s.id,
        "object": "checkout.session",
        "adaptive_pricing": null,
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": s.amount_total,
        "amount_total": s.amount_total,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": p.cancel_url,
        "client_reference_id": p.client_reference_id,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": s.created,
        "currency": p.currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null
        },
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": customer_details,
        "customer_email": p.customer_email,
        "discounts": [],
        "expires_at": p.expires_at,
        "invoice": null,
        "invoice_creation": null,
        "livemode": s.livemode,
        "locale": null,
        "metadata": p.metadata,
        "mode": p.mode,
        "origin_context": null,
        "payment_intent": s.payment_intent,
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": if complete { "paid" } else { "unpaid" },
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": s.status.as_str(),
        "submit_type": null,
        "subscription": null,
        "success_url": p.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        "url": url,
        "wallet_options": null
    })
}

/// The inline `price` Stripe creates for a line item's `price_data` (inactive, one-time).
fn price(item: &LineItem, s: &Session) -> Value {
    json!({
        "id": item.price_id,
        "object": "price",
        "active": false,
        "billing_scheme": "per_unit",
        "created": s.created,
        "currency": s.params.currency,
        "custom_unit_amount": null,
        "livemode": s.livemode,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": item.product_id,
        "recurring": null,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "one_time",
        "unit_amount": item.unit_amount,
        "unit_amount_decimal": item.unit_amount.to_string()
    })
}

/// A Checkout line `item` object.
pub fn line_item(item: &LineItem, s: &Session) -> Value {
    let total = item.unit_amount.saturating_mul(item.quantity);
    json!({
        "id": item.id,
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": total,
        "amount_tax": 0,
        "amount_total": total,
        "currency": s.params.currency,
        "description": item.name,
        "price": price(item, s),
        "quantity": item.quantity
    })
}

/// The `list` of a session's line items (all on one page).
pub fn line_items_list(s: &Session) -> Value {
    json!({
        "object": "list",
        "data": s.params.line_items.iter().map(|i| line_item(i, s)).collect::<Vec<_>>(),
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{}/line_items", s.id)
    })
}

/// A `payment_intent` object in status `succeeded`.
pub fn payment_intent(pi: &PaymentIntent) -> Value {
    json!({
        "id": pi.id,
        "object": "payment_intent",
        "amount": pi.amount,
        "amount_capturable": 0,
        "amount_received": pi.amount,
        "application": null,
        "application_fee_amount": pi.application_fee_amount,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": format!("{}_secret_sim", pi.id),
        "confirmation_method": "automatic",
        "created": pi.created,
        "currency": pi.currency,
        "customer": null,
        "description": null,
        "last_payment_error": null,
        "latest_charge": pi.charge,
        "livemode": pi.livemode,
        "metadata": pi.metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": null,
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": pi
            .destination
            .as_ref()
            .map(|d| json!({ "amount": pi.transfer_amount, "destination": d })),
        "transfer_group": pi.destination.as_ref().map(|_| format!("group_{}", pi.id))
    })
}

/// A `refund` object in status `succeeded`.
pub fn refund(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "object": "refund",
        "amount": r.amount,
        "balance_transaction": null,
        "charge": r.charge,
        "created": r.created,
        "currency": r.currency,
        "destination_details": null,
        "metadata": r.metadata,
        "payment_intent": r.payment_intent,
        "reason": r.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null
    })
}

/// An `account` object; onboarding state drives `charges_enabled`, capabilities and requirements.
pub fn account(a: &Account) -> Value {
    let done = a.details_submitted;
    let capability = if done { "active" } else { "inactive" };
    let due: Vec<&str> = if done {
        vec![]
    } else {
        vec![
            "business_profile.url",
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip",
        ]
    };
    json!({
        "id": a.id,
        "object": "account",
        "business_profile": null,
        "business_type": a.business_type,
        "capabilities": { "card_payments": capability, "transfers": capability },
        "charges_enabled": done,
        "controller": null,
        "country": a.country,
        "created": a.created,
        "default_currency": "usd",
        "details_submitted": done,
        "email": a.email,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": false,
            "url": format!("/v1/accounts/{}/external_accounts", a.id)
        },
        "future_requirements": null,
        "metadata": a.metadata,
        "payouts_enabled": done,
        "requirements": {
            "alternatives": [],
            "current_deadline": null,
            "currently_due": due,
            "disabled_reason": if done { Value::Null } else { json!("requirements.past_due") },
            "errors": [],
            "eventually_due": due,
            "past_due": due,
            "pending_verification": []
        },
        "settings": null,
        "tos_acceptance": null,
        "type": a.kind
    })
}

/// The platform's own account, for `GET /v1/account` without `Stripe-Account`.
pub fn platform_account(id: &str, created: i64) -> Value {
    let mut a = account(&Account {
        id: id.to_owned(),
        created,
        kind: "standard".into(),
        country: "US".into(),
        email: Some("platform@example.com".into()),
        business_type: Some("company".into()),
        metadata: Default::default(),
        details_submitted: true,
    });
    a["external_accounts"] = Value::Null;
    a
}

/// An `account_link` object.
pub fn account_link(url: &str, created: i64, expires_at: i64) -> Value {
    json!({ "object": "account_link", "created": created, "expires_at": expires_at, "url": url })
}

/// A `balance` object. Money is made `available` at once: the sim has no payout schedule.
pub fn balance(by_currency: &BTreeMap<String, i64>, livemode: bool) -> Value {
    let amounts = |zero: bool| -> Vec<Value> {
        let mut v: Vec<Value> = by_currency
            .iter()
            .map(|(cur, amt)| {
                let amt = if zero { 0 } else { *amt };
                json!({ "amount": amt, "currency": cur, "source_types": { "card": amt } })
            })
            .collect();
        if v.is_empty() {
            // Stripe always lists the default currency, even for a brand new account.
            v.push(json!({ "amount": 0, "currency": "usd", "source_types": { "card": 0 } }));
        }
        v
    };
    json!({
        "object": "balance",
        "available": amounts(false),
        "livemode": livemode,
        "pending": amounts(true)
    })
}

/// Envelope fields of an event, besides its id, type and object.
#[derive(Debug, Clone, Default)]
pub struct EventMeta {
    /// Connected account the event happened on (Connect events), if any.
    pub account: Option<String>,
    /// Live or test mode.
    pub livemode: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Webhook endpoints still to be notified (1 when a webhook URL is configured).
    pub pending_webhooks: i64,
    /// `req_...` of the API call that caused the event; `None` when the customer caused it.
    pub request_id: Option<String>,
    /// The `Idempotency-Key` of that API call, if any.
    pub idempotency_key: Option<String>,
}

/// An `event` object wrapping `object`.
pub fn event(id: &str, event_type: &str, object: Value, meta: &EventMeta) -> Value {
    let mut ev = json!({
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": meta.created,
        "data": { "object": object },
        "livemode": meta.livemode,
        "pending_webhooks": meta.pending_webhooks,
        "request": { "id": meta.request_id, "idempotency_key": meta.idempotency_key },
        "type": event_type
    });
    if let (Some(acct), Value::Object(m)) = (&meta.account, &mut ev) {
        m.insert("account".into(), json!(acct));
    }
    ev
}
