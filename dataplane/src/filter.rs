//! What a reflector instance accepts: the user-facing filter settings.

use crate::mac::{MacAddr, Oui};
use crate::signature::SignatureSet;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// NetAlly's (formerly Fluke Networks') OUI, the default source-OUI filter.
pub const NETALLY_OUI: Oui = Oui([0x00, 0xC0, 0x17]);
/// Default UDP destination port of ITO test frames.
pub const DEFAULT_UDP_PORT: u16 = 3842;
/// The STAMP well-known port (RFC 8762 section 4.1).
pub const DEFAULT_STAMP_PORT: u16 = 862;

/// Which destination MAC addresses a frame may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DstMacFilter {
    /// Exactly this address: normally the interface's own unicast MAC.
    Exact(MacAddr),
    /// Any unicast address (offline captures, promiscuous set-ups). Group addresses are
    /// still refused: reflected, they would become a multicast source.
    AnyUnicast,
}

/// The acceptance settings of one reflector. Every platform's kernel-side filter (XDP,
/// classic BPF) is configured from the same value, so they agree with [`crate::classify()`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub dst_mac: DstMacFilter,
    /// Required first three bytes of the source MAC; `None` disables the filter.
    pub src_oui: Option<Oui>,
    /// Required UDP destination port of signature frames; 0 accepts any port.
    pub udp_port: u16,
    /// UDP destination port of STAMP test packets, answered when `signatures` holds
    /// [`crate::Signature::Stamp`]. Checked before `udp_port`, and STAMP packets skip
    /// the source-OUI filter: STAMP senders are ordinary hosts.
    pub stamp_port: u16,
    pub signatures: SignatureSet,
    pub ipv6: bool,
    pub vlan: bool,
    /// The directed-broadcast addresses of the interface's IPv4 prefixes, learned from
    /// the interface (not a user setting): frames from or to them are refused.
    #[serde(default)]
    pub broadcasts: Broadcasts,
}

impl Filter {
    /// The defaults of the spec for an interface whose MAC is `own_mac`.
    pub fn for_interface(own_mac: MacAddr) -> Self {
        Filter {
            dst_mac: DstMacFilter::Exact(own_mac),
            ..Filter::default()
        }
    }
}

impl Default for Filter {
    /// Spec defaults with no interface to take a MAC from: any unicast destination.
    fn default() -> Self {
        Filter {
            dst_mac: DstMacFilter::AnyUnicast,
            src_oui: Some(NETALLY_OUI),
            udp_port: DEFAULT_UDP_PORT,
            stamp_port: DEFAULT_STAMP_PORT,
            signatures: SignatureSet::ALL,
            ipv6: true,
            vlan: true,
            broadcasts: Broadcasts::NONE,
        }
    }
}

/// How many directed-broadcast addresses a [`Filter`] holds: a fixed array, so the
/// filter stays `Copy`, the per-frame lookup allocates nothing, and the XDP and
/// classic-BPF programs can hold the same list (the classic-BPF program compares each
/// address inline, for both endpoints of both IP versions, within macOS's limit of 512
/// instructions).
pub const MAX_BROADCASTS: usize = 16;

/// The directed-broadcast addresses of the IPv4 prefixes configured on an interface
/// (192.0.2.255 for 192.0.2.1/24). A frame to one of them is unicast to our MAC but
/// addressed to every host of the subnet; reflected, it would leave from that address.
/// Prefixes of length 31 and 32 have no broadcast address (RFC 3021).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Ipv4Addr>", into = "Vec<Ipv4Addr>")]
pub struct Broadcasts {
    /// `u32::from(addr)` of each address; only the first `len` count.
    addrs: [u32; MAX_BROADCASTS],
    len: u8,
}

impl Broadcasts {
    pub const NONE: Broadcasts = Broadcasts {
        addrs: [0; MAX_BROADCASTS],
        len: 0,
    };

    /// The distinct addresses of `addrs`, leaving out the unspecified and limited
    /// broadcast addresses (refused anyway). Past [`MAX_BROADCASTS`] the rest are left
    /// out too: [`Broadcasts::is_full`] tells the caller to warn.
    pub fn new(addrs: impl IntoIterator<Item = Ipv4Addr>) -> Broadcasts {
        let mut list = Broadcasts::NONE;
        for addr in addrs {
            let addr = u32::from(addr);
            if addr == 0 || addr == u32::MAX || list.as_u32s().contains(&addr) {
                continue;
            }
            if usize::from(list.len) == MAX_BROADCASTS {
                break;
            }
            list.addrs[usize::from(list.len)] = addr;
            list.len += 1;
        }
        list
    }

    /// The broadcast addresses of `prefixes` (see [`directed_broadcast`]).
    pub fn of_prefixes(prefixes: impl IntoIterator<Item = Ipv4Net>) -> Broadcasts {
        Broadcasts::new(prefixes.into_iter().filter_map(directed_broadcast))
    }

    /// Is `addr` (as `u32::from(Ipv4Addr)`) one of the addresses?
    #[inline(always)]
    #[allow(clippy::manual_contains)]
    pub fn contains(&self, addr: u32) -> bool {
        // A loop the compiler inlines: `<[u32]>::contains` is an out-of-line call per
        // endpoint per frame, even for the usual empty list.
        self.as_u32s().iter().any(|&known| known == addr)
    }

    /// Is `a` or `b` one of the addresses? One pass for both ends of a frame.
    #[inline(always)]
    pub fn contains_either(&self, a: u32, b: u32) -> bool {
        // `take` rather than `as_u32s`: no bounds check of `len` against the array.
        let mut listed = self.addrs.iter().take(self.len());
        listed.any(|&known| (known == a) | (known == b))
    }

    /// The addresses as `u32::from(Ipv4Addr)`, the form the kernel filters compare.
    pub fn as_u32s(&self) -> &[u32] {
        &self.addrs[..usize::from(self.len)]
    }

    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.as_u32s().iter().map(|&addr| Ipv4Addr::from(addr))
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No room for another address: any further ones were left out.
    pub fn is_full(&self) -> bool {
        self.len() == MAX_BROADCASTS
    }
}

impl Default for Broadcasts {
    fn default() -> Self {
        Broadcasts::NONE
    }
}

impl fmt::Debug for Broadcasts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<Ipv4Addr>> for Broadcasts {
    fn from(addrs: Vec<Ipv4Addr>) -> Self {
        Broadcasts::new(addrs)
    }
}

impl From<Broadcasts> for Vec<Ipv4Addr> {
    fn from(list: Broadcasts) -> Self {
        list.iter().collect()
    }
}

/// A [`Broadcasts`] list that the runner replaces while the workers run (an address was
/// added to or removed from the interface). A worker checks the version once per batch,
/// one load of a line that rarely changes, and takes the lock only when it did.
#[derive(Debug, Default)]
pub struct SharedBroadcasts {
    version: AtomicU64,
    list: Mutex<Broadcasts>,
}

impl SharedBroadcasts {
    /// Replace the list; workers pick it up at their next batch.
    pub fn store(&self, list: Broadcasts) {
        *self.list.lock().unwrap_or_else(PoisonError::into_inner) = list;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The list, if it was replaced since version `seen` (which is brought up to date).
    #[inline]
    pub fn changed_since(&self, seen: &mut u64) -> Option<Broadcasts> {
        let version = self.version.load(Ordering::Acquire);
        if version == *seen {
            return None;
        }
        *seen = version;
        Some(*self.list.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The directed-broadcast address of `prefix` (all host bits set), if it has one: not
/// for /31 point-to-point links (RFC 3021) nor /32 host routes, as the Linux kernel
/// installs its broadcast routes.
pub fn directed_broadcast(prefix: Ipv4Net) -> Option<Ipv4Addr> {
    (prefix.prefix_len() < 31).then(|| prefix.broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    #[test]
    fn broadcast_of_each_prefix_length() {
        let b = |text| directed_broadcast(net(text)).map(|a| a.to_string());
        assert_eq!(b("192.0.2.7/24").as_deref(), Some("192.0.2.255"));
        assert_eq!(b("198.51.100.1/25").as_deref(), Some("198.51.100.127"));
        assert_eq!(b("10.1.2.3/8").as_deref(), Some("10.255.255.255"));
        assert_eq!(b("203.0.113.1/30").as_deref(), Some("203.0.113.3"));
        assert_eq!(b("203.0.113.0/31"), None);
        assert_eq!(b("203.0.113.9/32"), None);
    }

    #[test]
    fn list_is_distinct_bounded_and_skips_addresses_refused_anyway() {
        let list = Broadcasts::of_prefixes([
            net("192.0.2.1/24"),
            net("192.0.2.2/24"),
            net("0.0.0.0/0"),
            net("198.51.100.1/31"),
        ]);
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            [Ipv4Addr::new(192, 0, 2, 255)]
        );
        assert!(list.contains(u32::from(Ipv4Addr::new(192, 0, 2, 255))));
        assert!(!list.contains(u32::from(Ipv4Addr::new(192, 0, 2, 254))));
        let many = Broadcasts::new((0..100).map(|i| Ipv4Addr::new(10, 0, i, 255)));
        assert_eq!(many.len(), MAX_BROADCASTS);
        assert!(many.is_full() && !list.is_full());
        assert!(Broadcasts::default().is_empty());
    }

    #[test]
    fn a_replaced_list_is_seen_once() {
        let shared = SharedBroadcasts::default();
        let mut seen = 0;
        assert_eq!(shared.changed_since(&mut seen), None);
        let list = Broadcasts::of_prefixes([net("192.0.2.1/24")]);
        shared.store(list);
        assert_eq!(shared.changed_since(&mut seen), Some(list));
        assert_eq!(shared.changed_since(&mut seen), None);
    }

    #[test]
    fn serialises_as_a_list_of_addresses() {
        let list = Broadcasts::new([Ipv4Addr::new(192, 0, 2, 255)]);
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["192.0.2.255"]"#);
        assert_eq!(serde_json::from_str::<Broadcasts>(&json).unwrap(), list);
        let filter: Filter = serde_json::from_str(
            &serde_json::to_string(&Filter::default())
                .unwrap()
                .replace(r#","broadcasts":[]"#, ""),
        )
        .unwrap();
        assert_eq!(
            filter,
            Filter::default(),
            "older filters without the field still load"
        );
    }
}
