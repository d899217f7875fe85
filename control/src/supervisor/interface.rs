//! Whether a reflector's interface exists. A worker started without it could only fail
//! and be restarted for ever, so the task waits for the interface instead.

use crate::config::ReflectorSettings;
use std::time::Duration;

/// How often a reflector waiting for its interface looks again.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// Whether the interface exists (in the reflector's namespace, if it has one).
pub(super) async fn exists(settings: &ReflectorSettings) -> bool {
    match &settings.netns {
        // sysfs shows the namespace it was mounted in, so ask iproute2 for another one.
        Some(ns) => tokio::process::Command::new("ip")
            .args(["-n", ns, "link", "show", "dev", &settings.interface])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success()),
        // if_nametoindex works on Linux and macOS alike.
        None => nix::net::if_::if_nametoindex(settings.interface.as_str()).is_ok(),
    }
}

/// What a waiting reflector shows as its `last_error`.
pub(super) fn missing(settings: &ReflectorSettings) -> String {
    let place = settings
        .netns
        .as_ref()
        .map(|ns| format!(" in network namespace {ns:?}"))
        .unwrap_or_default();
    format!(
        "interface {:?} does not exist{place}; the worker starts when it appears",
        settings.interface
    )
}
