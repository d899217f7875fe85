//! What a reflector instance accepts: the user-facing filter settings.

use crate::mac::{MacAddr, Oui};
use crate::signature::SignatureSet;
use serde::{Deserialize, Serialize};

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
        }
    }
}
