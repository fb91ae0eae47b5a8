//! The OpenAPI 3 document (`/api/openapi.json`) and an offline docs page (`/api/docs/`).
//!
//! Each route module documents its handlers with `#[utoipa::path]`; this module lists them.
//! Swagger UI is vendored into the binary, so the docs work with no network.

use axum::{Json, Router, routing::get};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{AppState, routes};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "PiqueTickets API (Rust replica)", description = "Same paths and shapes as the original Django/DRF service."),
    paths(
        routes::health::health,
        routes::public::list_shows,
        routes::public::show_detail,
        routes::public::featured_shows,
        routes::public::list_venues,
        routes::public::list_performers,
        routes::public::list_producers,
        routes::public::list_tickets,
        routes::public::search_shows,
        routes::public::active_cities,
        routes::checkout::create_checkout,
        routes::checkout::checkout_status,
        routes::checkout::success,
        routes::checkout::cancel,
        routes::checkout::validate_promo,
        routes::checkout::stripe_webhook,
    ),
    tags((name = "shows"), (name = "catalog"), (name = "health"), (name = "checkout"))
)]
pub struct ApiDoc;

/// The full document, with every area's paths merged in and the answers every route shares
/// added to each operation ([`add_shared_responses`]).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes::portal::PortalDoc::openapi());
    add_unannotated_routes(&mut doc);
    add_shared_responses(&mut doc);
    doc
}

/// Routes whose handlers carry no `#[utoipa::path]` (they answer images, redirects, files or
/// Prometheus text rather than JSON), described here so the document lists every route.
fn add_unannotated_routes(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        HttpMethod, Required, ResponseBuilder,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
    };
    let text = |name: &str, place: ParameterIn, required: bool, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(place)
            .required(if required {
                Required::True
            } else {
                Required::False
            })
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let answer = |description: &str| ResponseBuilder::new().description(description).build();
    let routes = [
        (
            "/success/",
            OperationBuilder::new()
                .tag("checkout")
                .summary(Some(
                    "Where Stripe sends the buyer back: the order, as POST /success/ answers it",
                ))
                .parameter(text(
                    "session_id",
                    ParameterIn::Query,
                    false,
                    "Stripe Checkout Session id",
                ))
                .parameter(text(
                    "order_id",
                    ParameterIn::Query,
                    false,
                    "order UUID of a free order",
                ))
                .response("200", answer("the order"))
                .response(
                    "400",
                    answer("neither session_id nor order_id, or not paid"),
                )
                .response("404", answer("unknown session or order")),
        ),
        (
            "/metrics",
            OperationBuilder::new()
                .tag("health")
                .summary(Some("Prometheus text exposition"))
                .response("200", answer("text/plain; version=0.0.4")),
        ),
        (
            "/email-tracking/open/{file}",
            OperationBuilder::new()
                .tag("tracking")
                .summary(Some(
                    "Open pixel: records an open, always answers the 1x1 GIF",
                ))
                .parameter(text("file", ParameterIn::Path, true, "`<token>.gif`"))
                .response("200", answer("image/gif")),
        ),
        (
            "/email-tracking/click/{token}",
            OperationBuilder::new()
                .tag("tracking")
                .summary(Some("Click redirect, only to a URL the e-mail contained"))
                .parameter(text("token", ParameterIn::Path, true, "e-mail token"))
                .parameter(text("u", ParameterIn::Query, true, "the link's URL"))
                .response("302", answer("redirect to `u`"))
                .response("400", answer("`u` is not a link of this e-mail")),
        ),
        (
            "/tickets/{file}",
            OperationBuilder::new()
                .tag("tracking")
                .summary(Some("A ticket PDF by its download token"))
                .parameter(text(
                    "file",
                    ParameterIn::Path,
                    true,
                    "`<download token>.pdf`",
                ))
                .response("200", answer("application/pdf"))
                .response("404", answer("unknown token")),
        ),
    ];
    for (path, operation) in routes {
        doc.paths
            .add_path_operation(path, vec![HttpMethod::Get], operation.build());
    }
    // `GET /cancel/` is Stripe's `cancel_url` target: the same handler as `POST /cancel/`,
    // with `session_id` (or `order_id`) in the query string; both answer 400 without one.
    if let Some(item) = doc.paths.paths.get_mut("/cancel/")
        && let Some(post) = item.post.as_mut()
    {
        post.responses.responses.insert(
            "400".to_string(),
            answer("neither session_id nor order_id given").into(),
        );
        let mut get = post.clone();
        get.operation_id = Some("cancel_page".to_string());
        get.parameters = Some(vec![
            text(
                "session_id",
                ParameterIn::Query,
                false,
                "Stripe Checkout Session id",
            ),
            text("order_id", ParameterIn::Query, false, "order id"),
        ]);
        item.get = Some(get);
    }
    // The webhook answers on both paths the original's deployments used.
    if let Some(webhook) = doc.paths.paths.get("/stripe/webhook/").cloned() {
        doc.paths
            .paths
            .insert("/api/v1/stripe/webhook/".to_string(), webhook);
    }
}

/// The DRF error body: `{"detail": "..."}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: errors are built as JSON in `crate::error`
pub struct ErrorDetail {
    /// What went wrong, for people.
    pub detail: String,
}

/// Whether a path answers only to an authenticated producer (the `Producer` extractor):
/// 401 without a token, 403 for a user who is not a producer.
pub fn requires_producer(path: &str) -> bool {
    path.starts_with("/api/v1/portal/")
        || (path.starts_with("/api/v1/producers/") && path != "/api/v1/producers/")
        || path == "/auth/me/"
        || path == "/auth/logout/"
}

/// The methods each documented path answers, in `Allow` header order.
pub fn documented_methods(item: &utoipa::openapi::PathItem) -> Vec<&'static str> {
    [
        ("GET", item.get.is_some()),
        ("POST", item.post.is_some()),
        ("PUT", item.put.is_some()),
        ("PATCH", item.patch.is_some()),
        ("DELETE", item.delete.is_some()),
    ]
    .into_iter()
    .filter_map(|(m, present)| present.then_some(m))
    .collect()
}

/// Adds to every operation the answers that come from the stack rather than the handler,
/// so each operation lists every status it can return:
/// - 405 with `Allow` (the path exists, the method does not);
/// - 429 with `Retry-After` on rate-limited route classes;
/// - 503 with `Retry-After` when PostgreSQL is away or the server is saturated;
/// - 401 and 403 on producer routes; 404 on routes with a path parameter; 400 on routes
///   that take a body or query parameters.
fn add_shared_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        ContentBuilder, HttpMethod, Ref, ResponseBuilder,
        header::HeaderBuilder,
        schema::{ObjectBuilder, Type},
    };
    let error = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorDetail")))
            .build()
    };
    let seconds = || {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("seconds to wait before retrying"))
            .build()
    };
    let response = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", error())
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let allow = documented_methods(item).join(", ");
        let methods = [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Delete, &mut item.delete),
        ];
        for (method, op) in methods {
            let Some(op) = op.as_mut() else { continue };
            let http_method = match method {
                HttpMethod::Get => axum::http::Method::GET,
                HttpMethod::Post => axum::http::Method::POST,
                HttpMethod::Put => axum::http::Method::PUT,
                HttpMethod::Patch => axum::http::Method::PATCH,
                _ => axum::http::Method::DELETE,
            };
            let answers = &mut op.responses.responses;
            let mut add = |code: &str, r: utoipa::openapi::Response| {
                answers.entry(code.to_string()).or_insert(r.into());
            };
            add(
                "405",
                response("Method not allowed; `Allow` lists the methods of this path")
                    .header(
                        "Allow",
                        HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(Type::String))
                            .description(Some(allow.clone()))
                            .build(),
                    )
                    .build(),
            );
            use crate::middleware::rate_limit::{RouteClass, classify};
            if classify(&http_method, path) != RouteClass::Exempt {
                add(
                    "429",
                    response("Throttled: too many requests from this client")
                        .header("Retry-After", seconds())
                        .build(),
                );
            }
            add(
                "503",
                response(
                    "PostgreSQL (or a payment dependency) is away, or the server is saturated",
                )
                .header("Retry-After", seconds())
                .build(),
            );
            if requires_producer(path) {
                add(
                    "401",
                    response("No valid `Authorization: Token ...` header")
                        .header(
                            "WWW-Authenticate",
                            HeaderBuilder::new()
                                .schema(ObjectBuilder::new().schema_type(Type::String))
                                .build(),
                        )
                        .build(),
                );
                add("403", response("The user is not a producer").build());
            }
            if path.contains('{') {
                add(
                    "404",
                    response("No such object (or not this producer's)").build(),
                );
            }
            let has_query = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
            });
            if op.request_body.is_some() || has_query {
                add(
                    "400",
                    response("Invalid body or query parameter, by field").build(),
                );
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "ErrorDetail".to_string(),
        <ErrorDetail as utoipa::PartialSchema>::schema(),
    );
}

/// `/api/openapi.json` and `/api/docs/`.
pub fn router() -> Router<AppState> {
    let doc = document();
    let json = doc.clone();
    Router::new()
        .route("/api/openapi.json", get(move || async move { Json(json) }))
        .merge(SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", doc))
}
