//! The terminal dashboards (`--tui`) for real: the binary runs in a tmux pane of a
//! fixed size in the lab, the probe sends through it, and the test reads the screen
//! (capture-pane) and types (send-keys) as a person would. The numbers on screen must
//! move while frames flow and agree with the totals printed after quitting.
//!
//! tmux must be installed (scripts/setup.sh does): without it these tests fail.

use netlab::End;
use reflector_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of this test's own (its own socket), with one session running one
/// command in a `WIDTH` x `HEIGHT` pane that stays after the command exits, so what it
/// printed last and its exit status can still be read. Killed on drop.
struct Pane {
    socket: String,
}

const WIDTH: &str = "160";
/// What the pane's shell prints before the command's exit status (and a `]`).
const EXIT_STATUS: &str = "[exit status ";
const HEIGHT: &str = "50";

impl Pane {
    /// `reflector ARGS` in the namespace of `end`.
    fn reflector(name: &str, end: &End, args: &[&str]) -> Pane {
        let binary = reflector_binary();
        let mut command = vec!["ip", "netns", "exec", &end.netns, binary.to_str().unwrap()];
        command.extend(args);
        Pane::start(name, &command)
    }

    fn start(name: &str, command: &[&str]) -> Pane {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|v| v.status.success()),
            "tmux is missing: run scripts/setup.sh (it installs tmux, which the dashboard tests drive)"
        );
        let pane = Pane {
            socket: format!("reflector-{name}-{}", std::process::id()),
        };
        // A shell runs the command and prints its exit status: tmux 3.3 does not always
        // reap a pane's process (its `pane_dead_status` then stays empty).
        let quoted: Vec<String> = command.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("{}; echo \"{EXIT_STATUS}$?]\"", quoted.join(" "));
        let mut cmd = pane.tmux();
        cmd.args(["new-session", "-d", "-s", "t", "-x", WIDTH, "-y", HEIGHT])
            .args(["sh", "-c", &script])
            .args([";", "set-option", "-t", "t", "remain-on-exit", "on"]);
        must(&mut cmd);
        pane
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // No user configuration; the dashboard needs nothing but a terminal.
        cmd.args(["-f", "/dev/null", "-L", &self.socket])
            .env("TERM", "xterm-256color");
        cmd
    }

    /// The visible screen.
    fn screen(&self) -> String {
        let out = must(self.tmux().args(["capture-pane", "-p", "-t", "t"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen and everything that scrolled off it (the normal screen, once the
    /// dashboard has left the alternate one).
    fn everything(&self) -> String {
        let out = must(
            self.tmux()
                .args(["capture-pane", "-p", "-t", "t", "-S", "-"]),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn resize(&self, width: &str, height: &str) {
        must(
            self.tmux()
                .args(["resize-window", "-t", "t", "-x", width, "-y", height]),
        );
    }

    fn keys(&self, keys: &str) {
        must(self.tmux().args(["send-keys", "-t", "t", keys]));
    }

    /// Resize the pane and type `keys` in one tmux call, so the key arrives right
    /// behind the resize's SIGWINCH.
    fn resize_and_keys(&self, width: &str, height: &str, keys: &str) {
        must(
            self.tmux()
                .args(["resize-window", "-t", "t", "-x", width, "-y", height])
                .args([";", "send-keys", "-t", "t", keys]),
        );
    }

    /// The command's exit status and everything on the pane, once it has exited.
    fn exit_status(&self) -> Option<(i32, String)> {
        let out = must(
            self.tmux()
                .args(["display-message", "-p", "-t", "t", "#{pane_dead}"]),
        );
        if String::from_utf8_lossy(&out.stdout).trim() != "1" {
            return None;
        }
        let printed = self.everything();
        let status = printed
            .split(EXIT_STATUS)
            .nth(1)?
            .split(']')
            .next()?
            .parse()
            .ok()?;
        Some((status, printed))
    }

    /// Wait up to `timeout` for the screen to satisfy `ready`; the screen then.
    fn wait_for(&self, what: &str, timeout: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; the screen:\n{screen}\neverything:\n{}",
                self.everything()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the command to exit; its status and everything it left on the pane.
    fn wait_exit(&self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exited) = self.exit_status() {
                return exited;
            }
            if Instant::now() >= deadline {
                // Every thread, with where it sleeps (a worker stuck in the kernel, or
                // the dashboard's thread still waiting for keys).
                let processes = Command::new("ps")
                    .args(["-eLo", "pid,tid,stat,wchan:32,comm,args"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let ours: Vec<&str> = processes
                    .lines()
                    .filter(|l| l.contains("reflector"))
                    .collect();
                panic!(
                    "still running {timeout:?} after quitting:\n{}\nprocesses:\n{}",
                    self.screen(),
                    ours.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// The number after the first occurrence of the word `name` in `text` (as in
/// "reflected 1200" or "  reflected          1200  (72000 bytes)").
fn number_after(text: &str, name: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == name)?;
    words.next()?.parse().ok()
}

/// The values a count took on screen, sampled while frames flowed: at least two
/// distinct ones between 0 and `end`, never going down.
fn assert_climbed(seen: &[u64], end: u64, name: &str) {
    let mut between: Vec<u64> = seen
        .iter()
        .copied()
        .filter(|n| *n > 0 && *n < end)
        .collect();
    between.dedup();
    assert!(
        between.len() >= 2 && seen.windows(2).all(|w| w[0] <= w[1]),
        "the {name} count on screen did not climb while frames flowed: {seen:?}"
    );
}

/// `reflector IFACE --tui` while the probe sends 2000 frames a second for 4 seconds:
/// the on-screen totals climb, settle at what the probe got back, the keys work, and
/// `q` prints the same totals on the normal screen.
#[test]
fn the_reflector_dashboard_follows_the_traffic_and_quits_with_the_totals() {
    let rig = Rig::new("tui");
    let end = &rig.lab.reflector;
    let pane = Pane::reflector("reflector", end, &[&end.interface, "--tui"]);
    let started = pane.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("streams:") && s.contains("refusals")
    });
    assert!(
        started.contains(&format!("reflecting on {}", end.interface)),
        "the platform line:\n{started}"
    );

    let mut seen = Vec::new();
    let report = std::thread::scope(|scope| {
        let probe =
            scope.spawn(|| rig.probe(&["--rate", "2000", "--duration", "4", "--wait", "0.5"]));
        while !probe.is_finished() {
            if let Some(n) = number_after(&pane.screen(), "reflected") {
                seen.push(n);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        probe.join().expect("the probe thread")
    });
    // Exact counts need no loss, which a loaded machine may not give: the test is
    // that the screen shows what the reflector counts, whatever that is.
    assert!(report.sent == 8000 && report.received > 0, "{report:?}");
    assert_climbed(&seen, 8000, "reflected");

    // A statistics tick shows at least everything the probe got back; one more, and
    // the count stands still (nothing is sent any more).
    pane.wait_for("the final count on screen", Duration::from_secs(5), |s| {
        number_after(s, "reflected").is_some_and(|n| n >= report.received)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let settled = pane.screen();
    let shown = number_after(&settled, "reflected").expect("the reflected count");
    assert!(
        settled
            .lines()
            .any(|l| l.contains("  PROBEOT") && l.contains(&format!(" {shown} "))),
        "per-signature count:\n{settled}"
    );
    pane.keys("s");
    pane.wait_for("the loss sort", Duration::from_secs(5), |s| {
        s.contains("sorted by loss")
    });
    pane.keys("p");
    pane.wait_for("the pause", Duration::from_secs(5), |s| {
        s.contains("PAUSED")
    });
    pane.keys("p");
    pane.wait_for("the end of the pause", Duration::from_secs(5), |s| {
        !s.contains("PAUSED")
    });

    pane.resize("100", "30");
    pane.wait_for("the redraw at 100x30", Duration::from_secs(5), |s| {
        let bottom = s.lines().rfind(|l| l.starts_with('└'));
        s.lines().count() <= 30
            && bottom.is_some_and(|l| l.chars().count() == 100)
            && number_after(s, "reflected") == Some(report.received)
    });

    pane.keys("q");
    let (status, printed) = pane.wait_exit(Duration::from_secs(10));
    assert_eq!(status, 0, "{printed}");
    let totals = printed
        .split("totals after")
        .nth(1)
        .unwrap_or_else(|| panic!("no final totals after q:\n{printed}"));
    assert_eq!(number_after(totals, "reflected"), Some(shown), "{printed}");
    assert!(
        totals.contains("signature PROBEOT"),
        "per-signature totals:\n{printed}"
    );
    assert!(
        printed.contains(&format!("reflecting on {}", end.interface)),
        "the start line stays above the totals:\n{printed}"
    );
}

/// Every key counts, even one that arrives together with a resize. crossterm's own
/// input reader lost such a key (it returned the resize and forgot that the terminal
/// had input too), so a `q` typed right after resizing the window did not quit.
/// Each round a key starts a redraw, and a resize and a second key arrive meanwhile.
#[test]
fn a_key_that_comes_with_a_resize_is_not_lost() {
    let rig = Rig::new("tuik");
    let end = &rig.lab.reflector;
    let pane = Pane::reflector("keys", end, &[&end.interface, "--tui"]);
    pane.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("streams:") && s.contains("sorted by frames")
    });
    for round in 1..=12 {
        let (width, height) = if round % 2 == 1 {
            ("100", "30")
        } else {
            (WIDTH, HEIGHT)
        };
        pane.keys("s");
        pane.resize_and_keys(width, height, "p");
        let sort = if round % 2 == 1 { "loss" } else { "frames" };
        let paused = round % 2 == 1;
        pane.wait_for(
            &format!("round {round}: sorted by {sort}, paused {paused}"),
            Duration::from_secs(3),
            |s| s.contains(&format!("sorted by {sort}")) && s.contains("PAUSED") == paused,
        );
    }
    pane.keys("s");
    pane.resize_and_keys("100", "30", "q");
    let (status, printed) = pane.wait_exit(Duration::from_secs(10));
    assert_eq!(status, 0, "{printed}");
}

/// `reflector probe --tui`: the sent and received counts climb, the finished run's
/// numbers stay up, and Ctrl-C prints the usual report with the same numbers.
#[test]
fn the_probe_dashboard_counts_up_and_prints_the_report_on_ctrl_c() {
    let rig = Rig::new("tuip");
    let reflector = rig.start_reflector(&[]);
    let head = &rig.lab.head;
    let pane = Pane::reflector(
        "probe",
        head,
        &[
            "probe",
            &head.interface,
            "--to",
            REFLECTOR_MAC,
            "--rate",
            "2000",
            "--duration",
            "3",
            "--wait",
            "0.5",
            "--tui",
        ],
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let screen = pane.screen();
        if screen.contains("finished: q prints the report") {
            break screen;
        }
        if let Some(n) = number_after(&screen, "sent") {
            seen.push(n);
        }
        assert!(
            Instant::now() < deadline,
            "the probe did not finish:\n{screen}\n{}",
            pane.everything()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_climbed(&seen, 6000, "sent");
    assert_eq!(number_after(&finished, "sent"), Some(6000), "{finished}");
    let received = number_after(&finished, "received").expect("the received count");
    let lost = number_after(&finished, "lost").expect("the lost count");
    assert!(received > 0 && received + lost == 6000, "{finished}");

    pane.keys("C-c");
    let (status, printed) = pane.wait_exit(Duration::from_secs(10));
    // As without --tui: 0 only when nothing was lost.
    assert_eq!(status, if lost == 0 { 0 } else { 2 }, "{printed}");
    let report = printed
        .split("sent 6000 in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no report after Ctrl-C:\n{printed}"));
    assert!(
        report.contains(&format!("received {received}  lost {lost}  ")),
        "the printed report differs from the screen:\n{printed}"
    );
    assert!(reflector.stop().reflected >= received);
}

/// With stdout not a terminal (a pipe, a log file), `--tui` prints the usual lines.
#[test]
fn without_a_terminal_tui_prints_the_usual_lines() {
    use std::io::{BufRead, BufReader, Read};
    let rig = Rig::new("tuin");
    let mut child = rig
        .lab
        .reflector
        .exec(reflector_binary())
        .args([
            &rig.lab.reflector.interface,
            "--tui",
            "--stats-interval",
            "0.2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the reflector");
    // Read on a thread of its own: an unread pipe could fill and block the reflector.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = e.read_to_string(&mut text);
            text
        })
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut printed = String::new();
    // Up to the first statistics line (or the end, if it failed to start).
    while stdout.read_line(&mut printed).expect("read stdout") > 0 {
        if printed.lines().last().is_some_and(|l| l.starts_with('[')) {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .expect("signal the reflector");
    stdout.read_to_string(&mut printed).expect("read stdout");
    let status = child.wait().expect("wait for the reflector");
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    assert!(status.success(), "{status}:\n{printed}{stderr}");
    assert!(
        printed.starts_with(&format!("reflecting on {}", rig.lab.reflector.interface)),
        "{printed}"
    );
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with('[') && l.contains("] rx ")),
        "no statistics line:\n{printed}"
    );
    assert!(printed.contains("totals after"), "{printed}");
    assert!(
        !printed.contains('\x1b'),
        "terminal control sequences in a pipe:\n{printed}"
    );
}
