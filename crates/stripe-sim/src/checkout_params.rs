//! Validation of `POST /v1/checkout/sessions` parameters, with Stripe's error messages and
//! `param` names.

use crate::{
    error::ApiError,
    form::{Form, param},
    ids,
    model::{LineItem, NewSession},
};

/// Stripe's bounds on `expires_at`, relative to creation.
const MIN_EXPIRY_SECS: i64 = 30 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60;
/// Tolerance on those bounds: a client that sends exactly `now + 30 min` must not be refused
/// because the latency knob (or a second boundary) made the sim's clock read a bit later.
const EXPIRY_SLACK_SECS: i64 = 120;

fn line_item(f: &Form, i: usize) -> Result<(String, LineItem), ApiError> {
    let idx = i.to_string();
    let at = |rest: &[&'static str]| -> Vec<&str> {
        let mut p = vec!["line_items", idx.as_str()];
        p.extend_from_slice(rest);
        p
    };
    if let Some(price) = f.str(&at(&["price"])) {
        // The sim has no Price objects: only inline price_data is supported.
        return Err(ApiError::no_such_param(
            "price",
            &param(&at(&["price"])),
            &price,
        ));
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
///
/// `connected` says whether the request came with `Stripe-Account` (a direct charge), which
/// allows an application fee without a destination.
pub fn parse_new_session(
    f: &Form,
    now: i64,
    connected: bool,
) -> Result<(NewSession, i64), ApiError> {
    let mode = parse_mode(f)?;
    let (currency, line_items, total) = parse_lines(f)?;
    let expires_at = parse_expires_at(f, now)?;
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
    let connect = parse_connect(f, total, connected)?;
    let params = NewSession {
        currency,
        line_items,
        mode,
        success_url: f.url(&["success_url"])?,
        cancel_url: f.url(&["cancel_url"])?,
        client_reference_id,
        customer_email: f.str(&["customer_email"]),
        metadata: f.string_map(&["metadata"]),
        expires_at,
        application_fee_amount: connect.application_fee_amount,
        destination: connect.destination,
        transfer_amount: connect.transfer_amount,
        payment_intent_metadata: f.string_map(&["payment_intent_data", "metadata"]),
    };
    Ok((params, total))
}

fn parse_mode(f: &Form) -> Result<String, ApiError> {
    let mode = f.required_str(&["mode"])?;
    match mode.as_str() {
        "payment" => Ok(mode),
        "setup" | "subscription" => Err(ApiError::invalid(
            "mode",
            "stripe-sim only supports `mode=payment`.",
        )),
        _ => Err(ApiError::invalid(
            "mode",
            format!("Invalid mode: must be one of payment, setup, or subscription (got {mode})"),
        )),
    }
}

/// All `line_items`: their shared currency, the lines, and the total.
fn parse_lines(f: &Form) -> Result<(String, Vec<LineItem>, i64), ApiError> {
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
    Ok((currency.unwrap_or_else(|| "usd".into()), line_items, total))
}

/// `expires_at`, within Stripe's 30 min .. 24 h window (default: 24 h).
fn parse_expires_at(f: &Form, now: i64) -> Result<i64, ApiError> {
    match f.int(&["expires_at"])? {
        None => Ok(now + MAX_EXPIRY_SECS),
        Some(t) if t < now + MIN_EXPIRY_SECS - EXPIRY_SLACK_SECS => Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session \
             creation.",
        )),
        Some(t) if t > now + MAX_EXPIRY_SECS + EXPIRY_SLACK_SECS => Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session \
             creation.",
        )),
        Some(t) => Ok(t),
    }
}

/// The Connect part of `payment_intent_data`.
#[derive(Debug, Default)]
struct ConnectParams {
    application_fee_amount: Option<i64>,
    destination: Option<String>,
    transfer_amount: Option<i64>,
}

fn parse_connect(f: &Form, total: i64, connected: bool) -> Result<ConnectParams, ApiError> {
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
    Ok(ConnectParams {
        application_fee_amount,
        destination,
        transfer_amount,
    })
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
