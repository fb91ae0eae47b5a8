//! The states the domain stores, each a [`text_enum!`]: the text in the database (where a
//! `CHECK` lists the same values) and in JSON is spelled once, here.

text_enum! {
    /// An order's state (`orders.status`).
    ///
    /// `pending -> paid | cancelled | expired`; a late payment takes a released order
    /// (`cancelled | expired`) to `paid` if its seats can still be sold, else to `refunded`.
    /// A pending order *is* the seat hold.
    pub enum OrderStatus {
        /// Holding seats until `expires_at`.
        Pending = "pending",
        /// Paid; seats sold.
        Paid = "paid",
        /// Cancelled by the buyer (or after a failed Stripe call); seats released.
        Cancelled = "cancelled",
        /// The hold lapsed; seats released.
        Expired = "expired",
        /// Paid too late for any seat; the payment was refunded.
        Refunded = "refunded",
    }
}

impl OrderStatus {
    /// Paid or refunded: money changed hands, so the order can no longer be cancelled.
    pub fn is_settled(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Refunded)
    }
}

text_enum! {
    /// A queued checkout request's state (`checkout_requests.status`).
    pub enum RequestStatus {
        /// Waiting for (or in) its `checkout` job.
        Processing = "processing",
        /// Seats held; the result is stored.
        Completed = "completed",
        /// Refused; the refusal is stored.
        Failed = "failed",
    }
}

text_enum! {
    /// Where a show stands for its producer (derived from `published` and `is_deleted`).
    pub enum ShowStatus {
        /// Not visible to the public yet.
        Draft = "draft",
        /// Visible to the public.
        Published = "published",
        /// Soft-deleted.
        Deleted = "deleted",
    }
}

text_enum! {
    /// An email's delivery state (`email_messages.status`).
    pub enum EmailStatus {
        /// Not sent yet.
        Pending = "pending",
        /// Claimed by a worker that is sending it.
        Sending = "sending",
        /// Accepted by the mail server.
        Sent = "sent",
        /// The last attempt failed; a retry may claim it.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_through_str_and_json() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().ok(), Some(*s));
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<OrderStatus>(&json).ok(), Some(*s));
        }
        assert!("Paid".parse::<OrderStatus>().is_err());
        assert!(serde_json::from_str::<ShowStatus>("\"gone\"").is_err());
        assert!(OrderStatus::Refunded.is_settled() && !OrderStatus::Expired.is_settled());
    }
}
