//! Money: `rust_decimal` with two places, never a float.
//!
//! The API writes amounts as strings with exactly two places (`"25.00"`), as DRF's
//! `DecimalField` does, and Stripe wants integer cents.

use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds to cents, half away from zero (what a cashier and Django's `quantize` do).
pub fn to_cents_scale(amount: Decimal) -> Decimal {
    let mut d = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(2);
    d
}

/// Integer cents for Stripe's `unit_amount`; `None` when out of range.
pub fn cents(amount: Decimal) -> Option<i64> {
    let scaled = to_cents_scale(amount) * Decimal::ONE_HUNDRED;
    i64::try_from(scaled.trunc()).ok()
}

/// Serde helper: writes a decimal as a string with exactly two places.
pub mod two_places {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `value` as `"12.50"`.
    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_cents_scale(*value).to_string())
    }

    /// Reads a decimal written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        <Decimal as Deserialize>::deserialize(d)
    }
}

/// Serde helper for `Option<Decimal>` with two places (`null` when absent).
pub mod two_places_opt {
    use rust_decimal::Decimal;
    use serde::Serializer;

    /// Serialises `Some(value)` as `"12.50"` and `None` as `null`.
    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&super::to_cents_scale(*v).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_half_away_from_zero_to_two_places() {
        assert_eq!(to_cents_scale(dec!(1.005)).to_string(), "1.01");
        assert_eq!(to_cents_scale(dec!(1.004)).to_string(), "1.00");
        assert_eq!(to_cents_scale(dec!(25)).to_string(), "25.00");
        assert_eq!(to_cents_scale(dec!(0.1) + dec!(0.2)).to_string(), "0.30");
    }

    #[test]
    fn converts_to_cents() {
        assert_eq!(cents(dec!(25.00)), Some(2500));
        assert_eq!(cents(dec!(19.999)), Some(2000));
        assert_eq!(cents(dec!(0)), Some(0));
    }
}
