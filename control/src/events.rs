//! The live event stream: every state change and statistics line of every worker, fanned
//! out to any number of Server-Sent-Events clients.

use crate::probes::ProbeView;
use crate::views::{ReflectorView, StatsView};
use serde::Serialize;
use tokio::sync::broadcast;

/// Events a client missed by falling this far behind are dropped for that client only;
/// the next stats event carries full totals, so nothing is lost for good.
const BACKLOG: usize = 256;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A reflector was added, changed state or settings.
    State(ReflectorView),
    /// A worker reported an interval; carries cumulative totals.
    Stats(StatsView),
    Removed {
        id: String,
    },
    /// A probe was created, changed state, or reported its results so far.
    Probe(Box<ProbeView>),
    ProbeRemoved {
        id: String,
    },
}

impl Notice {
    /// The SSE event name, so browsers can `addEventListener` per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::State(_) => "state",
            Notice::Stats(_) => "stats",
            Notice::Removed { .. } => "removed",
            Notice::Probe(_) => "probe",
            Notice::ProbeRemoved { .. } => "probe_removed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Bus {
    sender: broadcast::Sender<Notice>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Bus {
    pub fn publish(&self, notice: Notice) {
        // No subscriber is the normal case when no dashboard is open.
        let _ = self.sender.send(notice);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }
}
