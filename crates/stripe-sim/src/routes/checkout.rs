//! `/v1/checkout/sessions`: create, retrieve, expire; plus the completion logic shared by the
//! hosted page and `/_sim/sessions/{id}/complete`.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
};
use serde_json::Value;

use crate::{
    checkout_params::parse_new_session,
    error::ApiError,
    form::Form,
    ids,
    knobs::Caller,
    model::{Session, SessionStatus},
    objects::{self, EventMeta},
    state::{SimState, now},
    store::Store,
};

/// Fields of a session that `expand[]` can replace by objects.
const EXPANDABLE: [&str; 2] = ["line_items", "payment_intent"];

fn check_expand(expand: &[String]) -> Result<(), ApiError> {
    match expand.iter().find(|e| !EXPANDABLE.contains(&e.as_str())) {
        Some(bad) => Err(ApiError::invalid(
            "expand",
            format!("This property cannot be expanded ({bad})."),
        )),
        None => Ok(()),
    }
}

/// Renders a session with the `expand[]`ed fields inlined.
fn render(store: &Store, s: &Session, public_base: &str, expand: &[String]) -> Value {
    let mut v = objects::checkout_session(s, public_base);
    for field in expand {
        match field.as_str() {
            "line_items" => v["line_items"] = objects::line_items_list(s),
            "payment_intent" => {
                let pi = s
                    .payment_intent
                    .as_deref()
                    .and_then(|id| store.payment_intent(id, s.account.as_deref()).ok());
                if let Some(pi) = pi {
                    v["payment_intent"] = objects::payment_intent(pi);
                }
            }
            _ => {}
        }
    }
    v
}

/// `POST /v1/checkout/sessions`.
pub async fn create(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = Form::parse(&body);
    let expand = form.expand();
    check_expand(&expand)?;
    let created = now();
    let (params, amount_total) = parse_new_session(&form, created, caller.account.is_some())?;
    if let Some(dest) = &params.destination
        && !state.with_store(|s| s.has_account(dest))
    {
        return Err(ApiError::no_such_param(
            "destination",
            "payment_intent_data[transfer_data][destination]",
            dest,
        ));
    }
    let session = Session {
        id: ids::checkout_session(caller.livemode),
        account: caller.account.clone(),
        livemode: caller.livemode,
        created,
        params,
        amount_total,
        status: SessionStatus::Open,
        payment_intent: None,
    };
    let base = &state.settings().public_base;
    let json = state.with_store(|s| {
        let json = render(s, &session, base, &expand);
        s.insert_session(session);
        json
    });
    Ok(Json(json))
}

/// `GET /v1/checkout/sessions/{id}` (supports `expand[]=line_items|payment_intent`).
pub async fn retrieve(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let expand = Form::parse(query.unwrap_or_default().as_bytes()).expand();
    check_expand(&expand)?;
    let base = &state.settings().public_base;
    state
        .with_store(|st| {
            st.session(&id, caller.account.as_deref())
                .map(|s| render(st, s, base, &expand))
        })
        .map(Json)
}

/// `GET /v1/checkout/sessions/{id}/line_items`: all lines on one page.
pub async fn line_items(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(|st| {
            st.session(&id, caller.account.as_deref())
                .map(objects::line_items_list)
        })
        .map(Json)
}

/// `POST /v1/checkout/sessions/{id}/expire`: open -> expired (+ `checkout.session.expired`).
pub async fn expire(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = state.with_store(|s| s.expire_session(&id, caller.account.as_deref()))?;
    let meta = EventMeta {
        request_id: Some(caller.request_id),
        idempotency_key: caller.idempotency_key,
        ..EventMeta::default()
    };
    Ok(Json(emit_session_event(
        &state,
        "checkout.session.expired",
        &session,
        meta,
    )))
}

/// Renders `session`, emits `event_type` for it, and returns the rendered session.
pub(crate) fn emit_session_event(
    state: &SimState,
    event_type: &str,
    session: &Session,
    mut meta: EventMeta,
) -> Value {
    let json = objects::checkout_session(session, &state.settings().public_base);
    meta.account = session.account.clone();
    meta.livemode = session.livemode;
    meta.created = now();
    state.emit(event_type, json.clone(), meta);
    json
}

/// Pays a session (hosted page or `/_sim`): on the first completion a
/// `checkout.session.completed` event is emitted. Returns the session after completion.
pub(crate) fn complete(state: &SimState, id: &str) -> Result<Session, ApiError> {
    let (session, first) = state.with_store(|s| s.complete_session(id, now()))?;
    if first {
        // The customer's browser completed it, not an API request: `request.id` is null.
        emit_session_event(
            state,
            "checkout.session.completed",
            &session,
            EventMeta::default(),
        );
    }
    Ok(session)
}

/// Expires sessions whose `expires_at` passed and emits `checkout.session.expired` for each.
pub(crate) fn expire_due(state: &SimState) {
    let due = state.with_store(|s| s.expire_due(now()));
    for session in &due {
        emit_session_event(
            state,
            "checkout.session.expired",
            session,
            EventMeta::default(),
        );
    }
}

/// The success URL with `{CHECKOUT_SESSION_ID}` substituted, as Stripe redirects.
pub(crate) fn success_redirect(session: &Session) -> Option<String> {
    session
        .params
        .success_url
        .as_ref()
        .map(|u| u.replace("{CHECKOUT_SESSION_ID}", &session.id))
}
