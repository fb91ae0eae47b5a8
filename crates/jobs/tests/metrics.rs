//! The worker's `/metrics` endpoint over HTTP (its own test binary: the recorder is global).

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pique_core::jobs::Queue;
use pique_jobs::metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn metrics_endpoint_serves_the_job_metrics()
-> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let handle = metrics::install_recorder()?;
    metrics::enqueued(Queue::Pdf, 3);
    metrics::done(Queue::Pdf, 0.02);
    metrics::retried(Queue::Email, 0.5);
    metrics::dead(Queue::Email);
    metrics::depth(Queue::Email, 7, 1);
    metrics::email_sent();
    metrics::pdf_generated(0.006);
    metrics::queue_wait(Queue::Pdf, 0.2);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let bind = format!("127.0.0.1:{port}").parse()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(metrics::serve(bind, handle, async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stream = tokio::net::TcpStream::connect(bind).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for needle in [
        "pique_jobs_enqueued_total{queue=\"pdf\"} 3",
        "pique_jobs_done_total{queue=\"pdf\"} 1",
        "pique_jobs_retried_total{queue=\"email\"} 1",
        "pique_jobs_dead_total{queue=\"email\"} 1",
        "pique_queue_depth{queue=\"email\"} 7",
        "pique_emails_sent_total 1",
        "pique_pdfs_generated_total 1",
        "pique_job_duration_seconds_bucket{queue=\"pdf\",le=\"0.025\"} 1",
        "pique_pdf_duration_seconds_bucket{le=\"0.01\"} 1",
        "pique_job_queue_wait_seconds_bucket{queue=\"pdf\",le=\"0.25\"} 1",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    let _ = tx.send(());
    server.await??;
    Ok(())
}
