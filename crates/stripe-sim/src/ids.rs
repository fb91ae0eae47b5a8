//! Random object ids shaped like Stripe's (`cs_test_a1...`, `pi_3...`, `acct_1...`).

use rand::{Rng, distr::Alphanumeric};

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `test` or `live`, the infix Stripe puts in some ids.
fn mode(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

/// A Checkout Session id: `cs_test_a1` followed by 56 alphanumerics.
pub fn checkout_session(livemode: bool) -> String {
    format!("cs_{}_a1{}", mode(livemode), random(56))
}

/// A PaymentIntent id.
pub fn payment_intent() -> String {
    format!("pi_3{}", random(23))
}

/// A Charge id.
pub fn charge() -> String {
    format!("ch_3{}", random(23))
}

/// A Refund id.
pub fn refund() -> String {
    format!("re_3{}", random(23))
}

/// A connected Account id.
pub fn account() -> String {
    format!("acct_1{}", random(15))
}

/// An Event id.
pub fn event() -> String {
    format!("evt_1{}", random(23))
}

/// A Checkout line item id.
pub fn line_item() -> String {
    format!("li_1{}", random(23))
}

/// A Price id (for inline `price_data`).
pub fn price() -> String {
    format!("price_1{}", random(23))
}

/// A Product id (for inline `product_data`).
pub fn product() -> String {
    format!("prod_{}", random(14))
}

/// A request id, as in `Request-Id` headers and `event.request.id`.
pub fn request() -> String {
    format!("req_{}", random(14))
}

/// The platform's own account id (what `GET /v1/account` returns without `Stripe-Account`).
pub const PLATFORM_ACCOUNT: &str = "acct_1PiqueSimPlatform";

#[cfg(test)]
mod tests {
    #[test]
    fn ids_look_like_stripe() {
        let cs = super::checkout_session(false);
        assert!(cs.starts_with("cs_test_a1"));
        assert_eq!(cs.len(), 66);
        assert!(super::checkout_session(true).starts_with("cs_live_"));
        assert_ne!(super::event(), super::event());
    }
}
