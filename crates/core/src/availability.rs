//! Seat availability: the one definition used by the show page *and* by checkout.
//!
//! The original computed availability differently for display and for checkout (its
//! `include_pending` flag), so a tier could look available and then be refused. Here there is
//! exactly one rule: `available = quantity - sold - active holds`, where an active hold is a
//! pending order that has not expired yet. Expired holds never count, whether or not the
//! sweeper has released them yet.

/// Seats a buyer may still take from a tier.
///
/// `active_held` must already exclude expired holds. The result is never negative even if the
/// inputs are inconsistent (e.g. a producer lowered `quantity` below what is sold).
pub fn available(quantity: i32, sold: i32, active_held: i32) -> i32 {
    (quantity - sold - active_held).max(0)
}

/// Whether `requested` seats can be taken from a tier right now.
pub fn can_take(quantity: i32, sold: i32, active_held: i32, requested: i32) -> bool {
    requested > 0 && requested <= available(quantity, sold, active_held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracts_sold_and_active_holds() {
        assert_eq!(available(50, 10, 5), 35);
        assert_eq!(available(50, 50, 0), 0);
        assert_eq!(available(50, 0, 50), 0);
    }

    #[test]
    fn never_negative() {
        assert_eq!(available(10, 12, 3), 0);
    }

    #[test]
    fn can_take_bounds() {
        assert!(can_take(10, 5, 0, 5));
        assert!(!can_take(10, 5, 1, 5));
        assert!(!can_take(10, 0, 0, 0));
        assert!(!can_take(10, 0, 0, -1));
    }
}
