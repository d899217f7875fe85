//! Whether the interface can carry frames at all. A reflector on a down link runs at
//! 0 pps and looks exactly like one nobody sends to, so it says so: at start and
//! whenever the link changes while it runs.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::fmt;
use std::time::{Duration, Instant};

/// How often a running reflector looks at its link.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The link as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Administratively up and operational (IFF_UP and IFF_RUNNING).
    Up,
    /// Administratively down (no IFF_UP).
    AdminDown,
    /// Up, but not operational: no carrier, or a veth whose peer is down.
    NoCarrier,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Up => "up",
            LinkState::AdminDown => "administratively down",
            LinkState::NoCarrier => "up but without carrier",
        })
    }
}

/// The state of `interface`, or `None` if the kernel does not list it (any more).
pub fn link_state(interface: &str) -> Option<LinkState> {
    let flags = getifaddrs()
        .ok()?
        .find(|ifa| ifa.interface_name == interface)?
        .flags;
    Some(if !flags.contains(InterfaceFlags::IFF_UP) {
        LinkState::AdminDown
    } else if !flags.contains(InterfaceFlags::IFF_RUNNING) {
        LinkState::NoCarrier
    } else {
        LinkState::Up
    })
}

/// What to tell the user about `interface` in `state`; nothing when it is up.
fn advice(interface: &str, state: Option<LinkState>) -> Option<String> {
    match state? {
        LinkState::Up => None,
        LinkState::AdminDown => Some(format!(
            "interface {interface} is administratively down: nothing arrives until it is \
             up (`ip link set {interface} up` on Linux, `ifconfig {interface} up` on macOS)"
        )),
        LinkState::NoCarrier => Some(format!(
            "interface {interface} is up but has no carrier: nothing arrives until the \
             link is (check the cable, the switch port, or the veth peer)"
        )),
    }
}

/// Warns at start when the link is down and whenever it changes while running.
pub struct LinkWatch {
    interface: String,
    last: Option<LinkState>,
    next_check: Instant,
}

impl LinkWatch {
    /// Looks at the link once now, warning if it is down.
    pub fn new(interface: &str) -> LinkWatch {
        let last = link_state(interface);
        if let Some(warning) = advice(interface, last) {
            tracing::warn!("{warning}");
        }
        LinkWatch {
            interface: interface.to_owned(),
            last,
            next_check: Instant::now() + CHECK_EVERY,
        }
    }

    /// Looks again if it is time; returns the new state when it changed.
    pub fn poll(&mut self) -> Option<LinkState> {
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let state = link_state(&self.interface);
        if state == self.last {
            return None;
        }
        self.last = state;
        match advice(&self.interface, state) {
            Some(warning) => tracing::warn!("{warning}"),
            // Said at warning level: whoever saw the warning needs to see it end.
            None if state.is_some() => {
                tracing::warn!("interface {} is up again", self.interface)
            }
            None => tracing::warn!("interface {} disappeared", self.interface),
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_a_missing_interface_has_no_state() {
        assert_eq!(link_state("lo"), Some(LinkState::Up));
        assert_eq!(link_state("no-such-if0"), None);
    }

    #[test]
    fn only_a_down_link_gets_advice() {
        assert_eq!(advice("eth1", Some(LinkState::Up)), None);
        assert_eq!(advice("eth1", None), None);
        let down = advice("eth1", Some(LinkState::AdminDown)).unwrap();
        assert!(down.contains("ip link set eth1 up"), "{down}");
        let carrier = advice("eth1", Some(LinkState::NoCarrier)).unwrap();
        assert!(carrier.contains("no carrier"), "{carrier}");
    }
}
