//! The `email` job: send an order's confirmation exactly once in effect.
//!
//! 1. `email_messages` row for (order, `order_confirmation`) is created if missing (its token
//!    is the tracking token); if it is `sent`, the job is a no-op.
//! 2. The PDFs are made sure of (keyed by attendee, so this is cheap when the `pdf` queue got
//!    there first) and the email rendered.
//! 3. The row is *claimed*: one atomic `UPDATE` moves it to `sending`. Of two deliveries of
//!    the same job only one claim succeeds; the other comes back after the lease
//!    ([`JobError::Busy`]) and then finds the email sent. A claim older than the lease
//!    belongs to a worker that died and is taken over.
//! 4. The message is sent, then the row marked `sent` (or `failed`, releasing the claim).
//!
//! The one window for a duplicate is a crash after the SMTP server accepted the message and
//! before step 4 is recorded: the claim then expires and another worker sends again. The
//! Message-ID is stable per (order, template), so mail clients can still fold the duplicate.

use pique_core::{EmailStatus, OrderStatus, jobs::ORDER_CONFIRMATION};
use pique_store::fulfilment;

use crate::{
    JobError,
    email::{self, FileAttachment},
    handlers::Deps,
    metrics, random_token, tickets,
};

/// What a confirmation job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The email was sent by this job.
    Sent,
    /// It had been sent before: nothing done.
    AlreadySent,
    /// The order is not paid (cancelled, refunded...): nothing to confirm.
    NotPaid,
}

/// Sends the confirmation of `order_id` unless it was sent already.
pub async fn send_order_confirmation(deps: &Deps, order_id: i64) -> Result<Outcome, JobError> {
    let pool = &deps.pool;
    let order = fulfilment::order_summary(pool, order_id)
        .await?
        .ok_or_else(|| JobError::Invalid(format!("order {order_id} does not exist")))?;
    if order.status != OrderStatus::Paid {
        return Ok(Outcome::NotPaid);
    }
    let subject = format!("Your tickets for {}", order.show_title);
    let message = fulfilment::ensure_email_message(
        pool,
        order_id,
        ORDER_CONFIRMATION,
        &order.order_email,
        &subject,
        &random_token(),
    )
    .await?;
    if message.status == EmailStatus::Sent {
        return Ok(Outcome::AlreadySent);
    }

    // Everything that can be prepared is prepared before the claim, so the claim is held
    // only for the send itself.
    let mut tickets_with_pdfs = Vec::new();
    let mut attachments = Vec::new();
    for ticket in fulfilment::order_tickets(pool, order_id).await? {
        let pdf =
            tickets::ensure_ticket_pdf(pool, &deps.config.media_dir, ticket.attendee_uuid).await?;
        attachments.push(FileAttachment {
            filename: format!(
                "ticket-{}-{}.pdf",
                ticket.seq,
                short(&ticket.attendee_uuid.to_string())
            ),
            bytes: tokio::fs::read(&pdf.path).await?,
        });
        tickets_with_pdfs.push((ticket, pdf));
    }
    let public_url = deps.config.public_url.as_str();
    let rendered =
        email::render_confirmation(&order, &tickets_with_pdfs, public_url, &message.token);
    let message_id = format!("<order-{order_id}.{ORDER_CONFIRMATION}@pique.local>");
    let mime = email::build_message(
        &deps.config.mail_from,
        &order.order_name,
        &message.to_email,
        &message_id,
        &rendered,
        attachments,
    )?;

    let links = serde_json::Value::from(rendered.links.clone());
    if !fulfilment::claim_email(pool, message.id, &links, deps.config.email_lease).await? {
        // Sent meanwhile, or being sent by another worker. That worker may die before it
        // records the send, so this delivery comes back once its claim has expired rather
        // than being dropped: then it finds the email sent (no-op) or takes the claim over.
        let status = fulfilment::email_message(pool, order_id, ORDER_CONFIRMATION)
            .await?
            .map(|m| m.status);
        if status == Some(EmailStatus::Sent) {
            return Ok(Outcome::AlreadySent);
        }
        return Err(JobError::Busy {
            what: format!("order {order_id} confirmation is being sent by another worker"),
            retry_after: deps.config.email_lease,
        });
    }
    if let Err(e) = deps.mailer.send(mime).await {
        fulfilment::mark_email_failed(pool, message.id, &e.to_string()).await?;
        return Err(e);
    }
    fulfilment::mark_email_sent(pool, message.id).await?;
    metrics::email_sent();
    Ok(Outcome::Sent)
}

fn short(s: &str) -> &str {
    s.get(..8).unwrap_or(s)
}
