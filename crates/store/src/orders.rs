//! Orders: success, cancel, expiry, refunds; filled in by the checkout work.
