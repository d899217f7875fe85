//! The registry of reflectors: the [`Supervisor`] handle that adds, lists, looks up,
//! reconfigures and removes them, each run by its own task.

use super::launcher::Launcher;
use super::record::Shared;
use super::request::{Order, Request, SupervisorError};
use super::task;
use crate::config::{canonical_id, ReflectorSettings};
use crate::events::{Bus, Notice};
use crate::views::{ReflectorView, ReloadSummary, StatsView, StreamsView};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The registry's side of one reflector's task.
struct Handle {
    shared: Shared,
    commands: mpsc::UnboundedSender<Order>,
    task: JoinHandle<()>,
    /// Reflectors from the config file are the ones a reload may remove.
    from_config: bool,
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

    /// How workers are started: probes are started the same way.
    pub fn launcher(&self) -> &Arc<Launcher> {
        &self.launcher
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
        let shared = Shared::new(settings, self.bus.clone());
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(task::supervise(
            shared.clone(),
            self.launcher.clone(),
            receiver,
        ));
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
        let id = &*canonical_id(id);
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
        let id = &*canonical_id(id);
        let handles = self.handles.lock().await;
        handles
            .get(id)
            .map(|h| h.shared.clone())
            .ok_or_else(|| SupervisorError::UnknownId(id.into()))
    }

    async fn send(&self, id: &str, request: Request) -> Result<ReflectorView, SupervisorError> {
        let id = &*canonical_id(id);
        let (shared, done) = {
            let handles = self.handles.lock().await;
            let handle = handles
                .get(id)
                .ok_or_else(|| SupervisorError::UnknownId(id.into()))?;
            let (order, answered) = Order::new(request);
            handle
                .commands
                .send(order)
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
    // A task that already ended has nothing left to stop.
    let _ = handle.commands.send(Order::unanswered(Request::Shutdown));
    handle.task
}

async fn finish(handle: Handle) {
    let _ = request_shutdown(handle).await;
}
