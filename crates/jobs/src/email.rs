//! Composing the order confirmation email (pure: no I/O).
//!
//! HTML and plain-text alternatives, one PDF attached per ticket. Every link in the HTML part
//! goes through the click redirect `{public_url}/email-tracking/click/{token}?u=<target>`, and
//! an open pixel `{public_url}/email-tracking/open/{token}.gif` is appended. The raw targets are
//! returned in [`Rendered::links`] and stored with the message: the redirect only ever sends a
//! reader to one of them.

use chrono_tz::Tz;
use lettre::{
    Message,
    message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};
use pique_store::fulfilment::{OrderSummary, TicketContext, TicketPdf};

use maud::{DOCTYPE, html};

use crate::{JobError, pdf::price};

/// A rendered email, before attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The targets of the tracked links, as the click route must accept them.
    pub links: Vec<String>,
}

/// A file to attach.
#[derive(Debug, Clone)]
pub struct FileAttachment {
    /// File name shown to the reader.
    pub filename: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// The public page of a show.
pub fn show_url(public_url: &str, slug: &str) -> String {
    format!("{public_url}/shows/{slug}")
}

/// The download link of a ticket PDF.
pub fn download_url(public_url: &str, download_token: &str) -> String {
    format!("{public_url}/tickets/{download_token}.pdf")
}

/// The open-tracking pixel of message `token`.
pub fn open_pixel_url(public_url: &str, token: &str) -> String {
    format!("{public_url}/email-tracking/open/{token}.gif")
}

/// `target` wrapped in the click redirect of message `token`.
pub fn tracked_url(public_url: &str, token: &str, target: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("u", target)
        .finish();
    format!("{public_url}/email-tracking/click/{token}?{query}")
}

/// Renders the confirmation of `order` with its `tickets` (in seat order).
pub fn render_confirmation(
    order: &OrderSummary,
    tickets: &[(TicketContext, TicketPdf)],
    public_url: &str,
    token: &str,
) -> Rendered {
    let tz: Tz = order
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::America::Chicago);
    let start = order.start_time.with_timezone(&tz);
    let when = start.format("%A, %B %-d, %Y at %-I:%M %p %Z").to_string();
    let doors = order
        .door_time
        .map(|d| {
            format!(
                "Doors open at {}.",
                d.with_timezone(&tz).format("%-I:%M %p")
            )
        })
        .unwrap_or_default();
    let where_ = if order.venue_address.is_empty() {
        format!("{}, {}", order.venue_name, order.venue_city)
    } else {
        format!(
            "{}, {}, {}",
            order.venue_name, order.venue_address, order.venue_city
        )
    };
    let show_link = show_url(public_url, &order.show_slug);
    let reference = order.order_uuid.to_string().to_uppercase();
    let total = price(order.total, &order.currency);
    let subject = format!("Your tickets for {}", order.show_title);

    let mut links = vec![show_link.clone()];
    let mut text_rows = String::new();
    let mut rows = Vec::with_capacity(tickets.len());
    for (ticket, pdf) in tickets {
        let url = download_url(public_url, &pdf.download_token);
        text_rows.push_str(&format!(
            "  - {} ({}, #{}): {url}\n",
            ticket.attendee_name, ticket.tier_name, ticket.seq
        ));
        rows.push((ticket, tracked_url(public_url, token, &url)));
        links.push(url);
    }

    let text = format!(
        "Hi {name},\n\nThank you for your order. Your tickets for {title} are attached.\n\n\
         When:  {when}. {doors}\nWhere: {where_}\nOrder: {reference}\nTotal: {total}\n\n\
         Tickets:\n{text_rows}\nShow each ticket's QR code at the door; each code admits one person once.\n\
         Show page: {show_link}\n\nPiqueTickets\n",
        name = order.order_name,
        title = order.show_title,
    );
    // maud escapes every interpolated value, in element content and attributes alike.
    let html = html! {
        (DOCTYPE)
        html {
            body style="font-family:Helvetica,Arial,sans-serif;color:#1c1f26" {
                h1 style="font-size:22px" { "Your tickets for " (order.show_title) }
                p { "Hi " (order.order_name) "," }
                p { "Thank you for your order. Your tickets are attached to this email." }
                p {
                    strong { "When:" } " " (when) ". " (doors) br;
                    strong { "Where:" } " " (where_) br;
                    strong { "Order:" } " " (reference) br;
                    strong { "Total:" } " " (total)
                }
                table style="border-collapse:collapse" {
                    @for (ticket, url) in &rows {
                        tr {
                            td style="padding:6px 0" { (ticket.attendee_name) }
                            td style="padding:6px 12px" { (ticket.tier_name) " #" (ticket.seq) }
                            td style="padding:6px 0" { a href=(url) { "Download ticket" } }
                        }
                    }
                }
                p { "Show each ticket's QR code at the door; each code admits one person once." }
                p { a href=(tracked_url(public_url, token, &show_link)) { "View the show page" } }
                p style="color:#666;font-size:12px" { "PiqueTickets" }
                img src=(open_pixel_url(public_url, token)) width="1" height="1" alt=""
                    style="display:block";
            }
        }
    }
    .into_string();
    Rendered {
        subject,
        text,
        html,
        links,
    }
}

/// Builds the MIME message: `mixed[alternative[text, html], attachments...]`.
///
/// `message_id` should be stable for a given (order, template), so that in the one window
/// where a duplicate can escape (a crash between the SMTP send and recording it), mail
/// clients can still recognise the duplicate.
pub fn build_message(
    from: &str,
    to_name: &str,
    to_email: &str,
    message_id: &str,
    rendered: &Rendered,
    attachments: Vec<FileAttachment>,
) -> Result<Message, JobError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| JobError::Invalid(format!("sender {from:?}: {e}")))?;
    let address = to_email
        .parse()
        .map_err(|e| JobError::Invalid(format!("recipient {to_email:?}: {e}")))?;
    let to = Mailbox::new(Some(to_name.to_string()), address);
    let pdf =
        ContentType::parse("application/pdf").map_err(|e| JobError::Invalid(e.to_string()))?;
    let mut body = MultiPart::mixed().multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::plain(rendered.text.clone()))
            .singlepart(SinglePart::html(rendered.html.clone())),
    );
    for file in attachments {
        body = body.singlepart(Attachment::new(file.filename).body(file.bytes, pdf.clone()));
    }
    Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(message_id.to_string()))
        .multipart(body)
        .map_err(|e| JobError::Invalid(format!("message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    mod fixtures {
        use chrono::{TimeZone, Utc};
        use pique_core::{Money, OrderStatus};
        use pique_store::fulfilment::{OrderSummary, TicketContext, TicketPdf};
        use uuid::Uuid;

        /// A paid order of one ticket, bought by `buyer` for attendee `attendee`.
        pub fn order_with_ticket(
            buyer: &str,
            attendee: &str,
        ) -> (OrderSummary, Vec<(TicketContext, TicketPdf)>) {
            let start = Utc.with_ymd_and_hms(2030, 5, 1, 1, 0, 0).unwrap();
            let order = OrderSummary {
                order_id: 1,
                order_uuid: Uuid::nil(),
                order_name: buyer.to_string(),
                order_email: "buyer@example.com".into(),
                status: OrderStatus::Paid,
                total: Money::from_cents(2500),
                currency: "usd".into(),
                show_title: "Show & Tell".into(),
                show_slug: "show".into(),
                start_time: start,
                door_time: None,
                time_zone: "America/Chicago".into(),
                venue_name: "Hall".into(),
                venue_address: String::new(),
                venue_city: "Austin".into(),
            };
            let ticket = TicketContext {
                attendee_uuid: Uuid::nil(),
                attendee_name: attendee.to_string(),
                seq: 1,
                order_id: 1,
                order_uuid: Uuid::nil(),
                show_title: order.show_title.clone(),
                show_slug: order.show_slug.clone(),
                door_time: None,
                start_time: start,
                time_zone: order.time_zone.clone(),
                age_restriction: String::new(),
                venue_name: "Hall".into(),
                venue_address: String::new(),
                venue_city: "Austin".into(),
                venue_state: String::new(),
                venue_postal_code: String::new(),
                tier_name: "GA".into(),
                price: order.total,
                currency: "usd".into(),
            };
            let pdf = TicketPdf {
                attendee_uuid: Uuid::nil(),
                path: "t.pdf".into(),
                download_token: "dl".into(),
                bytes: 1,
                created_at: start,
            };
            (order, vec![(ticket, pdf)])
        }
    }

    #[test]
    fn tracked_urls_encode_the_target() {
        let u = tracked_url("http://x", "tok", "http://x/tickets/ab.pdf?a=1&b=2");
        assert_eq!(
            u,
            "http://x/email-tracking/click/tok?u=http%3A%2F%2Fx%2Ftickets%2Fab.pdf%3Fa%3D1%26b%3D2"
        );
    }

    #[test]
    fn html_escapes_what_buyers_typed() {
        let (order, tickets) =
            fixtures::order_with_ticket("<script>alert(1)</script>", "Ann \"Nan\" <b>");
        let r = render_confirmation(&order, &tickets, "http://x", "tok");
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.html.contains("Ann &quot;Nan&quot; &lt;b&gt;"));
        // The tracked links keep their query intact, with `&` escaped in the attribute.
        assert!(r.html.contains(
            "href=\"http://x/email-tracking/click/tok?u=http%3A%2F%2Fx%2Fshows%2Fshow\""
        ));
        assert!(
            r.text.contains("<script>alert(1)</script>"),
            "plain text is not HTML"
        );
    }
}
