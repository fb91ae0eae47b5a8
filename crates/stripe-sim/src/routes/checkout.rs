//! `/v1/checkout/sessions`: create, retrieve, expire; plus the completion logic shared by the
//! hosted page and `/_sim/sessions/{id}/complete`.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use serde_json::Value;

use crate::{
    error::ApiError,
    form::{Form, param},
    ids,
    knobs::Caller,
    model::{LineItem, NewSession, Session, SessionStatus},
    objects::{self, EventMeta},
    state::{SimState, now},
    store::Store,
};

/// Stripe's bounds on `expires_at`, relative to creation.
const MIN_EXPIRY_SECS: i64 = 30 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60;
/// Tolerance on those bounds: a client that sends exactly `now + 30 min` must not be refused
/// because the latency knob (or a second boundary) made the sim's clock read a bit later.
const EXPIRY_SLACK_SECS: i64 = 120;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn url_param(f: &Form, name: &str) -> Result<Option<String>, ApiError> {
    match f.str(&[name]) {
        Some(u) if !is_url(&u) => Err(ApiError::invalid(name, "Not a valid URL")),
        other => Ok(other),
    }
}

fn line_item(f: &Form, i: usize) -> Result<(String, LineItem), ApiError> {
    let idx = i.to_string();
    let at = |rest: &[&'static str]| -> Vec<&str> {
        let mut p = vec!["line_items", idx.as_str()];
        p.extend_from_slice(rest);
        p
    };
    if let Some(price) = f.str(&at(&["price"])) {
        // The sim has no Price objects: only inline price_data is supported.
        let mut e = ApiError::no_such("price", &param(&at(&["price"])), &price);
        e.status = StatusCode::BAD_REQUEST;
        return Err(e);
    }
    if f.field(&at(&["price_data"])).is_none() {
        return Err(ApiError::missing(&param(&at(&["price_data"]))));
    }
    let currency = f
        .required_str(&at(&["price_data", "currency"]))?
        .to_lowercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            &param(&at(&["price_data", "currency"])),
            format!("Invalid currency: {currency}."),
        ));
    }
    let (name, product_id) = match f.str(&at(&["price_data", "product"])) {
        Some(product) => (product.clone(), product),
        None => (
            f.required_str(&at(&["price_data", "product_data", "name"]))?,
            ids::product(),
        ),
    };
    let unit_amount = unit_amount(f, &at(&["price_data"]))?;
    if unit_amount < 0 {
        return Err(ApiError::invalid(
            &param(&at(&["price_data", "unit_amount"])),
            "This value must be greater than or equal to 0.",
        ));
    }
    let quantity = f
        .int(&at(&["quantity"]))?
        .ok_or_else(|| ApiError::missing(&param(&at(&["quantity"]))))?;
    if quantity < 1 {
        return Err(ApiError::invalid(
            &param(&at(&["quantity"])),
            "This value must be greater than or equal to 1.",
        ));
    }
    let item = LineItem {
        id: ids::line_item(),
        price_id: ids::price(),
        product_id,
        name,
        unit_amount,
        quantity,
    };
    Ok((currency, item))
}

/// `unit_amount`, or `unit_amount_decimal` (fractions of the minor unit) rounded to the nearest
/// minor unit; exactly one of them is required.
fn unit_amount(f: &Form, price_data: &[&str]) -> Result<i64, ApiError> {
    let with = |field: &'static str| -> Vec<&str> {
        let mut p = price_data.to_vec();
        p.push(field);
        p
    };
    let integer = f.int(&with("unit_amount"))?;
    let decimal = f.str(&with("unit_amount_decimal"));
    match (integer, decimal) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            &param(&with("unit_amount")),
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
        )),
        (Some(n), None) => Ok(n),
        (None, Some(d)) => {
            let p = param(&with("unit_amount_decimal"));
            let v: f64 = d
                .parse()
                .map_err(|_| ApiError::invalid(&p, format!("Invalid decimal: {d}")))?;
            if !v.is_finite() || v.abs() > 1e15 {
                return Err(ApiError::invalid(&p, format!("Invalid decimal: {d}")));
            }
            // Bounded above, so the cast cannot saturate.
            Ok(v.round() as i64)
        }
        (None, None) => Err(ApiError::missing(&param(&with("unit_amount")))),
    }
}

/// Validates `POST /v1/checkout/sessions` like Stripe; returns the params and `amount_total`.
fn parse_new_session(f: &Form, now: i64, connected: bool) -> Result<(NewSession, i64), ApiError> {
    let mode = f.required_str(&["mode"])?;
    if mode != "payment" {
        let msg = if matches!(mode.as_str(), "setup" | "subscription") {
            "stripe-sim only supports `mode=payment`.".to_owned()
        } else {
            format!("Invalid mode: must be one of payment, setup, or subscription (got {mode})")
        };
        return Err(ApiError::invalid("mode", msg));
    }
    let n = f.len(&["line_items"]);
    if n == 0 {
        return Err(ApiError::missing("line_items"));
    }
    let mut currency: Option<String> = None;
    let mut line_items = Vec::with_capacity(n);
    let mut total: i64 = 0;
    for i in 0..n {
        let (cur, item) = line_item(f, i)?;
        match &currency {
            Some(c) if *c != cur => {
                return Err(ApiError::invalid(
                    &format!("line_items[{i}][price_data][currency]"),
                    "Checkout does not support multiple currencies in one session.",
                ));
            }
            _ => currency = Some(cur),
        }
        total = item
            .unit_amount
            .checked_mul(item.quantity)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| ApiError::invalid("line_items", "Amount total is too large."))?;
        line_items.push(item);
    }
    let expires_at = match f.int(&["expires_at"])? {
        None => now + MAX_EXPIRY_SECS,
        Some(t) if t < now + MIN_EXPIRY_SECS - EXPIRY_SLACK_SECS => {
            return Err(ApiError::invalid(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session \
                 creation.",
            ));
        }
        Some(t) if t > now + MAX_EXPIRY_SECS + EXPIRY_SLACK_SECS => {
            return Err(ApiError::invalid(
                "expires_at",
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session \
                 creation.",
            ));
        }
        Some(t) => t,
    };
    let client_reference_id = f.str(&["client_reference_id"]);
    if client_reference_id
        .as_ref()
        .is_some_and(|c| c.chars().count() > 200)
    {
        return Err(ApiError::invalid(
            "client_reference_id",
            "Invalid string: must be at most 200 characters",
        ));
    }
    let destination = f.str(&["payment_intent_data", "transfer_data", "destination"]);
    let application_fee_amount = f.int(&["payment_intent_data", "application_fee_amount"])?;
    if let Some(fee) = application_fee_amount {
        let p = "payment_intent_data[application_fee_amount]";
        if destination.is_none() && !connected {
            return Err(ApiError::invalid(
                p,
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a \
                 direct payment (using an OAuth key or Stripe-Account header) or destination \
                 payment (using `transfer_data[destination]`).",
            ));
        }
        if fee < 0 || fee > total {
            return Err(ApiError::invalid(
                p,
                "The application fee amount must be between 0 and the amount of the payment.",
            ));
        }
    }
    let transfer_amount = f.int(&["payment_intent_data", "transfer_data", "amount"])?;
    if let Some(amount) = transfer_amount {
        let p = "payment_intent_data[transfer_data][amount]";
        if application_fee_amount.is_some() {
            return Err(ApiError::invalid(
                p,
                "You cannot specify both `application_fee_amount` and `transfer_data[amount]`.",
            ));
        }
        if destination.is_none() {
            return Err(ApiError::missing(
                "payment_intent_data[transfer_data][destination]",
            ));
        }
        if amount < 0 || amount > total {
            return Err(ApiError::invalid(
                p,
                "The transfer amount must be between 0 and the amount of the payment.",
            ));
        }
    }
    let params = NewSession {
        currency: currency.unwrap_or_else(|| "usd".into()),
        line_items,
        mode,
        success_url: url_param(f, "success_url")?,
        cancel_url: url_param(f, "cancel_url")?,
        client_reference_id,
        customer_email: f.str(&["customer_email"]),
        metadata: f.string_map(&["metadata"]),
        expires_at,
        application_fee_amount,
        destination,
        transfer_amount,
        payment_intent_metadata: f.string_map(&["payment_intent_data", "metadata"]),
    };
    Ok((params, total))
}

/// Fields of a session that `expand[]` can replace by objects.
const EXPANDABLE: [&str; 2] = ["line_items", "payment_intent"];

fn check_expand(expand: &[String]) -> Result<(), ApiError> {
    match expand.iter().find(|e| !EXPANDABLE.contains(&e.as_str())) {
        Some(bad) => Err(ApiError::invalid(
            "expand",
            format!("This property cannot be expanded ({bad})."),
        )),
        None => Ok(()),
    }
}

/// Renders a session with the `expand[]`ed fields inlined.
fn render(store: &Store, s: &Session, public_base: &str, expand: &[String]) -> Value {
    let mut v = objects::checkout_session(s, public_base);
    for field in expand {
        match field.as_str() {
            "line_items" => v["line_items"] = objects::line_items_list(s),
            "payment_intent" => {
                let pi = s
                    .payment_intent
                    .as_deref()
                    .and_then(|id| store.payment_intent(id, s.account.as_deref()).ok());
                if let Some(pi) = pi {
                    v["payment_intent"] = objects::payment_intent(pi);
                }
            }
            _ => {}
        }
    }
    v
}

/// `POST /v1/checkout/sessions`.
pub async fn create(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = Form::parse(&body);
    let expand = form.expand();
    check_expand(&expand)?;
    let created = now();
    let (params, amount_total) = parse_new_session(&form, created, caller.account.is_some())?;
    if let Some(dest) = &params.destination
        && !state.with_store(|s| s.has_account(dest))
    {
        let mut e = ApiError::no_such(
            "destination",
            "payment_intent_data[transfer_data][destination]",
            dest,
        );
        e.status = StatusCode::BAD_REQUEST;
        return Err(e);
    }
    let session = Session {
        id: ids::checkout_session(caller.livemode),
        account: caller.account.clone(),
        livemode: caller.livemode,
        created,
        params,
        amount_total,
        status: SessionStatus::Open,
        payment_intent: None,
    };
    let base = &state.settings().public_base;
    let json = state.with_store(|s| {
        let json = render(s, &session, base, &expand);
        s.insert_session(session);
        json
    });
    Ok(Json(json))
}

/// `GET /v1/checkout/sessions/{id}` (supports `expand[]=line_items|payment_intent`).
pub async fn retrieve(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let expand = Form::parse(query.unwrap_or_default().as_bytes()).expand();
    check_expand(&expand)?;
    let base = &state.settings().public_base;
    state
        .with_store(|st| {
            st.session(&id, caller.account.as_deref())
                .map(|s| render(st, s, base, &expand))
        })
        .map(Json)
}

/// `GET /v1/checkout/sessions/{id}/line_items`: all lines on one page.
pub async fn line_items(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(|st| {
            st.session(&id, caller.account.as_deref())
                .map(objects::line_items_list)
        })
        .map(Json)
}

/// `POST /v1/checkout/sessions/{id}/expire`: open -> expired (+ `checkout.session.expired`).
pub async fn expire(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = state.with_store(|s| s.expire_session(&id, caller.account.as_deref()))?;
    let meta = EventMeta {
        request_id: Some(caller.request_id),
        idempotency_key: caller.idempotency_key,
        ..EventMeta::default()
    };
    Ok(Json(emit_session_event(
        &state,
        "checkout.session.expired",
        &session,
        meta,
    )))
}

/// Renders `session`, emits `event_type` for it, and returns the rendered session.
pub(crate) fn emit_session_event(
    state: &SimState,
    event_type: &str,
    session: &Session,
    mut meta: EventMeta,
) -> Value {
    let json = objects::checkout_session(session, &state.settings().public_base);
    meta.account = session.account.clone();
    meta.livemode = session.livemode;
    meta.created = now();
    state.emit(event_type, json.clone(), meta);
    json
}

/// Pays a session (hosted page or `/_sim`): on the first completion a
/// `checkout.session.completed` event is emitted. Returns the session after completion.
pub(crate) fn complete(state: &SimState, id: &str) -> Result<Session, ApiError> {
    let (session, first) = state.with_store(|s| s.complete_session(id, now()))?;
    if first {
        // The customer's browser completed it, not an API request: `request.id` is null.
        emit_session_event(
            state,
            "checkout.session.completed",
            &session,
            EventMeta::default(),
        );
    }
    Ok(session)
}

/// Expires sessions whose `expires_at` passed and emits `checkout.session.expired` for each.
pub(crate) fn expire_due(state: &SimState) {
    let due = state.with_store(|s| s.expire_due(now()));
    for session in &due {
        emit_session_event(
            state,
            "checkout.session.expired",
            session,
            EventMeta::default(),
        );
    }
}

/// The success URL with `{CHECKOUT_SESSION_ID}` substituted, as Stripe redirects.
pub(crate) fn success_redirect(session: &Session) -> Option<String> {
    session
        .params
        .success_url
        .as_ref()
        .map(|u| u.replace("{CHECKOUT_SESSION_ID}", &session.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<(NewSession, i64), ApiError> {
        parse_new_session(&Form::parse(body.as_bytes()), 1_000_000, false)
    }

    const OK: &str = "mode=payment&line_items[0][price_data][currency]=usd\
        &line_items[0][price_data][unit_amount]=2500\
        &line_items[0][price_data][product_data][name]=GA&line_items[0][quantity]=2\
        &line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=1000\
        &line_items[1][price_data][product_data][name]=VIP&line_items[1][quantity]=1";

    #[test]
    fn totals_lines() {
        let (p, total) = parse(OK).unwrap();
        assert_eq!(total, 6000);
        assert_eq!(p.line_items.len(), 2);
        assert_eq!(p.expires_at, 1_000_000 + MAX_EXPIRY_SECS);
    }

    #[test]
    fn validates_like_stripe() {
        assert_eq!(parse("").unwrap_err().param.as_deref(), Some("mode"));
        assert_eq!(
            parse("mode=payment").unwrap_err().param.as_deref(),
            Some("line_items")
        );
        let no_qty = OK.replace("&line_items[0][quantity]=2", "");
        assert_eq!(
            parse(&no_qty).unwrap_err().param.as_deref(),
            Some("line_items[0][quantity]")
        );
        let soon = format!("{OK}&expires_at={}", 1_000_000 + 60);
        assert_eq!(
            parse(&soon).unwrap_err().param.as_deref(),
            Some("expires_at")
        );
        let fee = format!("{OK}&payment_intent_data[application_fee_amount]=10");
        assert!(parse(&fee).is_err());
        let dest = format!("{fee}&payment_intent_data[transfer_data][destination]=acct_1");
        assert_eq!(parse(&dest).unwrap().0.application_fee_amount, Some(10));
        let dec = OK.replace("[unit_amount]=1000", "[unit_amount_decimal]=999.6");
        assert_eq!(parse(&dec).unwrap().1, 6000);
        let both = format!("{OK}&line_items[0][price_data][unit_amount_decimal]=1");
        assert!(parse(&both).is_err());
        let mixed = OK.replace(
            "line_items[1][price_data][currency]=usd",
            "line_items[1][price_data][currency]=eur",
        );
        assert!(parse(&mixed).is_err());
    }
}
