//! Reading a worker's output: stdout carries JSON event lines that update the record,
//! stderr carries log lines, the last of which says why a worker died.

use super::record::Shared;
use crate::events::Notice;
use crate::views::RunState;
use settings::events::Event;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::task::JoinHandle;

/// The output of one worker.
pub(crate) struct Output {
    /// The reflector's id, for the logs.
    id: String,
    /// None once stdout has closed.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    /// Logs stderr; ends with its last line.
    stderr: Option<JoinHandle<Option<String>>>,
}

impl Output {
    /// Take over the child's stdout and stderr.
    pub fn follow(id: String, child: &mut Child) -> Output {
        let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(follow_stderr(id.clone(), BufReader::new(s))));
        Output { id, stdout, stderr }
    }

    /// The next stdout line; pending forever once stdout has closed (the worker is
    /// exiting), so a `select!` waits for the exit instead.
    pub async fn next_line(&mut self) -> String {
        if let Some(lines) = &mut self.stdout {
            if let Ok(Some(line)) = lines.next_line().await {
                return line;
            }
            self.stdout = None;
        }
        std::future::pending().await
    }

    /// Take one stdout line into the record.
    pub(super) fn apply(&self, shared: &Shared, line: &str) {
        apply_line(shared, &self.id, line);
    }

    /// Once the worker has exited: take in what it printed last, its final totals
    /// above all, and return the last line of its stderr.
    pub(super) async fn finish(self, shared: &Shared) -> Option<String> {
        let id = self.id.clone();
        self.finish_with(|line| apply_line(shared, &id, line)).await
    }

    /// [`Output::finish`] for any child: `apply` takes each last stdout line.
    pub async fn finish_with(mut self, mut apply: impl FnMut(&str)) -> Option<String> {
        if let Some(mut lines) = self.stdout.take() {
            let drain = async {
                while let Ok(Some(line)) = lines.next_line().await {
                    apply(&line);
                }
            };
            // Bounded, in case something the worker started still holds its stdout open.
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
        match self.stderr {
            Some(task) => task.await.ok().flatten(),
            None => None,
        }
    }
}

fn apply_line(shared: &Shared, id: &str, line: &str) {
    let event = match serde_json::from_str::<Event>(line) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(reflector = %id, "ignoring unreadable worker output {line:?}: {error}");
            return;
        }
    };
    match event {
        Event::Started { platform } => shared.update(|r| {
            r.state = RunState::Running;
            r.platform = Some(platform);
            r.last_error = None;
        }),
        Event::Stats {
            rates,
            counters,
            mut telemetry,
            ..
        }
        | Event::Final {
            rates,
            counters,
            mut telemetry,
            ..
        } => {
            // Workers list streams busiest first; make sure of it, since the
            // streams endpoint and the metrics' top streams rely on the order.
            telemetry
                .streams
                .sort_by_key(|s| std::cmp::Reverse(s.frames));
            let (stats, flipped) = {
                let mut record = shared.lock();
                let flipped = record.telemetry.loop_timed_out != telemetry.loop_timed_out;
                record.current = counters;
                record.rates = rates;
                record.telemetry = telemetry;
                (record.stats(), flipped.then(|| record.view()))
            };
            if let Some(view) = flipped {
                if view.loop_timed_out {
                    tracing::info!(reflector = %id, "loop timeout reached: the worker no longer reflects");
                }
                shared.bus.publish(Notice::State(view));
            }
            shared.bus.publish(Notice::Stats(stats));
        }
    }
}

/// Log the worker's stderr and keep its last line: that is where it says why it died.
async fn follow_stderr(id: String, stderr: BufReader<ChildStderr>) -> Option<String> {
    let mut lines = stderr.lines();
    let mut last = None;
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(reflector = %id, "worker: {line}");
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    last
}

/// Why a worker died: its exit status and the last thing it said.
pub(crate) fn exit_message(
    status: std::io::Result<ExitStatus>,
    last_stderr: Option<String>,
) -> String {
    let status = match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("could not be waited for: {error}"),
    };
    match last_stderr {
        Some(line) => format!("{status}: {line}"),
        None => status,
    }
}
