//! One probe's task: owns its `reflector probe` child, takes each JSON report line into
//! the record and announces it, and acts on start/stop requests.

use super::form::ProbeSettings;
use super::view::{summary, ProbeState, ProbeView};
use crate::events::{Bus, Notice};
use crate::supervisor::{exit_message, Launcher, Output};
use settings::events::ProbeReport;
use std::sync::{Arc, Mutex};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

pub(super) enum Request {
    Start,
    Stop,
}

#[derive(Debug)]
pub(super) struct Record {
    id: String,
    settings: ProbeSettings,
    state: ProbeState,
    pid: Option<u32>,
    runs: u64,
    report: Option<ProbeReport>,
    last_error: Option<String>,
}

impl Record {
    pub fn new(id: String, settings: ProbeSettings) -> Self {
        Record {
            id,
            settings,
            state: ProbeState::Stopped,
            pid: None,
            runs: 0,
            report: None,
            last_error: None,
        }
    }
}

pub(super) fn view(record: &Mutex<Record>) -> ProbeView {
    let r = record.lock().unwrap_or_else(|e| e.into_inner());
    ProbeView {
        id: r.id.clone(),
        state: r.state,
        settings: r.settings.clone(),
        pid: r.pid,
        runs: r.runs,
        report: r.report.clone(),
        last_error: r.last_error.clone(),
        summary: summary(r.report.as_ref()),
    }
}

struct Task {
    record: Arc<Mutex<Record>>,
    launcher: Arc<Launcher>,
    bus: Bus,
}

impl Task {
    fn update(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()));
        self.bus
            .publish(Notice::Probe(Box::new(view(&self.record))));
    }

    /// A report line: the run so far (or its end).
    fn apply(&self, line: &str) {
        match serde_json::from_str::<ProbeReport>(line) {
            Ok(report) => self.update(|r| r.report = Some(report)),
            Err(error) => {
                let id = &self.record.lock().unwrap_or_else(|e| e.into_inner()).id;
                tracing::warn!(probe = %id, "ignoring unreadable probe output {line:?}: {error}");
            }
        }
    }

    fn spawn(&self) -> Option<(Child, Output)> {
        let (id, settings) = {
            let r = self.record.lock().unwrap_or_else(|e| e.into_inner());
            (r.id.clone(), r.settings.clone())
        };
        match self
            .launcher
            .spawn_args(settings.netns.as_deref(), settings.args())
        {
            Ok(mut child) => {
                self.update(|r| {
                    r.state = ProbeState::Running;
                    r.pid = child.id();
                    r.runs += 1;
                    r.report = None;
                    r.last_error = None;
                });
                let output = Output::follow(id, &mut child);
                Some((child, output))
            }
            Err(error) => {
                let program = self.launcher.program.display();
                self.update(|r| {
                    r.state = ProbeState::Failed;
                    r.last_error = Some(format!("cannot start {program}: {error}"));
                });
                None
            }
        }
    }

    /// The child has exited (on its own, or after `stop`): its last reports, and why.
    async fn ended(
        &self,
        output: Output,
        status: std::io::Result<std::process::ExitStatus>,
        stopped: bool,
    ) {
        let last_stderr = output.finish_with(|line| self.apply(line)).await;
        // 2 is the probe's "measured, and frames were lost or mangled": a verdict.
        let measured = matches!(&status, Ok(s) if s.success() || s.code() == Some(2));
        let message = exit_message(status, last_stderr);
        self.update(|r| {
            r.pid = None;
            (r.state, r.last_error) = match (stopped, measured) {
                (true, _) => (ProbeState::Stopped, None),
                (false, true) => (ProbeState::Finished, None),
                (false, false) => (ProbeState::Failed, Some(message)),
            };
        });
    }
}

pub(super) async fn run(
    record: Arc<Mutex<Record>>,
    launcher: Arc<Launcher>,
    bus: Bus,
    mut requests: mpsc::UnboundedReceiver<(Request, oneshot::Sender<()>)>,
) {
    let task = Task {
        record,
        launcher,
        bus,
    };
    let mut running: Option<(Child, Output)> = None;
    loop {
        match running.take() {
            None => {
                let Some((request, done)) = requests.recv().await else {
                    return;
                };
                if let Request::Start = request {
                    running = task.spawn();
                }
                let _ = done.send(());
            }
            Some((mut child, mut output)) => tokio::select! {
                line = output.next_line() => {
                    task.apply(&line);
                    running = Some((child, output));
                }
                status = child.wait() => task.ended(output, status, false).await,
                request = requests.recv() => match request {
                    Some((Request::Start, done)) => {
                        running = Some((child, output));
                        let _ = done.send(());
                    }
                    Some((Request::Stop, done)) => {
                        let status = task.launcher.terminate(&mut child).await;
                        task.ended(output, status, true).await;
                        let _ = done.send(());
                    }
                    None => {
                        let _ = task.launcher.terminate(&mut child).await;
                        return;
                    }
                },
            },
        }
    }
}
