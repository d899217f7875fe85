//! The reflector's view of its interface while it runs. One getifaddrs pass a second
//! gives both what the user must be told (the link went down or came back, see
//! [`crate::link`]) and what the filters must know (the directed broadcasts of the
//! IPv4 prefixes, see [`crate::broadcasts`]).

use crate::broadcasts::{self, describe};
use crate::link::{self, LinkState};
use anyhow::{Context, Result};
use dataplane::filter::Broadcasts;
use nix::ifaddrs::getifaddrs;
use std::time::{Duration, Instant};

/// How often a running reflector looks at its interface again.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the kernel of the calling thread's network namespace says of one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceView {
    /// `None` when the kernel does not list the interface (any more).
    pub link: Option<LinkState>,
    pub broadcasts: Broadcasts,
}

impl InterfaceView {
    /// Looks at `interface` once.
    pub fn read(interface: &str) -> Result<InterfaceView> {
        let mut link = None;
        let mut found = Vec::new();
        for ifa in getifaddrs().context("listing the interface addresses (getifaddrs)")? {
            if ifa.interface_name != interface {
                continue;
            }
            link = Some(LinkState::from_flags(ifa.flags));
            broadcasts::add_from(&ifa, &mut found);
        }
        Ok(InterfaceView {
            link,
            broadcasts: broadcasts::bounded(interface, &found),
        })
    }
}

/// Re-reads the interface every [`CHECK_EVERY`] for the reporting loop: warns when the
/// link changes, and returns a changed broadcast list, which the loop hands to the
/// workers; a kernel filter that holds its own copy (the XDP program's map) registers
/// with [`InterfaceWatch::on_change`].
pub struct InterfaceWatch<'a> {
    interface: String,
    seen: InterfaceView,
    next_check: Instant,
    on_change: Box<dyn FnMut(&Broadcasts) + 'a>,
}

impl<'a> InterfaceWatch<'a> {
    /// Watch `interface`, as the reflector found it when it started (`view`); warns
    /// now if its link is down.
    pub fn new(interface: &str, view: InterfaceView) -> Self {
        if let Some(warning) = link::advice(interface, view.link) {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            interface,
            "directed broadcasts refused: {} (re-read every {}s)",
            describe(&view.broadcasts),
            CHECK_EVERY.as_secs()
        );
        InterfaceWatch {
            interface: interface.to_owned(),
            seen: view,
            next_check: Instant::now() + CHECK_EVERY,
            on_change: Box::new(|_| {}),
        }
    }

    /// Also give every changed broadcast list to `apply`.
    pub fn on_change(mut self, apply: impl FnMut(&Broadcasts) + 'a) -> Self {
        self.on_change = Box::new(apply);
        self
    }

    /// The new broadcast list if it is time to look and it changed (after handing it
    /// to the `on_change` callback). A failure to look keeps the current list, with a
    /// warning.
    pub fn poll(&mut self) -> Option<Broadcasts> {
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let view = match InterfaceView::read(&self.interface) {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(
                    interface = self.interface,
                    "cannot re-read the interface ({e:#}); still refusing {}",
                    describe(&self.seen.broadcasts)
                );
                return None;
            }
        };
        if view.link != self.seen.link {
            link::warn_changed(&self.interface, view.link);
        }
        let changed = view.broadcasts != self.seen.broadcasts;
        self.seen = view;
        if !changed {
            return None;
        }
        tracing::info!(
            interface = self.interface,
            "directed broadcasts refused now: {}",
            describe(&view.broadcasts)
        );
        (self.on_change)(&view.broadcasts);
        Some(view.broadcasts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_without_a_directed_broadcast() {
        // 127.0.0.1/8 would give 127.255.255.255, refused anyway as loopback; the list
        // is learned all the same.
        let lo = InterfaceView::read("lo").unwrap();
        assert_eq!(lo.link, Some(LinkState::Up));
        assert!(lo.broadcasts.iter().all(|a| a.is_loopback()), "{lo:?}");
    }

    #[test]
    fn a_missing_interface_has_no_link_and_no_broadcasts() {
        let gone = InterfaceView::read("no-such-if0").unwrap();
        assert_eq!(gone.link, None);
        assert!(gone.broadcasts.is_empty());
    }
}
