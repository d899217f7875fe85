//! The `reflector-control` program itself: config file, SIGHUP reload, and workers
//! dying with a control plane that was killed outright.

mod common;

use common::{alive, eventually, ControlProcess, FakeWorker};
use std::time::Duration;

#[tokio::test]
async fn sighup_reloads_and_workers_die_with_a_killed_control_plane() {
    // As the real worker does (parent_death.rs checks it), the stand-in lives only
    // as long as the control plane whose pid it is given.
    let worker = FakeWorker::new(
        "while [ \"$(cut -d' ' -f4 /proc/$$/stat)\" = \"$REFLECTOR_PARENT_PID\" ]; do sleep 0.05; done",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("control.toml");
    let write_config = |mode: &str| {
        let text = format!(
            "reflector = \"{}\"\n[defaults]\nno_vlan = true\n[interfaces.lo]\nmode = \"{mode}\"\n",
            worker.program.display()
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config("mac");
    let control = ControlProcess::spawn(&["--config", config.to_str().unwrap()], dir.path()).await;
    let list = control.get("/api/v1/reflectors").await;
    assert_eq!(list[0]["id"], "lo");
    assert_eq!(list[0]["settings"]["no_vlan"], true);
    eventually("the first worker", Duration::from_secs(10), async || {
        (worker.read("args").lines().count() == 1).then_some(())
    })
    .await;
    assert!(worker.read("args").contains("--mode mac"));

    write_config("mac-ip");
    control.signal(libc::SIGHUP);
    eventually(
        "the reconfigured worker",
        Duration::from_secs(10),
        async || {
            worker
                .read("args")
                .lines()
                .nth(1)
                .filter(|l| l.contains("--mode mac-ip"))
                .map(|_| ())
        },
    )
    .await;
    let pid = eventually("its pid", Duration::from_secs(10), async || {
        let view = control.get("/api/v1/reflectors/lo").await;
        view["pid"].as_i64().filter(|p| *p as i32 == worker.pid())
    })
    .await as i32;
    assert!(alive(pid));

    // SIGKILL: the control plane gets no chance to stop its workers; they must go
    // on their own.
    control.signal(libc::SIGKILL);
    eventually(
        "the orphaned worker to die",
        Duration::from_secs(5),
        async || (!alive(pid)).then_some(()),
    )
    .await;
    // Its log went to a file: plain text, no terminal colours.
    let log = std::fs::read_to_string(dir.path().join("control.log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "ANSI escapes in a log file:\n{log:?}"
    );
}

/// Run the program to completion, which must be quick and unsuccessful; its stderr.
fn fails_at_once(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = std::process::Command::new(common::control_binary())
        .args(args)
        .arg("--state-dir")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    stderr
}

#[test]
fn the_demo_on_a_missing_interface_fails_at_once_and_lists_the_real_ones() {
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let stderr = fails_at_once(&["demo", "nosuch9", "--listen", &listen]);
    assert!(
        stderr.contains("no interface named \"nosuch9\"; this machine has ")
            && stderr.contains("lo")
            && stderr.contains("`reflector-control demo` builds a virtual lab"),
        "{stderr}"
    );
}

#[test]
fn a_busy_port_fails_before_the_lab_is_built_and_suggests_listen() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let lab = format!("rflbusy{}", std::process::id() % 10_000);
    let stderr = fails_at_once(&["demo", "--lab", &lab, "--listen", &addr.to_string()]);
    let next = format!("127.0.0.1:{}", addr.port() + 1);
    assert!(
        stderr.contains(&format!("{addr} is already in use"))
            && stderr.contains(&format!("--listen {next}")),
        "{stderr}"
    );
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains(&lab),
        "the lab was built before the port was checked"
    );
}

#[test]
fn a_bad_config_file_is_refused_at_startup_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("control.toml");
    std::fs::write(&config, "[interfaces.eth0]\nmode = \"sideways\"\n").unwrap();
    let output = std::process::Command::new(common::control_binary())
        .args(["--config", config.to_str().unwrap(), "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("interfaces.eth0: unknown variant `sideways`"),
        "{stderr}"
    );
    // A truncated file would start nothing without a word: refused at start as well.
    std::fs::write(&config, "").unwrap();
    let stderr = fails_at_once(&["--config", config.to_str().unwrap()]);
    assert!(
        stderr.contains("the file is empty (truncated?)") && stderr.contains("interfaces = {}"),
        "{stderr}"
    );
}
