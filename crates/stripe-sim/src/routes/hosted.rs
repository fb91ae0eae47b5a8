//! Browser-facing pages: the hosted Checkout page (`/pay/{id}`) and Connect onboarding
//! (`/connect/onboard/{account}`). Not subject to API keys or fault injection.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::{
    model::{Session, SessionStatus, is_zero_decimal},
    objects::{self, EventMeta},
    routes::checkout,
    state::{SimState, now},
    store::Onboarding,
};

fn amount(minor: i64, currency: &str) -> String {
    let cur = currency.to_uppercase();
    if is_zero_decimal(currency) {
        format!("{minor} {cur}")
    } else {
        format!("{}.{:02} {cur}", minor / 100, (minor % 100).abs())
    }
}

/// The page style: small, inline, so the page works offline.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
    padding:0 1rem;color:#1a1f36}table{width:100%;border-collapse:collapse}\
    td{padding:.4rem 0;border-bottom:1px solid #e3e8ee}td.r{text-align:right}\
    button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.8rem;width:100%;\
    font-size:1rem;cursor:pointer}.muted{color:#697386}";

/// A whole page around `body` (maud escapes every interpolated value).
fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                p.muted { "stripe-sim (test mode)" }
                h1 { (title) }
                (body)
            }
        }
    }
}

fn status_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Html(page(title, html! { p { (message) } }).into_string()),
    )
        .into_response()
}

fn checkout_page(s: &Session) -> Markup {
    let p = &s.params;
    let total = amount(s.amount_total, &p.currency);
    page(
        "Checkout",
        html! {
            table {
                @for l in &p.line_items {
                    tr {
                        td { (l.name) " \u{d7} " (l.quantity) }
                        td.r { (amount(l.unit_amount * l.quantity, &p.currency)) }
                    }
                }
                tr {
                    td { strong { "Total" } }
                    td class="r" id="total" { strong { (total) } }
                }
            }
            @if let Some(email) = &p.customer_email {
                p.muted { "Paying as " (email) }
            }
            p.muted { (s.id) }
            form method="post" {
                p { button type="submit" id="pay" { "Pay " (total) } }
            }
            @if let Some(url) = &p.cancel_url {
                p { a href=(url) { "Cancel and go back" } }
            }
        },
    )
}

/// `GET /pay/{id}`: the hosted Checkout page with a Pay button.
pub async fn pay_page(State(state): State<SimState>, Path(id): Path<String>) -> Response {
    let Some(session) = state.with_store(|s| s.session_any(&id).cloned()) else {
        return status_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such checkout session.",
        );
    };
    match session.status {
        SessionStatus::Open => Html(checkout_page(&session).into_string()).into_response(),
        SessionStatus::Complete => status_page(
            StatusCode::OK,
            "Already paid",
            "This checkout session has already been paid.",
        ),
        SessionStatus::Expired => status_page(
            StatusCode::GONE,
            "Session expired",
            "This checkout session has expired. Return to the merchant to start again.",
        ),
    }
}

/// `POST /pay/{id}`: pays the session and redirects (303) to its `success_url`.
pub async fn pay_submit(State(state): State<SimState>, Path(id): Path<String>) -> Response {
    match checkout::complete(&state, &id) {
        Ok(session) => match checkout::success_redirect(&session) {
            Some(url) => Redirect::to(&url).into_response(),
            None => status_page(
                StatusCode::OK,
                "Payment complete",
                "Thanks for your payment.",
            ),
        },
        Err(e) if e.status == StatusCode::NOT_FOUND => status_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such checkout session.",
        ),
        Err(e) => status_page(StatusCode::GONE, "Session expired", &e.message),
    }
}

/// `GET /connect/onboard/{account}`: finishes onboarding (emits `account.updated`) and redirects
/// to the link's `return_url`; a stale link redirects to `refresh_url` instead.
pub async fn onboard(State(state): State<SimState>, Path(account): Path<String>) -> Response {
    let outcome = state.with_store(|s| s.onboard(&account, now()));
    match outcome {
        None => status_page(StatusCode::NOT_FOUND, "Not found", "No such account."),
        Some(Onboarding::Expired { refresh_url }) => match refresh_url {
            Some(url) => Redirect::to(&url).into_response(),
            None => status_page(
                StatusCode::GONE,
                "Link expired",
                "This onboarding link has expired.",
            ),
        },
        Some(Onboarding::Done {
            account,
            changed,
            return_url,
        }) => {
            if changed {
                let meta = EventMeta {
                    account: Some(account.id.clone()),
                    livemode: false,
                    created: now(),
                    ..EventMeta::default()
                };
                state.emit("account.updated", objects::account(&account), meta);
            }
            match return_url {
                Some(url) => Redirect::to(&url).into_response(),
                None => status_page(
                    StatusCode::OK,
                    "Onboarding complete",
                    "You can close this page.",
                ),
            }
        }
    }
}
