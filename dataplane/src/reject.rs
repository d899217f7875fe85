//! Why a frame is not reflected: one reason per check, in the order the checks run.

use serde::{Deserialize, Serialize};
use strum::VariantArray;

/// Why a frame is not reflected. The discriminants are stable: they index counter
/// arrays and are shared with the XDP program. The snake_case names appear in stats
/// output and metrics labels.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[repr(u8)]
pub enum Reject {
    /// A header does not fit in the frame.
    Truncated = 0,
    /// Broadcast or multicast source MAC.
    SrcMacGroup = 1,
    /// Source MAC equals destination MAC.
    SrcMacIsDst = 2,
    /// Destination MAC is not ours (or, with no exact filter, not unicast).
    DstMacMismatch = 3,
    /// Source MAC outside the configured OUI.
    SrcOuiMismatch = 4,
    /// VLAN-tagged frame while VLAN support is off.
    VlanDisabled = 5,
    /// More stacked VLAN tags than the reflector walks.
    TooManyVlanTags = 6,
    /// EtherType is neither IPv4 nor IPv6.
    NotIp = 7,
    /// IPv6 frame while IPv6 support is off.
    Ipv6Disabled = 8,
    /// IP version field or IPv4 header length is invalid.
    BadIpHeader = 9,
    /// IP or UDP length fields disagree with the frame, or bytes follow the IP datagram
    /// beyond Ethernet's minimum-frame padding.
    LengthMismatch = 10,
    /// IPv4 or IPv6 fragment.
    Fragment = 11,
    /// Multicast, broadcast or unspecified source IP (also IPv4-mapped in IPv6).
    SrcIpInvalid = 12,
    /// Multicast, broadcast or unspecified destination IP (it would become the source;
    /// also IPv4-mapped in IPv6).
    DstIpInvalid = 13,
    /// Not UDP (or an IPv6 header chain the reflector does not walk).
    NotUdp = 14,
    /// UDP destination port differs from the configured one.
    PortMismatch = 15,
    /// No enabled signature in the UDP payload.
    NoSignature = 16,
    /// Sent to the STAMP port but shorter than an unauthenticated STAMP test packet.
    StampTooShort = 17,
    /// Sent to the STAMP port *from* the STAMP port: another reflector's answer.
    /// Answering it would let two reflectors (one fooled by a spoofed packet) answer
    /// each other for ever.
    StampFromReflector = 18,
    /// Source IP outside the configured allow-list (decided by the worker's
    /// [`crate::safety`] policy, after classification).
    SourceNotAllowed = 19,
    /// Over the per-source rate limit ([`crate::safety`]).
    RateLimited = 20,
    /// Arrived after the loop timeout ended reflection ([`crate::safety`]).
    LoopTimeout = 21,
    /// A valid frame longer than the packet path can carry back (its buffers, or an
    /// AF_XDP socket without multi-buffer support): counted rather than lost. Decided
    /// by the path (the XDP program, the platform), never by [`crate::classify()`].
    TooLarge = 22,
    /// Source or destination IP is the directed-broadcast address of an IPv4 prefix
    /// configured on the interface ([`crate::filter::Broadcasts`]), also IPv4-mapped
    /// in IPv6: answered, it would go to (or come from) every host of the subnet.
    DirectedBroadcast = 23,
    /// Source IP equals destination IP: the answer would go back to the target itself.
    SrcIpIsDst = 24,
    /// Loopback source IP (127.0.0.0/8, ::1, or IPv4-mapped 127.0.0.0/8): a martian,
    /// never seen on a wire from a real host.
    SrcIpLoopback = 25,
    /// Loopback destination IP (127.0.0.0/8, ::1, IPv4-mapped 127.0.0.0/8): it would
    /// become the answer's source.
    DstIpLoopback = 26,
}

impl Reject {
    pub const COUNT: usize = <Reject as VariantArray>::VARIANTS.len();
    /// Every reason, in discriminant order.
    pub const ALL: [Reject; Reject::COUNT] = crate::variants::array(Reject::VARIANTS);

    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Decided by the worker's [`crate::safety`] policy after classification: never
    /// returned by [`crate::classify()`], nor by the XDP and classic-BPF filters.
    pub const fn is_policy(self) -> bool {
        matches!(
            self,
            Reject::SourceNotAllowed | Reject::RateLimited | Reject::LoopTimeout
        )
    }

    /// Decided by the packet path's limits (the frame is valid): never returned by
    /// [`crate::classify()`] nor by the classic-BPF filter.
    pub const fn is_path_limit(self) -> bool {
        matches!(self, Reject::TooLarge)
    }

    /// Stable snake_case name used in stats output and metrics labels.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_discriminant_order() {
        assert_eq!(Reject::COUNT, 27);
        for (i, reason) in Reject::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason}");
        }
    }

    #[test]
    fn names_are_the_stable_snake_case_labels() {
        // Metrics labels and JSON keys: these strings must never change.
        let expected = [
            (Reject::Truncated, "truncated"),
            (Reject::SrcMacGroup, "src_mac_group"),
            (Reject::SrcMacIsDst, "src_mac_is_dst"),
            (Reject::DstMacMismatch, "dst_mac_mismatch"),
            (Reject::SrcOuiMismatch, "src_oui_mismatch"),
            (Reject::VlanDisabled, "vlan_disabled"),
            (Reject::TooManyVlanTags, "too_many_vlan_tags"),
            (Reject::NotIp, "not_ip"),
            (Reject::Ipv6Disabled, "ipv6_disabled"),
            (Reject::BadIpHeader, "bad_ip_header"),
            (Reject::LengthMismatch, "length_mismatch"),
            (Reject::Fragment, "fragment"),
            (Reject::SrcIpInvalid, "src_ip_invalid"),
            (Reject::DstIpInvalid, "dst_ip_invalid"),
            (Reject::NotUdp, "not_udp"),
            (Reject::PortMismatch, "port_mismatch"),
            (Reject::NoSignature, "no_signature"),
            (Reject::StampTooShort, "stamp_too_short"),
            (Reject::StampFromReflector, "stamp_from_reflector"),
            (Reject::SourceNotAllowed, "source_not_allowed"),
            (Reject::RateLimited, "rate_limited"),
            (Reject::LoopTimeout, "loop_timeout"),
            (Reject::TooLarge, "too_large"),
            (Reject::DirectedBroadcast, "directed_broadcast"),
            (Reject::SrcIpIsDst, "src_ip_is_dst"),
            (Reject::SrcIpLoopback, "src_ip_loopback"),
            (Reject::DstIpLoopback, "dst_ip_loopback"),
        ];
        assert_eq!(expected.len(), Reject::COUNT);
        for (reason, name) in expected {
            assert_eq!(reason.name(), name);
            assert_eq!(reason.to_string(), name);
        }
        let policy: Vec<_> = Reject::ALL.into_iter().filter(|r| r.is_policy()).collect();
        assert_eq!(
            policy,
            [
                Reject::SourceNotAllowed,
                Reject::RateLimited,
                Reject::LoopTimeout
            ]
        );
    }
}
