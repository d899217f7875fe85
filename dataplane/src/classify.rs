//! The acceptance decision: is this frame a test frame we may reflect, and if not, why.
//!
//! The checks run in a fixed order and the first failure is the reason. The XDP program
//! (`xdp-filter`) and the classic-BPF program (`platform-macos`) follow the same order,
//! and their tests compare verdicts with this function frame by frame.

use crate::filter::{DstMacFilter, Filter};
use crate::parse::*;
use crate::signature::{Signature, SIGNATURES};
use crate::stamp::STAMP_MIN_PAYLOAD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a frame is not reflected. The discriminants are stable: they index counter
/// arrays and are shared with the XDP program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// IP or UDP length fields disagree with the frame.
    LengthMismatch = 10,
    /// IPv4 or IPv6 fragment.
    Fragment = 11,
    /// Multicast, broadcast or unspecified source IP.
    SrcIpInvalid = 12,
    /// Multicast, broadcast or unspecified destination IP (it would become the source).
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
}

impl Reject {
    pub const COUNT: usize = 22;
    pub const ALL: [Reject; Reject::COUNT] = [
        Reject::Truncated,
        Reject::SrcMacGroup,
        Reject::SrcMacIsDst,
        Reject::DstMacMismatch,
        Reject::SrcOuiMismatch,
        Reject::VlanDisabled,
        Reject::TooManyVlanTags,
        Reject::NotIp,
        Reject::Ipv6Disabled,
        Reject::BadIpHeader,
        Reject::LengthMismatch,
        Reject::Fragment,
        Reject::SrcIpInvalid,
        Reject::DstIpInvalid,
        Reject::NotUdp,
        Reject::PortMismatch,
        Reject::NoSignature,
        Reject::StampTooShort,
        Reject::StampFromReflector,
        Reject::SourceNotAllowed,
        Reject::RateLimited,
        Reject::LoopTimeout,
    ];

    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Decided by the worker's [`crate::safety`] policy after classification: never
    /// returned by [`classify`], nor by the XDP and classic-BPF filters.
    pub const fn is_policy(self) -> bool {
        matches!(
            self,
            Reject::SourceNotAllowed | Reject::RateLimited | Reject::LoopTimeout
        )
    }

    /// Stable snake_case name used in stats output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Reject::Truncated => "truncated",
            Reject::SrcMacGroup => "src_mac_group",
            Reject::SrcMacIsDst => "src_mac_is_dst",
            Reject::DstMacMismatch => "dst_mac_mismatch",
            Reject::SrcOuiMismatch => "src_oui_mismatch",
            Reject::VlanDisabled => "vlan_disabled",
            Reject::TooManyVlanTags => "too_many_vlan_tags",
            Reject::NotIp => "not_ip",
            Reject::Ipv6Disabled => "ipv6_disabled",
            Reject::BadIpHeader => "bad_ip_header",
            Reject::LengthMismatch => "length_mismatch",
            Reject::Fragment => "fragment",
            Reject::SrcIpInvalid => "src_ip_invalid",
            Reject::DstIpInvalid => "dst_ip_invalid",
            Reject::NotUdp => "not_udp",
            Reject::PortMismatch => "port_mismatch",
            Reject::NoSignature => "no_signature",
            Reject::StampTooShort => "stamp_too_short",
            Reject::StampFromReflector => "stamp_from_reflector",
            Reject::SourceNotAllowed => "source_not_allowed",
            Reject::RateLimited => "rate_limited",
            Reject::LoopTimeout => "loop_timeout",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A frame that may be reflected: where its layers are and which signature it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub layout: Layout,
    pub signature: Signature,
}

/// Decide whether `frame` is a test frame that `filter` lets us reflect.
///
/// Never panics and never reads past `frame`, whatever its contents. The checks that
/// protect the network (MACs, IP endpoints, lengths, fragments) apply to every frame;
/// a frame to the STAMP port is then a STAMP test packet, and any other frame must
/// pass the ITO port, source-OUI and signature checks. The OUI check comes after the
/// port so that STAMP senders, which are ordinary hosts, need not carry NetAlly's OUI.
#[inline]
pub fn classify(frame: &[u8], filter: &Filter) -> Result<Accepted, Reject> {
    if frame.len() < ETH_HEADER_LEN {
        return Err(Reject::Truncated);
    }
    check_macs(frame, filter)?;
    let (ethertype, l3, vlan_tags) = walk_vlan_tags(frame, filter)?;
    let (ip, l4, udp_len) = match ethertype {
        ETHERTYPE_IPV4 => {
            let (l4, udp_len) = walk_ipv4(frame, l3)?;
            (IpVersion::V4, l4, udp_len)
        }
        ETHERTYPE_IPV6 if filter.ipv6 => {
            let (l4, udp_len) = walk_ipv6(frame, l3)?;
            (IpVersion::V6, l4, udp_len)
        }
        ETHERTYPE_IPV6 => return Err(Reject::Ipv6Disabled),
        _ => return Err(Reject::NotIp),
    };
    check_udp_length(frame, l4, udp_len)?;
    let layout = Layout {
        vlan_tags,
        ip,
        l3,
        l4,
        payload_len: udp_len - UDP_HEADER_LEN,
    };
    let port = be16(frame, l4 + UDP_DST_PORT);
    if filter.signatures.contains(Signature::Stamp) && port == filter.stamp_port {
        if be16(frame, l4 + UDP_SRC_PORT) == filter.stamp_port {
            return Err(Reject::StampFromReflector);
        }
        if layout.payload_len < STAMP_MIN_PAYLOAD {
            return Err(Reject::StampTooShort);
        }
        return Ok(Accepted {
            layout,
            signature: Signature::Stamp,
        });
    }
    if filter.udp_port != 0 && port != filter.udp_port {
        return Err(Reject::PortMismatch);
    }
    check_src_oui(frame, filter)?;
    let signature = match_signature(frame, &layout, filter)?;
    Ok(Accepted { layout, signature })
}

fn check_macs(frame: &[u8], filter: &Filter) -> Result<(), Reject> {
    let dst = &frame[ETH_DST..ETH_DST + 6];
    let src = &frame[ETH_SRC..ETH_SRC + 6];
    if is_group_mac(src) {
        return Err(Reject::SrcMacGroup);
    }
    if src == dst {
        return Err(Reject::SrcMacIsDst);
    }
    let dst_ok = match &filter.dst_mac {
        DstMacFilter::Exact(own) => dst == own,
        DstMacFilter::AnyUnicast => !is_group_mac(dst),
    };
    if !dst_ok {
        return Err(Reject::DstMacMismatch);
    }
    Ok(())
}

fn check_src_oui(frame: &[u8], filter: &Filter) -> Result<(), Reject> {
    match &filter.src_oui {
        Some(oui) if frame[ETH_SRC..ETH_SRC + 3] != oui[..] => Err(Reject::SrcOuiMismatch),
        _ => Ok(()),
    }
}

/// Returns the inner EtherType, the offset of the layer-3 header and the tag count.
fn walk_vlan_tags(frame: &[u8], filter: &Filter) -> Result<(u16, usize, u8), Reject> {
    let mut ethertype = be16(frame, ETH_TYPE);
    let mut l3 = ETH_HEADER_LEN;
    let mut tags = 0u8;
    while ethertype == TPID_8021Q || ethertype == TPID_8021AD {
        if !filter.vlan {
            return Err(Reject::VlanDisabled);
        }
        if usize::from(tags) == MAX_VLAN_TAGS {
            return Err(Reject::TooManyVlanTags);
        }
        if frame.len() < l3 + VLAN_TAG_LEN {
            return Err(Reject::Truncated);
        }
        // The tag occupies the old EtherType slot; the next EtherType follows the TCI.
        ethertype = be16(frame, l3 + 2);
        l3 += VLAN_TAG_LEN;
        tags += 1;
    }
    Ok((ethertype, l3, tags))
}

/// Returns the UDP header offset and the UDP length implied by the IPv4 header.
fn walk_ipv4(frame: &[u8], l3: usize) -> Result<(usize, usize), Reject> {
    if frame.len() < l3 + IPV4_MIN_HEADER_LEN {
        return Err(Reject::Truncated);
    }
    let version = frame[l3] >> 4;
    let header_len = usize::from(frame[l3] & 0x0F) * 4;
    if version != 4 || header_len < IPV4_MIN_HEADER_LEN {
        return Err(Reject::BadIpHeader);
    }
    if frame.len() < l3 + header_len {
        return Err(Reject::Truncated);
    }
    let total_len = usize::from(be16(frame, l3 + IPV4_TOTAL_LEN));
    if total_len < header_len || l3 + total_len > frame.len() {
        return Err(Reject::LengthMismatch);
    }
    if be16(frame, l3 + IPV4_FRAG) & IPV4_MF_AND_OFFSET != 0 {
        return Err(Reject::Fragment);
    }
    if frame[l3 + IPV4_PROTOCOL] != IP_PROTO_UDP {
        return Err(Reject::NotUdp);
    }
    if is_invalid_ipv4_endpoint(&frame[l3 + IPV4_SRC..]) {
        return Err(Reject::SrcIpInvalid);
    }
    if is_invalid_ipv4_endpoint(&frame[l3 + IPV4_DST..]) {
        return Err(Reject::DstIpInvalid);
    }
    Ok((l3 + header_len, total_len - header_len))
}

/// Returns the UDP header offset and the UDP length implied by the IPv6 header chain.
fn walk_ipv6(frame: &[u8], l3: usize) -> Result<(usize, usize), Reject> {
    if frame.len() < l3 + IPV6_HEADER_LEN {
        return Err(Reject::Truncated);
    }
    if frame[l3] >> 4 != 6 {
        return Err(Reject::BadIpHeader);
    }
    let payload_len = usize::from(be16(frame, l3 + IPV6_PAYLOAD_LEN));
    let end = l3 + IPV6_HEADER_LEN + payload_len;
    // A zero payload length announces a jumbogram, which never fits an Ethernet frame.
    if payload_len == 0 || end > frame.len() {
        return Err(Reject::LengthMismatch);
    }
    if is_invalid_ipv6_endpoint(&frame[l3 + IPV6_SRC..]) {
        return Err(Reject::SrcIpInvalid);
    }
    if is_invalid_ipv6_endpoint(&frame[l3 + IPV6_DST..]) {
        return Err(Reject::DstIpInvalid);
    }
    let mut next = frame[l3 + IPV6_NEXT_HEADER];
    let mut at = l3 + IPV6_HEADER_LEN;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        match next {
            IP_PROTO_UDP => return Ok((at, end - at)),
            IPV6_EXT_FRAGMENT => return Err(Reject::Fragment),
            IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTIONS => {
                // Next header and length (in 8-octet units past the first 8) lead
                // every skippable extension header.
                if at + 8 > end {
                    return Err(Reject::LengthMismatch);
                }
                next = frame[at];
                at += (usize::from(frame[at + 1]) + 1) * 8;
                if at > end {
                    return Err(Reject::LengthMismatch);
                }
            }
            _ => return Err(Reject::NotUdp),
        }
    }
    Err(Reject::NotUdp)
}

/// `ip_udp_len` is the UDP length the IP layer implies; the UDP header must agree.
fn check_udp_length(frame: &[u8], l4: usize, ip_udp_len: usize) -> Result<(), Reject> {
    if ip_udp_len < UDP_HEADER_LEN {
        return Err(Reject::LengthMismatch);
    }
    let udp_len = usize::from(be16(frame, l4 + UDP_LENGTH));
    if udp_len != ip_udp_len {
        return Err(Reject::LengthMismatch);
    }
    Ok(())
}

#[inline(always)]
fn match_signature(frame: &[u8], layout: &Layout, filter: &Filter) -> Result<Signature, Reject> {
    let payload = &frame[layout.payload()..layout.end()];
    SIGNATURES
        .iter()
        .find(|spec| filter.signatures.contains(spec.signature) && spec.matches(payload))
        .map(|spec| spec.signature)
        .ok_or(Reject::NoSignature)
}
