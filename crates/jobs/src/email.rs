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
    let mut html_rows = String::new();
    for (ticket, pdf) in tickets {
        let url = download_url(public_url, &pdf.download_token);
        links.push(url.clone());
        text_rows.push_str(&format!(
            "  - {} ({}, #{}): {url}\n",
            ticket.attendee_name, ticket.tier_name, ticket.seq
        ));
        html_rows.push_str(&format!(
            "<tr><td style=\"padding:6px 0\">{}</td><td style=\"padding:6px 12px\">{} #{}</td>\
             <td style=\"padding:6px 0\"><a href=\"{}\">Download ticket</a></td></tr>",
            escape(&ticket.attendee_name),
            escape(&ticket.tier_name),
            ticket.seq,
            escape(&tracked_url(public_url, token, &url)),
        ));
    }

    let text = format!(
        "Hi {name},\n\nThank you for your order. Your tickets for {title} are attached.\n\n\
         When:  {when}. {doors}\nWhere: {where_}\nOrder: {reference}\nTotal: {total}\n\n\
         Tickets:\n{text_rows}\nShow each ticket's QR code at the door; each code admits one person once.\n\
         Show page: {show_link}\n\nPiqueTickets\n",
        name = order.order_name,
        title = order.show_title,
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Helvetica,Arial,sans-serif;color:#1c1f26\">\
         <h1 style=\"font-size:22px\">Your tickets for {title}</h1>\
         <p>Hi {name},</p><p>Thank you for your order. Your tickets are attached to this email.</p>\
         <p><strong>When:</strong> {when}. {doors}<br><strong>Where:</strong> {where_}<br>\
         <strong>Order:</strong> {reference}<br><strong>Total:</strong> {total}</p>\
         <table style=\"border-collapse:collapse\">{html_rows}</table>\
         <p>Show each ticket's QR code at the door; each code admits one person once.</p>\
         <p><a href=\"{show}\">View the show page</a></p>\
         <p style=\"color:#666;font-size:12px\">PiqueTickets</p>\
         <img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block\">\
         </body></html>",
        title = escape(&order.show_title),
        name = escape(&order.order_name),
        when = escape(&when),
        doors = escape(&doors),
        where_ = escape(&where_),
        reference = escape(&reference),
        total = escape(&total),
        show = escape(&tracked_url(public_url, token, &show_link)),
        pixel = escape(&open_pixel_url(public_url, token)),
    );
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

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_urls_encode_the_target() {
        let u = tracked_url("http://x", "tok", "http://x/tickets/ab.pdf?a=1&b=2");
        assert_eq!(
            u,
            "http://x/email-tracking/click/tok?u=http%3A%2F%2Fx%2Ftickets%2Fab.pdf%3Fa%3D1%26b%3D2"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
