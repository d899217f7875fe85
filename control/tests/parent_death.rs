//! Root-only: the real reflector dies with a control plane that was killed outright,
//! and its XDP program goes with it. Fails (never skips) where it cannot build the lab.

mod common;

use common::{alive, eventually, real_reflector, require_root, ControlProcess};
use control::lab::Lab;
use netlab::End;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::Command;
use std::time::Duration;

/// Whether an XDP program is attached to this end of the lab.
fn xdp_attached(end: &End) -> bool {
    let details = Command::new("ip")
        .args(["-n", &end.netns, "-d", "link", "show", &end.interface])
        .output()
        .unwrap();
    // A vanished interface would pass for one without a program.
    assert!(details.status.success(), "{end:?} is gone");
    String::from_utf8_lossy(&details.stdout).contains("prog/xdp")
}

/// SIGKILLs a worker that outlived its control plane, when the test fails because of
/// it, so the failure leaves no stray process behind.
struct KillOnFailure(i32);

impl Drop for KillOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

#[tokio::test]
async fn a_killed_control_plane_leaves_no_worker_and_no_xdp_program() {
    require_root();
    let lab = Lab::unique("rfl-pd").unwrap();
    let (netns, interface) = (&lab.reflector.netns, &lab.reflector.interface);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("control.toml");
    let text = format!(
        "reflector = \"{}\"\n[interfaces.{interface}]\nnetns = \"{netns}\"\n",
        real_reflector().display()
    );
    std::fs::write(&config, text).unwrap();
    let control = ControlProcess::spawn(&["--config", config.to_str().unwrap()], dir.path()).await;
    let path = format!("/api/v1/reflectors/{netns}:{interface}");
    let pid = eventually("the worker to run", Duration::from_secs(30), async || {
        let view = control.get(&path).await;
        view["pid"].as_i64().filter(|_| view["state"] == "running")
    })
    .await as i32;
    let _cleanup = KillOnFailure(pid);
    assert!(
        xdp_attached(&lab.reflector),
        "no XDP program while the worker runs"
    );

    // Hold the worker's stdout and stderr open past the control plane's death, or its
    // next stats line fails (EPIPE) and ends it whether the parent-death signal works
    // or not.
    let _pipes = [1, 2].map(|fd| std::fs::File::open(format!("/proc/{pid}/fd/{fd}")).unwrap());

    // SIGKILL: the control plane gets no chance to stop its worker; the parent-death
    // signal the worker asked the kernel for must.
    control.signal(libc::SIGKILL);
    let gone = async || (!alive(pid) && !xdp_attached(&lab.reflector)).then_some(());
    eventually(
        "the orphaned worker and its XDP program to be gone",
        Duration::from_secs(5),
        gone,
    )
    .await;
}
