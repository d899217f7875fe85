//! Test heads as a resource of the control plane: each probe is a `reflector probe
//! IFACE --to MAC ... --json --interval 1` child, started with the supervisor's
//! launcher (same binary, namespaces, SIGTERM then SIGKILL) and read with its output
//! code. Its reports so far go on the event bus, the API, the metrics and the demo's
//! terminal. A probe is a measurement, not a service: one that dies is not restarted.
//!
//! - `form`: the request body and its checks, the command line;
//! - `view`: what is shown of a probe, and its one-line verdict;
//! - `task`: one probe's task, which owns its child;
//! - `metrics`: the probes' Prometheus families;
//! - `terminal`: the demo's summary lines and final verdicts.

mod form;
pub mod metrics;
mod task;
pub mod terminal;
mod view;

pub use form::{FormError, ProbeForm, ProbeSettings};
pub use view::{summary, ProbeState, ProbeView};

use crate::events::{Bus, Notice};
use crate::supervisor::Launcher;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use task::{Record, Request};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    #[error("no probe with id {0:?}; GET /api/v1/probes lists them")]
    UnknownId(String),
    #[error(transparent)]
    Form(#[from] FormError),
}

struct Handle {
    record: Arc<Mutex<Record>>,
    requests: mpsc::UnboundedSender<(Request, oneshot::Sender<()>)>,
    task: JoinHandle<()>,
}

/// Every probe. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Probes {
    launcher: Arc<Launcher>,
    bus: Bus,
    handles: Arc<Mutex<BTreeMap<String, Handle>>>,
    next: Arc<AtomicU64>,
}

impl Probes {
    pub fn new(launcher: Arc<Launcher>, bus: Bus) -> Self {
        Probes {
            launcher,
            bus,
            handles: Default::default(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Handle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a probe (`probe-N`) and start it unless the form says not to.
    pub async fn create(&self, form: ProbeForm) -> Result<ProbeView, ProbeError> {
        let autostart = form.autostart();
        let settings = form.validate()?;
        let id = format!("probe-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let record = Arc::new(Mutex::new(Record::new(id.clone(), settings)));
        let (requests, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(task::run(
            record.clone(),
            self.launcher.clone(),
            self.bus.clone(),
            receiver,
        ));
        let view = task::view(&record);
        self.bus.publish(Notice::Probe(Box::new(view)));
        self.lock().insert(
            id.clone(),
            Handle {
                record,
                requests,
                task,
            },
        );
        if autostart {
            return self.start(&id).await;
        }
        self.get(&id)
    }

    pub fn list(&self) -> Vec<ProbeView> {
        self.lock()
            .values()
            .map(|h| task::view(&h.record))
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<ProbeView, ProbeError> {
        self.lock()
            .get(id)
            .map(|h| task::view(&h.record))
            .ok_or_else(|| ProbeError::UnknownId(id.into()))
    }

    /// Start a run (a running probe keeps running); returns once it is spawned.
    pub async fn start(&self, id: &str) -> Result<ProbeView, ProbeError> {
        self.send(id, Request::Start).await
    }

    /// Stop the run; returns once the probe has exited with its final report.
    pub async fn stop(&self, id: &str) -> Result<ProbeView, ProbeError> {
        self.send(id, Request::Stop).await
    }

    pub async fn remove(&self, id: &str) -> Result<(), ProbeError> {
        self.stop(id).await?;
        if let Some(handle) = self.lock().remove(id) {
            handle.task.abort();
        }
        self.bus.publish(Notice::ProbeRemoved { id: id.into() });
        Ok(())
    }

    /// Stop every probe (control plane shutdown); their final reports stay readable.
    pub async fn stop_all(&self) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            let _ = self.stop(&id).await;
        }
    }

    async fn send(&self, id: &str, request: Request) -> Result<ProbeView, ProbeError> {
        let (done, answered) = oneshot::channel();
        let record = {
            let handles = self.lock();
            let handle = handles
                .get(id)
                .ok_or_else(|| ProbeError::UnknownId(id.into()))?;
            handle
                .requests
                .send((request, done))
                .map_err(|_| ProbeError::UnknownId(id.into()))?;
            handle.record.clone()
        };
        answered
            .await
            .map_err(|_| ProbeError::UnknownId(id.into()))?;
        Ok(task::view(&record))
    }
}
