//! `/auth/` (DRF token login, logout, me), role checks, and the login rate limit, against the
//! real app, PostgreSQL and Redis.

use std::time::Instant;

use crate::portal_support::*;
use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn login_me_logout() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let producer_id = producer(&app.pool, "alice").await?;

    // Username is case-insensitive, like the unique index.
    let (status, body) = app
        .post(
            "/auth/login/",
            &json!({"username": "ALICE", "password": PASSWORD}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(token.len(), 40);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(body["user"]["username"], "alice");
    assert!(
        body["user"].get("password_hash").is_none(),
        "never the hash"
    );
    assert_eq!(body["producer"]["id"], producer_id);
    assert_eq!(body["producer"]["name"], "alice Presents");
    let last_login: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_login FROM users WHERE username = 'alice'")
            .fetch_one(&app.pool)
            .await?;
    assert!(last_login.is_some());

    // Without the trailing slash too; each login is its own token.
    let (status, second) = app
        .post(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await?;
    assert_eq!(status, 200);
    assert_ne!(second["token"], body["token"]);

    let (status, me) = call(&app, Method::GET, "/auth/me/", Some(&token), None).await?;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["username"], "alice");
    assert_eq!(me["producer"]["id"], producer_id);
    // DRF accepts the keyword in any case.
    let resp = app
        .client
        .get(app.url("/auth/me/"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);

    let (status, _) = call(&app, Method::POST, "/auth/logout/", Some(&token), None).await?;
    assert_eq!(status, 204);
    let (status, body) = call(&app, Method::GET, "/auth/me/", Some(&token), None).await?;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Invalid token."}));
    // The other login is still valid.
    let (status, _) = call(
        &app,
        Method::GET,
        "/auth/me/",
        second["token"].as_str(),
        None,
    )
    .await?;
    assert_eq!(status, 200);
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn bad_credentials_and_bad_input() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    producer(&app.pool, "bob").await?;
    sqlx::query("UPDATE users SET is_active = FALSE WHERE username = 'bob'")
        .execute(&app.pool)
        .await?;
    producer(&app.pool, "carol").await?;
    let refused = json!({"non_field_errors": ["Unable to log in with provided credentials."]});
    for body in [
        json!({"username": "carol", "password": "wrong"}),
        json!({"username": "nobody", "password": PASSWORD}),
        json!({"username": "bob", "password": PASSWORD}),
        json!({"username": "carol", "password": format!(" {PASSWORD}")}),
    ] {
        let (status, answer) = app.post("/auth/login/", &body).await?;
        assert_eq!((status, &answer), (400, &refused), "{body}");
    }
    let (status, body) = app.post("/auth/login/", &json!({})).await?;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
    let (status, body) = app
        .post("/auth/login/", &json!({"username": 5, "password": ""}))
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["username"], json!(["Not a valid string."]));
    assert_eq!(body["password"], json!(["This field may not be blank."]));
    let (status, body) = app.post("/auth/login/", &json!(["carol"])).await?;
    assert_eq!(status, 400, "{body}");
    let resp = app
        .client
        .post(app.url("/auth/login/"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(count(&app.pool, "auth_tokens").await?, 0, "nothing written");
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn anonymous_invalid_and_wrong_role() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    user(&app.pool, "admin", true).await?;
    let staff = login(&app, "admin").await?;
    for path in [
        "/api/v1/portal/shows/",
        "/api/v1/producers/stripe-balance/",
        "/api/v1/portal/orders/",
        "/auth/me/",
    ] {
        let resp = app.client.get(app.url(path)).send().await?;
        assert_eq!(resp.status(), 401, "{path}");
        assert_eq!(resp.headers()["www-authenticate"], "Token");
        let body: serde_json::Value = resp.json().await?;
        assert_eq!(
            body,
            json!({"detail": "Authentication credentials were not provided."})
        );
        let (status, body) = call(
            &app,
            Method::GET,
            path,
            Some("0123456789abcdef0123456789abcdef01234567"),
            None,
        )
        .await?;
        assert_eq!(
            (status, body),
            (401, json!({"detail": "Invalid token."})),
            "{path}"
        );
        let (status, _) = call(&app, Method::GET, path, Some("short"), None).await?;
        assert_eq!(status, 401);
    }
    // A Bearer header is "no credentials" for DRF's TokenAuthentication.
    let resp = app
        .client
        .get(app.url("/api/v1/portal/shows/"))
        .bearer_auth(&staff)
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    let resp = app
        .client
        .get(app.url("/api/v1/portal/shows/"))
        .header("Authorization", "Token a b")
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    // Logged in but not a producer: 403 on producer routes, 200 on /auth/me/.
    for (method, path) in [
        (Method::GET, "/api/v1/portal/shows/"),
        (Method::POST, "/api/v1/portal/shows/"),
        (Method::GET, "/api/v1/portal/orders/"),
        (Method::GET, "/api/v1/portal/attendees/"),
        (Method::GET, "/api/v1/producers/stripe-balance/"),
        (Method::POST, "/api/v1/producers/stripe-connect-link/"),
        (Method::POST, "/api/v1/producers/shows/1/checkin-link/"),
    ] {
        let (status, body) =
            call(&app, method.clone(), path, Some(&staff), Some(&json!({}))).await?;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(
            body,
            json!({"detail": "You do not have permission to perform this action."})
        );
    }
    let (status, me) = call(&app, Method::GET, "/auth/me/", Some(&staff), None).await?;
    assert_eq!(status, 200);
    assert_eq!(me["producer"], json!(null));
    assert_eq!(me["user"]["is_staff"], true);
    app.cleanup().await;
    Ok(())
}

/// A burst of logins from one address: the first 5 are answered, the rest get 429 with
/// `Retry-After`; other addresses' classes (public reads) are unaffected.
#[tokio::test]
async fn login_rate_limit_holds_under_a_burst() -> TestResult {
    let app = TestApp::spawn(&[("PIQUE_RATE_LIMIT", "on")]).await?;
    producer(&app.pool, "dave").await?;
    let started = Instant::now();
    let answers = futures::future::join_all((0..30).map(|i| {
        let password = if i % 2 == 0 {
            PASSWORD.to_string()
        } else {
            "guess".to_string()
        };
        let client = app.client.clone();
        let url = app.url("/auth/login/");
        async move {
            let resp = client
                .post(url)
                .json(&json!({"username": "dave", "password": password}))
                .send()
                .await?;
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            Ok::<_, reqwest::Error>((resp.status().as_u16(), retry))
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let answers: Vec<(u16, Option<u64>)> = answers.into_iter().collect::<Result<_, _>>()?;
    let throttled: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    let answered = answers
        .iter()
        .filter(|(s, _)| *s == 200 || *s == 400)
        .count();
    println!(
        "login burst of 30 in {elapsed:?}: {answered} answered, {} throttled",
        throttled.len()
    );
    assert_eq!(answered, 5, "{answers:?}");
    assert_eq!(throttled.len(), 25);
    assert!(
        throttled.iter().all(|(_, r)| matches!(r, Some(1..=60))),
        "{throttled:?}"
    );
    let (status, body) = app
        .post(
            "/auth/login/",
            &json!({"username": "dave", "password": PASSWORD}),
        )
        .await?;
    assert_eq!(status, 429);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Request was throttled."),
        "{body}"
    );
    // Only the login class is exhausted.
    let (status, _) = app.get("/api/v1/shows/").await?;
    assert_eq!(status, 200);
    let (status, _) = app.get("/health/").await?;
    assert!(status == 200 || status == 503);
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn no_rate_limit_under_the_django_railway_profile() -> TestResult {
    let app = TestApp::spawn(&[
        ("PIQUE_RATE_LIMIT", "on"),
        ("PIQUE_PROFILE", "django-railway"),
    ])
    .await?;
    producer(&app.pool, "erin").await?;
    for _ in 0..12 {
        let (status, _) = app
            .post(
                "/auth/login/",
                &json!({"username": "erin", "password": "guess"}),
            )
            .await?;
        assert_eq!(status, 400);
    }
    let (status, _) = app
        .post(
            "/auth/login/",
            &json!({"username": "erin", "password": PASSWORD}),
        )
        .await?;
    assert_eq!(status, 200);
    app.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn openapi_lists_the_producer_side() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let (status, doc) = app.get("/api/openapi.json").await?;
    assert_eq!(status, 200);
    for path in [
        "/auth/login/",
        "/api/v1/portal/shows/",
        "/api/v1/portal/orders/export/",
        "/api/v1/producers/stripe-connect-link/",
        "/api/v1/producers/shows/{id}/checkin-link/",
        "/api/v1/checkin/",
        "/api/v1/subscriber/create/",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.cleanup().await;
    Ok(())
}
