//! Checkout storage: the three strategies' transactions; filled in by the checkout work.
