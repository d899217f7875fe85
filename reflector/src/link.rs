//! Whether the interface can carry frames at all. A reflector on a down link runs at
//! 0 pps and looks exactly like one nobody sends to, so it says so: at start and
//! whenever the link changes while it runs ([`crate::watch::InterfaceWatch`]).

use nix::net::if_::InterfaceFlags;
use std::fmt;

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

impl LinkState {
    /// The state the interface flags describe.
    pub fn from_flags(flags: InterfaceFlags) -> LinkState {
        if !flags.contains(InterfaceFlags::IFF_UP) {
            LinkState::AdminDown
        } else if !flags.contains(InterfaceFlags::IFF_RUNNING) {
            LinkState::NoCarrier
        } else {
            LinkState::Up
        }
    }
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

/// What to tell the user about `interface` in `state`; nothing when it is up.
pub fn advice(interface: &str, state: Option<LinkState>) -> Option<String> {
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

/// Says that the link of `interface` is now `state` (`None`: the interface is gone).
/// At warning level even when it is up again: whoever saw the warning needs to see it
/// end.
pub fn warn_changed(interface: &str, state: Option<LinkState>) {
    match advice(interface, state) {
        Some(warning) => tracing::warn!("{warning}"),
        None if state.is_some() => tracing::warn!("interface {interface} is up again"),
        None => tracing::warn!("interface {interface} disappeared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_give_the_state() {
        use InterfaceFlags as F;
        assert_eq!(LinkState::from_flags(F::empty()), LinkState::AdminDown);
        assert_eq!(LinkState::from_flags(F::IFF_RUNNING), LinkState::AdminDown);
        assert_eq!(LinkState::from_flags(F::IFF_UP), LinkState::NoCarrier);
        assert_eq!(
            LinkState::from_flags(F::IFF_UP | F::IFF_RUNNING),
            LinkState::Up
        );
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
