//! The directed-broadcast addresses of the interface's IPv4 prefixes, which the reflector
//! refuses (shared/spec PACKETS.md, "Never reflect"): learned when it starts and
//! re-read while it runs ([`crate::watch::InterfaceWatch`]), so an address added to or
//! removed from the interface takes effect within about a second, in the workers and in
//! the kernel filter alike.

use dataplane::filter::{directed_broadcast, Broadcasts, MAX_BROADCASTS};
use ipnet::Ipv4Net;
use nix::ifaddrs::InterfaceAddress;
use std::net::Ipv4Addr;

/// Adds to `found` the directed broadcasts one interface address brings: that of its
/// IPv4 prefix (none for /31 and /32), and a broadcast address configured explicitly
/// inside the prefix (`ip address add ... broadcast X`).
pub fn add_from(ifa: &InterfaceAddress, found: &mut Vec<Ipv4Addr>) {
    let ipv4 = |addr: Option<nix::sys::socket::SockaddrStorage>| {
        addr.and_then(|a| a.as_sockaddr_in().map(|a| a.ip()))
    };
    let (Some(addr), Some(mask)) = (ipv4(ifa.address), ipv4(ifa.netmask)) else {
        return;
    };
    let Ok(prefix) = Ipv4Net::new(addr, u32::from(mask).leading_ones() as u8) else {
        return;
    };
    found.extend(directed_broadcast(prefix));
    // An explicit one counts if it is a host address of the prefix other than ours:
    // glibc reports the address itself where none was configured, and the field is
    // shared with a point-to-point peer's address.
    found.extend(ipv4(ifa.broadcast).filter(|brd| *brd != addr && prefix.contains(brd)));
}

/// The list the filters hold: the first [`MAX_BROADCASTS`] of `found`, with a warning
/// when `interface` has more.
pub fn bounded(interface: &str, found: &[Ipv4Addr]) -> Broadcasts {
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
    list
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_list() {
        assert_eq!(describe(&Broadcasts::NONE), "none");
        let list = Broadcasts::new([
            "192.0.2.255".parse().unwrap(),
            "10.255.255.255".parse().unwrap(),
        ]);
        assert_eq!(describe(&list), "192.0.2.255, 10.255.255.255");
    }

    #[test]
    fn keeps_the_first_ones_the_filters_hold() {
        let found: Vec<Ipv4Addr> = (0..=MAX_BROADCASTS as u8)
            .map(|i| Ipv4Addr::new(10, i, 255, 255))
            .collect();
        let list = bounded("eth1", &found);
        assert_eq!(list.iter().count(), MAX_BROADCASTS);
        assert!(list.iter().eq(found[..MAX_BROADCASTS].iter().copied()));
    }
}
