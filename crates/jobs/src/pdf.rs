//! Rendering a ticket as a one-page PDF (pure: no I/O).
//!
//! Built with printpdf's builtin Helvetica, so no font file is embedded and a ticket is a few
//! kilobytes. Builtin fonts only have the WinAnsi (CP1252) character set: [`pdf_text`] maps
//! what it can (typographic quotes, dashes) and replaces the rest with `?`.
//!
//! Layout (A4 portrait, a ticket card in the upper half): a dark header band, the show title
//! large, date and times in the show's time zone, venue and address, then labelled fields
//! (tier, attendee, order, price) on the left and the check-in QR code on the right.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pique_core::Money;
use pique_store::fulfilment::TicketContext;
use printpdf::{
    BuiltinFont, Color, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, RawImage, RawImageData, RawImageFormat, Rect, Rgb, TextItem,
    XObjectTransform,
};
use qrcode::{EcLevel, QrCode};

use crate::JobError;

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 40.0;
const CARD_TOP: f32 = PAGE_H - MARGIN;
// Room for a title wrapped on two lines above the fields and the footer.
const CARD_BOTTOM: f32 = 380.0;
const LEFT: f32 = MARGIN + 18.0;
const TEXT_COL_WIDTH: f32 = 310.0;
const QR_SIZE: f32 = 150.0;
const QR_X: f32 = PAGE_W - MARGIN - 18.0 - QR_SIZE;

/// Renders one attendee's ticket.
pub fn render_ticket(ticket: &TicketContext) -> Result<Vec<u8>, JobError> {
    let mut doc = PdfDocument::new(&pdf_text(&format!("Ticket - {}", ticket.show_title)));
    let qr = qr_image(&ticket.attendee_uuid.to_string())?;
    let qr_px = qr.width as f32;
    let qr_id = doc.add_image(&qr);

    let mut page = PageBuilder::default();
    page.card();
    page.header_band();

    // Title, wrapped to the text column.
    let mut y = CARD_TOP - 60.0 - 40.0;
    for line in wrap(&ticket.show_title, 24.0, TEXT_COL_WIDTH, 3) {
        page.text(BuiltinFont::HelveticaBold, 24.0, LEFT, y, DARK, &line);
        y -= 28.0;
    }

    // When, in the show's own time zone.
    let tz: Tz = ticket
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::America::Chicago);
    let start = ticket.start_time.with_timezone(&tz);
    y -= 4.0;
    page.text(
        BuiltinFont::Helvetica,
        14.0,
        LEFT,
        y,
        DARK,
        &start.format("%A, %B %-d, %Y").to_string(),
    );
    y -= 18.0;
    page.text(
        BuiltinFont::Helvetica,
        12.0,
        LEFT,
        y,
        GREY,
        &times_line(ticket.door_time, ticket.start_time, tz),
    );

    // Where.
    y -= 28.0;
    page.text(
        BuiltinFont::HelveticaBold,
        12.0,
        LEFT,
        y,
        DARK,
        &ticket.venue_name,
    );
    if !ticket.venue_address.is_empty() {
        y -= 15.0;
        page.text(
            BuiltinFont::Helvetica,
            11.0,
            LEFT,
            y,
            GREY,
            &ticket.venue_address,
        );
    }
    y -= 15.0;
    page.text(
        BuiltinFont::Helvetica,
        11.0,
        LEFT,
        y,
        GREY,
        &city_line(ticket),
    );

    // Fields, two per row.
    y -= 22.0;
    page.rule(LEFT, y, LEFT + TEXT_COL_WIDTH);
    y -= 22.0;
    page.field(LEFT, y, "Ticket type", &ticket.tier_name);
    page.field(
        LEFT + 170.0,
        y,
        "Price",
        &price(ticket.price, &ticket.currency),
    );
    y -= 36.0;
    page.field(LEFT, y, "Attendee", &ticket.attendee_name);
    page.field(LEFT + 170.0, y, "Ticket", &format!("#{}", ticket.seq));
    y -= 36.0;
    page.field(
        LEFT,
        y,
        "Order reference",
        &ticket.order_uuid.to_string().to_uppercase(),
    );

    // QR code of the attendee UUID: the check-in payload.
    let qr_y = CARD_TOP - 60.0 - 30.0 - QR_SIZE;
    page.ops.push(Op::UseXobject {
        id: qr_id,
        transform: XObjectTransform {
            translate_x: Some(Pt(QR_X)),
            translate_y: Some(Pt(qr_y)),
            dpi: Some(qr_px * 72.0 / QR_SIZE),
            ..Default::default()
        },
    });
    page.text(
        BuiltinFont::Helvetica,
        7.0,
        QR_X + 6.0,
        qr_y - 10.0,
        GREY,
        &ticket.attendee_uuid.to_string(),
    );
    page.text(
        BuiltinFont::HelveticaBold,
        9.0,
        QR_X + 30.0,
        qr_y - 24.0,
        DARK,
        "SCAN AT THE DOOR",
    );

    // Footer.
    let mut footer =
        "Present this code at the door. Each code admits one person, once.".to_string();
    if !ticket.age_restriction.is_empty() {
        footer.push_str(&format!(" Age restriction: {}.", ticket.age_restriction));
    }
    page.rule(LEFT, CARD_BOTTOM + 34.0, PAGE_W - MARGIN - 18.0);
    page.text(
        BuiltinFont::Helvetica,
        8.0,
        LEFT,
        CARD_BOTTOM + 20.0,
        GREY,
        &footer,
    );
    page.text(
        BuiltinFont::Helvetica,
        8.0,
        LEFT,
        CARD_BOTTOM + 9.0,
        GREY,
        "Issued by PiqueTickets. Keep this ticket private: anyone holding the code can use it.",
    );

    let pages = vec![PdfPage::new(
        Mm::from(Pt(PAGE_W)),
        Mm::from(Pt(PAGE_H)),
        page.ops,
    )];
    let mut warnings = Vec::new();
    Ok(doc
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings))
}

const DARK: (f32, f32, f32) = (0.11, 0.12, 0.15);
const GREY: (f32, f32, f32) = (0.40, 0.42, 0.46);
const WHITE: (f32, f32, f32) = (1.0, 1.0, 1.0);
const ACCENT: (f32, f32, f32) = (0.85, 0.20, 0.35);

fn color((r, g, b): (f32, f32, f32)) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
}

/// Accumulates the drawing operations of a page.
#[derive(Default)]
struct PageBuilder {
    ops: Vec<Op>,
}

impl PageBuilder {
    fn text(
        &mut self,
        font: BuiltinFont,
        size: f32,
        x: f32,
        y: f32,
        rgb: (f32, f32, f32),
        s: &str,
    ) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::SetFillColor { col: color(rgb) },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::ShowText {
                items: vec![TextItem::Text(pdf_text(s))],
            },
            Op::EndTextSection,
        ]);
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, mode: PaintMode) {
        let mut rect = Rect::from_xywh(Pt(x), Pt(y), Pt(w), Pt(h));
        rect.mode = Some(mode);
        self.ops.push(Op::DrawRectangle { rectangle: rect });
    }

    fn card(&mut self) {
        self.ops.push(Op::SetOutlineColor {
            col: color((0.80, 0.81, 0.84)),
        });
        self.ops.push(Op::SetOutlineThickness { pt: Pt(1.0) });
        self.rect(
            MARGIN,
            CARD_BOTTOM,
            PAGE_W - 2.0 * MARGIN,
            CARD_TOP - CARD_BOTTOM,
            PaintMode::Stroke,
        );
    }

    fn header_band(&mut self) {
        self.ops.push(Op::SetFillColor { col: color(DARK) });
        self.rect(
            MARGIN,
            CARD_TOP - 60.0,
            PAGE_W - 2.0 * MARGIN,
            60.0,
            PaintMode::Fill,
        );
        self.ops.push(Op::SetFillColor { col: color(ACCENT) });
        self.rect(
            MARGIN,
            CARD_TOP - 64.0,
            PAGE_W - 2.0 * MARGIN,
            4.0,
            PaintMode::Fill,
        );
        self.text(
            BuiltinFont::HelveticaBold,
            18.0,
            LEFT,
            CARD_TOP - 37.0,
            WHITE,
            "PIQUE TICKETS",
        );
        self.text(
            BuiltinFont::HelveticaBold,
            12.0,
            PAGE_W - MARGIN - 100.0,
            CARD_TOP - 36.0,
            WHITE,
            "ADMIT ONE",
        );
    }

    fn rule(&mut self, x1: f32, y: f32, x2: f32) {
        self.ops.push(Op::SetOutlineColor {
            col: color((0.80, 0.81, 0.84)),
        });
        self.ops.push(Op::SetOutlineThickness { pt: Pt(0.75) });
        self.ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint {
                        p: Point {
                            x: Pt(x1),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                    LinePoint {
                        p: Point {
                            x: Pt(x2),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                ],
                is_closed: false,
            },
        });
    }

    fn field(&mut self, x: f32, y: f32, label: &str, value: &str) {
        self.text(
            BuiltinFont::Helvetica,
            8.0,
            x,
            y + 14.0,
            GREY,
            &label.to_uppercase(),
        );
        let value = wrap(value, 12.0, 160.0, 1)
            .into_iter()
            .next()
            .unwrap_or_default();
        self.text(BuiltinFont::HelveticaBold, 12.0, x, y, DARK, &value);
    }
}

/// The QR code of `payload` as an 8-bit greyscale image (4 px per module, quiet zone kept).
fn qr_image(payload: &str) -> Result<RawImage, JobError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| JobError::Pdf(format!("qr code: {e}")))?;
    let img = code
        .render::<::image::Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(4, 4)
        .build();
    let (width, height) = (img.width() as usize, img.height() as usize);
    Ok(RawImage {
        pixels: RawImageData::U8(img.into_raw()),
        width,
        height,
        data_format: RawImageFormat::R8,
        tag: Vec::new(),
    })
}

/// "Doors 7:00 PM | Show 8:00 PM CST" in the show's time zone.
fn times_line(door: Option<DateTime<Utc>>, start: DateTime<Utc>, tz: Tz) -> String {
    let start = start.with_timezone(&tz);
    let show = format!("Show {}", start.format("%-I:%M %p"));
    let zone = start.format("%Z").to_string();
    match door {
        Some(door) => format!(
            "Doors {}  |  {show} {zone}",
            door.with_timezone(&tz).format("%-I:%M %p")
        ),
        None => format!("{show} {zone}"),
    }
}

fn city_line(t: &TicketContext) -> String {
    let mut line = t.venue_city.clone();
    if !t.venue_state.is_empty() {
        line.push_str(", ");
        line.push_str(&t.venue_state);
    }
    if !t.venue_postal_code.is_empty() {
        line.push(' ');
        line.push_str(&t.venue_postal_code);
    }
    line
}

/// "$25.00" for dollars, "EUR 25.00" otherwise.
pub fn price(amount: Money, currency: &str) -> String {
    match currency.to_ascii_lowercase().as_str() {
        "usd" => format!("${amount}"),
        other => format!("{} {amount}", other.to_ascii_uppercase()),
    }
}

/// Maps `s` to what a builtin (WinAnsi) font can show: typographic punctuation is kept or
/// simplified, control characters dropped, anything else outside CP1252 becomes `?`.
pub fn pdf_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => c,
            // The CP1252 extras in 0x80..0x9F.
            '€' | '‚' | 'ƒ' | '„' | '…' | '†' | '‡' | 'ˆ' | '‰' | 'Š' | '‹' | 'Œ' | 'Ž' | '‘'
            | '’' | '“' | '”' | '•' | '–' | '—' | '˜' | '™' | 'š' | '›' | 'œ' | 'ž' | 'Ÿ' => {
                c
            }
            '\u{2010}' | '\u{2011}' | '\u{2212}' => '-',
            '\u{2032}' => '\'',
            '\u{2033}' => '"',
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect()
}

/// Approximate Helvetica advance width of `c`, in ems (close enough to wrap lines).
fn char_em(c: char) -> f32 {
    match c {
        'i' | 'j' | 'l' | '.' | ',' | '\'' | '|' | '!' | ':' | ';' | 'I' => 0.28,
        'f' | 't' | 'r' | ' ' | '(' | ')' | '-' => 0.33,
        'm' | 'w' | 'M' | 'W' | '@' => 0.85,
        'A'..='Z' => 0.68,
        _ => 0.56,
    }
}

/// Splits `s` into at most `max_lines` lines no wider than `width` at `size` pt, breaking at
/// spaces where possible; an overflowing last line ends with an ellipsis.
fn wrap(s: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
    let s = pdf_text(s);
    let fits = |t: &str| t.chars().map(char_em).sum::<f32>() * size <= width;
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in s.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if fits(&candidate) {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // A single word wider than the line is cut.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if !fits(&piece) {
                piece.pop();
                lines.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        current = piece;
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            while !last.is_empty() && !fits(&format!("{last}...")) {
                last.pop();
            }
            last.push_str("...");
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_mapped_to_winansi() {
        assert_eq!(pdf_text("Café “Noir” – 2€"), "Café “Noir” – 2€");
        assert_eq!(pdf_text("東京 show\n"), "?? show");
    }

    #[test]
    fn long_titles_wrap_and_ellipsize() {
        let lines = wrap(
            "An Extraordinarily Long Comedy Night Title That Keeps Going And Going Forever",
            24.0,
            310.0,
            2,
        );
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with("..."));
        assert_eq!(wrap("Short", 24.0, 310.0, 3), vec!["Short".to_string()]);
    }

    #[test]
    fn prices_are_formatted() {
        let amount = Money::from_cents(2500);
        assert_eq!(price(amount, "usd"), "$25.00");
        assert_eq!(price(amount, "eur"), "EUR 25.00");
    }
}
