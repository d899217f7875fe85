//! The browsable API page (`/api/v1/docs`) in real headless Chromium: it renders
//! every operation of the served OpenAPI description under the page's strict CSP (no
//! inline code, nothing from elsewhere), and its forms call the API, with the token
//! for calls that change state. Needs the Debian packages `chromium` and
//! `chromium-driver`; fails (never skips) without them.

mod common;

use common::{browser, eventually, ControlProcess};
use fantoccini::{Client, Locator};
use std::time::Duration;

/// An XPath to the `<details>` of operation `method path`.
fn operation(method: &str, path: &str) -> String {
    format!(
        "//details[summary/span[contains(@class, 'method') and text()='{method}'] and summary/span[@class='path' and text()='{path}']]"
    )
}

/// Open an operation (unless it is open), fill its form and send it; the result.
async fn send(client: &Client, method: &str, path: &str, fields: &[(&str, &str)]) -> String {
    let op = client
        .find(Locator::XPath(&operation(method, path)))
        .await
        .unwrap();
    if op.attr("open").await.unwrap().is_none() {
        op.find(Locator::Css("summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    for (name, value) in fields {
        let field = op
            .find(Locator::Css(&format!("[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("{method} {path} has no field {name}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    op.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let sent = format!("{} {path}", method.to_uppercase());
    eventually("the answer", Duration::from_secs(10), async || {
        let result = op.find(Locator::Css("pre.result")).await.ok()?;
        let text = result.text().await.ok()?;
        // The form shows `METHOD PATH …` from the click until the answer.
        (!text.is_empty() && !text.starts_with(&sent)).then_some(text)
    })
    .await
}

#[tokio::test]
async fn the_api_page_shows_every_operation_and_calls_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let control = ControlProcess::spawn(&[], dir.path()).await;
    let spec = control.get("/api/v1/openapi.json").await;
    let operations: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let (_driver, client) = browser((1400, 1000)).await;
    client
        .goto(&format!("{}/api/v1/docs", control.base))
        .await
        .unwrap();
    // Rendered by the page's own script, which the CSP lets run.
    let shown = eventually("the operations", Duration::from_secs(15), async || {
        let found = client.find_all(Locator::Css("details.op")).await.ok()?;
        (found.len() == operations).then_some(found.len())
    })
    .await;
    assert!(shown > 20, "{shown}");
    for tag in ["reflectors", "probes", "meta", "ui"] {
        let headings = client.find_all(Locator::Css("h2")).await.unwrap();
        let mut names = Vec::new();
        for h in headings {
            names.push(h.text().await.unwrap().to_lowercase());
        }
        assert!(names.contains(&tag.to_owned()), "{names:?}");
    }
    // A read needs nothing.
    let health = send(&client, "get", "/health", &[]).await;
    assert!(
        health.starts_with("200 OK") && health.contains("\"status\": \"ok\""),
        "{health}"
    );
    // A change without the token is refused, saying where the token is...
    let body = r#"{"interface": "lo", "autostart": false}"#;
    let refused = send(&client, "post", "/api/v1/reflectors", &[("body", body)]).await;
    assert!(
        refused.starts_with("401") && refused.contains("the API token is in"),
        "{refused}"
    );
    // ...and made with it.
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(&control.token)
        .await
        .unwrap();
    let made = send(&client, "post", "/api/v1/reflectors", &[("body", body)]).await;
    assert!(made.starts_with("201 Created"), "{made}");
    assert_eq!(control.get("/api/v1/reflectors").await[0]["id"], "lo");
    // Path parameters are filled in from the form.
    let one = send(
        &client,
        "get",
        "/api/v1/reflectors/{id}",
        &[("param-id", "lo")],
    )
    .await;
    assert!(
        one.starts_with("200 OK") && one.contains("\"id\": \"lo\""),
        "{one}"
    );
    client.close().await.unwrap();
}
