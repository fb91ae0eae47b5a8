//! The job contract: every background job, with its queue, kind, payload and dedup key,
//! defined once. The writers (the outbox in `pique-store`, inside the transaction that makes
//! a job necessary) and the workers (`pique-jobs`) both go through [`JobSpec`], so a job
//! cannot be written in a shape its worker does not read.
//!
//! The dedup key names the side effect (one PDF per attendee, one confirmation per order,
//! one run per queued checkout): writing a job twice is a no-op, and a job delivered twice
//! finds its effect already done.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use uuid::Uuid;

text_enum! {
    /// A Redis queue (`outbox.queue`), served by `pique worker --queues`.
    pub enum Queue {
        /// PDF tickets.
        Pdf = "pdf",
        /// Confirmation emails.
        Email = "email",
        /// The `queue` checkout strategy's requests.
        Checkout = "checkout",
        /// Housekeeping (the relay, reconciler and sweeper also run on timers).
        Maintenance = "maintenance",
    }
}

/// The template name of the order confirmation (`email_messages.template`).
pub const ORDER_CONFIRMATION: &str = "order_confirmation";

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    /// `pdf` / `render_ticket`: render one attendee's ticket.
    RenderTicket {
        /// The attendee (the QR payload).
        attendee_uuid: Uuid,
        /// Its order.
        order_id: i64,
    },
    /// `email` / `order_confirmation`: send a paid order's confirmation.
    OrderConfirmation {
        /// The paid order.
        order_id: i64,
    },
    /// `checkout` / `process_checkout`: run a queued checkout request.
    ProcessCheckout {
        /// The request (`checkout_requests.id`, the client's `checkout_id`).
        checkout_id: Uuid,
    },
    /// `maintenance` / `relay`: relay the outbox once.
    Relay,
    /// `maintenance` / `reconcile`: re-arm the missing PDFs and emails of paid orders.
    Reconcile,
    /// `maintenance` / `sweep_holds`: release lapsed holds.
    SweepHolds,
}

/// A job whose kind or payload is not one of the contract's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{queue}/{kind}: {problem}")]
pub struct UnknownJob {
    /// The queue it came from.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Serialize, Deserialize)]
struct RenderTicketArgs {
    attendee_uuid: Uuid,
    order_id: i64,
}

#[derive(Serialize, Deserialize)]
struct OrderArgs {
    order_id: i64,
}

#[derive(Serialize, Deserialize)]
struct CheckoutArgs {
    checkout_id: Uuid,
}

impl JobSpec {
    /// The jobs a just-paid order needs: one PDF per attendee, then the confirmation.
    pub fn fulfilment(order_id: i64, attendees: &[Uuid]) -> Vec<JobSpec> {
        attendees
            .iter()
            .map(|&attendee_uuid| JobSpec::RenderTicket {
                attendee_uuid,
                order_id,
            })
            .chain(std::iter::once(JobSpec::OrderConfirmation { order_id }))
            .collect()
    }

    /// The queue it runs on.
    pub fn queue(&self) -> Queue {
        match self {
            JobSpec::RenderTicket { .. } => Queue::Pdf,
            JobSpec::OrderConfirmation { .. } => Queue::Email,
            JobSpec::ProcessCheckout { .. } => Queue::Checkout,
            JobSpec::Relay | JobSpec::Reconcile | JobSpec::SweepHolds => Queue::Maintenance,
        }
    }

    /// What the worker does with it.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::RenderTicket { .. } => "render_ticket",
            JobSpec::OrderConfirmation { .. } => ORDER_CONFIRMATION,
            JobSpec::ProcessCheckout { .. } => "process_checkout",
            JobSpec::Relay => "relay",
            JobSpec::Reconcile => "reconcile",
            JobSpec::SweepHolds => "sweep_holds",
        }
    }

    /// Its arguments, as stored in the outbox and carried by the queue.
    pub fn payload(&self) -> Value {
        let value = match self {
            JobSpec::RenderTicket {
                attendee_uuid,
                order_id,
            } => serde_json::to_value(RenderTicketArgs {
                attendee_uuid: *attendee_uuid,
                order_id: *order_id,
            }),
            JobSpec::OrderConfirmation { order_id } => serde_json::to_value(OrderArgs {
                order_id: *order_id,
            }),
            JobSpec::ProcessCheckout { checkout_id } => serde_json::to_value(CheckoutArgs {
                checkout_id: *checkout_id,
            }),
            JobSpec::Relay | JobSpec::Reconcile | JobSpec::SweepHolds => Ok(json!({})),
        };
        // Plain structs of integers and uuids always serialise.
        value.unwrap_or_default()
    }

    /// The identity of its side effect.
    pub fn dedup_key(&self) -> String {
        match self {
            JobSpec::RenderTicket { attendee_uuid, .. } => format!("pdf:{attendee_uuid}"),
            JobSpec::OrderConfirmation { order_id } => {
                format!("email:{ORDER_CONFIRMATION}:{order_id}")
            }
            JobSpec::ProcessCheckout { checkout_id } => format!("checkout:{checkout_id}"),
            JobSpec::Relay | JobSpec::Reconcile | JobSpec::SweepHolds => {
                format!("maintenance:{}", self.kind())
            }
        }
    }

    /// Reads a job back from its queue, kind and payload.
    pub fn decode(queue: &str, kind: &str, payload: &Value) -> Result<JobSpec, UnknownJob> {
        let unknown = |problem: String| UnknownJob {
            queue: queue.to_string(),
            kind: kind.to_string(),
            problem,
        };
        fn args<T: DeserializeOwned>(payload: &Value) -> Result<T, String> {
            T::deserialize(payload).map_err(|e| format!("bad payload {payload}: {e}"))
        }
        let spec = match kind {
            "render_ticket" => {
                let a: RenderTicketArgs = args(payload).map_err(unknown)?;
                JobSpec::RenderTicket {
                    attendee_uuid: a.attendee_uuid,
                    order_id: a.order_id,
                }
            }
            ORDER_CONFIRMATION => {
                let a: OrderArgs = args(payload).map_err(unknown)?;
                JobSpec::OrderConfirmation {
                    order_id: a.order_id,
                }
            }
            "process_checkout" => {
                let a: CheckoutArgs = args(payload).map_err(unknown)?;
                JobSpec::ProcessCheckout {
                    checkout_id: a.checkout_id,
                }
            }
            "relay" => JobSpec::Relay,
            "reconcile" => JobSpec::Reconcile,
            "sweep_holds" => JobSpec::SweepHolds,
            _ => return Err(unknown("unknown kind".into())),
        };
        if spec.queue().as_str() != queue {
            return Err(unknown(format!("belongs on the {} queue", spec.queue())));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_reads_back_from_what_it_writes() {
        let jobs = [
            JobSpec::RenderTicket {
                attendee_uuid: Uuid::nil(),
                order_id: 7,
            },
            JobSpec::OrderConfirmation { order_id: 7 },
            JobSpec::ProcessCheckout {
                checkout_id: Uuid::max(),
            },
            JobSpec::Relay,
            JobSpec::Reconcile,
            JobSpec::SweepHolds,
        ];
        for job in jobs {
            let back = JobSpec::decode(job.queue().as_str(), job.kind(), &job.payload());
            assert_eq!(back.as_ref(), Ok(&job));
        }
    }

    #[test]
    fn keys_and_payloads_are_the_stored_ones() {
        let order = JobSpec::fulfilment(42, &[Uuid::nil()]);
        assert_eq!(
            order.iter().map(JobSpec::dedup_key).collect::<Vec<_>>(),
            [
                "pdf:00000000-0000-0000-0000-000000000000",
                "email:order_confirmation:42"
            ]
        );
        assert_eq!(
            order[0].payload(),
            json!({"attendee_uuid": Uuid::nil(), "order_id": 42})
        );
        assert_eq!(order[1].queue(), Queue::Email);
    }

    #[test]
    fn wrong_queue_kind_or_payload_is_refused() {
        assert!(JobSpec::decode("pdf", "order_confirmation", &json!({"order_id": 1})).is_err());
        assert!(JobSpec::decode("pdf", "render_ticket", &json!({"order_id": 1})).is_err());
        assert!(JobSpec::decode("email", "bake_cake", &json!({})).is_err());
    }
}
