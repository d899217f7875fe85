//! The `reflector` worker binary's pieces, as a library so the control plane shares
//! the JSON stats types ([`report::Event`]) and tests can drive each part.

pub mod cli;
pub mod live;
#[cfg(target_os = "linux")]
pub mod live_linux;
#[cfg(target_os = "macos")]
pub mod live_macos;
pub mod offline;
pub mod probe;
#[cfg(target_os = "linux")]
pub mod probe_linux;
pub mod report;
