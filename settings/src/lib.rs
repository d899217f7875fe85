//! A reflector's settings and the events its worker prints: the contract between the
//! `reflector` worker, the control plane and the tests.
//!
//! [`Settings`] is one reflector's configuration, typed; [`Settings::validate`] holds
//! every rule across settings, and its [`SettingsError`] names the setting as a
//! command-line flag or as a settings key ([`Naming`]). The worker's command line is
//! generated in one place ([`Settings::worker_args`]). [`events`] are the JSON lines a
//! worker prints with `--json`, and the probe's report.

#![forbid(unsafe_code)]

pub mod build_info;
pub mod choice;
mod error;
pub mod error_text;
pub mod events;
mod field;
mod limits;
#[cfg(feature = "manual")]
pub mod manual;
mod prefix;
mod settings;
mod worker_args;

pub use choice::{Backend, LiveBackend, UnknownChoice, WakeLatency, XdpMode, XdpSend, ZeroCopy};
pub use error::{NamedSettingsError, SettingsError};
pub use field::{Field, Naming};
pub use limits::{
    DEFAULT_RATE_BURST, MAX_ALLOW_PREFIXES, MAX_RATE_LIMIT_PPS, MAX_SECONDS, MAX_STREAMS,
};
pub use prefix::{parse_prefix, BadPrefix};
pub use settings::{check_requested_loop_timeout, Settings};
pub use worker_args::PARENT_PID_ENV;

#[cfg(test)]
mod tests;
