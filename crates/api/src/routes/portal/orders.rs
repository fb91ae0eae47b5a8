//! `/api/v1/portal/orders/` and `/api/v1/portal/attendees/`: filtered, paginated lists, an
//! order's detail, and the streaming CSV export.
//!
//! The original built its exports in memory and fell over on big shows (spec 4.6). Here the
//! export is a row stream from PostgreSQL turned into CSV chunks on the fly: the server holds
//! a few hundred rows at most, whatever the export's size.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use pique_core::query::FieldErrors;
use pique_store::portal::{self, AttendeeFilters, OrderFilters, PortalOrder};
use serde_json::Value;

use super::{
    bool_filter, choice_filter, datetime_filter, envelope, id_filter, page_of, path_id, text_filter,
};
use crate::{ApiError, AppState, auth::Producer, extract::QueryPairs};

/// Order states a filter may name.
pub const ORDER_STATUSES: &[&str] = &["pending", "paid", "cancelled", "expired", "refunded"];

/// Rows per CSV chunk: big enough that the per-chunk overhead vanishes, small enough that a
/// chunk is a few tens of kilobytes.
const CSV_ROWS_PER_CHUNK: usize = 256;

fn order_filters(q: &QueryPairs, errors: &mut FieldErrors) -> OrderFilters {
    OrderFilters {
        status: choice_filter(q, "status", ORDER_STATUSES, errors),
        show: id_filter(q, "show", errors),
        email: text_filter(q, "email", errors),
        created_after: datetime_filter(q, "created_after", errors),
        created_before: datetime_filter(q, "created_before", errors),
    }
}

/// `GET /api/v1/portal/orders/`: the producer's orders, newest first.
#[utoipa::path(get, path = "/api/v1/portal/orders/", tag = "portal",
    params(
        ("status" = Option<String>, Query, description = "pending, paid, cancelled, expired or refunded"),
        ("show" = Option<i64>, Query, description = "show id"),
        ("email" = Option<String>, Query, description = "buyer email contains, case-insensitive"),
        ("created_after" = Option<String>, Query, description = "ISO 8601 date or date-time, inclusive"),
        ("created_before" = Option<String>, Query, description = "ISO 8601 date or date-time, exclusive"),
        ("page" = Option<u32>, Query, description = "page number"),
        ("page_size" = Option<u32>, Query, description = "rows per page, at most 100"),
    ),
    responses((status = 200, description = "DRF page of orders"), (status = 400, description = "Bad filter")))]
pub async fn list(
    State(state): State<AppState>,
    who: Producer,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let mut errors = FieldErrors::default();
    let filters = order_filters(&q, &mut errors);
    let page = page_of(&q, &mut errors);
    errors.into_result(())?;
    let listing = portal::list_orders(&state.pool, who.id(), &filters, page).await?;
    Ok(Json(envelope(
        &headers,
        "/api/v1/portal/orders/",
        &q,
        page,
        listing,
    )?))
}

/// `GET /api/v1/portal/orders/{id}/`: an order with its lines and attendees.
#[utoipa::path(get, path = "/api/v1/portal/orders/{id}/", tag = "portal",
    params(("id" = i64, Path, description = "order id")),
    responses((status = 200, description = "The order with `lines` and `attendees`"), (status = 404, description = "Not this producer's order")))]
pub async fn detail(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<portal::PortalOrderDetail>, ApiError> {
    let id = path_id(&id)?;
    portal::get_order(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/portal/attendees/`.
#[utoipa::path(get, path = "/api/v1/portal/attendees/", tag = "portal",
    params(
        ("show" = Option<i64>, Query, description = "show id"),
        ("ticket" = Option<i64>, Query, description = "tier id"),
        ("email" = Option<String>, Query, description = "email contains, case-insensitive"),
        ("checked_in" = Option<bool>, Query, description = "admitted or not"),
        ("page" = Option<u32>, Query, description = "page number"),
        ("page_size" = Option<u32>, Query, description = "rows per page, at most 100"),
    ),
    responses((status = 200, description = "DRF page of attendees"), (status = 400, description = "Bad filter")))]
pub async fn attendees(
    State(state): State<AppState>,
    who: Producer,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let mut errors = FieldErrors::default();
    let filters = AttendeeFilters {
        show: id_filter(&q, "show", &mut errors),
        ticket: id_filter(&q, "ticket", &mut errors),
        email: text_filter(&q, "email", &mut errors),
        checked_in: bool_filter(&q, "checked_in", &mut errors),
    };
    let page = page_of(&q, &mut errors);
    errors.into_result(())?;
    let listing = portal::list_attendees(&state.pool, who.id(), &filters, page).await?;
    Ok(Json(envelope(
        &headers,
        "/api/v1/portal/attendees/",
        &q,
        page,
        listing,
    )?))
}

/// The CSV header line.
pub const CSV_HEADER: &str = "order_id,reference,created_at,paid_at,status,show_id,show_title,buyer_name,buyer_email,tickets,subtotal,discount,total,currency,promo_code\n";

/// `GET /api/v1/portal/orders/export/`: every matching order as `text/csv`, streamed.
#[utoipa::path(get, path = "/api/v1/portal/orders/export/", tag = "portal",
    params(
        ("status" = Option<String>, Query, description = "as the order list"),
        ("show" = Option<i64>, Query, description = "show id"),
        ("email" = Option<String>, Query, description = "buyer email contains"),
        ("created_after" = Option<String>, Query, description = "ISO 8601, inclusive"),
        ("created_before" = Option<String>, Query, description = "ISO 8601, exclusive"),
    ),
    responses((status = 200, description = "text/csv, one line per order, oldest first", content_type = "text/csv")))]
pub async fn export_csv(
    State(state): State<AppState>,
    who: Producer,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::default();
    let filters = order_filters(&q, &mut errors);
    errors.into_result(())?;
    let rows = portal::stream_orders(&state.pool, who.id(), filters);
    let body = Body::from_stream(csv_stream(rows));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"orders.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The header, then chunks of [`CSV_ROWS_PER_CHUNK`] rows. A database error mid-stream ends
/// the body with an error, so the client sees a truncated transfer rather than a file that
/// looks complete.
fn csv_stream(
    rows: impl Stream<Item = Result<PortalOrder, pique_store::StoreError>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let header = futures::stream::once(async { Ok(Bytes::from_static(CSV_HEADER.as_bytes())) });
    let body = rows.ready_chunks(CSV_ROWS_PER_CHUNK).map(|chunk| {
        let mut buf = String::with_capacity(chunk.len() * 160);
        for row in chunk {
            match row {
                Ok(order) => write_csv_row(&mut buf, &order),
                Err(e) => {
                    tracing::error!(error = %e, "order export failed mid-stream");
                    return Err(std::io::Error::other("export failed"));
                }
            }
        }
        Ok(Bytes::from(buf))
    });
    header.chain(body)
}

/// Appends one order as a CSV line (RFC 4180 quoting).
pub fn write_csv_row(buf: &mut String, o: &PortalOrder) {
    use std::fmt::Write as _;
    let money = |d: rust_decimal::Decimal| pique_core::money::to_cents_scale(d).to_string();
    let _ = write!(buf, "{},{},{},", o.id, o.uuid, o.created_at.to_rfc3339());
    if let Some(p) = o.paid_at {
        buf.push_str(&p.to_rfc3339());
    }
    let _ = write!(buf, ",{},{},", o.status, o.show);
    push_field(buf, &o.show_title);
    buf.push(',');
    push_field(buf, &o.order_name);
    buf.push(',');
    push_field(buf, &o.order_email);
    let _ = write!(
        buf,
        ",{},{},{},{},{},",
        o.tickets,
        money(o.subtotal),
        money(o.discount),
        money(o.total),
        o.currency
    );
    if let Some(code) = &o.promo_code {
        push_field(buf, code);
    }
    buf.push('\n');
}

/// A text field, quoted when needed. Text a buyer typed that starts with `=`, `+`, `-` or
/// `@` gets a leading `'` so a spreadsheet opening the export does not run it as a formula
/// (CSV injection).
fn push_field(buf: &mut String, value: &str) {
    let guarded;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        buf.push('"');
        buf.push_str(&value.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_guards_fields() {
        let mut s = String::new();
        push_field(&mut s, "plain");
        s.push('|');
        push_field(&mut s, "a,\"b\"");
        s.push('|');
        push_field(&mut s, "=HYPERLINK(1)");
        assert_eq!(s, "plain|\"a,\"\"b\"\"\"|'=HYPERLINK(1)");
    }
}
