//! The OpenAPI document and the router agree: every route registered in `src/routes` is in
//! the document, every documented method of every documented path reaches a handler (never
//! the 405 fallback) and answers a status the document lists for it, and every other method
//! answers 405 with an `Allow` header naming exactly the documented methods.

mod support;

use std::collections::BTreeSet;

use support::*;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every path literal registered with `both(...)` or `.route(...)` under `src/routes`.
fn registered_paths() -> Result<BTreeSet<String>, TestError> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/routes"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path)?;
            for marker in ["both(r, \"", "both(Router::new(), \"", ".route(\""] {
                for (at, _) in source.match_indices(marker) {
                    let rest = &source[at + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        found.insert(rest[..end].to_string());
                    }
                }
            }
        }
    }
    Ok(found)
}

/// A concrete URL for a templated path (`{id}` -> `1`, other parameters -> a word).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" | "{tier}" | "{promo}" | "{link}" => "1".to_string(),
            s if s.starts_with('{') => "unknown".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_router_list_the_same_routes_methods_and_answers() -> TestResult {
    let app = TestApp::spawn(&[]).await?;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let paths = doc["paths"].as_object().ok_or("paths")?;
    let documented: BTreeSet<String> = paths.keys().cloned().collect();

    // Every registered route is documented.
    let undocumented: Vec<_> = registered_paths()?
        .into_iter()
        .filter(|p| !documented.contains(p))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );

    let mut problems = Vec::new();
    for (path, item) in paths {
        let url = app.url(&concrete(path));
        let allowed: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(m.to_lowercase()).is_some())
            .map(|m| m.to_string())
            .collect();
        assert!(!allowed.is_empty(), "{path} documents no method");
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.as_bytes())?;
            let resp = app.client.request(m, &url).send().await?;
            let status = resp.status().as_u16();
            if let Some(op) = item.get(method.to_lowercase()) {
                // Reaches the handler, and answers something the document lists.
                if status == 405 {
                    problems.push(format!("{method} {path}: 405 but documented"));
                } else if op["responses"].get(status.to_string()).is_none() {
                    problems.push(format!(
                        "{method} {path}: answered {status}, not among {:?}",
                        op["responses"]
                            .as_object()
                            .map(|r| r.keys().collect::<Vec<_>>())
                    ));
                }
            } else {
                let allow: BTreeSet<String> = resp
                    .headers()
                    .get("allow")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s != "HEAD")
                    .collect();
                if status != 405 {
                    problems.push(format!("{method} {path}: {status}, expected 405"));
                } else if allow != allowed {
                    problems.push(format!(
                        "{method} {path}: Allow {allow:?}, documented {allowed:?}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.cleanup().await;
    Ok(())
}
