//! The dashboard in real headless Chromium, driven over WebDriver (chromedriver): on
//! the demo lab with the real reflector, the page shows counters, dwell time and
//! streams moving, and its buttons stop and start the worker (root-only, for the lab);
//! against a stand-in worker, it shows exact telemetry and the loop-timeout badge.
//! Needs the Debian packages `chromium` and `chromium-driver`; fails (never skips)
//! without them.

mod common;

use common::{
    eventually, free_port, require_root, stats_line_with, telemetry, ControlProcess, FakeWorker,
};
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

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap();
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
    // The real worker's telemetry: dwell percentiles and the test head's stream.
    eventually("dwell times", Duration::from_secs(15), async || {
        let dwell = text(&client, &format!("{ROW} td.dwell")).await;
        (dwell.split(" / ").count() == 3 && dwell.ends_with('s')).then_some(())
    })
    .await;
    assert_ne!(text(&client, "#dwell-p99").await, "—");
    let head = format!(
        r#"#streams tbody tr[data-key^="{}|"]"#,
        control::lab::HEAD_MAC
    );
    eventually(
        "the test head's stream",
        Duration::from_secs(15),
        async || (number(&text(&client, &format!("{head} td.frames")).await) > 0).then_some(()),
    )
    .await;
    assert_eq!(
        text(&client, &format!("{head} td.signature")).await,
        "PROBEOT"
    );

    // A wrong token: the API refuses and the page says why.
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    click(&client, "#save-token").await;
    click(&client, &format!("{ROW} button.stop")).await;
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
    click(&client, "#save-token").await;
    click(&client, &format!("{ROW} button.stop")).await;
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

    click(&client, &format!("{ROW} button.start")).await;
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

/// A stand-in worker prints exact telemetry; a file it checks makes it report its
/// loop timeout as passed.
#[tokio::test]
async fn dashboard_shows_dwell_streams_and_the_loop_timeout_badge() {
    let mut expired = telemetry();
    expired.loop_timed_out = true;
    let worker = FakeWorker::new(&format!(
        "while true; do if [ -e \"$D/expire\" ]; then echo '{}'; else echo '{}'; fi; sleep 0.2; done",
        stats_line_with(9, expired),
        stats_line_with(7, telemetry())
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("control.toml");
    std::fs::write(
        &config,
        format!(
            "reflector = \"{}\"\n[interfaces.lo]\n",
            worker.program.display()
        ),
    )
    .unwrap();
    let control = ControlProcess::spawn(&["--config", config.to_str().unwrap()], dir.path()).await;
    let (_driver, client) = browser().await;
    client.goto(&format!("{}/", control.base)).await.unwrap();
    const LO: &str = r#"tr[data-id="lo"]"#;

    eventually("dwell in the table", Duration::from_secs(20), async || {
        (text(&client, &format!("{LO} td.dwell")).await == "1.5 µs / 9.0 µs / 42.0 µs")
            .then_some(())
    })
    .await;
    assert_eq!(text(&client, "#dwell-p50").await, "1.5 µs");
    assert_eq!(text(&client, "#dwell-p99").await, "9.0 µs");
    assert_eq!(text(&client, "#dwell-max").await, "42.0 µs");

    // Read the table in one go: the page rebuilds it with every refresh.
    const TABLE: &str = "return [...document.querySelectorAll('#streams tbody tr[data-key]')].map(\
        (row) => Object.fromEntries([...row.cells].map((c) => [c.classList[0], c.textContent])))";
    let rows = eventually("the streams table", Duration::from_secs(10), async || {
        let rows = client.execute(TABLE, vec![]).await.ok()?;
        (rows.as_array()?.len() == 3).then_some(rows)
    })
    .await;
    let first = &rows[0];
    for (class, expected) in [
        ("src-mac", "00:c0:17:aa:bb:01"),
        ("src-ip", "192.0.2.10"),
        ("src-port", "50000"),
        ("dst-port", "862"),
        ("signature", "STAMP"),
        ("frames", "900"),
        ("bytes", "115,200"),
        ("lost", "4"),
        ("reordered", "2"),
        ("duplicated", "1"),
    ] {
        assert_eq!(first[class], expected, "{class} in {first}");
    }
    assert!(
        first["last-seen"].as_str().unwrap().contains(':'),
        "{first}"
    );
    // No sequence numbers, no loss figures: a dash, not a zero.
    assert_eq!(rows[1]["signature"], "RFC2544");
    assert_eq!(
        (
            &rows[1]["lost"],
            &rows[1]["reordered"],
            &rows[1]["duplicated"]
        ),
        (&json!("—"), &json!("—"), &json!("—"))
    );
    assert_eq!(rows[2]["src-ip"], "2001:db8::5");
    assert!(text(&client, "#streams-summary")
        .await
        .contains("5 frames untracked"));

    // Still reflecting: no badge.
    assert!(client
        .find(Locator::Css(&format!("{LO} .loop-timeout")))
        .await
        .is_err());
    assert!(!client
        .find(Locator::Css("#loop-timeout"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());

    std::fs::write(worker.path("expire"), "").unwrap();
    eventually(
        "the loop-timeout badge",
        Duration::from_secs(10),
        async || {
            (text(&client, &format!("{LO} .badge.loop-timeout")).await
                == "loop timeout reached — not reflecting")
                .then_some(())
        },
    )
    .await;
    assert!(client
        .find(Locator::Css("#loop-timeout"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    assert!(text(&client, &format!("{LO} td.state"))
        .await
        .starts_with("running"));
    // Kept for a person to look at: the streams table.
    client
        .execute(
            "document.querySelector('#streams').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    let shot = client.screenshot().await.unwrap();
    std::fs::write(
        std::env::temp_dir().join("reflector-dashboard-telemetry.png"),
        shot,
    )
    .unwrap();
    client.close().await.unwrap();
    assert!(control.terminate().success());
}
