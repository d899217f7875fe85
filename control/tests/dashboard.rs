//! The dashboard in real headless Chromium, driven over WebDriver (chromedriver), on
//! the demo lab with the real reflector: the page shows counters moving, and its
//! buttons stop and start the worker. Root-only (the lab), and needs the Debian
//! packages `chromium` and `chromium-driver`; fails (never skips) without them.

mod common;

use common::{eventually, free_port, require_root, ControlProcess};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::time::Duration;

const ROW: &str = r#"tr[data-id="rfl-ui-r:rfl-ui-r"]"#;

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let driver = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver not found: apt-get install chromium chromium-driver");
    let driver = Driver(driver);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = eventually(
        "chromedriver to accept a session",
        Duration::from_secs(30),
        async || {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
                .ok()
        },
    )
    .await;
    (driver, client)
}

async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn number(text: &str) -> u64 {
    text.replace(',', "").trim().parse().unwrap_or(0)
}

#[tokio::test]
async fn dashboard_shows_live_counters_and_stops_and_starts_the_reflector() {
    require_root();
    let state = tempfile::tempdir().unwrap();
    let control = ControlProcess::demo("rfl-ui", state.path()).await;
    let (_driver, client) = browser().await;
    client.goto(&format!("{}/", control.base)).await.unwrap();

    let received = eventually(
        "received frames on the page",
        Duration::from_secs(30),
        async || {
            Some(number(&text(&client, &format!("{ROW} td.received")).await)).filter(|n| *n > 0)
        },
    )
    .await;
    eventually(
        "the counters to move",
        Duration::from_secs(15),
        async || {
            (number(&text(&client, &format!("{ROW} td.received")).await) > received + 500)
                .then_some(())
        },
    )
    .await;
    assert_eq!(text(&client, "#connection").await, "live");
    assert!(number(&text(&client, r#"#signatures tr[data-name="PROBEOT"] td.num"#).await) > 0);
    assert!(text(&client, &format!("{ROW} td.platform"))
        .await
        .starts_with("af_xdp"));
    let pps: f64 = text(&client, "#tx-pps")
        .await
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(pps > 100.0, "the rate readout is live: {pps}");

    // A wrong token: the API refuses and the page says why.
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    client
        .find(Locator::Css("#save-token"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css(&format!("{ROW} button.stop")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the refusal", Duration::from_secs(10), async || {
        text(&client, "#message")
            .await
            .contains("invalid API token")
            .then_some(())
    })
    .await;
    assert_eq!(
        control.get("/api/v1/reflectors/rfl-ui-r:rfl-ui-r").await["state"],
        "running"
    );

    let token = client.find(Locator::Css("#token")).await.unwrap();
    token.clear().await.unwrap();
    token.send_keys(&control.token).await.unwrap();
    client
        .find(Locator::Css("#save-token"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css(&format!("{ROW} button.stop")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the page to show it stopped",
        Duration::from_secs(15),
        async || {
            text(&client, &format!("{ROW} td.state"))
                .await
                .starts_with("stopped")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        control.get("/api/v1/reflectors/rfl-ui-r:rfl-ui-r").await["state"],
        "stopped"
    );
    let at_stop = number(&text(&client, &format!("{ROW} td.received")).await);

    client
        .find(Locator::Css(&format!("{ROW} button.start")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "counters to move again",
        Duration::from_secs(30),
        async || {
            let running = text(&client, &format!("{ROW} td.state"))
                .await
                .starts_with("running");
            (running && number(&text(&client, &format!("{ROW} td.received")).await) > at_stop + 200)
                .then_some(())
        },
    )
    .await;
    // Kept for a person to look at.
    let shot = client.screenshot().await.unwrap();
    std::fs::write(std::env::temp_dir().join("reflector-dashboard.png"), shot).unwrap();
    client.close().await.unwrap();
    assert!(control.terminate().success());
}
