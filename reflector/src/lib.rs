//! The `reflector` worker binary's pieces, as a library so tests can drive each part.
//! What the worker shares with the control plane (settings, JSON events) is the
//! `settings` crate.

#![forbid(unsafe_code)]

pub mod broadcasts;
pub mod cli;
pub mod link;
pub mod live;
#[cfg(target_os = "linux")]
pub mod live_linux;
#[cfg(target_os = "macos")]
pub mod live_macos;
pub mod offline;
pub mod probe;
pub mod report;
pub mod tui;
pub mod watch;
