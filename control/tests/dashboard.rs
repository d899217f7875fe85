//! The dashboard in real headless Chromium, driven over WebDriver (chromedriver): on
//! the demo lab with the real reflector, the page shows counters, dwell time and
//! streams moving, and its buttons stop and start the worker (root-only, for the lab);
//! against a stand-in worker, it shows exact telemetry, the loop-timeout badge, the
//! charts (with the server's history on page load) and the folded rejection table.
//! Both fit a phone (390x844) and a desktop (1400x1000) window without sideways
//! scrolling; the demo test saves the screenshots in docs/ with
//! `UPDATE_SCREENSHOTS=1`. Needs the Debian packages `chromium` and `chromium-driver`;
//! fails (never skips) without them.

mod common;

use common::{
    eventually, require_root, stats_line_with, telemetry, ControlProcess, Driver, FakeWorker,
};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::time::Duration;

const ROW: &str = r#"tr[data-id="rfl-ui-r@rfl-ui-r"]"#;

/// The desktop window and the phone (an iPhone 12-14's CSS viewport).
const WIDE: (u32, u32) = (1400, 1000);
const PHONE: (u32, u32) = (390, 844);

async fn browser() -> (Driver, Client) {
    common::browser(WIDE).await
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

/// A control plane whose config file has one reflector, on `lo`, run by `worker`.
async fn control_of_lo(worker: &FakeWorker) -> (tempfile::TempDir, ControlProcess) {
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
    (dir, control)
}

/// Resize the window and wait until the page's viewport is `size` wide.
async fn resize(client: &Client, (width, height): (u32, u32)) {
    client.set_window_size(width, height).await.unwrap();
    eventually(
        "the viewport to resize",
        Duration::from_secs(5),
        async || {
            let inner = client
                .execute("return window.innerWidth", vec![])
                .await
                .ok()?;
            (inner.as_u64()? == u64::from(width)).then_some(())
        },
    )
    .await;
    // The charts follow on the next animation frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The page fits its `width`: nothing makes it scroll sideways, the token field and
/// every Start/Stop button lie inside the viewport, and the charts are inside it and
/// wide and large enough to read.
async fn check_fits(client: &Client, width: u32) {
    const MEASURE: &str = r#"
        const vw = window.innerWidth, doc = document.documentElement;
        const box = (el) => el.getBoundingClientRect();
        const inside = (el) => { const r = box(el); return r.width > 0 && r.left >= 0 && r.right <= vw + 0.5; };
        const all = (sel) => [...document.querySelectorAll(sel)];
        const px = (el) => parseFloat(getComputedStyle(el).fontSize);
        return {
            vw, scroll: Math.max(doc.scrollWidth, document.body.scrollWidth),
            wider: all('body *').filter((el) => box(el).right > vw + 0.5)
                .map((el) => `${el.tagName}#${el.id}.${el.className}`).slice(0, 5),
            token: inside(document.querySelector('#token')),
            token_width: box(document.querySelector('#token')).width,
            buttons: all('#reflectors button.start, #reflectors button.stop, .probe button').map(inside),
            charts: all('.chart .uplot').map(inside),
            chart_widths: all('.chart .uplot').map((el) => box(el).width),
            legend_px: all('.chart .u-legend').map(px),
        };"#;
    let m = client.execute(MEASURE, vec![]).await.unwrap();
    assert_eq!(m["vw"], width, "viewport {m}");
    assert!(
        m["scroll"].as_u64().unwrap() <= u64::from(width),
        "the page scrolls sideways at {width} px: {m}"
    );
    assert_eq!(m["token"], true, "token field outside the viewport: {m}");
    assert!(m["token_width"].as_f64().unwrap() >= 120.0, "{m}");
    let all_true = |key: &str| {
        let list = m[key].as_array().unwrap();
        !list.is_empty() && list.iter().all(|v| v == true)
    };
    assert!(
        all_true("buttons"),
        "Start/Stop out of reach at {width} px: {m}"
    );
    assert!(
        all_true("charts"),
        "a chart leaves the viewport at {width} px: {m}"
    );
    for w in m["chart_widths"].as_array().unwrap() {
        assert!(w.as_f64().unwrap() >= 300.0, "a squeezed chart: {m}");
    }
    for px in m["legend_px"].as_array().unwrap() {
        assert!(px.as_f64().unwrap() >= 12.0, "chart values too small: {m}");
    }
}

/// The whole page at the window's width, for a person to look at: saved as
/// docs/NAME with UPDATE_SCREENSHOTS=1 (the README shows them), else in the temp dir.
async fn save_screenshot(client: &Client, (width, height): (u32, u32), name: &str) {
    let full = client
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    resize(client, (width, full.clamp(height, 4000))).await;
    check_fits(client, width).await;
    let shot = client.screenshot().await.unwrap();
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
    } else {
        std::env::temp_dir()
    };
    std::fs::write(dir.join(name), shot).unwrap();
    resize(client, (width, height)).await;
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
    // Rates are sampled a second apart at most: the readout follows within seconds.
    eventually("a live rate readout", Duration::from_secs(10), async || {
        let pps: f64 = text(&client, "#tx-pps")
            .await
            .replace(',', "")
            .parse()
            .ok()?;
        (pps > 100.0).then_some(())
    })
    .await;
    assert!(text(&client, "#tx-bps").await.ends_with("bit/s"));
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

    // The demo's probe is a control-plane probe: its card, with loss and round trips,
    // is with the reflector it drives.
    eventually("the probe's results", Duration::from_secs(15), async || {
        let received = number(&text(&client, "#probes .probe dd.received").await);
        let rtt = text(&client, "#probes .probe dd.rtt-p50").await;
        (received > 0 && rtt.ends_with('s')).then_some(())
    })
    .await;
    assert!(text(&client, "#probes .probe .state")
        .await
        .starts_with("running"));

    // The page fits a desktop and a phone, with some seconds of rates charted: as the
    // screenshots in docs/ show it.
    eventually("8 s of rates", Duration::from_secs(20), async || {
        let n = client
            .execute("return charts.pps.data[0].length", vec![])
            .await
            .ok()?;
        (n.as_u64()? >= 8).then_some(())
    })
    .await;
    check_fits(&client, WIDE.0).await;
    save_screenshot(&client, WIDE, "dashboard-wide.png").await;
    resize(&client, PHONE).await;
    check_fits(&client, PHONE.0).await;
    save_screenshot(&client, PHONE, "dashboard-phone.png").await;
    resize(&client, WIDE).await;

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
        control.get("/api/v1/reflectors/rfl-ui-r@rfl-ui-r").await["state"],
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
        control.get("/api/v1/reflectors/rfl-ui-r@rfl-ui-r").await["state"],
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
    // After a stop and a start, the page still fits a desktop and a phone.
    check_fits(&client, WIDE.0).await;
    resize(&client, PHONE).await;
    check_fits(&client, PHONE.0).await;
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
    let (_dir, control) = control_of_lo(&worker).await;
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

/// A stand-in worker whose totals grow by fixed steps: 500 frames and 64,000 bytes
/// received and 400 frames and 51,200 bytes reflected every 0.2 s, with two refusal
/// reasons counting (9 and 3 per line). The page loads the server's history before
/// its own samples could exist, charts rates with units, and folds the zero reasons.
/// Run as `probe`, the same script prints a fixed probe report: its card shows up
/// with the reflector the probe drives.
#[tokio::test]
async fn dashboard_charts_the_history_and_rates_and_fits_a_phone() {
    use dataplane::{Counters, Reject};
    let mut counters = Counters {
        received: 111_111_111,
        reflected: 222_222_222,
        rx_bytes: 333_333_333,
        tx_bytes: 444_444_444,
        ..Counters::default()
    };
    counters.per_reject[Reject::PortMismatch.index()] = 555_555_555;
    counters.per_reject[Reject::NoSignature.index()] = 666_666_666;
    let line = serde_json::to_string(&settings::events::Event::Stats {
        elapsed_s: 0.2,
        rates: Default::default(),
        counters,
        telemetry: telemetry(),
    })
    .unwrap();
    let mut rtt = dataplane::histogram::Histogram::default();
    rtt.record_n(40_000, 4000);
    rtt.record_n(90_000, 980);
    rtt.record_n(2_000_000, 10);
    let report = settings::events::ProbeReport {
        sent: 5000,
        received: 4990,
        lost: 10,
        in_flight: 0,
        reordered: 2,
        duplicated: 1,
        malformed: 0,
        rtt_ns: rtt.percentiles(),
        rtt_buckets: rtt.buckets(),
        send_seconds: 5.0,
        tx_pps: 1000.0,
        timestamps: None,
    };
    let report_line = serde_json::to_string(&report).unwrap();
    let worker = FakeWorker::new(&format!(
        "if [ \"$1\" = probe ]; then while true; do echo '{report_line}'; sleep 0.2; done; fi\n\
         i=0; while true; do i=$((i+1)); echo '{line}' | sed \
         -e \"s/111111111/$((i*500))/\" -e \"s/222222222/$((i*400))/\" \
         -e \"s/333333333/$((i*64000))/\" -e \"s/444444444/$((i*51200))/\" \
         -e \"s/555555555/$((i*9))/\" -e \"s/666666666/$((i*3))/\"; sleep 0.2; done"
    ));
    let (_dir, control) = control_of_lo(&worker).await;

    // The server's history: every line adds 500 frames of 128 bytes received and 400
    // reflected; the script's pace depends on the machine's load, the proportions not.
    let history = eventually("4 s of history", Duration::from_secs(20), async || {
        let h = control.get("/api/v1/reflectors/lo/history").await;
        (h["t_ms"].as_array()?.len() >= 4).then_some(h)
    })
    .await;
    assert_eq!(history["window_s"], 900);
    let last = |key: &str| {
        history[key]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_f64()
            .unwrap()
    };
    let near = |value: f64, expected: f64| (value - expected).abs() <= expected * 1e-9;
    let rx_pps = last("rx_pps");
    assert!(rx_pps > 100.0 && rx_pps < 3000.0, "{history}");
    assert!(near(last("tx_pps"), rx_pps * 0.8), "{history}");
    assert!(near(last("rx_bps"), rx_pps * 1024.0), "{history}");
    assert!(near(last("tx_bps"), rx_pps * 0.8 * 1024.0), "{history}");

    let (_driver, client) = browser().await;
    client.goto(&format!("{}/", control.base)).await.unwrap();
    // Charted before the page could have two samples of its own a second apart.
    let points = eventually(
        "the history in the chart",
        Duration::from_secs(5),
        async || {
            let n = client
                .execute("return charts.pps ? charts.pps.data[0].length : 0", vec![])
                .await
                .ok()?;
            (n.as_u64()? >= 4).then_some(n)
        },
    )
    .await;
    assert!(points.as_u64().unwrap() >= 4);
    // Units on the axes and in the readouts.
    let bps = text(&client, "#rx-bps").await;
    assert!(bps.ends_with("Mbit/s"), "{bps}");
    let axis_labels = client
        .execute(
            "return [charts.pps.axes[1].label, charts.bps.axes[1].label]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(axis_labels, json!(["pps", "bit/s"]));
    // Hovering a chart shows that moment's values.
    let hover = client
        .execute(
            "const u = charts.pps; u.setCursor({left: u.bbox.width / devicePixelRatio - 2, top: 10}); \
             return [...u.root.querySelectorAll('.u-legend .u-value')].map((e) => e.textContent)",
            vec![],
        )
        .await
        .unwrap();
    let values: Vec<&str> = hover
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        values[1].ends_with(" pps") && values[1] != "— pps",
        "{values:?}"
    );
    assert!(values[0].contains(':'), "hover time {values:?}");
    // The dwell histogram: frames per bucket, from the first filled one to the last.
    let dwell = client
        .execute(
            "const d = charts.dwell.plot; return [d.data[1], [0, 1, 5].map((i) => d.series[0].value(d, i))]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        dwell,
        json!([[1, 899, 0, 90, 0, 10], ["≤1 µs", "≤2.5 µs", "≤50 µs"]])
    );
    assert!(text(&client, ".per-run").await.contains("worker run"));

    // Rejections: the reasons that happened first, largest first, the rest folded.
    let rejects = "return [...document.querySelectorAll('#rejects tbody tr')]\
                   .map((r) => r.dataset.name || r.className)";
    let rows = eventually(
        "the folded rejections",
        Duration::from_secs(10),
        async || {
            let rows = client.execute(rejects, vec![]).await.ok()?;
            (rows.as_array()?.len() == 3).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows, json!(["port_mismatch", "no_signature", "zeros"]));
    let fold = client
        .execute(
            "return document.querySelector('#rejects tr.zeros').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(fold.as_str().unwrap().ends_with(" at zero"), "{fold}");
    // Rebuilt with every stats line: click in the page, not on a held element.
    client
        .execute(
            "document.querySelector('#rejects tr.zeros button').click()",
            vec![],
        )
        .await
        .unwrap();
    let unfolded = client.execute(rejects, vec![]).await.unwrap();
    assert!(unfolded.as_array().unwrap().len() > 10, "{unfolded}");
    assert_eq!(unfolded[0], "port_mismatch");

    // A probe driving the reflector: its card is with the reflector's details.
    let probe = control
        .http
        .post(format!("{}/api/v1/probes", control.base))
        .bearer_auth(&control.token)
        .json(&json!({"interface": "lo", "to": "02:52:45:46:4c:01", "reflector": "lo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), reqwest::StatusCode::CREATED);
    const CARD: &str = r#"#probes .probe[data-id="probe-1"]"#;
    eventually("the probe's card", Duration::from_secs(10), async || {
        (text(&client, &format!("{CARD} dd.lost")).await == "10 (0.200 %)").then_some(())
    })
    .await;
    let us = |ns: u64| format!("{:.1} µs", ns as f64 / 1000.0);
    assert_eq!(
        text(&client, &format!("{CARD} dd.rtt-p50")).await,
        us(report.rtt_ns.p50)
    );
    assert_eq!(
        text(&client, &format!("{CARD} dd.rtt-p99")).await,
        us(report.rtt_ns.p99)
    );
    assert_eq!(text(&client, &format!("{CARD} dd.reordered")).await, "2");
    assert!(text(&client, &format!("{CARD} .state"))
        .await
        .starts_with("running"));
    let rtt_bars = client
        .execute(
            "const p = document.querySelector('#probes .probe .uplot');              return [...document.querySelectorAll('#probes .probe .u-legend')].length > 0 && p !== null",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rtt_bars, true, "the RTT histogram is drawn");

    check_fits(&client, WIDE.0).await;
    resize(&client, PHONE).await;
    check_fits(&client, PHONE.0).await;

    // On the phone, Start and Stop still work.
    let token = client.find(Locator::Css("#token")).await.unwrap();
    token.send_keys(&control.token).await.unwrap();
    click(&client, "#save-token").await;
    click(&client, r#"tr[data-id="lo"] button.stop"#).await;
    eventually("stopped", Duration::from_secs(10), async || {
        text(&client, r#"tr[data-id="lo"] td.state"#)
            .await
            .contains("stopped")
            .then_some(())
    })
    .await;
    client.close().await.unwrap();
    assert!(control.terminate().success());
}
