//! Starting and stopping worker processes: the command line, the spawn, and SIGTERM
//! followed by SIGKILL.

use crate::config::ReflectorSettings;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// Tells a worker the pid of the control plane that started it (see
/// [`settings::PARENT_PID_ENV`]). The kernel follows the death of the forking *thread*;
/// tokio spawns from its runtime threads, which live as long as the control plane does.
pub use settings::PARENT_PID_ENV;

/// Restart timing: `initial` doubling to `max`, back to `initial` once a worker has
/// stayed up for `healthy_after`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub healthy_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// How workers are started and stopped.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The reflector binary.
    pub program: PathBuf,
    /// Time a worker gets between SIGTERM and SIGKILL, to print its final totals.
    pub grace: Duration,
    pub backoff: Backoff,
}

impl Launcher {
    pub fn new(program: PathBuf) -> Self {
        Launcher {
            program,
            grace: Duration::from_secs(3),
            backoff: Backoff::default(),
        }
    }

    /// Start a worker with its stdout and stderr piped to us; `loop_timeout` is what
    /// is left of the session's.
    pub(super) fn spawn(
        &self,
        settings: &ReflectorSettings,
        loop_timeout: Option<Duration>,
    ) -> std::io::Result<Child> {
        self.spawn_args(
            settings.netns.as_deref(),
            settings.worker_args_with_loop_timeout(loop_timeout),
        )
    }

    /// Start the binary with `args`, in network namespace `netns` if given, its
    /// stdout and stderr piped to us (reflectors, and probes: `reflector probe ...`).
    pub(crate) fn spawn_args<I, S>(&self, netns: Option<&str>, args: I) -> std::io::Result<Child>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = match netns {
            // `ip netns exec` enters the namespace and then execs the worker, so the
            // pid we hold is the worker's own, signals reach it directly, and its
            // parent is still us.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(args)
            .env(PARENT_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: Ctrl-C on the terminal reaches the control plane
            // only, which stops probes first (for their verdict), then the workers.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    }

    /// SIGTERM, then SIGKILL once the grace period is over.
    pub(crate) async fn terminate(&self, child: &mut Child) -> std::io::Result<ExitStatus> {
        // `id()` is None once the child is reaped, so the pid cannot have been reused.
        if let Some(pid) = child.id() {
            // Failing means it has exited already; the wait below reaps it.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(self.grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                child.start_kill()?;
                child.wait().await
            }
        }
    }
}
