//! Supervision against stand-in workers: crashes, stops, stubborn children, workers
//! that cannot start, and interfaces that do not exist yet.

mod common;

use common::{
    alive, eventually, final_line, final_line_with, stats_line, stats_line_with, telemetry,
    FakeWorker,
};
use control::config::{Mode, ReflectorSettings};
use control::events::Bus;
use control::events::Notice;
use control::supervisor::{Backoff, Launcher, Supervisor, SupervisorError};
use control::views::{ReflectorView, RunState};
use settings::Settings;
use std::path::PathBuf;
use std::time::Duration;

fn supervisor(program: PathBuf, backoff: Backoff) -> Supervisor {
    let launcher = Launcher {
        program,
        grace: Duration::from_millis(500),
        backoff,
    };
    Supervisor::new(launcher, Bus::default())
}

/// The view of reflector `id` once its worker runs.
async fn running(sup: &Supervisor, id: &str) -> ReflectorView {
    eventually("running", Duration::from_secs(10), async || {
        sup.get(id)
            .await
            .ok()
            .filter(|v| v.state == RunState::Running)
    })
    .await
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        healthy_after: Duration::from_secs(30),
    }
}

fn settings(interface: &str) -> ReflectorSettings {
    ReflectorSettings {
        interface: interface.into(),
        ..ReflectorSettings::default()
    }
}

#[tokio::test]
async fn crashed_workers_restart_with_doubling_backoff_and_totals_carry_over() {
    let worker = FakeWorker::new(&format!("echo '{}'\necho boom >&2\nexit 3", stats_line(10)));
    let sup = supervisor(worker.program.clone(), fast_backoff());
    sup.add(settings("lo"), false).await.unwrap();
    let view = eventually("five restarts", Duration::from_secs(20), async || {
        sup.get("lo").await.ok().filter(|v| v.restarts >= 5)
    })
    .await;
    assert_eq!(view.last_error.as_deref(), Some("exit status: 3: boom"));
    sup.stop("lo").await.unwrap();
    let runs = worker.starts().len() as u64;
    let stats = sup.stats("lo").await.unwrap();
    // Every run reported 10 frames; none is lost across restarts.
    assert_eq!(stats.totals.received, 10 * runs);
    assert_eq!(stats.totals.signatures["RFC2544"], 9 * runs);
    assert_eq!(stats.totals.rejects["no_signature"], runs);
    assert_eq!(stats.state, RunState::Stopped);
    // Gaps between starts: 0.1, 0.2, 0.4, then capped at 0.4 s (uncapped: 0.8).
    let starts = worker.starts();
    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= 0.09 && gaps[0] < 0.6, "{gaps:?}");
    assert!(gaps[1] >= 0.19, "{gaps:?}");
    assert!(gaps[2] >= 0.39, "{gaps:?}");
    assert!(gaps[3] >= 0.39 && gaps[3] < 0.75, "capped at max: {gaps:?}");
}

#[tokio::test]
async fn backoff_resets_after_a_healthy_run() {
    // Each run lives 0.3 s, which counts as healthy here: restarts never slow down.
    let worker = FakeWorker::new("sleep 0.3\nexit 1");
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        healthy_after: Duration::from_millis(200),
    };
    let sup = supervisor(worker.program.clone(), backoff);
    sup.add(settings("lo"), false).await.unwrap();
    eventually("four restarts", Duration::from_secs(20), async || {
        sup.get("lo").await.ok().filter(|v| v.restarts >= 4)
    })
    .await;
    sup.remove("lo").await.unwrap();
    let starts = worker.starts();
    for gap in starts.windows(2).map(|w| w[1] - w[0]) {
        assert!(gap < 0.95, "back-off grew despite healthy runs: {starts:?}");
    }
}

#[tokio::test]
async fn stop_sends_sigterm_and_keeps_the_final_totals() {
    // Prints stats until SIGTERM, then its final totals, like the real worker.
    let body = format!(
        "trap 'cat \"$D/final.jsonl\"; exit 0' TERM\nwhile true; do echo '{}'; sleep 0.1; done",
        stats_line(5)
    );
    let worker = FakeWorker::new(&body);
    std::fs::write(worker.path("final.jsonl"), final_line(99) + "\n").unwrap();
    let sup = supervisor(worker.program.clone(), fast_backoff());
    let view = sup.add(settings("lo"), false).await.unwrap();
    assert!(matches!(view.state, RunState::Starting | RunState::Running));
    let running = running(&sup, "lo").await;
    assert_eq!(running.platform.unwrap().backend, "fake");
    assert_eq!(running.pid, Some(worker.pid() as u32));
    eventually("a stats line", Duration::from_secs(10), async || {
        sup.stats("lo")
            .await
            .ok()
            .filter(|s| s.totals.received == 5)
    })
    .await;
    let stopped = sup.stop("lo").await.unwrap();
    assert_eq!(
        (stopped.state, stopped.pid, stopped.restarts),
        (RunState::Stopped, None, 0)
    );
    assert!(!alive(worker.pid()));
    let stats = sup.stats("lo").await.unwrap();
    assert_eq!(stats.totals.received, 99, "the final line counts");
    assert_eq!(stats.rates.tx_pps, 0.0);
    // A new worker's counters start at zero again and add to what came before.
    sup.start("lo").await.unwrap();
    eventually("totals of both runs", Duration::from_secs(10), async || {
        sup.stats("lo")
            .await
            .ok()
            .filter(|s| s.totals.received == 104)
    })
    .await;
    sup.shutdown().await;
    assert!(!alive(worker.pid()));
}

#[tokio::test]
async fn a_worker_ignoring_sigterm_is_killed_after_the_grace_period() {
    let worker = FakeWorker::new("trap '' TERM\nwhile true; do sleep 0.05; done");
    let sup = supervisor(worker.program.clone(), fast_backoff());
    sup.add(settings("lo"), false).await.unwrap();
    running(&sup, "lo").await;
    let begun = std::time::Instant::now();
    sup.stop("lo").await.unwrap();
    let took = begun.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!alive(worker.pid()));
}

#[tokio::test]
async fn reconfigure_restarts_the_worker_with_new_arguments() {
    let worker = FakeWorker::new("while true; do sleep 0.05; done");
    let sup = supervisor(worker.program.clone(), fast_backoff());
    sup.add(settings("lo"), false).await.unwrap();
    running(&sup, "lo").await;
    let first = worker.pid();
    let new = ReflectorSettings {
        worker: Settings {
            mode: Mode::Mac,
            port: 5000,
            ..Settings::default()
        },
        ..settings("lo")
    };
    sup.reconfigure("lo", new.clone()).await.unwrap();
    eventually("the second worker", Duration::from_secs(10), async || {
        (worker.read("args").lines().count() == 2 && worker.pid() != first).then_some(())
    })
    .await;
    assert!(!alive(first));
    let args = worker.read("args");
    let second = args.lines().nth(1).unwrap();
    assert!(
        second.starts_with("lo --json --stats-interval 1 --mode mac --port 5000"),
        "{second}"
    );
    assert_eq!(sup.get("lo").await.unwrap().settings, new);
    assert_eq!(
        sup.get("lo").await.unwrap().restarts,
        0,
        "a reconfiguration is not a crash"
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn an_unstartable_worker_backs_off_and_the_rest_keep_running() {
    let sup = supervisor("/nonexistent/reflector".into(), fast_backoff());
    let view = sup.add(settings("lo"), false).await.unwrap();
    assert!(
        view.last_error
            .as_deref()
            .unwrap()
            .starts_with("cannot start /nonexistent/reflector"),
        "{view:?}"
    );
    eventually("backoff", Duration::from_secs(5), async || {
        sup.get("lo")
            .await
            .ok()
            .filter(|v| v.state == RunState::Backoff)
    })
    .await;
    // Duplicates and unknown ids are refused; the supervisor itself is unaffected.
    let err = sup.add(settings("lo"), false).await.unwrap_err();
    assert_eq!(
        err,
        SupervisorError::Duplicate {
            interface: "lo".into(),
            id: "lo".into()
        }
    );
    assert_eq!(
        sup.start("eth9").await.unwrap_err(),
        SupervisorError::UnknownId("eth9".into())
    );
    sup.remove("lo").await.unwrap();
    assert!(sup.list().await.is_empty());
}

/// A network namespace for one test, removed on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = ip(&["netns", "del", name]);
        assert!(ip(&["netns", "add", name]), "ip netns add {name} failed");
        Netns(name.into())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// An interface on the host, removed on drop.
struct HostLink(String);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// The view of reflector `id` once it waits for its interface.
async fn waiting(sup: &Supervisor, id: &str) -> ReflectorView {
    eventually(
        "waiting_for_interface",
        Duration::from_secs(5),
        async || {
            sup.get(id)
                .await
                .ok()
                .filter(|v| v.state == RunState::WaitingForInterface)
        },
    )
    .await
}

/// The host reflector `id` while it waits for its interface: no worker was ever started,
/// nothing restarts, and it says why.
async fn waits(sup: &Supervisor, id: &str, worker: &FakeWorker) {
    let view = waiting(sup, id).await;
    assert_eq!(
        view.last_error.unwrap(),
        format!("interface {id:?} does not exist; the worker starts when it appears")
    );
    // Several looks later: still waiting, and no crash loop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = sup.get(id).await.unwrap();
    assert_eq!(
        (view.state, view.restarts),
        (RunState::WaitingForInterface, 0)
    );
    assert_eq!(
        worker.read("args"),
        "",
        "no worker runs without its interface"
    );
}

#[tokio::test]
async fn a_missing_interface_is_waited_for_without_a_crash_loop_and_starts_when_it_appears() {
    common::require_root();
    let worker = FakeWorker::new(&format!(
        "while true; do echo '{}'; sleep 0.1; done",
        stats_line(3)
    ));
    let sup = supervisor(worker.program.clone(), fast_backoff());
    let tag = std::process::id() % 100_000;

    // On the host.
    let host = format!("rflw{tag}a");
    sup.add(settings(&host), false).await.unwrap();
    waits(&sup, &host, &worker).await;
    let _link = HostLink(host.clone());
    assert!(ip(&[
        "link",
        "add",
        &host,
        "type",
        "veth",
        "peer",
        "name",
        &format!("rflw{tag}b")
    ]));
    let view = running(&sup, &host).await;
    assert_eq!((view.restarts, view.last_error), (0, None));
    assert!(worker.read("args").starts_with(&host));

    // In a network namespace, where iproute2 looks.
    let ns = Netns::new(&format!("rflw{tag}"));
    let in_ns = ReflectorSettings {
        netns: Some(ns.0.clone()),
        ..settings("late0")
    };
    let id = in_ns.id();
    sup.add(in_ns, false).await.unwrap();
    let before = worker.read("args");
    let view = waiting(&sup, &id).await;
    assert_eq!(
        view.last_error.as_deref(),
        Some(&*format!("interface \"late0\" does not exist in network namespace \"{}\"; the worker starts when it appears", ns.0))
    );
    // A stop ends the wait; a start resumes it.
    assert_eq!(sup.stop(&id).await.unwrap().state, RunState::Stopped);
    assert_eq!(sup.get(&id).await.unwrap().last_error, None);
    sup.start(&id).await.unwrap();
    assert_eq!(
        sup.get(&id).await.unwrap().state,
        RunState::WaitingForInterface
    );
    assert_eq!(worker.read("args"), before);
    assert!(ip(&[
        "-n", &ns.0, "link", "add", "late0", "type", "veth", "peer", "name", "late1"
    ]));
    running(&sup, &id).await;
    sup.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_every_worker_at_once() {
    let worker = FakeWorker::new("trap '' TERM\nwhile true; do sleep 0.05; done");
    let sup = supervisor(worker.program.clone(), fast_backoff());
    // Three reflectors whose interface exists: lo here and in two namespaces.
    common::require_root();
    let tag = std::process::id() % 100_000;
    let spaces = [
        Netns::new(&format!("rfls{tag}a")),
        Netns::new(&format!("rfls{tag}b")),
    ];
    sup.add(settings("lo"), false).await.unwrap();
    for ns in &spaces {
        let in_ns = ReflectorSettings {
            netns: Some(ns.0.clone()),
            ..settings("lo")
        };
        sup.add(in_ns, false).await.unwrap();
    }
    let pids = eventually(
        "three running workers",
        Duration::from_secs(10),
        async || {
            let views = sup.list().await;
            let running = views.iter().all(|v| v.state == RunState::Running);
            running.then(|| {
                views
                    .iter()
                    .map(|v| v.pid.unwrap() as i32)
                    .collect::<Vec<_>>()
            })
        },
    )
    .await;
    let begun = std::time::Instant::now();
    sup.shutdown().await;
    // Each ignores SIGTERM for its 0.5 s grace period; one after the other would take 1.5 s.
    assert!(
        begun.elapsed() < Duration::from_millis(1200),
        "{:?}",
        begun.elapsed()
    );
    assert!(pids.iter().all(|pid| !alive(*pid)));
    assert!(sup.list().await.is_empty());
}

#[tokio::test]
async fn telemetry_is_kept_per_worker_run_and_outlives_a_stop() {
    // First run: stats with telemetry until SIGTERM, then a final line whose
    // telemetry lists a single stream. Later runs report nothing.
    let mut last = telemetry();
    last.streams.truncate(1);
    last.streams[0].frames = 1234;
    let body = format!(
        "if [ -e \"$D/ran\" ]; then while true; do sleep 0.05; done; fi\ntouch \"$D/ran\"\ntrap 'cat \"$D/final.jsonl\"; exit 0' TERM\nwhile true; do echo '{}'; sleep 0.1; done",
        stats_line_with(5, telemetry())
    );
    let worker = FakeWorker::new(&body);
    std::fs::write(worker.path("final.jsonl"), final_line_with(6, last) + "\n").unwrap();
    let sup = supervisor(worker.program.clone(), fast_backoff());
    sup.add(settings("lo"), false).await.unwrap();
    let stats = eventually("telemetry", Duration::from_secs(10), async || {
        sup.stats("lo")
            .await
            .ok()
            .filter(|s| s.telemetry.streams == 3)
    })
    .await;
    assert_eq!(
        (stats.telemetry.dwell_ns.p50, stats.telemetry.dwell_ns.p99),
        (1_500, 9_000)
    );
    assert_eq!(stats.telemetry.untracked_frames, 5);
    let streams = sup.streams("lo", 2).await.unwrap();
    assert_eq!((streams.total, streams.streams.len()), (3, 2));
    assert_eq!(streams.streams[0].frames, 900);

    sup.stop("lo").await.unwrap();
    let streams = sup.streams("lo", 100).await.unwrap();
    assert_eq!(
        streams.total, 1,
        "the final line's telemetry is the one kept"
    );
    assert_eq!(streams.streams[0].frames, 1234);
    assert_eq!(sup.stats("lo").await.unwrap().totals.received, 6);

    // A new worker run starts without the old run's telemetry.
    sup.start("lo").await.unwrap();
    eventually("the second run", Duration::from_secs(10), async || {
        (worker.read("args").lines().count() == 2).then_some(())
    })
    .await;
    let stats = sup.stats("lo").await.unwrap();
    assert_eq!(
        (stats.telemetry.streams, stats.telemetry.dwell_ns.count),
        (0, 0)
    );
    assert_eq!(sup.streams("lo", 100).await.unwrap().total, 0);
    assert_eq!(
        sup.streams("eth9", 1).await.unwrap_err(),
        SupervisorError::UnknownId("eth9".into())
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn the_loop_timeout_flag_is_announced_and_a_restart_gets_only_the_time_left() {
    let mut expired = telemetry();
    expired.loop_timed_out = true;
    // Each run reports its timeout as passed, then crashes after 0.3 s.
    let worker = FakeWorker::new(&format!(
        "echo '{}'\nsleep 0.3\nexit 1",
        stats_line_with(3, expired)
    ));
    let sup = supervisor(worker.program.clone(), fast_backoff());
    let mut notices = sup.bus().subscribe();
    let view = sup
        .add(
            ReflectorSettings {
                worker: Settings {
                    loop_timeout: Some(Duration::from_secs(100)),
                    ..Settings::default()
                },
                ..settings("lo")
            },
            false,
        )
        .await
        .unwrap();
    let left = view.loop_timeout_remaining_s.unwrap();
    assert!(left > 99.0 && left <= 100.0, "{left}");
    // The change of the flag is a state change, announced as one.
    let announced = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Notice::State(view)) = notices.recv().await {
                if view.loop_timed_out {
                    return view;
                }
            }
        }
    })
    .await
    .expect("a state event with loop_timed_out");
    assert_eq!(announced.id, "lo");
    eventually("three runs", Duration::from_secs(20), async || {
        (worker.read("args").lines().count() >= 3).then_some(())
    })
    .await;
    sup.stop("lo").await.unwrap();
    let timeouts: Vec<f64> = worker
        .read("args")
        .lines()
        .map(|line| {
            let (_, rest) = line.split_once("--loop-timeout ").expect(line);
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(timeouts[0] > 99.0 && timeouts[0] <= 100.0, "{timeouts:?}");
    for pair in timeouts.windows(2) {
        // Each run lived 0.3 s and backed off at least 0.1 s: that time is gone.
        assert!(pair[1] <= pair[0] - 0.35, "{timeouts:?}");
    }
    let stopped = sup.get("lo").await.unwrap();
    assert_eq!(stopped.loop_timeout_remaining_s, None);
    sup.shutdown().await;
}

#[tokio::test]
async fn a_session_timeout_that_ran_out_restarts_workers_already_timed_out() {
    // A session of 1 s whose worker crashes at once: restarts after the second
    // are told that no time is left.
    let worker = FakeWorker::new("sleep 0.2\nexit 1");
    let sup = supervisor(worker.program.clone(), fast_backoff());
    sup.add(
        ReflectorSettings {
            autostart: false,
            ..settings("lo")
        },
        false,
    )
    .await
    .unwrap();
    sup.start_session("lo", Some(1)).await.unwrap();
    assert_eq!(
        sup.start_session("lo", Some(5)).await.unwrap_err(),
        SupervisorError::AlreadyStarted("lo".into())
    );
    eventually(
        "a run after the timeout",
        Duration::from_secs(20),
        async || {
            worker
                .read("args")
                .contains("--loop-timeout 0.000")
                .then_some(())
        },
    )
    .await;
    // Another timeout is refused while the session goes on, also during back-off.
    eventually("back-off", Duration::from_secs(10), async || {
        sup.get("lo")
            .await
            .ok()
            .filter(|v| v.state == RunState::Backoff)
    })
    .await;
    assert_eq!(
        sup.start_session("lo", Some(5)).await.unwrap_err(),
        SupervisorError::AlreadyStarted("lo".into())
    );
    let runs = worker.read("args").lines().count();
    eventually(
        "the back-off to go on",
        Duration::from_secs(10),
        async || (worker.read("args").lines().count() > runs).then_some(()),
    )
    .await;
    let view = sup.get("lo").await.unwrap();
    assert_eq!(view.loop_timeout_remaining_s, Some(0.0));
    assert_eq!(
        view.settings.worker.loop_timeout, None,
        "a session leaves the settings alone"
    );
    sup.shutdown().await;
}
