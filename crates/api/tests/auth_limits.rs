//! Rate limits are configurable per class through the configuration (`PIQUE_RATE_LIMIT_*`).

// Test code: a failed unwrap is a failed test (helpers included, not only #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn limits_are_configurable_per_class() -> TestResult {
    let app = TestApp::spawn(&[
        ("PIQUE_RATE_LIMIT", "on"),
        ("PIQUE_RATE_LIMIT_SUBSCRIBE", "2/min:2"),
        ("PIQUE_RATE_LIMIT_LOGIN", "off"),
    ])
    .await?;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(
                app.post(
                    "/api/v1/subscriber/create/",
                    &json!({"email": format!("s{i}@example.com")}),
                )
                .await?
                .0,
            );
        }
        v
    };
    assert_eq!(statuses, vec![201, 201, 429, 429]);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM subscribers")
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(n, 2);
    for _ in 0..8 {
        assert_eq!(
            app.post("/auth/login/", &json!({"username": "x", "password": "y"}))
                .await?
                .0,
            400
        );
    }
    app.cleanup().await;
    Ok(())
}
