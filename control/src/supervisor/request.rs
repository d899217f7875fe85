//! What the registry asks of a reflector's task, and the answers: the only way into a
//! task, which owns its worker outright.

use crate::config::ReflectorSettings;
use tokio::sync::oneshot;

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

pub(super) enum Request {
    /// Start a session; a loop timeout here overrides the settings' for this session.
    Start(Option<u64>),
    Stop,
    Reconfigure(Box<ReflectorSettings>),
    /// Stop the worker and end the task.
    Shutdown,
}

/// Where the answer to a request goes.
pub(super) type Reply = oneshot::Sender<Result<(), SupervisorError>>;

pub(super) struct Order {
    pub request: Request,
    /// Answered once the request has taken effect (or was refused).
    pub done: Reply,
}

impl Order {
    /// An order with its answer, to wait on.
    pub fn new(request: Request) -> (Order, oneshot::Receiver<Result<(), SupervisorError>>) {
        let (done, answered) = oneshot::channel();
        (Order { request, done }, answered)
    }

    /// An order nobody waits for.
    pub fn unanswered(request: Request) -> Order {
        Order::new(request).0
    }
}

/// Tell the requester how its request went.
pub(super) fn answer(done: Reply, result: Result<(), SupervisorError>) {
    // The requester may have given up (client disconnected); nothing to tell then.
    let _ = done.send(result);
}
