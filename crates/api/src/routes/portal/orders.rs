//! `/api/v1/portal/orders/` and `/api/v1/portal/attendees/`: filtered, paginated lists, an
//! order's detail, and the streaming CSV export.
//!
//! The original built its exports in memory and fell over on big shows. Here the export is a
//! row stream from PostgreSQL turned into CSV chunks on the fly and spooled to a temporary
//! file ([`crate::spool`]) that the response body reads back: the server holds a few hundred
//! rows in memory at most, whatever the export's size, and a client that downloads slowly
//! holds a file descriptor, never a pooled database connection.

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use pique_core::{OrderStatus, validate::FieldErrors};
use pique_store::portal::orders::{self as portal, AttendeeFilters, OrderFilters, PortalOrder};
use serde_json::Value;

use super::{envelope, page_of};
use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{PathId, QueryPairs},
};

/// Rows per CSV chunk: big enough that the per-chunk overhead vanishes, small enough that a
/// chunk is a few tens of kilobytes.
const CSV_ROWS_PER_CHUNK: usize = 256;

fn order_filters(q: &QueryPairs, errors: &mut FieldErrors) -> OrderFilters {
    OrderFilters {
        status: q.choice::<OrderStatus>("status", errors),
        show: q.id("show", errors),
        email: q.text("email", errors),
        created_after: q.datetime("created_after", errors),
        created_before: q.datetime("created_before", errors),
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
    PathId(id): PathId,
) -> Result<Json<portal::PortalOrderDetail>, ApiError> {
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
        show: q.id("show", &mut errors),
        ticket: q.id("ticket", &mut errors),
        email: q.text("email", &mut errors),
        checked_in: q.boolean("checked_in", &mut errors),
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

/// The CSV columns.
pub const CSV_HEADER: [&str; 15] = [
    "order_id",
    "reference",
    "created_at",
    "paid_at",
    "status",
    "show_id",
    "show_title",
    "buyer_name",
    "buyer_email",
    "tickets",
    "subtotal",
    "discount",
    "total",
    "currency",
    "promo_code",
];

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
    let rows = portal::stream_orders(
        &state.pool,
        who.id(),
        filters,
        state.config.http.export_query_timeout,
    );
    let spool = crate::spool::spooled(csv_stream(rows))
        .map_err(|e| ApiError::Internal(format!("cannot create the export spool: {e}")))?;
    let body = Body::from_stream(spool);
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

/// The header, then chunks of [`CSV_ROWS_PER_CHUNK`] rows, each written by the `csv` crate
/// (RFC 4180 quoting). A database error mid-stream ends the body with an error, so the client
/// sees a truncated transfer rather than a file that looks complete.
fn csv_stream(
    rows: impl Stream<Item = Result<PortalOrder, pique_store::StoreError>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let header = futures::stream::once(async { csv_chunk(&[CSV_HEADER.map(String::from)]) });
    let body = rows.ready_chunks(CSV_ROWS_PER_CHUNK).map(|chunk| {
        let mut records = Vec::with_capacity(chunk.len());
        for row in chunk {
            match row {
                Ok(order) => records.push(csv_record(&order)),
                Err(e) => {
                    tracing::error!(error = %e, "order export failed mid-stream");
                    return Err(std::io::Error::other("export failed"));
                }
            }
        }
        csv_chunk(&records)
    });
    header.chain(body)
}

/// `records` as CSV lines.
fn csv_chunk(records: &[[String; 15]]) -> Result<Bytes, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(records.len() * 160));
    for record in records {
        writer.write_record(record)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// One order in [`CSV_HEADER`]'s column order.
pub fn csv_record(o: &PortalOrder) -> [String; 15] {
    [
        o.id.to_string(),
        o.uuid.to_string(),
        o.created_at.to_rfc3339(),
        o.paid_at.map(|p| p.to_rfc3339()).unwrap_or_default(),
        o.status.to_string(),
        o.show.to_string(),
        spreadsheet_safe(&o.show_title),
        spreadsheet_safe(&o.order_name),
        spreadsheet_safe(&o.order_email),
        o.tickets.to_string(),
        o.subtotal.to_string(),
        o.discount.to_string(),
        o.total.to_string(),
        o.currency.clone(),
        o.promo_code
            .as_deref()
            .map(spreadsheet_safe)
            .unwrap_or_default(),
    ]
}

/// Text a buyer typed that starts with `=`, `+`, `-` or `@` gets a leading `'`, so a
/// spreadsheet opening the export does not run it as a formula (CSV injection).
fn spreadsheet_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_guards_fields() {
        let record = [
            "plain".to_string(),
            spreadsheet_safe("a,\"b\""),
            spreadsheet_safe("=HYPERLINK(1)"),
            spreadsheet_safe("line\nbreak"),
        ];
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&record).expect("write");
        let out = String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8");
        assert_eq!(
            out,
            "plain,\"a,\"\"b\"\"\",'=HYPERLINK(1),\"line\nbreak\"\n"
        );
    }
}
