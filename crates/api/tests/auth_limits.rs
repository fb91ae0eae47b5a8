//! Rate limits are configurable per class through the environment. Its own test binary: it
//! sets process environment variables, which must not leak into other tests' apps.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn limits_are_configurable_per_class() -> TestResult {
    // SAFETY: the only test of this binary, and no other thread reads the environment yet.
    unsafe {
        std::env::set_var("PIQUE_RATE_LIMIT_SUBSCRIBE", "2/min:2");
        std::env::set_var("PIQUE_RATE_LIMIT_LOGIN", "off");
    }
    let app = TestApp::spawn(&[("PIQUE_RATE_LIMIT", "on")]).await?;
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
