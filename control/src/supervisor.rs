//! Worker supervision: one child process per interface, each watched by its own task.
//!
//! A task owns its child outright; everyone else talks to it through a command channel
//! and reads a shared snapshot. A worker that dies is restarted with exponential
//! back-off, and its last counters are carried forward so totals survive restarts. No
//! worker failure can reach the control plane itself: the worst a child can do is exit.

use crate::config::ReflectorSettings;
use crate::events::{Bus, Notice};
use dataplane::histogram::Percentiles;
use dataplane::stats::CountersReport;
use dataplane::streams::StreamReport;
use dataplane::{Counters, TelemetryReport};
use reflector::report::{Event, PlatformInfo, Rates};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupervisorError {
    #[error("no reflector with id {0:?}")]
    UnknownId(String),
    #[error("interface {interface} is already supervised as reflector {id:?}")]
    Duplicate { interface: String, id: String },
    #[error("reflector {0:?} was removed while the request was in flight")]
    Gone(String),
    #[error("reflector {0:?} is already started; stop it first to start a session with a new loop timeout")]
    AlreadyStarted(String),
}

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

    /// The worker's command line; `loop_timeout` is what is left of the session's.
    fn command(&self, settings: &ReflectorSettings, loop_timeout: Option<Duration>) -> Command {
        let mut command = match &settings.netns {
            // `ip netns exec` enters the namespace and then execs the worker, so the
            // pid we hold is the worker's own and signals reach it directly.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(settings.worker_args_with_loop_timeout(loop_timeout))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        command
    }
}

/// Ask the kernel to SIGTERM the worker when the control plane dies, so a crashed or
/// SIGKILLed control plane never leaves XDP programs attached by orphans. The signal
/// follows the death of the forking *thread*; tokio spawns from runtime worker threads,
/// which live as long as the control plane does.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: prctl, getppid and _exit are async-signal-safe, which is all pre_exec needs.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Stopped,
    /// Spawned, not yet reported that it runs.
    Starting,
    Running,
    /// Waiting to restart a worker that died or failed to start.
    Backoff,
}

/// What a reflector looks like from outside.
#[derive(Clone, Debug, Serialize)]
pub struct ReflectorView {
    pub id: String,
    pub state: RunState,
    pub settings: ReflectorSettings,
    pub pid: Option<u32>,
    /// Times the worker died and was restarted.
    pub restarts: u64,
    /// What the running worker got from the platform (driver mode, zero-copy...).
    pub platform: Option<PlatformInfo>,
    pub uptime_s: Option<f64>,
    pub last_error: Option<String>,
    /// The worker reported that its loop timeout has passed: it runs but no longer
    /// reflects (frames are dropped and counted as `loop_timeout`). Stays set after
    /// the worker stops, until the next worker starts.
    pub loop_timed_out: bool,
    /// Seconds left until the session's loop timeout (0 once it has passed); null
    /// without a loop timeout or when stopped.
    pub loop_timeout_remaining_s: Option<f64>,
}

/// What the latest worker reported besides its counters (per worker run: a restart
/// starts afresh). The streams themselves are served by `streams`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TelemetrySummary {
    /// Dwell time (frame received to handed to the transmitter), nanoseconds.
    pub dwell_ns: Percentiles,
    /// Streams tracked.
    pub streams: usize,
    /// Frames of streams the full stream tables could not track.
    pub untracked_frames: u64,
    /// Frames whose receive time the platform stamped at arrival (XDP, BPF header).
    pub platform_stamped_frames: u64,
    pub loop_timed_out: bool,
}

impl From<&TelemetryReport> for TelemetrySummary {
    fn from(t: &TelemetryReport) -> Self {
        TelemetrySummary {
            dwell_ns: t.dwell_ns,
            streams: t.streams.len(),
            untracked_frames: t.untracked_frames,
            platform_stamped_frames: t.platform_stamped_frames,
            loop_timed_out: t.loop_timed_out,
        }
    }
}

/// The streams of one reflector's latest worker, busiest first.
#[derive(Clone, Debug, Serialize)]
pub struct StreamsView {
    pub id: String,
    /// Streams tracked, including any left out by the limit.
    pub total: usize,
    pub untracked_frames: u64,
    pub streams: Vec<StreamReport>,
}

/// Statistics of one reflector, cumulative over every worker it has run.
#[derive(Clone, Debug, Serialize)]
pub struct StatsView {
    pub id: String,
    pub state: RunState,
    pub restarts: u64,
    pub platform: Option<PlatformInfo>,
    /// Rates of the last interval (zero when no worker runs).
    pub rates: Rates,
    pub totals: CountersReport,
    /// Of the latest worker run.
    pub telemetry: TelemetrySummary,
}

/// The shared record of one reflector.
#[derive(Debug)]
struct Record {
    settings: ReflectorSettings,
    state: RunState,
    pid: Option<u32>,
    restarts: u64,
    platform: Option<PlatformInfo>,
    started: Option<Instant>,
    last_error: Option<String>,
    /// Totals of the workers that have ended.
    carried: Counters,
    /// Latest totals of the running worker.
    current: Counters,
    rates: Rates,
    /// The latest worker's telemetry; streams busiest first.
    telemetry: TelemetryReport,
    /// When the current session's loop timeout ends, if it has one.
    loop_deadline: Option<Instant>,
}

impl Record {
    fn new(settings: ReflectorSettings) -> Self {
        Record {
            settings,
            state: RunState::Stopped,
            pid: None,
            restarts: 0,
            platform: None,
            started: None,
            last_error: None,
            carried: Counters::default(),
            current: Counters::default(),
            rates: Rates::default(),
            telemetry: TelemetryReport::default(),
            loop_deadline: None,
        }
    }

    fn totals(&self) -> Counters {
        let mut totals = self.carried;
        totals.accumulate(&self.current);
        totals
    }

    fn view(&self) -> ReflectorView {
        ReflectorView {
            id: self.settings.id(),
            state: self.state,
            settings: self.settings.clone(),
            pid: self.pid,
            restarts: self.restarts,
            platform: self.platform.clone(),
            uptime_s: self.started.map(|s| s.elapsed().as_secs_f64()),
            last_error: self.last_error.clone(),
            loop_timed_out: self.telemetry.loop_timed_out,
            loop_timeout_remaining_s: self
                .loop_deadline
                .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64()),
        }
    }

    fn stats(&self) -> StatsView {
        StatsView {
            id: self.settings.id(),
            state: self.state,
            restarts: self.restarts,
            platform: self.platform.clone(),
            rates: self.rates,
            totals: self.totals().into(),
            telemetry: (&self.telemetry).into(),
        }
    }

    fn streams(&self, limit: usize) -> StreamsView {
        StreamsView {
            id: self.settings.id(),
            total: self.telemetry.streams.len(),
            untracked_frames: self.telemetry.untracked_frames,
            streams: self.telemetry.streams.iter().take(limit).cloned().collect(),
        }
    }
}

/// A record plus the bus its changes are announced on.
#[derive(Clone)]
struct Shared {
    record: Arc<Mutex<Record>>,
    bus: Bus,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the record and announce its new state.
    fn update(&self, change: impl FnOnce(&mut Record)) {
        let view = {
            let mut record = self.lock();
            change(&mut record);
            record.view()
        };
        self.bus.publish(Notice::State(view));
    }
}

enum Request {
    /// Start a session; a loop timeout here overrides the settings' for this session.
    Start(Option<u64>),
    Stop,
    Reconfigure(Box<ReflectorSettings>),
    Shutdown,
}

struct Order {
    request: Request,
    /// Answered once the request has taken effect (or was refused).
    done: oneshot::Sender<Result<(), SupervisorError>>,
}

struct Handle {
    shared: Shared,
    commands: mpsc::UnboundedSender<Order>,
    task: JoinHandle<()>,
    /// Reflectors from the config file are the ones a reload may remove.
    from_config: bool,
}

/// What changed in a reload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
}

/// All reflectors. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Supervisor {
    launcher: Arc<Launcher>,
    bus: Bus,
    handles: Arc<tokio::sync::Mutex<BTreeMap<String, Handle>>>,
}

impl Supervisor {
    pub fn new(launcher: Launcher, bus: Bus) -> Self {
        Supervisor {
            launcher: Arc::new(launcher),
            bus,
            handles: Default::default(),
        }
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Add a reflector; it starts at once if its settings say `autostart`.
    pub async fn add(
        &self,
        settings: ReflectorSettings,
        from_config: bool,
    ) -> Result<ReflectorView, SupervisorError> {
        let id = settings.id();
        let mut handles = self.handles.lock().await;
        if handles.contains_key(&id) {
            return Err(SupervisorError::Duplicate {
                interface: settings.interface,
                id,
            });
        }
        let autostart = settings.autostart;
        let shared = Shared {
            record: Arc::new(Mutex::new(Record::new(settings))),
            bus: self.bus.clone(),
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervise(shared.clone(), self.launcher.clone(), receiver));
        let handle = Handle {
            shared: shared.clone(),
            commands,
            task,
            from_config,
        };
        self.bus.publish(Notice::State(shared.lock().view()));
        handles.insert(id.clone(), handle);
        drop(handles);
        if autostart {
            self.send(&id, Request::Start(None)).await?;
        }
        let view = shared.lock().view();
        Ok(view)
    }

    pub async fn list(&self) -> Vec<ReflectorView> {
        self.handles
            .lock()
            .await
            .values()
            .map(|h| h.shared.lock().view())
            .collect()
    }

    pub async fn get(&self, id: &str) -> Result<ReflectorView, SupervisorError> {
        Ok(self.shared(id).await?.lock().view())
    }

    pub async fn stats(&self, id: &str) -> Result<StatsView, SupervisorError> {
        Ok(self.shared(id).await?.lock().stats())
    }

    /// The latest worker's streams, busiest first, at most `limit`.
    pub async fn streams(&self, id: &str, limit: usize) -> Result<StreamsView, SupervisorError> {
        Ok(self.shared(id).await?.lock().streams(limit))
    }

    /// Every reflector's statistics with its `limit` busiest streams (for metrics).
    pub async fn all_stats_and_streams(&self, limit: usize) -> Vec<(StatsView, StreamsView)> {
        self.handles
            .lock()
            .await
            .values()
            .map(|h| {
                let record = h.shared.lock();
                (record.stats(), record.streams(limit))
            })
            .collect()
    }

    /// Start the worker; returns once it has been spawned (or failed to be).
    pub async fn start(&self, id: &str) -> Result<ReflectorView, SupervisorError> {
        self.start_session(id, None).await
    }

    /// Start a session whose loop timeout is `loop_timeout_s` instead of the
    /// settings' (the settings themselves are unchanged). The timeout runs from this
    /// call: a worker restarted after a crash only gets the time left. Refused while
    /// a session with its own timeout would be ignored, i.e. while already started.
    pub async fn start_session(
        &self,
        id: &str,
        loop_timeout_s: Option<u64>,
    ) -> Result<ReflectorView, SupervisorError> {
        self.send(id, Request::Start(loop_timeout_s)).await
    }

    /// Stop the worker; returns once it has exited.
    pub async fn stop(&self, id: &str) -> Result<ReflectorView, SupervisorError> {
        self.send(id, Request::Stop).await
    }

    /// Replace the settings; a running worker is restarted with them.
    pub async fn reconfigure(
        &self,
        id: &str,
        settings: ReflectorSettings,
    ) -> Result<ReflectorView, SupervisorError> {
        self.send(id, Request::Reconfigure(Box::new(settings)))
            .await
    }

    /// Stop the worker and forget the reflector.
    pub async fn remove(&self, id: &str) -> Result<(), SupervisorError> {
        let handle = self
            .handles
            .lock()
            .await
            .remove(id)
            .ok_or_else(|| SupervisorError::UnknownId(id.into()))?;
        finish(handle).await;
        self.bus.publish(Notice::Removed { id: id.into() });
        Ok(())
    }

    /// Stop every worker (control plane shutdown).
    pub async fn shutdown(&self) {
        let handles = std::mem::take(&mut *self.handles.lock().await);
        // Stop them all at once: each may take its whole grace period.
        let tasks: Vec<_> = handles.into_values().map(request_shutdown).collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Make the config-file reflectors match `wanted`: new ones are added, ones no
    /// longer listed are removed, changed ones restart with their new settings.
    /// Reflectors created through the API are left alone unless the file names them,
    /// in which case the file takes them over.
    pub async fn reload(
        &self,
        wanted: Vec<ReflectorSettings>,
    ) -> Result<ReloadSummary, SupervisorError> {
        let mut summary = ReloadSummary::default();
        let wanted_ids: Vec<String> = wanted.iter().map(ReflectorSettings::id).collect();
        let stale: Vec<String> = self
            .handles
            .lock()
            .await
            .iter()
            .filter(|(id, h)| h.from_config && !wanted_ids.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove(&id).await?;
            summary.removed.push(id);
        }
        for settings in wanted {
            let id = settings.id();
            let existing = {
                let mut handles = self.handles.lock().await;
                handles.get_mut(&id).map(|h| {
                    h.from_config = true;
                    h.shared.lock().settings.clone()
                })
            };
            match existing {
                None => {
                    self.add(settings, true).await?;
                    summary.added.push(id);
                }
                Some(current) if current != settings => {
                    let start = settings.autostart;
                    self.reconfigure(&id, settings).await?;
                    if start {
                        self.start(&id).await?;
                    }
                    summary.restarted.push(id);
                }
                Some(_) => {}
            }
        }
        Ok(summary)
    }

    async fn shared(&self, id: &str) -> Result<Shared, SupervisorError> {
        let handles = self.handles.lock().await;
        handles
            .get(id)
            .map(|h| h.shared.clone())
            .ok_or_else(|| SupervisorError::UnknownId(id.into()))
    }

    async fn send(&self, id: &str, request: Request) -> Result<ReflectorView, SupervisorError> {
        let (shared, done) = {
            let handles = self.handles.lock().await;
            let handle = handles
                .get(id)
                .ok_or_else(|| SupervisorError::UnknownId(id.into()))?;
            let (done, answered) = oneshot::channel();
            handle
                .commands
                .send(Order { request, done })
                .map_err(|_| SupervisorError::Gone(id.into()))?;
            (handle.shared.clone(), answered)
        };
        done.await.map_err(|_| SupervisorError::Gone(id.into()))??;
        let view = shared.lock().view();
        Ok(view)
    }
}

/// Ask a reflector's task to stop its worker and end; the task finishes once the
/// worker is gone.
fn request_shutdown(handle: Handle) -> JoinHandle<()> {
    let (done, _) = oneshot::channel();
    // A task that already ended has nothing left to stop.
    let _ = handle.commands.send(Order {
        request: Request::Shutdown,
        done,
    });
    handle.task
}

async fn finish(handle: Handle) {
    let _ = request_shutdown(handle).await;
}

/// How a worker's life ended.
enum Ended {
    /// It exited on its own after running this long.
    Died { ran: Duration },
    /// A command ended it; carry on with this command.
    ByCommand(Order),
}

/// The task behind one reflector.
async fn supervise(
    shared: Shared,
    launcher: Arc<Launcher>,
    mut commands: mpsc::UnboundedReceiver<Order>,
) {
    let policy = launcher.backoff;
    let mut want_running = false;
    let mut next_delay = policy.initial;
    // Restart at this time; None starts at once.
    let mut resume_at: Option<tokio::time::Instant> = None;
    // Requests waiting for the next spawn attempt.
    let mut waiting: Vec<oneshot::Sender<Result<(), SupervisorError>>> = Vec::new();
    loop {
        if !want_running {
            mark_stopped(&shared);
            let Some(command) = commands.recv().await else {
                return;
            };
            match command.request {
                Request::Start(loop_timeout_s) => {
                    want_running = true;
                    next_delay = policy.initial;
                    resume_at = None;
                    begin_session(&shared, loop_timeout_s);
                    waiting.push(command.done);
                }
                Request::Stop => {
                    let _ = command.done.send(Ok(()));
                }
                Request::Reconfigure(settings) => {
                    shared.update(|r| r.settings = *settings);
                    let _ = command.done.send(Ok(()));
                }
                Request::Shutdown => {
                    let _ = command.done.send(Ok(()));
                    return;
                }
            }
            continue;
        }
        if let Some(until) = resume_at.take() {
            shared.update(|r| r.state = RunState::Backoff);
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    match command.request {
                        // Start while backing off means "retry now".
                        Request::Start(None) => waiting.push(command.done),
                        Request::Start(Some(_)) => {
                            let _ = command.done.send(Err(already_started(&shared)));
                            // Refused: the back-off goes on as it was.
                            resume_at = Some(until);
                            continue;
                        }
                        Request::Stop => {
                            want_running = false;
                            mark_stopped(&shared);
                            let _ = command.done.send(Ok(()));
                            continue;
                        }
                        Request::Reconfigure(settings) => {
                            shared.update(|r| r.settings = *settings);
                            begin_session(&shared, None);
                            next_delay = policy.initial;
                            waiting.push(command.done);
                        }
                        Request::Shutdown => {
                            let _ = command.done.send(Ok(()));
                            return;
                        }
                    }
                }
            }
        }
        let (settings, loop_timeout) = {
            let record = shared.lock();
            let left = record
                .loop_deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            (record.settings.clone(), left)
        };
        let spawned = launcher.command(&settings, loop_timeout).spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let message = format!("cannot start {}: {error}", launcher.program.display());
                tracing::warn!(reflector = %settings.id(), "{message}");
                shared.update(|r| r.last_error = Some(message));
                answer(&mut waiting);
                resume_at = Some(tokio::time::Instant::now() + next_delay);
                next_delay = (next_delay * 2).min(policy.max);
                continue;
            }
        };
        shared.update(|r| {
            r.state = RunState::Starting;
            r.pid = child.id();
            r.started = Some(Instant::now());
            r.platform = None;
            // Telemetry is per worker run; the previous run's is gone with it.
            r.telemetry = TelemetryReport::default();
        });
        answer(&mut waiting);
        let ended = run_worker(&shared, &launcher, child, &mut commands).await;
        shared.update(|r| {
            r.carried.accumulate(&r.current);
            r.current = Counters::default();
            r.rates = Rates::default();
            r.pid = None;
            r.started = None;
        });
        // Tell live clients the rates dropped to zero, with the final totals.
        let stats = shared.lock().stats();
        shared.bus.publish(Notice::Stats(stats));
        match ended {
            Ok(Ended::Died { ran }) => {
                if ran >= policy.healthy_after {
                    next_delay = policy.initial;
                }
                shared.update(|r| r.restarts += 1);
                resume_at = Some(tokio::time::Instant::now() + next_delay);
                next_delay = (next_delay * 2).min(policy.max);
            }
            Ok(Ended::ByCommand(command)) => match command.request {
                Request::Stop => {
                    want_running = false;
                    mark_stopped(&shared);
                    let _ = command.done.send(Ok(()));
                }
                Request::Reconfigure(settings) => {
                    shared.update(|r| r.settings = *settings);
                    begin_session(&shared, None);
                    next_delay = policy.initial;
                    waiting.push(command.done);
                }
                Request::Start(_) => unreachable!("run_worker answers Start itself"),
                Request::Shutdown => {
                    let _ = command.done.send(Ok(()));
                    return;
                }
            },
            // The command channel closed: the supervisor is gone.
            Err(Orphaned) => return,
        }
    }
}

struct Orphaned;

/// Start timing a session: its loop timeout (`loop_timeout_s`, else the settings')
/// counts from now, across any restarts.
fn begin_session(shared: &Shared, loop_timeout_s: Option<u64>) {
    shared.update(|r| {
        let timeout = loop_timeout_s.or(r.settings.loop_timeout_s);
        r.loop_deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    });
}

/// The state of a reflector without a worker, set before a stop is answered so the
/// answer shows it; announced only if it changed.
fn mark_stopped(shared: &Shared) {
    let changed = {
        let r = shared.lock();
        r.state != RunState::Stopped || r.loop_deadline.is_some()
    };
    if changed {
        shared.update(|r| {
            r.state = RunState::Stopped;
            r.loop_deadline = None;
        });
    }
}

fn already_started(shared: &Shared) -> SupervisorError {
    SupervisorError::AlreadyStarted(shared.lock().settings.id())
}

/// Tell every waiting requester its request has taken effect.
fn answer(waiting: &mut Vec<oneshot::Sender<Result<(), SupervisorError>>>) {
    for done in waiting.drain(..) {
        // The requester may have given up (client disconnected); nothing to tell then.
        let _ = done.send(Ok(()));
    }
}

/// Follow one worker until it exits or a command ends it.
async fn run_worker(
    shared: &Shared,
    launcher: &Launcher,
    mut child: Child,
    commands: &mut mpsc::UnboundedReceiver<Order>,
) -> Result<Ended, Orphaned> {
    let started = Instant::now();
    let id = shared.lock().settings.id();
    let mut stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr_task = child
        .stderr
        .take()
        .map(|s| tokio::spawn(follow_stderr(id.clone(), BufReader::new(s))));
    let outcome = loop {
        tokio::select! {
            line = next_line(&mut stdout) => match line {
                Some(line) => handle_line(shared, &id, &line),
                // Stdout closed: the worker is exiting; stop reading and wait for it.
                None => stdout = None,
            },
            status = child.wait() => break Ok((Ended::Died { ran: started.elapsed() }, status)),
            command = commands.recv() => {
                let Some(command) = command else {
                    let _ = terminate(&mut child, launcher.grace).await;
                    break Err(Orphaned);
                };
                match command.request {
                    Request::Start(None) => {
                        let _ = command.done.send(Ok(()));
                        continue;
                    }
                    Request::Start(Some(_)) => {
                        let _ = command.done.send(Err(already_started(shared)));
                        continue;
                    }
                    _ => {}
                }
                let status = terminate(&mut child, launcher.grace).await;
                break Ok((Ended::ByCommand(command), status));
            }
        }
    };
    // Read what the worker printed before it exited, its final totals above all.
    // Bounded, in case something the worker started still holds its stdout open.
    if let Some(lines) = stdout.as_mut() {
        let drain = async {
            while let Ok(Some(line)) = lines.next_line().await {
                handle_line(shared, &id, &line);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
    let last_stderr = match stderr_task {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    match outcome {
        Err(Orphaned) => Err(Orphaned),
        Ok((ended, status)) => {
            if let Ended::Died { .. } = ended {
                let message = exit_message(status, last_stderr);
                tracing::warn!(reflector = %id, "worker died: {message}");
                shared.update(|r| r.last_error = Some(message));
            }
            Ok(ended)
        }
    }
}

/// The next stdout line, or pending forever once stdout is gone (so `select!` waits
/// for the exit instead).
async fn next_line(
    stdout: &mut Option<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
) -> Option<String> {
    match stdout {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

fn handle_line(shared: &Shared, id: &str, line: &str) {
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
async fn follow_stderr(
    id: String,
    stderr: BufReader<tokio::process::ChildStderr>,
) -> Option<String> {
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

fn exit_message(status: std::io::Result<ExitStatus>, last_stderr: Option<String>) -> String {
    let status = match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("could not be waited for: {error}"),
    };
    match last_stderr {
        Some(line) => format!("{status}: {line}"),
        None => status,
    }
}

/// SIGTERM, then SIGKILL once the grace period is over.
async fn terminate(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet
        // (`id()` is None after that), so the pid cannot have been reused.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.start_kill()?;
            child.wait().await
        }
    }
}
