//! Worker supervision: one child process per interface, each owned by its own task.
//!
//! The [`Supervisor`] registry talks to a task only through requests and reads the
//! record the task keeps. A worker that dies is restarted with exponential back-off,
//! and its last counters are carried forward so totals survive restarts. No worker
//! failure can reach the control plane itself: the worst a child can do is exit.
//!
//! - `registry`: the [`Supervisor`] handle (add, list, look up, remove, reload);
//! - `task`: one reflector's task, its phases, and the handler of its requests;
//! - `request`: the requests and answers between the two;
//! - `record`: the shared record a task writes and the views are built from;
//! - `interface`: whether a reflector's interface exists (else it waits for it);
//! - `launcher`: the worker command line, spawn, SIGTERM then SIGKILL;
//! - `output`: the worker's stdout events and stderr logs.

mod interface;
mod launcher;
mod output;
mod record;
mod registry;
mod request;
mod task;

pub use launcher::{Backoff, Launcher, PARENT_PID_ENV};
pub(crate) use output::{exit_message, Output};
pub use registry::Supervisor;
pub use request::SupervisorError;
