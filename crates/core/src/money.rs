//! Money: `rust_decimal` with two places, never a float.
//!
//! The API writes amounts as strings with exactly two places (`"25.00"`), as DRF's
//! `DecimalField` does, and Stripe wants integer cents.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// An amount of money, as stored (`NUMERIC(10,2)`) and as the API writes it: a string with
/// exactly two places (`"25.00"`), as DRF's `DecimalField` does. Reads accept a JSON string
/// or number.
///
/// Arithmetic happens on [`Decimal`] (see `pricing`); `Money` is what crosses the database
/// and the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct Money(Decimal);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The amount, rounded to cents.
    pub fn new(amount: Decimal) -> Money {
        Money(to_cents_scale(amount))
    }

    /// `cents` hundredths.
    pub fn from_cents(cents: i64) -> Money {
        Money(Decimal::new(cents, 2))
    }

    /// The amount as a decimal.
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// Integer cents (Stripe's `unit_amount`); `None` when out of range.
    pub fn cents(self) -> Option<i64> {
        cents(self.0)
    }
}

impl From<Decimal> for Money {
    fn from(amount: Decimal) -> Money {
        Money::new(amount)
    }
}

impl From<Money> for Decimal {
    fn from(m: Money) -> Decimal {
        m.0
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", to_cents_scale(self.0))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        // A decimal reads from a JSON string or number.
        <Decimal as Deserialize>::deserialize(d).map(Money::new)
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
    fn money_is_a_two_place_string_both_ways() {
        let m = Money::new(dec!(25));
        assert_eq!(serde_json::to_string(&m).ok().as_deref(), Some("\"25.00\""));
        assert_eq!(
            serde_json::to_string(&Some(Money::new(dec!(0.1) + dec!(0.2))))
                .ok()
                .as_deref(),
            Some("\"0.30\"")
        );
        assert_eq!(
            serde_json::to_string(&None::<Money>).ok().as_deref(),
            Some("null")
        );
        let back: Money = serde_json::from_str("\"12.50\"").expect("string");
        assert_eq!(back.amount(), dec!(12.50));
        let number: Money = serde_json::from_str("7").expect("number");
        assert_eq!(number.to_string(), "7.00");
        assert_eq!(Money::new(dec!(19.999)).cents(), Some(2000));
        assert_eq!(Money::from_cents(2550).to_string(), "25.50");
    }

    #[test]
    fn converts_to_cents() {
        assert_eq!(cents(dec!(25.00)), Some(2500));
        assert_eq!(cents(dec!(19.999)), Some(2000));
        assert_eq!(cents(dec!(0)), Some(0));
    }
}
