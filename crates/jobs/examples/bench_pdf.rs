//! Measures PDF ticket generation per ticket (p50/p99) and confirmation emails per second to
//! a local SMTP peer.
//!
//! `cargo run --release -p pique-jobs --example bench_pdf [-- TICKETS EMAILS CONCURRENCY]`
//! (defaults 500 tickets, 500 emails, 4 concurrent senders as the email queue does).
//! No database is involved: this is the CPU and transport cost of one job. Email throughput
//! is latency-bound (about 44 ms per message per connection here, apparently delayed ACKs on
//! lettre's small writes), so it grows with the concurrency argument.

use std::{sync::Arc, time::Instant};

use chrono::{TimeZone, Utc};
use pique_core::{Money, OrderStatus};
use pique_jobs::{
    email::{self, FileAttachment},
    pdf,
    smtp_sink::SmtpSink,
    transport::Mailer,
};
use pique_store::fulfilment::{OrderSummary, TicketContext, TicketPdf};
use uuid::Uuid;

fn ticket(seq: i32) -> TicketContext {
    TicketContext {
        attendee_uuid: Uuid::new_v4(),
        attendee_name: "Ada Lovelace".into(),
        seq,
        order_id: 1,
        order_uuid: Uuid::new_v4(),
        show_title: "Late Night Laughs: The Holiday Special".into(),
        show_slug: "late-night-laughs".into(),
        door_time: Utc.with_ymd_and_hms(2026, 12, 12, 1, 0, 0).single(),
        start_time: Utc
            .with_ymd_and_hms(2026, 12, 12, 2, 0, 0)
            .single()
            .unwrap_or_else(Utc::now),
        time_zone: "America/Chicago".into(),
        age_restriction: "21+".into(),
        venue_name: "The Comedy Cellar".into(),
        venue_address: "117 MacDougal St".into(),
        venue_city: "Austin".into(),
        venue_state: "TX".into(),
        venue_postal_code: "78701".into(),
        tier_name: "General Admission".into(),
        price: Money::from_cents(2500),
        currency: "usd".into(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tickets = args.first().copied().unwrap_or(500);
    let emails = args.get(1).copied().unwrap_or(500);
    let concurrency = args.get(2).copied().unwrap_or(4).max(1);

    // PDF: one render per ticket, timed individually.
    let mut times = Vec::with_capacity(tickets);
    let mut size = 0;
    for i in 0..tickets {
        let t = ticket(i as i32 + 1);
        let started = Instant::now();
        let bytes = pdf::render_ticket(&t)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        size = bytes.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "pdf: {tickets} tickets, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {size} bytes each",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times[times.len() - 1],
    );

    // Email: compose (2 tickets attached) and send over SMTP, `concurrency` at a time.
    let sink = SmtpSink::start().await?;
    let mailer = Mailer::smtp(&sink.url())?;
    let attachment = pdf::render_ticket(&ticket(1))?;
    let order = Arc::new(OrderSummary {
        order_id: 1,
        order_uuid: Uuid::new_v4(),
        order_name: "Ada Lovelace".into(),
        order_email: "ada@example.com".into(),
        status: OrderStatus::Paid,
        total: Money::from_cents(5000),
        currency: "usd".into(),
        show_title: "Late Night Laughs".into(),
        show_slug: "late-night-laughs".into(),
        start_time: Utc::now(),
        door_time: None,
        time_zone: "America/Chicago".into(),
        venue_name: "The Comedy Cellar".into(),
        venue_address: "117 MacDougal St".into(),
        venue_city: "Austin".into(),
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (mailer, order, attachment) = (mailer.clone(), order.clone(), attachment.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = worker;
            while n < emails {
                let pairs: Vec<(TicketContext, TicketPdf)> = (1..=2)
                    .map(|seq| {
                        let t = ticket(seq);
                        let p = TicketPdf {
                            attendee_uuid: t.attendee_uuid,
                            path: String::new(),
                            download_token: pique_jobs::random_token(),
                            bytes: attachment.len() as i32,
                            created_at: Utc::now(),
                        };
                        (t, p)
                    })
                    .collect();
                let token = pique_jobs::random_token();
                let rendered =
                    email::render_confirmation(&order, &pairs, "http://localhost:8080", &token);
                let files = (1..=2)
                    .map(|i| FileAttachment {
                        filename: format!("ticket-{i}.pdf"),
                        bytes: attachment.clone(),
                    })
                    .collect();
                let msg = email::build_message(
                    "PiqueTickets <tickets@pique.local>",
                    "Ada Lovelace",
                    "ada@example.com",
                    &format!("<bench-{n}@pique.local>"),
                    &rendered,
                    files,
                )?;
                mailer.send(msg).await?;
                n += concurrency;
            }
            Ok::<(), pique_jobs::JobError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "email: {emails} messages (2 PDFs attached) over SMTP, {concurrency} concurrent: {:.0} emails/s ({:.1} s); sink got {}",
        emails as f64 / elapsed,
        elapsed,
        sink.messages().len()
    );
    Ok(())
}
