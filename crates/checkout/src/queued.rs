//! The `queue` strategy: `POST /checkout/` validates, stores the request with its `checkout`
//! job (one transaction) and answers 202; the job runs the reservation path and stores the
//! outcome; the client polls `GET /checkout/status/{id}/`.

use pique_core::{CheckoutStrategy, RequestStatus, pricing};
use pique_store::{StoreError, checkout as store};
use uuid::Uuid;

use crate::{Checkout, CheckoutError, CheckoutStarted, Refusal, start::Prepared};

/// Where a queued request stands.
#[derive(Debug, Clone, PartialEq)]
pub enum QueuedState {
    /// Not processed yet.
    Processing,
    /// Seats held: the answer `POST /checkout/` would have given.
    Completed(CheckoutStarted),
    /// Refused: why.
    Failed(Refusal),
}

/// A queued request failed in a way worth retrying (the job is delivered again), or the job
/// itself is malformed.
#[derive(Debug, thiserror::Error)]
pub enum QueueJobError {
    /// Storage failed while processing the request.
    #[error("queued checkout {id}: {source}")]
    Store {
        /// The request.
        id: Uuid,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// A stored request or outcome could not be read back.
    #[error("queued checkout {id}: {source}")]
    Corrupt {
        /// The request.
        id: Uuid,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
}

impl Checkout {
    /// Accepts a validated request for the `queue` strategy: stores it with its job and
    /// returns the `checkout_id` to poll.
    pub async fn enqueue(&self, prepared: &Prepared) -> Result<Uuid, CheckoutError> {
        let id = Uuid::now_v7();
        store::enqueue_request(&self.pool, id, &prepared.request.to_json()).await?;
        metrics::counter!("pique_checkout_attempts_total", "strategy" => "queue", "outcome" => "queued").increment(1);
        Ok(id)
    }

    /// The `checkout` queue's job: runs the reservation path for queued request `id` and
    /// stores the outcome. Idempotent: a finished request is skipped, and a redelivered one
    /// finds the order it already made (its uuid is the request id) and the same Stripe
    /// session (same idempotency key).
    pub async fn process_queued(&self, id: Uuid) -> Result<(), QueueJobError> {
        let err = |source| QueueJobError::Store { id, source };
        let Some(row) = store::request(&self.pool, id).await.map_err(err)? else {
            return Ok(());
        };
        if row.status != RequestStatus::Processing {
            return Ok(());
        }
        let outcome = match pricing::parse_checkout_request(&row.request) {
            Err(errors) => Err(Refusal::Invalid { errors }.into()),
            Ok(request) => match self.prepare(request).await {
                Ok(prepared) => self.start(&prepared, id, CheckoutStrategy::Queue).await,
                Err(e) => Err(e),
            },
        };
        let corrupt = |source| QueueJobError::Corrupt { id, source };
        let (completed, body) = match outcome {
            Ok(started) => (true, serde_json::to_value(&started).map_err(corrupt)?),
            Err(CheckoutError::Store(e)) => return Err(err(e)),
            Err(CheckoutError::Refused(refusal)) => {
                (false, serde_json::to_value(&refusal).map_err(corrupt)?)
            }
        };
        store::finish_request(&self.pool, id, completed, &body)
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Where queued request `id` stands; `None` for an unknown id.
    pub async fn queued_state(&self, id: Uuid) -> Result<Option<QueuedState>, CheckoutError> {
        let Some(row) = store::request(&self.pool, id).await? else {
            return Ok(None);
        };
        let corrupt = |e: serde_json::Error| CheckoutError::Store(StoreError::Json(e));
        let state = match (row.status, row.result, row.refusal) {
            (RequestStatus::Completed, Some(result), _) => {
                QueuedState::Completed(serde_json::from_value(result).map_err(corrupt)?)
            }
            (RequestStatus::Failed, _, Some(refusal)) => {
                QueuedState::Failed(serde_json::from_value(refusal).map_err(corrupt)?)
            }
            _ => QueuedState::Processing,
        };
        Ok(Some(state))
    }
}
