//! The task behind one reflector. It owns the worker process outright: spawns it,
//! follows its output, restarts it with exponential back-off when it dies (its last
//! counters carried forward, so totals survive restarts), and acts on the registry's
//! requests, answering each once it has taken effect.

use super::interface;
use super::launcher::Launcher;
use super::output::{exit_message, Output};
use super::record::Shared;
use super::request::{answer, Order, Reply, Request, SupervisorError};
use crate::config::ReflectorSettings;
use crate::views::RunState;
use dataplane::{Counters, TelemetryReport};
use settings::events::Rates;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio::sync::mpsc;

/// Where a reflector's worker is in its life; it decides what the task waits for.
enum Phase {
    /// No worker is wanted: wait for a request.
    Stopped,
    /// A worker is wanted and none runs: spawn one now.
    Starting,
    /// A worker died or could not be spawned: spawn the next at `until`, unless a
    /// request comes first.
    BackingOff { until: tokio::time::Instant },
    /// A worker is wanted but its interface does not exist: look again at `until`
    /// (and spawn once it does), unless a request comes first.
    WaitingForInterface { until: tokio::time::Instant },
    /// A worker runs: follow its output until it exits or a request ends it.
    Running(Box<Worker>),
}

/// A worker process and its output.
struct Worker {
    child: Child,
    output: Output,
    started: Instant,
}

struct Task {
    shared: Shared,
    launcher: Arc<Launcher>,
    commands: mpsc::UnboundedReceiver<Order>,
    /// How long the next back-off lasts.
    next_delay: Duration,
    /// Requests answered once the next worker is spawned (or fails to be).
    waiting: Vec<Reply>,
}

/// Run one reflector until it is shut down or the registry is gone.
pub(super) async fn supervise(
    shared: Shared,
    launcher: Arc<Launcher>,
    commands: mpsc::UnboundedReceiver<Order>,
) {
    let mut task = Task {
        next_delay: launcher.backoff.initial,
        shared,
        launcher,
        commands,
        waiting: Vec::new(),
    };
    let mut phase = Phase::Stopped;
    while let Some(next) = task.step(phase).await {
        phase = next;
    }
}

impl Task {
    /// Wait for what the phase waits for and act on it; None ends the task.
    async fn step(&mut self, phase: Phase) -> Option<Phase> {
        match phase {
            Phase::Stopped => {
                let order = self.next_order().await;
                self.handle(Phase::Stopped, order).await
            }
            Phase::Starting => Some(self.start().await),
            Phase::BackingOff { until } => tokio::select! {
                () = tokio::time::sleep_until(until) => Some(Phase::Starting),
                order = self.next_order() => self.handle(Phase::BackingOff { until }, order).await,
            },
            Phase::WaitingForInterface { until } => tokio::select! {
                () = tokio::time::sleep_until(until) => Some(Phase::Starting),
                order = self.next_order() => {
                    self.handle(Phase::WaitingForInterface { until }, order).await
                }
            },
            Phase::Running(mut worker) => tokio::select! {
                line = worker.output.next_line() => {
                    worker.output.apply(&self.shared, &line);
                    Some(Phase::Running(worker))
                }
                status = worker.child.wait() => Some(self.died(worker, status).await),
                order = self.next_order() => self.handle(Phase::Running(worker), order).await,
            },
        }
    }

    /// The next request; a registry that is gone means shut down.
    async fn next_order(&mut self) -> Order {
        self.commands
            .recv()
            .await
            .unwrap_or_else(|| Order::unanswered(Request::Shutdown))
    }

    /// Act on a request in any phase; returns the next phase, None to end the task.
    async fn handle(&mut self, phase: Phase, order: Order) -> Option<Phase> {
        let Order { request, done } = order;
        match (phase, request) {
            (Phase::Running(worker), Request::Start(None)) => {
                answer(done, Ok(()));
                Some(Phase::Running(worker))
            }
            (Phase::Stopped, Request::Start(loop_timeout_s)) => {
                self.begin_session(loop_timeout_s);
                self.waiting.push(done);
                Some(Phase::Starting)
            }
            // A session with its own loop timeout would silently not be one.
            (phase, Request::Start(Some(_))) => {
                answer(done, Err(self.already_started()));
                Some(phase)
            }
            // Start while backing off (or waiting for the interface) means "retry now".
            (_, Request::Start(None)) => {
                self.waiting.push(done);
                Some(Phase::Starting)
            }
            (phase, Request::Stop) => {
                self.end(phase).await;
                // Before answering, so the answer shows it.
                self.mark_stopped();
                answer(done, Ok(()));
                Some(Phase::Stopped)
            }
            (Phase::Stopped, Request::Reconfigure(settings)) => {
                self.shared.update(|r| r.settings = *settings);
                answer(done, Ok(()));
                Some(Phase::Stopped)
            }
            (phase, Request::Reconfigure(settings)) => {
                self.end(phase).await;
                self.shared.update(|r| r.settings = *settings);
                self.begin_session(None);
                self.waiting.push(done);
                Some(Phase::Starting)
            }
            (phase, Request::Shutdown) => {
                self.end(phase).await;
                answer(done, Ok(()));
                None
            }
        }
    }

    /// Spawn a worker if its interface exists, else wait for the interface; then
    /// answer the requests waiting for either.
    async fn start(&mut self) -> Phase {
        let settings = self.shared.lock().settings.clone();
        let phase = if interface::exists(&settings).await {
            self.spawn()
        } else {
            self.wait_for_interface(&settings)
        };
        for done in self.waiting.drain(..) {
            answer(done, Ok(()));
        }
        phase
    }

    /// Look for the interface again shortly; the state and message change (and are
    /// announced) only on the way in, not at every look.
    fn wait_for_interface(&mut self, settings: &ReflectorSettings) -> Phase {
        if self.shared.lock().state != RunState::WaitingForInterface {
            let message = interface::missing(settings);
            tracing::warn!(reflector = %settings.id(), "{message}");
            self.shared.update(|r| {
                r.state = RunState::WaitingForInterface;
                r.last_error = Some(message);
            });
        }
        // Once it appears, the first worker is not held back by earlier failures.
        self.next_delay = self.launcher.backoff.initial;
        Phase::WaitingForInterface {
            until: tokio::time::Instant::now() + interface::POLL,
        }
    }

    /// Spawn a worker.
    fn spawn(&mut self) -> Phase {
        let (settings, loop_timeout) = {
            let record = self.shared.lock();
            let left = record
                .loop_deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            (record.settings.clone(), left)
        };
        match self.launcher.spawn(&settings, loop_timeout) {
            Ok(mut child) => {
                self.shared.update(|r| {
                    r.state = RunState::Starting;
                    r.pid = child.id();
                    r.started = Some(Instant::now());
                    r.platform = None;
                    // Telemetry is per worker run; the previous run's is gone with it.
                    r.telemetry = TelemetryReport::default();
                });
                let output = Output::follow(settings.id(), &mut child);
                Phase::Running(Box::new(Worker {
                    child,
                    output,
                    started: Instant::now(),
                }))
            }
            Err(error) => {
                let program = self.launcher.program.display();
                let message = format!("cannot start {program}: {error}");
                tracing::warn!(reflector = %settings.id(), "{message}");
                self.shared.update(|r| r.last_error = Some(message));
                self.back_off()
            }
        }
    }

    /// The worker exited on its own: record why, and restart it after a back-off.
    async fn died(&mut self, worker: Box<Worker>, status: std::io::Result<ExitStatus>) -> Phase {
        let ran = worker.started.elapsed();
        let last_stderr = worker.output.finish(&self.shared).await;
        let message = exit_message(status, last_stderr);
        let id = self.shared.lock().settings.id();
        tracing::warn!(reflector = %id, "worker died: {message}");
        self.shared.update(|r| r.last_error = Some(message));
        self.wind_up();
        let policy = self.launcher.backoff;
        if ran >= policy.healthy_after {
            self.next_delay = policy.initial;
        }
        self.shared.update(|r| r.restarts += 1);
        self.back_off()
    }

    /// End the phase's worker, if it has one: SIGTERM, then SIGKILL after the grace.
    async fn end(&mut self, phase: Phase) {
        if let Phase::Running(mut worker) = phase {
            let _ = self.launcher.terminate(&mut worker.child).await;
            worker.output.finish(&self.shared).await;
            self.wind_up();
        }
    }

    /// Carry the ended worker's totals forward, and tell live clients its rates
    /// dropped to zero, with the final totals.
    fn wind_up(&self) {
        self.shared.update(|r| {
            r.carried.accumulate(&r.current);
            r.current = Counters::default();
            r.rates = Rates::default();
            r.pid = None;
            r.started = None;
        });
        self.shared.publish_stats();
    }

    /// Wait before the next spawn, each time twice as long, up to the maximum.
    fn back_off(&mut self) -> Phase {
        self.shared.update(|r| r.state = RunState::Backoff);
        let until = tokio::time::Instant::now() + self.next_delay;
        self.next_delay = (self.next_delay * 2).min(self.launcher.backoff.max);
        Phase::BackingOff { until }
    }

    /// Start timing a session: its loop timeout (`loop_timeout_s`, else the
    /// settings') counts from now, across any restarts. Back-off starts afresh.
    fn begin_session(&mut self, loop_timeout_s: Option<u64>) {
        self.next_delay = self.launcher.backoff.initial;
        self.shared.update(|r| {
            let timeout = loop_timeout_s
                .map(Duration::from_secs)
                .or(r.settings.worker.loop_timeout);
            r.loop_deadline = timeout.map(|t| Instant::now() + t);
        });
    }

    /// The state of a reflector without a worker; announced only if it changed.
    fn mark_stopped(&self) {
        let changed = {
            let r = self.shared.lock();
            r.state != RunState::Stopped || r.loop_deadline.is_some()
        };
        if changed {
            self.shared.update(|r| {
                // "Starts when it appears" no longer holds for a stopped reflector.
                if r.state == RunState::WaitingForInterface {
                    r.last_error = None;
                }
                r.state = RunState::Stopped;
                r.loop_deadline = None;
            });
        }
    }

    fn already_started(&self) -> SupervisorError {
        SupervisorError::AlreadyStarted(self.shared.lock().settings.id())
    }
}
