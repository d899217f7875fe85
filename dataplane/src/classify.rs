//! The acceptance decision: is this frame a test frame we may reflect, and if not, why.
//!
//! The checks run in a fixed order and the first failure is the reason. The XDP program
//! (`xdp-filter`) and the classic-BPF program (`platform-macos`) follow the same order,
//! and their tests compare verdicts with this function frame by frame.

use crate::filter::{DstMacFilter, Filter};
use crate::parse::*;
use crate::reject::Reject;
use crate::signature::{Signature, SIGNATURES, SIGNATURE_SPAN};
use crate::stamp::STAMP_MIN_PAYLOAD;
use crate::wire::ethernet::is_vlan_tpid;
use crate::wire::{ipv4, ipv6};
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6ExtHeader, Ipv6Packet, UdpDatagram, VlanTag};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A frame that may be reflected: where its layers are and which signature it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub layout: Layout,
    pub signature: Signature,
}

/// Decide whether `frame` is a test frame that `filter` lets us reflect.
///
/// Never panics and never reads past `frame`, whatever its contents. The checks that
/// protect the network ([`locate`]: MACs, IP endpoints, lengths, fragments) apply to
/// every frame; a frame to the STAMP port is then a STAMP test packet, and any other
/// frame must pass the ITO port, source-OUI and signature checks. The OUI check comes
/// after the port so that STAMP senders, which are ordinary hosts, need not carry
/// NetAlly's OUI.
#[inline(always)]
pub fn classify(frame: &[u8], filter: &Filter) -> Result<Accepted, Reject> {
    accept(frame, locate(frame, filter)?, filter)
}

/// The second half of [`classify()`], on a frame whose headers [`locate`] accepted:
/// STAMP by port, otherwise the ITO port, source-OUI and signature checks.
#[inline(always)]
fn accept(frame: &[u8], layout: Layout, filter: &Filter) -> Result<Accepted, Reject> {
    let udp = UdpDatagram::new_unchecked(&frame[layout.l4..]);
    let port = udp.dst_port();
    if filter.signatures.contains(Signature::Stamp) && port == filter.stamp_port {
        if udp.src_port() == filter.stamp_port {
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

/// The first half of [`classify()`]: the checks on the Ethernet, IP and UDP headers,
/// and where each layer starts. Everything after (ports, OUI, signatures) reads the
/// UDP header and payload this returns.
#[inline(always)]
pub fn locate(frame: &[u8], filter: &Filter) -> Result<Layout, Reject> {
    let ethertype = check_ethernet(frame, filter)?;
    match locate_plain_ipv4(frame, ethertype, filter)? {
        Some(layout) => Ok(layout),
        None => locate_any(frame, ethertype, filter),
    }
}

/// The Ethernet header's checks; returns its EtherType (or first TPID).
#[inline(always)]
fn check_ethernet(frame: &[u8], filter: &Filter) -> Result<u16, Reject> {
    let ethernet = EthernetFrame::new_checked(frame).map_err(|_| Reject::Truncated)?;
    check_macs(&ethernet, filter)?;
    Ok(ethernet.ethertype())
}

/// [`locate`] for untagged IPv4 without options, nearly every test frame: `None` if
/// the frame is not one, for [`locate_any`] to walk. The same checks in the same order
/// as that walk, but the headers lie at fixed offsets, so they are read through one
/// fixed-size view of the frame's first 42 bytes and no read needs a bounds check or
/// an offset computed at run time. Always inlined, so the layout reaches the caller in
/// registers.
#[inline(always)]
fn locate_plain_ipv4(
    frame: &[u8],
    ethertype: u16,
    filter: &Filter,
) -> Result<Option<Layout>, Reject> {
    let Some(headers) = frame.first_chunk::<PLAIN_IPV4_HEADERS_LEN>() else {
        return Ok(None);
    };
    let ip = Ipv4Packet::new_unchecked(&headers[ETH_HEADER_LEN..PLAIN_IPV4_UDP]);
    if ethertype != ETHERTYPE_IPV4 || !ip.is_plain_ipv4() {
        return Ok(None);
    }
    let (_, udp_len) = walk_ipv4(ip, frame.len() - ETH_HEADER_LEN, filter)?;
    check_udp_length(headers, PLAIN_IPV4_UDP, udp_len)?;
    Ok(Some(Layout {
        vlan_tags: 0,
        ip: IpVersion::V4,
        l3: ETH_HEADER_LEN,
        l4: PLAIN_IPV4_UDP,
        payload_len: udp_len - UDP_HEADER_LEN,
    }))
}

/// [`locate`] for every other frame (VLAN tags, IPv4 options, IPv6, non-IP, short),
/// after the MAC checks.
fn locate_any(frame: &[u8], ethertype: u16, filter: &Filter) -> Result<Layout, Reject> {
    let (ethertype, l3, vlan_tags) = walk_vlan_tags(frame, ethertype, filter)?;
    let (ip, l4, udp_len) = match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|_| Reject::Truncated)?;
            let (header_len, udp_len) = walk_ipv4(ip, frame.len() - l3, filter)?;
            (IpVersion::V4, l3 + header_len, udp_len)
        }
        ETHERTYPE_IPV6 if filter.ipv6 => {
            let (l4, udp_len) = walk_ipv6(frame, l3, filter)?;
            (IpVersion::V6, l4, udp_len)
        }
        ETHERTYPE_IPV6 => return Err(Reject::Ipv6Disabled),
        _ => return Err(Reject::NotIp),
    };
    check_udp_length(frame, l4, udp_len)?;
    Ok(Layout {
        vlan_tags,
        ip,
        l3,
        l4,
        payload_len: udp_len - UDP_HEADER_LEN,
    })
}

fn check_macs(ethernet: &EthernetFrame<&[u8]>, filter: &Filter) -> Result<(), Reject> {
    if ethernet.src_addr().is_group() {
        return Err(Reject::SrcMacGroup);
    }
    if ethernet.src_is_dst() {
        return Err(Reject::SrcMacIsDst);
    }
    let dst_ok = match &filter.dst_mac {
        DstMacFilter::Exact(own) => ethernet.dst_is(own),
        DstMacFilter::AnyUnicast => !ethernet.dst_addr().is_group(),
    };
    if !dst_ok {
        return Err(Reject::DstMacMismatch);
    }
    Ok(())
}

#[inline(always)]
fn check_src_oui(frame: &[u8], filter: &Filter) -> Result<(), Reject> {
    match filter.src_oui {
        Some(oui) if EthernetFrame::new_unchecked(frame).src_addr().oui() != oui => {
            Err(Reject::SrcOuiMismatch)
        }
        _ => Ok(()),
    }
}

/// Returns the inner EtherType, the offset of the layer-3 header and the tag count.
fn walk_vlan_tags(
    frame: &[u8],
    mut ethertype: u16,
    filter: &Filter,
) -> Result<(u16, usize, u8), Reject> {
    let mut l3 = ETH_HEADER_LEN;
    let mut tags = 0u8;
    while is_vlan_tpid(ethertype) {
        if !filter.vlan {
            return Err(Reject::VlanDisabled);
        }
        if usize::from(tags) == MAX_VLAN_TAGS {
            return Err(Reject::TooManyVlanTags);
        }
        let tag = VlanTag::new_checked(&frame[l3..]).map_err(|_| Reject::Truncated)?;
        ethertype = tag.ethertype();
        l3 += VLAN_TAG_LEN;
        tags += 1;
    }
    Ok((ethertype, l3, tags))
}

/// Returns the IPv4 header's length and the UDP length it implies; `from_l3` is the
/// frame's length from the IP header on. Always inlined: the common case, whose call
/// (register saves, a result returned through memory) took a quarter of its own
/// profile samples.
#[inline(always)]
fn walk_ipv4<T: AsRef<[u8]>>(
    ip: Ipv4Packet<T>,
    from_l3: usize,
    filter: &Filter,
) -> Result<(usize, usize), Reject> {
    let header_len = ip.header_len();
    if ip.version() != 4 || header_len < IPV4_MIN_HEADER_LEN {
        return Err(Reject::BadIpHeader);
    }
    if from_l3 < header_len {
        return Err(Reject::Truncated);
    }
    let total_len = usize::from(ip.total_len());
    if total_len < header_len || total_len > from_l3 {
        return Err(Reject::LengthMismatch);
    }
    check_trailer(from_l3, total_len)?;
    if ip.is_fragment() {
        return Err(Reject::Fragment);
    }
    if ip.protocol() != IP_PROTO_UDP {
        return Err(Reject::NotUdp);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !ordinary_ipv4_hosts(src, dst, filter) {
        check_ipv4_endpoints(src, dst, filter)?;
    }
    Ok((header_len, total_len - header_len))
}

/// Returns the UDP header offset and the UDP length implied by the IPv6 header chain.
fn walk_ipv6(frame: &[u8], l3: usize, filter: &Filter) -> Result<(usize, usize), Reject> {
    let ip = Ipv6Packet::new_checked(&frame[l3..]).map_err(|_| Reject::Truncated)?;
    if ip.version() != 6 {
        return Err(Reject::BadIpHeader);
    }
    let payload_len = usize::from(ip.payload_len());
    let end = l3 + IPV6_HEADER_LEN + payload_len;
    // A zero payload length announces a jumbogram, which never fits an Ethernet frame.
    if payload_len == 0 || end > frame.len() {
        return Err(Reject::LengthMismatch);
    }
    check_trailer(frame.len() - l3, IPV6_HEADER_LEN + payload_len)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    check_endpoints(
        ipv6_endpoint(src, filter),
        ipv6_endpoint(dst, filter),
        src == dst,
    )?;
    let mut next = ip.next_header();
    let mut at = l3 + IPV6_HEADER_LEN;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        match next {
            IP_PROTO_UDP => return Ok((at, end - at)),
            IPV6_EXT_FRAGMENT => return Err(Reject::Fragment),
            IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTIONS => {
                let header = Ipv6ExtHeader::new_checked(&frame[at..end])
                    .map_err(|_| Reject::LengthMismatch)?;
                next = header.next_header();
                at += header.header_len();
                if at > end {
                    return Err(Reject::LengthMismatch);
                }
            }
            _ => return Err(Reject::NotUdp),
        }
    }
    Err(Reject::NotUdp)
}

/// A frame ends with its IP datagram (`datagram_len` bytes), or with the padding that
/// brings a short one up to Ethernet's minimum payload; `from_l3` is the frame's length
/// from the IP header on. Anything longer carries a trailer the datagram's own lengths
/// disown, which reflecting would send back as if it were part of the test frame.
#[inline(always)]
fn check_trailer(from_l3: usize, datagram_len: usize) -> Result<(), Reject> {
    if from_l3 > datagram_len.max(ETH_MIN_PAYLOAD) {
        return Err(Reject::LengthMismatch);
    }
    Ok(())
}

/// What an IP address is, as far as answering from or to it goes. One address is one
/// kind: invalid before loopback before broadcast.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Host,
    /// Unspecified, limited broadcast or multicast.
    Invalid,
    Loopback,
    /// A directed broadcast of one of the interface's prefixes.
    Broadcast,
}

/// A quick yes for nearly every frame: two different addresses, neither a directed
/// broadcast, whose first octets lie in 1..=126 or 128..=223, so neither is
/// unspecified, loopback, multicast or the limited broadcast. It never says yes where
/// [`check_ipv4_endpoints`] refuses; a no (0.0.0.0/8 and 240.0.0.0/4 hosts included)
/// runs those checks. Both octet tests and one pass over the broadcasts cost less than
/// classifying each address.
#[inline(always)]
fn ordinary_ipv4_hosts(src: Ipv4Addr, dst: Ipv4Addr, filter: &Filter) -> bool {
    let ordinary = |addr: Ipv4Addr| {
        let octet = addr.octets()[0];
        (octet.wrapping_sub(1) < 223) & (octet != 127)
    };
    ordinary(src)
        & ordinary(dst)
        & (src != dst)
        & !filter
            .broadcasts
            .contains_either(u32::from(src), u32::from(dst))
}

/// The IPv4 endpoint checks in full, for the frames [`ordinary_ipv4_hosts`] does not
/// vouch for. Out of line: only refused frames and rare addresses come here.
#[cold]
#[inline(never)]
fn check_ipv4_endpoints(src: Ipv4Addr, dst: Ipv4Addr, filter: &Filter) -> Result<(), Reject> {
    check_endpoints(
        ipv4_endpoint(src, filter),
        ipv4_endpoint(dst, filter),
        src == dst,
    )
}

#[inline(always)]
fn ipv4_endpoint(addr: Ipv4Addr, filter: &Filter) -> Endpoint {
    // Every test first, then one choice: flags and selects rather than a branch per
    // test, for both addresses of every frame.
    let (invalid, loopback) = (ipv4::is_invalid_endpoint(addr), addr.is_loopback());
    let broadcast = filter.broadcasts.contains(u32::from(addr));
    if invalid {
        Endpoint::Invalid
    } else if loopback {
        Endpoint::Loopback
    } else if broadcast {
        Endpoint::Broadcast
    } else {
        Endpoint::Host
    }
}

/// An IPv4-mapped address (::ffff:0:0/96) is judged by its IPv4 part, so a mapped
/// multicast, loopback or broadcast address is refused as the IPv4 one is.
#[inline(always)]
fn ipv6_endpoint(addr: Ipv6Addr, filter: &Filter) -> Endpoint {
    if let Some(v4) = addr.to_ipv4_mapped() {
        ipv4_endpoint(v4, filter)
    } else if ipv6::is_invalid_endpoint(addr) {
        Endpoint::Invalid
    } else if addr.is_loopback() {
        Endpoint::Loopback
    } else {
        Endpoint::Host
    }
}

/// The IP endpoint checks, in the order every filter applies them: the source's kind,
/// the destination's, a broadcast on either side, then source == destination.
#[inline(always)]
fn check_endpoints(src: Endpoint, dst: Endpoint, same: bool) -> Result<(), Reject> {
    // Two different ordinary hosts, nearly every frame: one test instead of the chain.
    if (src == Endpoint::Host) & (dst == Endpoint::Host) & !same {
        return Ok(());
    }
    match (src, dst) {
        (Endpoint::Invalid, _) => Err(Reject::SrcIpInvalid),
        (Endpoint::Loopback, _) => Err(Reject::SrcIpLoopback),
        (_, Endpoint::Invalid) => Err(Reject::DstIpInvalid),
        (_, Endpoint::Loopback) => Err(Reject::DstIpLoopback),
        (Endpoint::Broadcast, _) | (_, Endpoint::Broadcast) => Err(Reject::DirectedBroadcast),
        _ if same => Err(Reject::SrcIpIsDst),
        _ => Ok(()),
    }
}

/// `ip_udp_len` is the UDP length the IP layer implies; the UDP header must agree.
#[inline(always)]
fn check_udp_length(frame: &[u8], l4: usize, ip_udp_len: usize) -> Result<(), Reject> {
    if ip_udp_len < UDP_HEADER_LEN {
        return Err(Reject::LengthMismatch);
    }
    let udp = UdpDatagram::new_unchecked(&frame[l4..]);
    if usize::from(udp.len()) != ip_udp_len {
        return Err(Reject::LengthMismatch);
    }
    Ok(())
}

/// The first enabled row of [`SIGNATURES`] whose bytes the payload carries.
#[inline(always)]
fn match_signature(frame: &[u8], layout: &Layout, filter: &Filter) -> Result<Signature, Reject> {
    let payload = &frame[layout.payload()..layout.end()];
    // Nearly every payload is long enough for every row: seen through a fixed-size
    // view, the rows' ranges are known in bounds and need no length test each.
    match payload.first_chunk::<SIGNATURE_SPAN>() {
        Some(span) => first_signature(span, filter),
        None => first_signature(payload, filter),
    }
}

/// A plain loop rather than `Iterator::find`, whose call the compiler may leave out
/// of line: then each row's bytes are no longer constants and every compare is a call
/// to `memcmp`.
#[inline(always)]
fn first_signature(payload: &[u8], filter: &Filter) -> Result<Signature, Reject> {
    for spec in &SIGNATURES {
        if filter.signatures.contains(spec.signature) && spec.matches(payload) {
            return Ok(spec.signature);
        }
    }
    Err(Reject::NoSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{reference_filter, reference_filter_with_prefixes, reference_frames};
    use proptest::prelude::*;

    /// [`locate`] as it would be without its fixed-offset path for plain IPv4.
    fn locate_general(frame: &[u8], filter: &Filter) -> Result<Layout, Reject> {
        locate_any(frame, check_ethernet(frame, filter)?, filter)
    }

    /// [`classify()`] likewise.
    fn classify_general(frame: &[u8], filter: &Filter) -> Result<Accepted, Reject> {
        accept(frame, locate_general(frame, filter)?, filter)
    }

    #[test]
    fn ordinary_hosts_are_vouched_for_only_where_the_full_checks_accept() {
        let filter = reference_filter_with_prefixes();
        let broadcasts: Vec<Ipv4Addr> = filter.broadcasts.iter().collect();
        assert!(!broadcasts.is_empty());
        // Every first octet, with host parts at the edges, and the broadcasts.
        let mut addrs: Vec<Ipv4Addr> = (0..=255u8)
            .flat_map(|octet| [[octet, 0, 0, 0], [octet, 0, 0, 1], [octet, 255, 255, 255]])
            .map(Ipv4Addr::from)
            .chain(broadcasts.iter().copied())
            .collect();
        addrs.push(Ipv4Addr::new(192, 0, 2, 1));
        let mut vouched = 0;
        for &src in &addrs {
            for &dst in &addrs {
                let full = check_ipv4_endpoints(src, dst, &filter);
                if ordinary_ipv4_hosts(src, dst, &filter) {
                    assert_eq!(full, Ok(()), "{src} -> {dst}");
                    vouched += 1;
                }
            }
        }
        // It does vouch for most pairs, and not for a broadcast or the same address.
        assert!(vouched > addrs.len() * addrs.len() / 2, "{vouched}");
        let host = Ipv4Addr::new(192, 0, 2, 1);
        assert!(!ordinary_ipv4_hosts(host, host, &filter));
        assert!(!ordinary_ipv4_hosts(host, broadcasts[0], &filter));
        assert!(!ordinary_ipv4_hosts(broadcasts[1], host, &filter));
    }

    #[test]
    fn reference_frames_take_the_plain_path_and_agree() {
        let frames = reference_frames();
        let plain = frames
            .iter()
            .filter(|f| f.bytes.len() >= PLAIN_IPV4_HEADERS_LEN && f.bytes[12..15] == [8, 0, 0x45])
            .count();
        assert!(plain > 10, "only {plain} reference frames are plain IPv4");
        for frame in &frames {
            assert_eq!(
                locate(&frame.bytes, &frame.filter),
                locate_general(&frame.bytes, &frame.filter),
                "{}",
                frame.name
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Same verdict and layout with and without the fixed-offset path, for
        /// reference frames with bytes of their headers and signatures changed and
        /// their ends cut.
        #[test]
        fn the_plain_ipv4_path_agrees_with_the_general_walk(
            index in any::<prop::sample::Index>(),
            flips in prop::collection::vec(
                (0usize..PLAIN_IPV4_HEADERS_LEN + SIGNATURE_SPAN, any::<u8>()),
                0..4,
            ),
            cut in any::<prop::sample::Index>(),
        ) {
            let frames = reference_frames();
            let reference = &frames[index.index(frames.len())];
            let mut bytes = reference.bytes.clone();
            for (at, value) in flips {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len().saturating_sub(24)));
            prop_assert_eq!(
                locate(&bytes, &reference.filter),
                locate_general(&bytes, &reference.filter)
            );
            prop_assert_eq!(
                classify(&bytes, &reference.filter),
                classify_general(&bytes, &reference.filter)
            );
        }

        /// The fixed-size view of the payload's first bytes finds the row the table
        /// searched over the payload itself does, for payloads of every length around
        /// the rows' ends, with one row's bytes (perhaps cut or changed) at its
        /// offset, under any enabled set.
        #[test]
        fn the_signature_view_agrees_with_the_table(
            row in 0..SIGNATURES.len(),
            len in 0..SIGNATURE_SPAN + 4,
            flip in prop::option::of((0..SIGNATURE_SPAN + 4, any::<u8>())),
            enabled in any::<u8>(),
        ) {
            let spec = &SIGNATURES[row];
            let mut payload = vec![b'.'; SIGNATURE_SPAN + 4];
            payload[spec.offset..spec.min_payload()].copy_from_slice(spec.bytes);
            if let Some((at, value)) = flip {
                payload[at] = value;
            }
            payload.truncate(len);
            let mut filter = reference_filter();
            filter.signatures = Signature::ALL
                .into_iter()
                .filter(|s| enabled & (1 << s.index()) != 0)
                .collect();
            let mut frame = vec![0; UDP_HEADER_LEN];
            frame.extend_from_slice(&payload);
            let layout = Layout {
                vlan_tags: 0,
                ip: IpVersion::V4,
                l3: 0,
                l4: 0,
                payload_len: len,
            };
            prop_assert_eq!(
                match_signature(&frame, &layout, &filter),
                first_signature(&payload, &filter)
            );
        }
    }
}
