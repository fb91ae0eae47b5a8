//! Checkout rules without I/O: parsing the original's request body, donation minimums,
//! per-line limits, promo code validity and discounts, and totals to the cent.
//!
//! Rules:
//! - a fixed-price line costs `price x quantity`; a donation line costs `donation_amount x
//!   quantity`, where `donation_amount >= price` (the tier's price is the minimum) and becomes
//!   the line's unit price;
//! - `1 <= quantity <= max_per_order` per tier, after merging repeated lines of one tier;
//! - a promo code belongs to one show, is case-insensitive, and must be active, inside its
//!   validity window and under `max_uses`;
//! - a promo discounts fixed-price lines only, never donations. A percent discount is taken
//!   of the fixed-price subtotal; an amount discount is capped at it, so a total never goes
//!   below zero. The order's discount is rounded once (half away from zero) and then spread
//!   over the fixed-price lines in proportion to their subtotals, by largest remainder, so the
//!   lines' discounts add up to the order's exactly and no line goes below zero;
//! - a zero total is a free order (no payment step).
//!
//! All arithmetic is in `rust_decimal`, allocation in integer cents.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::{
    money,
    validate::{FieldErrors, Fields, msg},
};

/// Most lines (distinct tiers) in one checkout request.
pub const MAX_LINES: usize = 20;
/// Largest single donation accepted per ticket.
pub const MAX_DONATION: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 2); // 1 000 000.00
/// Largest order subtotal (what `NUMERIC(10,2)` can hold).
pub const MAX_SUBTOTAL: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2); // 99 999 999.99
/// Longest `order_name` kept.
pub const MAX_NAME_LEN: usize = 255;
/// Longest promo code accepted in a checkout request.
pub const MAX_PROMO_CODE_LEN: usize = 64;
/// Largest quantity of one line before the per-tier limits are looked at.
pub const MAX_LINE_QUANTITY: i64 = 10_000;

/// One requested line: `{ticket_id, quantity, donation_amount?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRequest {
    /// The tier.
    pub ticket_id: i64,
    /// Seats wanted (already known to be >= 1).
    pub quantity: i32,
    /// The buyer's amount per ticket on a donation tier.
    pub donation_amount: Option<Decimal>,
}

/// A checkout request body, validated for shape (not yet against the database).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutRequest {
    /// The show.
    pub show_id: i64,
    /// Requested lines, in request order.
    pub lines: Vec<LineRequest>,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// Promo code as typed (trimmed; `None` when absent or blank).
    pub promo_code: Option<String>,
}

impl CheckoutRequest {
    /// The request back as the original's JSON body (the `queue` strategy stores it).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "show_id": self.show_id,
            "tickets": self.lines.iter().map(|l| serde_json::json!({
                "ticket_id": l.ticket_id,
                "quantity": l.quantity,
                "donation_amount": l.donation_amount.map(|d| d.to_string()),
            })).collect::<Vec<_>>(),
            "order_email": self.order_email,
            "order_name": self.order_name,
            "promo_code": self.promo_code,
        })
    }
}

/// Parses and shape-checks a `POST /checkout/` body the way DRF serializers would, with one
/// message list per field (`tickets[0].quantity` for nested fields) and the messages of
/// [`crate::validate`].
///
/// Integers may be JSON numbers or numeric strings (DRF's `IntegerField` accepts both);
/// decimals may be numbers or strings with at most two places.
pub fn parse_checkout_request(body: &Value) -> Result<CheckoutRequest, FieldErrors> {
    let Some(obj) = body.as_object() else {
        return Err(FieldErrors::single(
            "non_field_errors",
            msg::not_an_object(body),
        ));
    };
    let mut f = Fields::new(obj);
    let read = f.id("show_id");
    let show_id = f.required("show_id", read);
    let lines = parse_lines(&mut f);
    let read = f.email("order_email");
    let order_email = f.required("order_email", read).unwrap_or_default();
    let read = f.string("order_name", MAX_NAME_LEN, false);
    let order_name = f.required("order_name", read).unwrap_or_default();
    let promo_code = f
        .nullable_string("promo_code", MAX_PROMO_CODE_LEN)
        .flatten()
        .flatten();
    let show_id = f.finish_with("show_id", show_id)?;
    Ok(CheckoutRequest {
        show_id,
        lines,
        order_email,
        order_name,
        promo_code,
    })
}

/// The `tickets` list: each item `{ticket_id, quantity, donation_amount?}`.
fn parse_lines(f: &mut Fields<'_>) -> Vec<LineRequest> {
    let items = match f.get("tickets") {
        None => {
            f.add("tickets", msg::REQUIRED);
            return Vec::new();
        }
        Some(Value::Null) => {
            f.add("tickets", msg::NOT_NULL);
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            f.add("tickets", msg::not_a_list(other));
            return Vec::new();
        }
    };
    if items.is_empty() {
        f.add("tickets", msg::EMPTY_LIST);
        return Vec::new();
    }
    if items.len() > MAX_LINES {
        f.add("tickets", msg::max_items(MAX_LINES));
        return Vec::new();
    }
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            f.add(&format!("tickets[{i}]"), msg::not_an_object(item));
            continue;
        };
        let mut line = Fields::nested(obj, format!("tickets[{i}]"));
        let read = line.id("ticket_id");
        let ticket_id = line.required("ticket_id", read);
        // Per-tier limits are checked in `price_order`; this only keeps the value in range.
        let read = line.int("quantity", 1, MAX_LINE_QUANTITY);
        let quantity = line
            .required("quantity", read)
            .and_then(|q| i32::try_from(q).ok());
        let donation_amount = line
            .nullable("donation_amount", |l| {
                l.decimal("donation_amount", Decimal::ZERO, MAX_DONATION)
            })
            .flatten()
            .flatten()
            .map(money::to_cents_scale);
        f.errors.extend(line.errors);
        if let (Some(ticket_id), Some(quantity)) = (ticket_id, quantity) {
            lines.push(LineRequest {
                ticket_id,
                quantity,
                donation_amount,
            });
        }
    }
    lines
}

/// What checkout needs to know about a tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TierInfo {
    /// Tier id.
    pub id: i64,
    /// Its show.
    pub show_id: i64,
    /// Display name.
    pub name: String,
    /// Price, or the minimum donation.
    pub price: Decimal,
    /// Pay-what-you-want tier.
    pub is_donation_based: bool,
    /// Most tickets of this tier in one order.
    pub max_per_order: i32,
}

text_enum! {
    /// How a promo code discounts (`promo_codes.discount_type`).
    pub enum DiscountType {
        /// `discount` percent of the fixed-price subtotal (0..=100).
        Percent = "percent",
        /// `discount` currency units off, capped at the fixed-price subtotal.
        Amount = "amount",
    }
}

/// A promo code as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PromoInfo {
    /// Row id.
    pub id: i64,
    /// The show it belongs to.
    pub show_id: i64,
    /// Code as the producer wrote it.
    pub code: String,
    /// Percent or amount.
    pub discount: Decimal,
    /// How `discount` applies.
    pub discount_type: DiscountType,
    /// Usage limit.
    pub max_uses: Option<i32>,
    /// Uses so far (pending and paid orders).
    pub uses: i32,
    /// Not valid before.
    pub valid_from: Option<DateTime<Utc>>,
    /// Not valid from this instant on.
    pub valid_until: Option<DateTime<Utc>>,
    /// Switched on by the producer.
    pub is_active: bool,
}

/// Why a promo code cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PromoProblem {
    /// No such code (for this show).
    #[error("Invalid promo code.")]
    Unknown,
    /// Switched off.
    #[error("This promo code is no longer active.")]
    Inactive,
    /// Before `valid_from`.
    #[error("This promo code is not valid yet.")]
    NotYetValid,
    /// At or after `valid_until`.
    #[error("This promo code has expired.")]
    Expired,
    /// `uses >= max_uses`.
    #[error("This promo code has reached its usage limit.")]
    UsedUp,
}

/// Whether `promo` may be used at `now` (its show is checked by the caller's lookup).
pub fn check_promo(promo: &PromoInfo, now: DateTime<Utc>) -> Result<(), PromoProblem> {
    if !promo.is_active {
        return Err(PromoProblem::Inactive);
    }
    if promo.valid_from.is_some_and(|from| now < from) {
        return Err(PromoProblem::NotYetValid);
    }
    if promo.valid_until.is_some_and(|until| now >= until) {
        return Err(PromoProblem::Expired);
    }
    if promo.max_uses.is_some_and(|max| promo.uses >= max) {
        return Err(PromoProblem::UsedUp);
    }
    Ok(())
}

/// One priced line, ready to be stored as an `order_lines` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedLine {
    /// Tier id.
    pub ticket_id: i64,
    /// Tier name (for Stripe's line item and receipts).
    pub name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price snapshot: the tier's price, or the donation on a donation tier.
    pub price_per_ticket: Decimal,
    /// The donation per ticket on a donation tier.
    pub donation_amount: Option<Decimal>,
    /// `price_per_ticket x quantity`.
    pub subtotal: Decimal,
    /// This line's share of the promo discount.
    pub discount: Decimal,
    /// `subtotal - discount`.
    pub line_total: Decimal,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedOrder {
    /// Lines, merged per tier, in tier-id order (the order locks are taken in).
    pub lines: Vec<PricedLine>,
    /// Sum of line subtotals.
    pub subtotal: Decimal,
    /// Sum of line discounts.
    pub discount: Decimal,
    /// `subtotal - discount`, never negative.
    pub total: Decimal,
    /// The promo applied, if any.
    pub promo_id: Option<i64>,
}

impl PricedOrder {
    /// A zero total: no payment step.
    pub fn is_free(&self) -> bool {
        self.total.is_zero()
    }

    /// `(ticket_id, quantity)` pairs in tier-id order.
    pub fn seats(&self) -> Vec<(i64, i32)> {
        self.lines
            .iter()
            .map(|l| (l.ticket_id, l.quantity))
            .collect()
    }
}

/// Merges repeated lines of one tier (same donation amount) and rejects conflicting repeats.
/// Returns lines keyed and sorted by tier id, each with the index of its first request line
/// (for error messages).
pub fn merge_lines(lines: &[LineRequest]) -> Result<Vec<(usize, LineRequest)>, FieldErrors> {
    let mut merged: BTreeMap<i64, (usize, LineRequest)> = BTreeMap::new();
    let mut errors = FieldErrors::default();
    for (i, line) in lines.iter().enumerate() {
        match merged.get_mut(&line.ticket_id) {
            None => {
                merged.insert(line.ticket_id, (i, line.clone()));
            }
            Some((_, existing)) if existing.donation_amount == line.donation_amount => {
                existing.quantity = existing.quantity.saturating_add(line.quantity);
            }
            Some(_) => errors.add(
                &format!("tickets[{i}].ticket_id"),
                format!(
                    "Ticket {} appears more than once with different donation amounts.",
                    line.ticket_id
                ),
            ),
        }
    }
    errors.into_result(merged.into_values().collect())
}

/// Prices `lines` of show `show_id` against `tiers` (the tiers the lines name, as read from
/// the database) and an optional, already looked-up `promo`.
///
/// Errors name the request line (`tickets[i].field`) or `promo_code`.
pub fn price_order(
    show_id: i64,
    lines: &[LineRequest],
    tiers: &[TierInfo],
    promo: Option<&PromoInfo>,
    now: DateTime<Utc>,
) -> Result<PricedOrder, FieldErrors> {
    let merged = merge_lines(lines)?;
    let mut errors = FieldErrors::default();
    let mut priced = Vec::with_capacity(merged.len());
    for (i, line) in &merged {
        let field = |name: &str| format!("tickets[{i}].{name}");
        let Some(tier) = tiers.iter().find(|t| t.id == line.ticket_id) else {
            errors.add(
                &field("ticket_id"),
                format!("Invalid pk \"{}\" - object does not exist.", line.ticket_id),
            );
            continue;
        };
        if tier.show_id != show_id {
            errors.add(
                &field("ticket_id"),
                format!("Ticket {} does not belong to show {show_id}.", tier.id),
            );
            continue;
        }
        if line.quantity > tier.max_per_order {
            errors.add(
                &field("quantity"),
                format!(
                    "At most {} tickets of \"{}\" per order.",
                    tier.max_per_order, tier.name
                ),
            );
            continue;
        }
        let unit = if tier.is_donation_based {
            let amount = line.donation_amount.unwrap_or(tier.price);
            if amount < tier.price {
                errors.add(
                    &field("donation_amount"),
                    format!(
                        "The minimum donation for \"{}\" is {}.",
                        tier.name,
                        money::to_cents_scale(tier.price)
                    ),
                );
                continue;
            }
            amount
        } else {
            if line.donation_amount.is_some() {
                errors.add(
                    &field("donation_amount"),
                    format!(
                        "\"{}\" has a fixed price; donation_amount is only for donation tickets.",
                        tier.name
                    ),
                );
                continue;
            }
            tier.price
        };
        let unit = money::to_cents_scale(unit);
        let subtotal = money::to_cents_scale(unit * Decimal::from(line.quantity));
        priced.push(PricedLine {
            ticket_id: tier.id,
            name: tier.name.clone(),
            quantity: line.quantity,
            price_per_ticket: unit,
            donation_amount: tier.is_donation_based.then_some(unit),
            subtotal,
            discount: Decimal::ZERO,
            line_total: subtotal,
        });
    }
    if let Some(p) = promo {
        if p.show_id != show_id {
            errors.add("promo_code", PromoProblem::Unknown.to_string());
        } else if let Err(problem) = check_promo(p, now) {
            errors.add("promo_code", problem.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let subtotal: Decimal = priced.iter().map(|l| l.subtotal).sum();
    if subtotal > MAX_SUBTOTAL {
        return Err(FieldErrors::single(
            "tickets",
            "The order total is too large.",
        ));
    }
    if let Some(p) = promo {
        apply_discount(&mut priced, p.discount_type, p.discount);
    }
    let discount: Decimal = priced.iter().map(|l| l.discount).sum();
    let subtotal = money::to_cents_scale(subtotal);
    let discount = money::to_cents_scale(discount);
    Ok(PricedOrder {
        lines: priced,
        subtotal,
        discount,
        total: money::to_cents_scale(subtotal - discount),
        promo_id: promo.map(|p| p.id),
    })
}

/// The order-level discount on a fixed-price subtotal, rounded to the cent and capped.
pub fn order_discount(fixed_subtotal: Decimal, kind: DiscountType, discount: Decimal) -> Decimal {
    if fixed_subtotal <= Decimal::ZERO || discount <= Decimal::ZERO {
        return money::to_cents_scale(Decimal::ZERO);
    }
    let raw = match kind {
        DiscountType::Percent => {
            fixed_subtotal * discount.min(Decimal::ONE_HUNDRED) / Decimal::ONE_HUNDRED
        }
        DiscountType::Amount => discount,
    };
    money::to_cents_scale(
        raw.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            .min(fixed_subtotal),
    )
}

/// Spreads the order discount over fixed-price lines (see the module docs).
fn apply_discount(lines: &mut [PricedLine], kind: DiscountType, discount: Decimal) {
    let fixed: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].donation_amount.is_none())
        .collect();
    let fixed_subtotal: Decimal = fixed.iter().map(|&i| lines[i].subtotal).sum();
    let total = order_discount(fixed_subtotal, kind, discount);
    let (Some(total_c), Some(base_c)) = (money::cents(total), money::cents(fixed_subtotal)) else {
        return;
    };
    if total_c == 0 || base_c == 0 {
        return;
    }
    let subtotals: Vec<i64> = fixed
        .iter()
        .map(|&i| money::cents(lines[i].subtotal).unwrap_or(0))
        .collect();
    for (k, cents) in allocate_cents(total_c, &subtotals).into_iter().enumerate() {
        let line = &mut lines[fixed[k]];
        line.discount = Decimal::new(cents, 2);
        line.line_total = money::to_cents_scale(line.subtotal - line.discount);
    }
}

/// Splits `total` cents over `weights` (cents) in proportion, by largest remainder: shares
/// add up to `total` exactly and no share exceeds its weight when `total <= sum(weights)`.
pub fn allocate_cents(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|&w| i128::from(w.max(0))).sum();
    if sum == 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let total = i128::from(total.max(0)).min(sum);
    let mut shares: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let exact = total * i128::from(w.max(0));
        shares.push(exact / sum);
        remainders.push((exact % sum, i));
    }
    let mut left = total - shares.iter().sum::<i128>();
    // Largest remainder first; ties go to the earlier line so the result is deterministic.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (rem, i) in remainders {
        if left == 0 {
            break;
        }
        if rem > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares.into_iter().map(|s| s as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn tier(id: i64, price: Decimal) -> TierInfo {
        TierInfo {
            id,
            show_id: 1,
            name: format!("T{id}"),
            price,
            is_donation_based: false,
            max_per_order: 10,
        }
    }

    fn donation(id: i64, min: Decimal) -> TierInfo {
        TierInfo {
            is_donation_based: true,
            ..tier(id, min)
        }
    }

    fn line(ticket_id: i64, quantity: i32) -> LineRequest {
        LineRequest {
            ticket_id,
            quantity,
            donation_amount: None,
        }
    }

    fn promo(kind: DiscountType, discount: Decimal) -> PromoInfo {
        PromoInfo {
            id: 7,
            show_id: 1,
            code: "TESTPROMO".into(),
            discount,
            discount_type: kind,
            max_uses: None,
            uses: 0,
            valid_from: None,
            valid_until: None,
            is_active: true,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn body() -> Value {
        json!({"show_id": 1, "tickets": [{"ticket_id": 1, "quantity": 2}],
               "order_email": "test@example.com", "order_name": "Test User"})
    }

    #[test]
    fn parses_the_original_body() {
        let r = parse_checkout_request(&body()).expect("valid");
        assert_eq!(r.show_id, 1);
        assert_eq!(r.lines, vec![line(1, 2)]);
        assert_eq!(r.order_email, "test@example.com");
        assert_eq!(r.promo_code, None);
        let mut b = body();
        b["show_id"] = json!("1");
        b["tickets"][0]["quantity"] = json!("3");
        b["tickets"][0]["donation_amount"] = json!("12.5");
        b["promo_code"] = json!("  testpromo ");
        let r = parse_checkout_request(&b).expect("strings accepted");
        assert_eq!(r.lines[0].quantity, 3);
        assert_eq!(r.lines[0].donation_amount, Some(dec!(12.50)));
        assert_eq!(r.promo_code.as_deref(), Some("testpromo"));
        b["promo_code"] = json!("");
        assert_eq!(
            parse_checkout_request(&b).expect("blank promo").promo_code,
            None
        );
    }

    #[test]
    fn round_trips_through_json() {
        let mut b = body();
        b["tickets"][0]["donation_amount"] = json!("20.00");
        b["promo_code"] = json!("X");
        let r = parse_checkout_request(&b).expect("valid");
        assert_eq!(parse_checkout_request(&r.to_json()).expect("again"), r);
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let e = parse_checkout_request(&json!({})).expect_err("empty");
        for f in ["show_id", "tickets", "order_email", "order_name"] {
            assert_eq!(e.0[f], vec![msg::REQUIRED.to_string()], "{f}");
        }
        let e = parse_checkout_request(&json!([])).expect_err("list");
        assert!(e.0["non_field_errors"][0].contains("got list"));
        let mut b = body();
        b["show_id"] = json!(-1);
        b["tickets"] = json!([{"ticket_id": "x", "quantity": 0}, {"ticket_id": 2, "quantity": -3},
                              {"ticket_id": 3, "quantity": 2.5}, {"ticket_id": 4, "quantity": 1e12},
                              {"ticket_id": 5, "quantity": 1, "donation_amount": "1.005"},
                              {"ticket_id": 6, "quantity": 1, "donation_amount": -1},
                              {"ticket_id": 7, "quantity": 1, "donation_amount": "abc"}, 5]);
        b["order_email"] = json!("not-an-email");
        b["order_name"] = json!("   ");
        b["promo_code"] = json!(12);
        let e = parse_checkout_request(&b).expect_err("bad");
        assert_eq!(e.0["show_id"], vec![msg::NOT_INTEGER.to_string()]);
        assert_eq!(
            e.0["tickets[0].ticket_id"],
            vec![msg::NOT_INTEGER.to_string()]
        );
        assert!(e.0["tickets[0].quantity"][0].contains("greater than or equal to 1"));
        assert!(e.0["tickets[1].quantity"][0].contains("greater than or equal to 1"));
        assert_eq!(
            e.0["tickets[2].quantity"],
            vec![msg::NOT_INTEGER.to_string()]
        );
        assert!(e.0["tickets[3].quantity"][0].contains("less than or equal"));
        assert!(e.0["tickets[4].donation_amount"][0].contains("2 decimal places"));
        assert!(e.0["tickets[5].donation_amount"][0].contains("greater than or equal to 0"));
        assert!(e.0["tickets[6].donation_amount"][0].contains("valid number"));
        assert!(e.0.contains_key("tickets[7]"));
        assert_eq!(
            e.0["order_email"],
            vec!["Enter a valid email address.".to_string()]
        );
        assert_eq!(
            e.0["order_name"],
            vec!["This field may not be blank.".to_string()]
        );
        assert_eq!(e.0["promo_code"], vec!["Not a valid string.".to_string()]);
        let mut b = body();
        b["tickets"] = json!([]);
        assert!(
            parse_checkout_request(&b)
                .expect_err("empty")
                .0
                .contains_key("tickets")
        );
        b["tickets"] = json!(
            (0..21)
                .map(|i| json!({"ticket_id": i + 1, "quantity": 1}))
                .collect::<Vec<_>>()
        );
        assert!(parse_checkout_request(&b).is_err());
        b["tickets"] = json!({"ticket_id": 1});
        assert!(parse_checkout_request(&b).is_err());
    }

    #[test]
    fn fixed_tiers_multiply_and_sort_by_tier() {
        let tiers = [tier(2, dec!(25)), tier(1, dec!(10.10))];
        let p = price_order(1, &[line(2, 2), line(1, 3)], &tiers, None, now()).expect("priced");
        assert_eq!(p.seats(), vec![(1, 3), (2, 2)]);
        assert_eq!(p.lines[0].subtotal, dec!(30.30));
        assert_eq!(p.lines[1].price_per_ticket.to_string(), "25.00");
        assert_eq!(p.subtotal.to_string(), "80.30");
        assert_eq!(p.discount.to_string(), "0.00");
        assert_eq!(p.total.to_string(), "80.30");
        assert!(!p.is_free());
        assert_eq!(p.promo_id, None);
    }

    #[test]
    fn unknown_foreign_and_limited_tiers_are_refused() {
        let mut other = tier(3, dec!(5));
        other.show_id = 2;
        let tiers = [tier(1, dec!(10)), other];
        let e = price_order(1, &[line(9, 1)], &tiers, None, now()).expect_err("unknown");
        assert!(e.0["tickets[0].ticket_id"][0].contains("does not exist"));
        let e = price_order(1, &[line(3, 1)], &tiers, None, now()).expect_err("other show");
        assert!(e.0["tickets[0].ticket_id"][0].contains("does not belong to show 1"));
        let e = price_order(1, &[line(1, 11)], &tiers, None, now()).expect_err("limit");
        assert!(e.0["tickets[0].quantity"][0].contains("At most 10"));
        assert!(price_order(1, &[line(1, 10)], &tiers, None, now()).is_ok());
    }

    #[test]
    fn duplicate_lines_merge_then_respect_the_limit() {
        let tiers = [tier(1, dec!(10))];
        let p = price_order(1, &[line(1, 2), line(1, 3)], &tiers, None, now()).expect("merged");
        assert_eq!(p.seats(), vec![(1, 5)]);
        assert_eq!(p.total, dec!(50.00));
        let e =
            price_order(1, &[line(1, 6), line(1, 5)], &tiers, None, now()).expect_err("11 > 10");
        assert!(e.0["tickets[0].quantity"][0].contains("At most 10"));
        let d = [donation(1, dec!(5))];
        let a = LineRequest {
            donation_amount: Some(dec!(5)),
            ..line(1, 1)
        };
        let b = LineRequest {
            donation_amount: Some(dec!(6)),
            ..line(1, 1)
        };
        let e =
            price_order(1, &[a.clone(), b], &d, None, now()).expect_err("conflicting donations");
        assert!(e.0["tickets[1].ticket_id"][0].contains("different donation amounts"));
        let p = price_order(1, &[a.clone(), a], &d, None, now()).expect("same donation merges");
        assert_eq!(p.seats(), vec![(1, 2)]);
    }

    #[test]
    fn donations_have_a_minimum_and_become_the_unit_price() {
        let tiers = [donation(1, dec!(5)), tier(2, dec!(10))];
        let give = |amount: Option<Decimal>| LineRequest {
            donation_amount: amount,
            ..line(1, 2)
        };
        let p = price_order(1, &[give(Some(dec!(12.34)))], &tiers, None, now()).expect("ok");
        assert_eq!(p.lines[0].price_per_ticket, dec!(12.34));
        assert_eq!(p.lines[0].donation_amount, Some(dec!(12.34)));
        assert_eq!(p.total.to_string(), "24.68");
        let p =
            price_order(1, &[give(Some(dec!(5)))], &tiers, None, now()).expect("minimum is fine");
        assert_eq!(p.total, dec!(10));
        let p =
            price_order(1, &[give(None)], &tiers, None, now()).expect("defaults to the minimum");
        assert_eq!(p.lines[0].donation_amount, Some(dec!(5.00)));
        let e = price_order(1, &[give(Some(dec!(4.99)))], &tiers, None, now()).expect_err("below");
        assert!(e.0["tickets[0].donation_amount"][0].contains("minimum donation"));
        let fixed = LineRequest {
            donation_amount: Some(dec!(20)),
            ..line(2, 1)
        };
        let e = price_order(1, &[fixed], &tiers, None, now()).expect_err("fixed tier");
        assert!(e.0["tickets[0].donation_amount"][0].contains("fixed price"));
    }

    #[test]
    fn percent_promo_discounts_fixed_lines_only() {
        let tiers = [tier(1, dec!(25)), donation(2, dec!(5))];
        let gift = LineRequest {
            donation_amount: Some(dec!(50)),
            ..line(2, 1)
        };
        let p = price_order(
            1,
            &[line(1, 2), gift],
            &tiers,
            Some(&promo(DiscountType::Percent, dec!(10))),
            now(),
        )
        .expect("ok");
        assert_eq!(p.lines[0].discount, dec!(5.00));
        assert_eq!(p.lines[0].line_total, dec!(45.00));
        assert_eq!(p.lines[1].discount, dec!(0));
        assert_eq!(p.lines[1].line_total, dec!(50.00));
        assert_eq!(
            (p.subtotal, p.discount, p.total),
            (dec!(100.00), dec!(5.00), dec!(95.00))
        );
        assert_eq!(p.promo_id, Some(7));
    }

    #[test]
    fn percent_rounds_once_half_away_from_zero_and_spreads_exactly() {
        // 3 x 3.33 = 9.99; 15 % = 1.4985 -> 1.50. Lines 1.11 x 1 and 2.22 x 1 and 6.66.
        let tiers = [tier(1, dec!(3.33))];
        let p = price_order(
            1,
            &[line(1, 3)],
            &tiers,
            Some(&promo(DiscountType::Percent, dec!(15))),
            now(),
        )
        .expect("ok");
        assert_eq!(p.discount.to_string(), "1.50");
        assert_eq!(p.total.to_string(), "8.49");
        let tiers = [
            tier(1, dec!(1.11)),
            tier(2, dec!(2.22)),
            tier(3, dec!(6.66)),
        ];
        let p = price_order(
            1,
            &[line(1, 1), line(2, 1), line(3, 1)],
            &tiers,
            Some(&promo(DiscountType::Percent, dec!(33.33))),
            now(),
        )
        .expect("ok");
        // 9.99 x 33.33 % = 3.329667 -> 3.33, spread 0.37 / 0.74 / 2.22 (sum 3.33).
        assert_eq!(p.discount, dec!(3.33));
        let shares: Decimal = p.lines.iter().map(|l| l.discount).sum();
        assert_eq!(shares, p.discount);
        assert_eq!(
            p.lines.iter().map(|l| l.line_total).sum::<Decimal>(),
            p.total
        );
        assert!(p.lines.iter().all(|l| l.line_total >= Decimal::ZERO));
    }

    #[test]
    fn hundred_percent_makes_a_free_order() {
        let tiers = [tier(1, dec!(25))];
        let p = price_order(
            1,
            &[line(1, 2)],
            &tiers,
            Some(&promo(DiscountType::Percent, dec!(100))),
            now(),
        )
        .expect("ok");
        assert!(p.is_free());
        assert_eq!(p.total.to_string(), "0.00");
        let free = [tier(1, dec!(0))];
        assert!(
            price_order(1, &[line(1, 1)], &free, None, now())
                .expect("ok")
                .is_free()
        );
    }

    #[test]
    fn amount_promo_is_capped_and_never_touches_donations() {
        let tiers = [tier(1, dec!(10)), tier(2, dec!(30)), donation(3, dec!(1))];
        let gift = LineRequest {
            donation_amount: Some(dec!(7)),
            ..line(3, 1)
        };
        let p = price_order(
            1,
            &[line(1, 1), line(2, 1), gift.clone()],
            &tiers,
            Some(&promo(DiscountType::Amount, dec!(10))),
            now(),
        )
        .expect("ok");
        // 10 off 40 fixed: 2.50 and 7.50.
        assert_eq!(p.lines[0].discount, dec!(2.50));
        assert_eq!(p.lines[1].discount, dec!(7.50));
        assert_eq!(p.lines[2].discount, dec!(0));
        assert_eq!(p.total, dec!(37.00));
        let p = price_order(
            1,
            &[line(1, 1), gift],
            &tiers,
            Some(&promo(DiscountType::Amount, dec!(500))),
            now(),
        )
        .expect("ok");
        assert_eq!(
            p.discount,
            dec!(10.00),
            "capped at the fixed-price subtotal"
        );
        assert_eq!(p.total, dec!(7.00), "the donation is still paid");
        let p = price_order(
            1,
            &[line(1, 3)],
            &tiers,
            Some(&promo(DiscountType::Amount, dec!(0.01))),
            now(),
        )
        .expect("ok");
        assert_eq!(p.total, dec!(29.99));
    }

    #[test]
    fn promo_validity_rules() {
        let base = promo(DiscountType::Percent, dec!(10));
        assert_eq!(check_promo(&base, now()), Ok(()));
        let inactive = PromoInfo {
            is_active: false,
            ..base.clone()
        };
        assert_eq!(check_promo(&inactive, now()), Err(PromoProblem::Inactive));
        let early = PromoInfo {
            valid_from: Some(now() + Duration::seconds(1)),
            ..base.clone()
        };
        assert_eq!(check_promo(&early, now()), Err(PromoProblem::NotYetValid));
        let started = PromoInfo {
            valid_from: Some(now()),
            ..base.clone()
        };
        assert_eq!(check_promo(&started, now()), Ok(()));
        let over = PromoInfo {
            valid_until: Some(now()),
            ..base.clone()
        };
        assert_eq!(check_promo(&over, now()), Err(PromoProblem::Expired));
        let used = PromoInfo {
            max_uses: Some(3),
            uses: 3,
            ..base.clone()
        };
        assert_eq!(check_promo(&used, now()), Err(PromoProblem::UsedUp));
        let left = PromoInfo {
            max_uses: Some(3),
            uses: 2,
            ..base.clone()
        };
        assert_eq!(check_promo(&left, now()), Ok(()));
        let tiers = [tier(1, dec!(10))];
        let e = price_order(1, &[line(1, 1)], &tiers, Some(&over), now()).expect_err("expired");
        assert_eq!(
            e.0["promo_code"],
            vec!["This promo code has expired.".to_string()]
        );
        let other_show = PromoInfo { show_id: 2, ..base };
        let e = price_order(1, &[line(1, 1)], &tiers, Some(&other_show), now())
            .expect_err("other show");
        assert_eq!(e.0["promo_code"], vec!["Invalid promo code.".to_string()]);
    }

    #[test]
    fn promo_on_donation_only_order_discounts_nothing() {
        let tiers = [donation(1, dec!(5))];
        let p = price_order(
            1,
            &[line(1, 2)],
            &tiers,
            Some(&promo(DiscountType::Percent, dec!(50))),
            now(),
        )
        .expect("ok");
        assert_eq!((p.discount, p.total), (dec!(0.00), dec!(10.00)));
    }

    #[test]
    fn order_discount_bounds() {
        assert_eq!(
            order_discount(dec!(0), DiscountType::Amount, dec!(5)),
            dec!(0)
        );
        assert_eq!(
            order_discount(dec!(10), DiscountType::Amount, dec!(0)),
            dec!(0)
        );
        assert_eq!(
            order_discount(dec!(10), DiscountType::Percent, dec!(150)),
            dec!(10.00)
        );
        assert_eq!(
            order_discount(dec!(0.05), DiscountType::Percent, dec!(10)),
            dec!(0.01),
            "0.005 rounds up"
        );
        assert_eq!(
            order_discount(dec!(0.04), DiscountType::Percent, dec!(10)),
            dec!(0.00)
        );
    }

    #[test]
    fn allocation_is_exact_and_bounded() {
        assert_eq!(
            allocate_cents(100, &[1, 1, 1]),
            vec![1, 1, 1],
            "capped at the weights' sum"
        );
        assert_eq!(allocate_cents(2, &[1, 1, 1]), vec![1, 1, 0]);
        assert_eq!(allocate_cents(10, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate_cents(333, &[111, 222, 666]), vec![37, 74, 222]);
        for total in 0..200 {
            let w = [37, 1, 99, 63];
            let a = allocate_cents(total, &w);
            assert_eq!(a.iter().sum::<i64>(), total.min(200));
            assert!(a.iter().zip(w).all(|(s, w)| *s >= 0 && *s <= w));
        }
    }

    #[test]
    fn limits_are_what_they_say() {
        assert_eq!(MAX_SUBTOTAL, dec!(99999999.99));
        assert_eq!(MAX_DONATION, dec!(1000000.00));
    }

    #[test]
    fn oversized_orders_are_refused() {
        let tiers = [TierInfo {
            max_per_order: 10_000,
            ..tier(1, dec!(99999))
        }];
        let e = price_order(1, &[line(1, 2_000)], &tiers, None, now()).expect_err("too large");
        assert!(e.0["tickets"][0].contains("too large"));
    }
}
