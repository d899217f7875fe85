//! The directed-broadcast addresses of the interface's IPv4 prefixes, which the reflector
//! refuses (shared/spec PACKETS.md, "Never reflect"): learned when it starts and
//! re-read while it runs, so an address added to or removed from the interface takes
//! effect within about a second, in the workers and in the kernel filter alike.

use anyhow::{Context, Result};
use dataplane::filter::{directed_broadcast, Broadcasts, MAX_BROADCASTS};
use ipnet::Ipv4Net;
use nix::ifaddrs::getifaddrs;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How often a running reflector re-reads its interface's addresses.
pub const RELEARN_EVERY: Duration = Duration::from_secs(1);

/// The directed broadcasts of the IPv4 prefixes on `interface`: that of each address's
/// prefix (none for /31 and /32), and any other broadcast address configured
/// explicitly inside the prefix (`ip address add ... broadcast X`). Asks the kernel of the calling thread's network
/// namespace (getifaddrs).
pub fn interface_broadcasts(interface: &str) -> Result<Broadcasts> {
    let mut found = Vec::new();
    for ifa in getifaddrs().context("listing the interface addresses (getifaddrs)")? {
        if ifa.interface_name != interface {
            continue;
        }
        let ipv4 = |addr: Option<nix::sys::socket::SockaddrStorage>| {
            addr.and_then(|a| a.as_sockaddr_in().map(|a| a.ip()))
        };
        let (Some(addr), Some(mask)) = (ipv4(ifa.address), ipv4(ifa.netmask)) else {
            continue;
        };
        let Ok(prefix) = Ipv4Net::new(addr, u32::from(mask).leading_ones() as u8) else {
            continue;
        };
        found.extend(directed_broadcast(prefix));
        // An explicit one counts if it is a host address of the prefix other than ours:
        // glibc reports the address itself where none was configured, and the field is
        // shared with a point-to-point peer's address.
        found.extend(ipv4(ifa.broadcast).filter(|brd| *brd != addr && prefix.contains(brd)));
    }
    let list = Broadcasts::new(found.iter().copied());
    if list.is_full() && found.iter().any(|a| !list.iter().any(|kept| kept == *a)) {
        tracing::warn!(
            interface,
            "the interface has more than {MAX_BROADCASTS} IPv4 broadcast addresses; \
             the reflector refuses the first {MAX_BROADCASTS} ({}) and would answer frames \
             to the others: remove prefixes from the interface",
            describe(&list)
        );
    }
    Ok(list)
}

/// `192.0.2.255, 198.51.100.127`, or `none`.
pub fn describe(list: &Broadcasts) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|a: Ipv4Addr| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Re-reads the interface's broadcasts every [`RELEARN_EVERY`] for the reporting loop,
/// which hands a changed list to the workers; a kernel filter that holds its own copy
/// (the XDP program's map) registers with [`BroadcastWatch::on_change`].
pub struct BroadcastWatch<'a> {
    interface: String,
    current: Broadcasts,
    next_check: Instant,
    on_change: Box<dyn FnMut(&Broadcasts) + 'a>,
}

impl<'a> BroadcastWatch<'a> {
    /// Watch `interface`, whose broadcasts the reflector started with are `current`.
    pub fn new(interface: &str, current: Broadcasts) -> Self {
        tracing::info!(
            interface,
            "directed broadcasts refused: {} (re-read every {}s)",
            describe(&current),
            RELEARN_EVERY.as_secs()
        );
        BroadcastWatch {
            interface: interface.to_owned(),
            current,
            next_check: Instant::now() + RELEARN_EVERY,
            on_change: Box::new(|_| {}),
        }
    }

    /// The interface whose addresses are watched.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Also give every changed list to `apply`.
    pub fn on_change(mut self, apply: impl FnMut(&Broadcasts) + 'a) -> Self {
        self.on_change = Box::new(apply);
        self
    }

    /// The new list if it is time to look and the interface's broadcasts changed
    /// (after handing it to the `on_change` callback). A failure to read them keeps
    /// the current list, with a warning.
    pub fn poll(&mut self) -> Option<Broadcasts> {
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + RELEARN_EVERY;
        match interface_broadcasts(&self.interface) {
            Ok(list) if list != self.current => {
                tracing::info!(
                    interface = self.interface,
                    "directed broadcasts refused now: {}",
                    describe(&list)
                );
                self.current = list;
                (self.on_change)(&list);
                Some(list)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    interface = self.interface,
                    "cannot re-read the interface's addresses ({e:#}); still refusing {}",
                    describe(&self.current)
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_no_directed_broadcast() {
        // 127.0.0.1/8 would give 127.255.255.255, refused anyway as loopback; the list
        // is learned all the same. An interface that does not exist has none.
        let lo = interface_broadcasts("lo").unwrap();
        assert!(lo.iter().all(|a| a.is_loopback()), "{lo:?}");
        assert!(interface_broadcasts("no-such-if0").unwrap().is_empty());
    }

    #[test]
    fn describes_the_list() {
        assert_eq!(describe(&Broadcasts::NONE), "none");
        let list = Broadcasts::new([
            "192.0.2.255".parse().unwrap(),
            "10.255.255.255".parse().unwrap(),
        ]);
        assert_eq!(describe(&list), "192.0.2.255, 10.255.255.255");
    }
}
