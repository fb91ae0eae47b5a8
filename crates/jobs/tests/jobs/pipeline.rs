//! End to end over real PostgreSQL, Redis and an SMTP peer: outbox -> relay -> workers ->
//! PDFs and one email.

use std::time::Duration;

use crate::support::*;
use pique_core::{
    EmailStatus,
    jobs::{JobSpec, Queue},
};
use pique_jobs::{
    QueueSpec, WorkerOptions, confirmation, deadletter,
    smtp_sink::{Behaviour, SmtpSink},
};
use pique_store::{fulfilment, testing::TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_order_yields_one_pdf_per_attendee_and_exactly_one_email() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    let cfg = config(Some(sink.url()), dir.path());
    let order = paid_order(&db.pool, 2).await?;
    let deps = deps(&db.pool, cfg);
    let worker = RunningWorker::start(deps.clone(), WorkerOptions::all("w1", 4));

    let started = std::time::Instant::now();
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    assert!(
        sink.wait_for(1, Duration::from_secs(20)).await,
        "email received"
    );
    let latency = started.elapsed();
    eprintln!("payment -> email accepted by SMTP: {latency:?}");

    // One PDF per attendee, valid, with the title and a QR code of the attendee UUID.
    for attendee in &order.attendees {
        let pdf = fulfilment::ticket_pdf(&db.pool, *attendee)
            .await?
            .expect("pdf row");
        assert_eq!(pdf.download_token.len(), 64);
        let bytes = std::fs::read(&pdf.path)?;
        assert!(bytes.starts_with(b"%PDF-"));
        let content = pdf_page_content(&bytes);
        assert!(content.contains(&order.title), "title on the ticket");
        assert!(content.contains("General Admission"), "tier on the ticket");
        assert!(content.contains("The Comedy Cellar"), "venue on the ticket");
        // 02:00 UTC is 8:00 PM in Chicago the previous day.
        assert!(
            content.contains("Friday, December 11, 2026"),
            "local date: {content}"
        );
        assert!(content.contains("Doors 7:00 PM"), "local door time");
        assert_eq!(
            pdf_qr_codes(&bytes),
            vec![attendee.to_string()],
            "QR decodes to the UUID"
        );
    }

    // Exactly one email, with both tickets attached and tracked links.
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert_eq!(mail.to, vec!["buyer@example.com".to_string()]);
    let text = decode_quoted_printable(&mail.text());
    assert_eq!(
        text.matches("Content-Type: application/pdf").count(),
        2,
        "two PDF attachments"
    );
    assert!(text.contains("multipart/alternative"));
    let row = sent_message(&db.pool, order.order_id).await;
    assert!(text.contains(&format!(
        "http://pique.test/email-tracking/open/{}.gif",
        row.token
    )));
    let links: Vec<String> = serde_json::from_value(row.links.clone())?;
    assert_eq!(links.len(), 3, "show page + two downloads");
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("http://pique.test/tickets/"))
    );

    // Tracking: a contained link counts, a foreign one does not.
    assert!(fulfilment::record_click(&db.pool, &row.token, &links[0], None, None).await?);
    assert!(
        !fulfilment::record_click(&db.pool, &row.token, "https://evil.example", None, None).await?
    );
    assert!(fulfilment::record_open(&db.pool, &row.token, Some("127.0.0.1"), None).await?);
    assert_eq!(
        fulfilment::email_event_counts(&db.pool, row.id).await?,
        (1, 1)
    );

    // Redelivering every job (and the reconciler's re-arm) changes nothing.
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    for spec in JobSpec::fulfilment(order.order_id, &order.attendees) {
        let job = pique_jobs::Job::from_spec(&spec);
        deps.queues.push(spec.queue(), &job).await?;
    }
    let pdf_before = fulfilment::ticket_pdf(&db.pool, order.attendees[0])
        .await?
        .expect("pdf");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 1, "still one email");
    let pdf_after = fulfilment::ticket_pdf(&db.pool, order.attendees[0])
        .await?
        .expect("pdf");
    assert_eq!(
        pdf_before.download_token, pdf_after.download_token,
        "PDF not regenerated"
    );

    worker.stop().await;
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_email_job_delivered_twice_concurrently_sends_one_email() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    let order = paid_order(&db.pool, 1).await?;
    let deps = deps(&db.pool, config(Some(sink.url()), dir.path()));

    let (a, b) = tokio::join!(
        confirmation::send_order_confirmation(&deps, order.order_id),
        confirmation::send_order_confirmation(&deps, order.order_id),
    );
    // One sends; the other either finds it sent or is told to come back after the lease.
    let sent = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(confirmation::Outcome::Sent)))
        .count();
    assert_eq!(sent, 1, "{a:?} {b:?}");
    for r in [&a, &b] {
        assert!(
            matches!(
                r,
                Ok(confirmation::Outcome::Sent | confirmation::Outcome::AlreadySent)
                    | Err(pique_jobs::JobError::Busy { .. })
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        confirmation::send_order_confirmation(&deps, order.order_id).await?,
        confirmation::Outcome::AlreadySent
    );
    assert_eq!(sink.messages().len(), 1);
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusing_for_a_while_is_retried_until_it_accepts() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    sink.set_behaviour(Behaviour::Refuse {
        code: 451,
        times: Some(2),
    });
    let order = paid_order(&db.pool, 1).await?;
    let deps = deps(&db.pool, config(Some(sink.url()), dir.path()));
    let worker = RunningWorker::start(deps.clone(), WorkerOptions::all("w1", 2));

    enqueue_fulfilment(&db.pool, order.order_id).await?;
    assert!(
        sink.wait_for(1, Duration::from_secs(30)).await,
        "delivered after retries"
    );
    assert_eq!(sink.refused(), 2);
    let row = sent_message(&db.pool, order.order_id).await;
    assert_eq!(row.attempts, 3);
    assert!(
        deadletter::list(&deps.queues, &[Queue::Email])
            .await?
            .is_empty()
    );
    worker.stop().await;
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusing_forever_dead_letters_the_job_and_retry_delivers_it() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    sink.set_behaviour(Behaviour::Refuse {
        code: 421,
        times: None,
    });
    let order = paid_order(&db.pool, 1).await?;
    let deps = deps(&db.pool, config(Some(sink.url()), dir.path()));
    let worker = RunningWorker::start(deps.clone(), WorkerOptions::all("w1", 2));

    enqueue_fulfilment(&db.pool, order.order_id).await?;
    let queues = deps.queues.clone();
    assert!(
        eventually(Duration::from_secs(40), || {
            let queues = queues.clone();
            async move {
                deadletter::list(&queues, &[Queue::Email])
                    .await
                    .map(|l| l.len() == 1)
                    .unwrap_or(false)
            }
        })
        .await,
        "dead-lettered"
    );
    let dead = deadletter::list(&deps.queues, &[Queue::Email]).await?;
    assert_eq!(dead[0].job.kind, "order_confirmation");
    assert_eq!(dead[0].job.attempt, 4, "max_attempts");
    assert!(dead[0].error.contains("421"), "{}", dead[0].error);
    assert_eq!(sink.refused(), 4);
    assert!(sink.messages().is_empty());

    // The operator fixes the mail server and retries the dead job.
    sink.set_behaviour(Behaviour::Accept);
    assert_eq!(
        deadletter::retry_all(&deps.queues, &[Queue::Email]).await?,
        1
    );
    assert!(sink.wait_for(1, Duration::from_secs(20)).await);
    assert!(
        deadletter::list(&deps.queues, &[Queue::Email])
            .await?
            .is_empty()
    );
    worker.stop().await;
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_has_its_job_redone_by_another_and_one_email_arrives() -> TestResult
{
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    sink.set_behaviour(Behaviour::Stall);
    let order = paid_order(&db.pool, 1).await?;
    let cfg = config(Some(sink.url()), dir.path());
    let deps_a = deps(&db.pool, cfg.clone());

    let a = RunningWorker::start(deps_a.clone(), WorkerOptions::all("worker-a", 2));
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    let pool = db.pool.clone();
    let order_id = order.order_id;
    assert!(
        eventually(Duration::from_secs(20), || {
            let pool = pool.clone();
            async move {
                matches!(
                    fulfilment::email_message(&pool, order_id, "order_confirmation").await,
                    Ok(Some(m)) if m.status == EmailStatus::Sending
                )
            }
        })
        .await,
        "worker A is sending"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    sink.set_behaviour(Behaviour::Accept);

    let email_only = WorkerOptions {
        queues: vec![QueueSpec {
            queue: Queue::Email,
            concurrency: 2,
        }],
        name: "worker-b".into(),
    };
    // A separate process in real life: its own connections and SMTP pool.
    let b = RunningWorker::start(deps(&db.pool, cfg), email_only);
    assert!(
        sink.wait_for(1, Duration::from_secs(30)).await,
        "worker B redid the job"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 1, "still one email");
    sent_message(&db.pool, order.order_id).await;
    b.stop().await;
    flush_namespace(&deps_a.queues).await;
    db.cleanup().await;
    Ok(())
}

/// The confirmation row once it is marked sent (the mark follows the SMTP reply closely).
async fn sent_message(pool: &pique_store::PgPool, order_id: i64) -> fulfilment::EmailMessage {
    let p = pool.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let p = p.clone();
            async move {
                matches!(fulfilment::email_message(&p, order_id, "order_confirmation").await,
                    Ok(Some(m)) if m.status == EmailStatus::Sent)
            }
        })
        .await,
        "marked sent"
    );
    fulfilment::email_message(pool, order_id, "order_confirmation")
        .await
        .expect("db")
        .expect("row")
}

/// Undoes quoted-printable soft line breaks and `=3D` escapes, enough to find URLs.
fn decode_quoted_printable(s: &str) -> String {
    s.replace("=\r\n", "").replace("=3D", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_meeting_the_live_claim_of_a_dead_worker_comes_back_and_sends() -> TestResult {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await?;
    let order = paid_order(&db.pool, 1).await?;
    let deps = deps(&db.pool, config(Some(sink.url()), dir.path()));
    // A worker claimed the email a moment ago, then died before sending.
    sqlx::query(
        "INSERT INTO email_messages (token, order_id, template, to_email, status, claimed_at, attempts) \
         VALUES ('tok', $1, 'order_confirmation', 'buyer@example.com', 'sending', now(), 1)",
    )
    .bind(order.order_id)
    .execute(&db.pool)
    .await?;
    let worker = RunningWorker::start(deps.clone(), WorkerOptions::all("w1", 2));
    enqueue_fulfilment(&db.pool, order.order_id).await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(sink.messages().is_empty(), "the live claim is respected");
    assert!(
        sink.wait_for(1, Duration::from_secs(15)).await,
        "sent once the claim expired"
    );
    let row = sent_message(&db.pool, order.order_id).await;
    assert_eq!(row.attempts, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.messages().len(), 1);
    assert!(
        deadletter::list(&deps.queues, &[Queue::Email])
            .await?
            .is_empty()
    );
    worker.stop().await;
    flush_namespace(&deps.queues).await;
    db.cleanup().await;
    Ok(())
}
