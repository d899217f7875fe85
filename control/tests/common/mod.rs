//! Helpers shared by the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

use dataplane::histogram::{Histogram, Percentiles};
use dataplane::streams::{SequenceReport, StreamReport};
use dataplane::{Signature, TelemetryReport};
use settings::events::{Event, PlatformInfo, Rates};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A stand-in worker for supervisor tests that must not depend on a NIC: a shell
/// script printing genuine `Event` JSON lines (serialized here with the reflector's own
/// types), recording its arguments, start times and pid, then doing `body`.
pub struct FakeWorker {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
}

impl FakeWorker {
    pub fn new(body: &str) -> FakeWorker {
        let dir = tempfile::tempdir().unwrap();
        let started = Event::Started {
            platform: PlatformInfo {
                backend: "fake".into(),
                interface: "lo".into(),
                queues: 1,
                ..PlatformInfo::default()
            },
        };
        std::fs::write(
            dir.path().join("started.jsonl"),
            format!("{}\n", serde_json::to_string(&started).unwrap()),
        )
        .unwrap();
        let program = dir.path().join("worker.sh");
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = --ready ] && exit 0\nD='{dir}'\necho \"$@\" >> \"$D/args\"\ndate +%s.%N >> \"$D/starts\"\necho $$ > \"$D/pid\"\ncat \"$D/started.jsonl\"\n{body}\n",
            dir = dir.path().display()
        );
        std::fs::write(&program, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        wait_until_executable(&program);
        FakeWorker { dir, program }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    pub fn starts(&self) -> Vec<f64> {
        self.read("starts")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    pub fn pid(&self) -> i32 {
        self.read("pid").trim().parse().unwrap()
    }
}

/// Parallel tests fork all the time; a child forked while we still had the script
/// open for writing keeps that descriptor until it execs, and meanwhile exec'ing the
/// script fails with ETXTBSY. One successful exec proves no writer is left.
fn wait_until_executable(program: &Path) {
    for _ in 0..200 {
        match std::process::Command::new(program).arg("--ready").status() {
            Ok(status) if status.success() => return,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => panic!(
                "stand-in worker {} does not run: {other:?}",
                program.display()
            ),
        }
    }
    panic!("stand-in worker {} stayed busy", program.display());
}

/// A `stats` line with `received` frames, all RFC 2544 and reflected but one.
pub fn stats_line(received: u64) -> String {
    stats_line_with(received, TelemetryReport::default())
}

/// A `stats` line as [`stats_line`], with this telemetry.
pub fn stats_line_with(received: u64, telemetry: TelemetryReport) -> String {
    let event = Event::Stats {
        elapsed_s: 1.0,
        rates: Rates {
            rx_pps: 10.0,
            tx_pps: 9.0,
            rx_mbps: 0.2,
            tx_mbps: 0.1,
        },
        counters: counters(received),
        telemetry,
    };
    serde_json::to_string(&event).unwrap()
}

pub fn final_line(received: u64) -> String {
    final_line_with(received, TelemetryReport::default())
}

pub fn final_line_with(received: u64, telemetry: TelemetryReport) -> String {
    let event = Event::Final {
        elapsed_s: 2.0,
        rates: Rates::default(),
        counters: counters(received),
        telemetry,
    };
    serde_json::to_string(&event).unwrap()
}

/// Telemetry as a worker reflecting a STAMP session and an RFC 2544 stream reports
/// it: dwell 1.5 µs median, 9 µs p99, 42 µs max; the STAMP stream (busiest) with
/// sequence numbers, the RFC 2544 one without, 5 untracked frames.
pub fn telemetry() -> TelemetryReport {
    let mut dwell = Histogram::default();
    dwell.record(800);
    dwell.record_n(1_500, 899);
    dwell.record_n(9_000, 90);
    dwell.record_n(42_000, 10);
    TelemetryReport {
        dwell_buckets: dwell.buckets(),
        dwell_ns: Percentiles {
            count: 1000,
            min: 800,
            p50: 1_500,
            p90: 4_000,
            p99: 9_000,
            p999: 20_000,
            max: 42_000,
        },
        streams: vec![
            stream(
                "192.0.2.10",
                50_000,
                862,
                Signature::Stamp,
                900,
                Some(SequenceReport {
                    lost: 4,
                    reordered: 2,
                    duplicated: 1,
                    ..SequenceReport::default()
                }),
            ),
            stream("192.0.2.20", 3842, 3842, Signature::Rfc2544, 600, None),
            stream("2001:db8::5", 3842, 3842, Signature::Rfc2544, 30, None),
        ],
        untracked_frames: 5,
        platform_stamped_frames: 990,
        loop_timed_out: false,
    }
}

pub fn stream(
    src_ip: &str,
    src_port: u16,
    dst_port: u16,
    signature: Signature,
    frames: u64,
    sequence: Option<SequenceReport>,
) -> StreamReport {
    StreamReport {
        src_mac: "00:c0:17:aa:bb:01".into(),
        src_ip: src_ip.parse().unwrap(),
        src_port,
        dst_port,
        signature,
        frames,
        bytes: frames * 128,
        first_seen_ms: 1_700_000_000_000,
        last_seen_ms: 1_700_000_005_000,
        sequence,
    }
}

fn counters(received: u64) -> dataplane::Counters {
    let mut c = dataplane::Counters {
        received,
        reflected: received - 1,
        tx_bytes: (received - 1) * 64,
        ..Default::default()
    };
    c.per_signature[dataplane::Signature::Rfc2544.index()] = received - 1;
    c.per_reject[dataplane::Reject::NoSignature.index()] = 1;
    c
}

/// Whether a process exists (signal 0 probes without signalling).
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Poll `check` until it returns Some, or panic with `what` after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// target/debug (or wherever this test binary was built).
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// The real `reflector` binary, built (or found up to date) by cargo with the same
/// target directory this test was built in.
pub fn real_reflector() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = build_dir().parent().unwrap().to_owned();
    let status = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "reflector", "--bin", "reflector"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build -p reflector");
    assert!(status.success(), "cargo build -p reflector failed");
    let path = build_dir().join("reflector");
    assert!(
        path.exists(),
        "{} missing after building it",
        path.display()
    );
    path
}

pub fn control_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_reflector-control"))
}

/// Root is needed for network namespaces and XDP. These tests fail (never skip)
/// without it: CI runs as root, and a silent skip would hide a broken rig.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test builds network namespaces and must run as root"
    );
}

/// A free loopback port for a server under test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A reflector-control process, killed (SIGTERM, then SIGKILL) when dropped.
pub struct ControlProcess {
    pub child: std::process::Child,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl ControlProcess {
    /// `reflector-control demo --lab LAB` with the real reflector binary.
    pub async fn demo(lab: &str, state_dir: &Path) -> ControlProcess {
        let reflector = real_reflector();
        let args = [
            "demo",
            "--lab",
            lab,
            "--reflector",
            reflector.to_str().unwrap(),
        ];
        ControlProcess::spawn(&args, state_dir).await
    }

    pub async fn spawn(args: &[&str], state_dir: &Path) -> ControlProcess {
        let port = free_port();
        let child = std::process::Command::new(control_binary())
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
            .arg(state_dir)
            .stdin(std::process::Stdio::null())
            // The demo's test head is chatty; keep the test output readable.
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(state_dir.join("control.log")).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let health = format!("{base}/health");
        eventually(
            "the control plane to answer /health",
            Duration::from_secs(20),
            async || {
                http.get(&health)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            },
        )
        .await;
        let token = std::fs::read_to_string(state_dir.join("token"))
            .unwrap()
            .trim()
            .to_owned();
        ControlProcess {
            child,
            base,
            token,
            http,
        }
    }

    /// The Prometheus exposition text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET /metrics: {}",
            response.status()
        );
        response.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> serde_json::Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "control plane did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ControlProcess {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A child that still runs is asked to stop (SIGTERM: a control plane then removes its
/// lab), then killed, so a failing test leaves nothing running behind it.
fn stop_child(child: &mut std::process::Child) {
    if child.try_wait().ok().flatten().is_none() {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        std::thread::sleep(Duration::from_secs(2));
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A child process of a test, stopped as [`ControlProcess`] is when dropped.
pub struct StopOnDrop(pub std::process::Child);

impl std::ops::Deref for StopOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for StopOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

/// A chromedriver process, killed when dropped.
pub struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium over WebDriver, its window `width` x `height`. Needs the Debian
/// packages `chromium` and `chromium-driver`; fails (never skips) without them.
pub async fn browser((width, height): (u32, u32)) -> (Driver, fantoccini::Client) {
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
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={width},{height}")]}),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = eventually(
        "chromedriver to accept a session",
        Duration::from_secs(30),
        async || {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
                .ok()
        },
    )
    .await;
    (driver, client)
}
