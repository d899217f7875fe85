//! Building well-formed test frames: for the test head (`reflector probe`), the
//! reference frames and benchmarks. Not on the reflect path, so it may allocate.

use crate::checksum::udp_checksum;
use crate::mac::MacAddr;
use crate::parse::*;
use crate::signature::{Signature, ITO_VENDOR_HEADER_LEN};
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, UdpDatagram, VlanTag};

/// The network layer of a frame to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpSpec {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        /// Raw IPv4 options; length must be a multiple of 4 (at most 40).
        options: Vec<u8>,
        /// The flags/fragment-offset word (0x4000 = don't fragment).
        flags_fragment: u16,
        /// Send a UDP checksum (IPv4 allows 0 = none).
        udp_checksum: bool,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop_limit: u8,
        /// Extension headers to put before UDP, by protocol number. Each is emitted as
        /// an 8-byte header padded with a PadN option (or as an 8-byte fragment header).
        extension_headers: Vec<u8>,
    },
}

/// A UDP test frame, assembled by [`FrameBuilder::build`] with correct lengths and
/// checksums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    /// VLAN tags, outermost first, as (TPID, TCI).
    pub vlan_tags: Vec<(u16, u16)>,
    pub ip: IpSpec,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// Ethernet frames are at least 60 bytes before the FCS; shorter ones are padded.
pub const MIN_FRAME_LEN: usize = 60;
/// The frame check sequence the NIC appends: "64-byte frames" are 60 bytes here.
pub const FCS_LEN: usize = 4;

impl FrameBuilder {
    /// An IPv4 ITO frame as a NetAlly head sends it, carrying `signature` (or a STAMP
    /// test packet to the STAMP port).
    pub fn ipv4(src_mac: MacAddr, dst_mac: MacAddr, signature: Signature) -> Self {
        FrameBuilder {
            dst_mac,
            src_mac,
            vlan_tags: Vec::new(),
            ip: IpSpec::V4 {
                src: [192, 0, 2, 1],
                dst: [192, 0, 2, 2],
                ttl: 64,
                options: Vec::new(),
                flags_fragment: 0x4000,
                udp_checksum: true,
            },
            src_port: 49152,
            dst_port: match signature {
                Signature::Stamp => crate::filter::DEFAULT_STAMP_PORT,
                _ => crate::filter::DEFAULT_UDP_PORT,
            },
            payload: signature_payload(signature, 0),
        }
    }

    /// The same frame over IPv6 (2001:db8::1 to 2001:db8::2).
    pub fn ipv6(src_mac: MacAddr, dst_mac: MacAddr, signature: Signature) -> Self {
        let mut frame = Self::ipv4(src_mac, dst_mac, signature);
        frame.ip = IpSpec::V6 {
            src: doc_ipv6(1),
            dst: doc_ipv6(2),
            hop_limit: 64,
            extension_headers: Vec::new(),
        };
        frame
    }

    /// Length of the frame [`FrameBuilder::build`] returns, without Ethernet padding.
    pub fn unpadded_len(&self) -> usize {
        let ip_header = match &self.ip {
            IpSpec::V4 { options, .. } => IPV4_MIN_HEADER_LEN + options.len(),
            IpSpec::V6 {
                extension_headers, ..
            } => IPV6_HEADER_LEN + 8 * extension_headers.len(),
        };
        ETH_HEADER_LEN
            + VLAN_TAG_LEN * self.vlan_tags.len()
            + ip_header
            + UDP_HEADER_LEN
            + self.payload.len()
    }

    /// Grow the payload with zeros so the frame on the wire (FCS included) is
    /// `wire_len` bytes, as test heads count frame sizes. Never shrinks it.
    pub fn sized_for_wire(mut self, wire_len: usize) -> Self {
        let target = wire_len.saturating_sub(FCS_LEN);
        let len = self.unpadded_len();
        if target > len {
            self.payload.resize(self.payload.len() + target - len, 0);
        }
        self
    }

    /// Assemble the frame, padded to [`MIN_FRAME_LEN`].
    pub fn build(&self) -> Vec<u8> {
        let mut frame = vec![0; self.unpadded_len().max(MIN_FRAME_LEN)];
        let udp_len = UDP_HEADER_LEN + self.payload.len();
        let ip_ethertype = match self.ip {
            IpSpec::V4 { .. } => ETHERTYPE_IPV4,
            IpSpec::V6 { .. } => ETHERTYPE_IPV6,
        };
        let l3 = self.write_link_layer(&mut frame, ip_ethertype);
        // Where UDP starts, and its pseudo-header's addresses if it carries a checksum.
        let (l4, checksum_addrs) = match &self.ip {
            IpSpec::V4 {
                src,
                dst,
                ttl,
                options,
                flags_fragment,
                udp_checksum,
            } => {
                let header_len = IPV4_MIN_HEADER_LEN + options.len();
                frame[l3 + IPV4_MIN_HEADER_LEN..l3 + header_len].copy_from_slice(options);
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
                ip.set_version_and_header_len(header_len);
                ip.set_total_len((header_len + udp_len) as u16);
                ip.set_ident(0x1c46);
                ip.set_flags_fragment(*flags_fragment);
                ip.set_ttl(*ttl);
                ip.set_protocol(IP_PROTO_UDP);
                ip.set_src_addr((*src).into());
                ip.set_dst_addr((*dst).into());
                ip.fill_checksum();
                (
                    l3 + header_len,
                    udp_checksum.then_some((src.as_slice(), dst.as_slice())),
                )
            }
            IpSpec::V6 {
                src,
                dst,
                hop_limit,
                extension_headers,
            } => {
                let chain = extension_chain(extension_headers);
                let mut ip = Ipv6Packet::new_unchecked(&mut frame[l3..]);
                ip.set_version();
                ip.set_payload_len((chain.len() + udp_len) as u16);
                ip.set_next_header(extension_headers.first().copied().unwrap_or(IP_PROTO_UDP));
                ip.set_hop_limit(*hop_limit);
                ip.set_src_addr((*src).into());
                ip.set_dst_addr((*dst).into());
                let at = l3 + IPV6_HEADER_LEN;
                frame[at..at + chain.len()].copy_from_slice(&chain);
                (at + chain.len(), Some((src.as_slice(), dst.as_slice())))
            }
        };
        let datagram = &mut frame[l4..l4 + udp_len];
        let mut udp = UdpDatagram::new_unchecked(&mut *datagram);
        udp.set_src_port(self.src_port);
        udp.set_dst_port(self.dst_port);
        udp.set_len(udp_len as u16);
        udp.payload_mut().copy_from_slice(&self.payload);
        if let Some((src, dst)) = checksum_addrs {
            let sum = udp_checksum(src, dst, datagram);
            UdpDatagram::new_unchecked(datagram).set_checksum(sum);
        }
        frame
    }

    /// Addresses, VLAN tags and EtherType; returns where the network layer starts.
    fn write_link_layer(&self, frame: &mut [u8], ip_ethertype: u16) -> usize {
        // The EtherType slot before each tag holds its TPID.
        let ethertype_before = |tag: usize| {
            self.vlan_tags
                .get(tag)
                .map_or(ip_ethertype, |(tpid, _)| *tpid)
        };
        let mut ethernet = EthernetFrame::new_unchecked(&mut *frame);
        ethernet.set_dst_addr(self.dst_mac);
        ethernet.set_src_addr(self.src_mac);
        ethernet.set_ethertype(ethertype_before(0));
        let mut at = ETH_HEADER_LEN;
        for (index, (_, tci)) in self.vlan_tags.iter().enumerate() {
            let mut tag = VlanTag::new_unchecked(&mut frame[at..]);
            tag.set_tci(*tci);
            tag.set_ethertype(ethertype_before(index + 1));
            at += VLAN_TAG_LEN;
        }
        at
    }
}

/// 8-byte extension headers chained in order, the last pointing at UDP.
fn extension_chain(kinds: &[u8]) -> Vec<u8> {
    let mut chain = Vec::with_capacity(8 * kinds.len());
    for (i, kind) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(IP_PROTO_UDP);
        if *kind == IPV6_EXT_FRAGMENT {
            // Next header, reserved, offset 0 with M set, identification.
            chain.extend_from_slice(&[next, 0, 0, 1, 0, 0, 0, 42]);
        } else {
            // Next header, length 0 (8 bytes), PadN option covering the other 4.
            chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
    }
    chain
}

/// A UDP payload carrying `signature` where the spec puts it (after the 5-byte vendor
/// header for ITO signatures), followed by `trailer_len` zero bytes. For STAMP, a
/// session-sender test packet with sequence number 0.
pub fn signature_payload(signature: Signature, trailer_len: usize) -> Vec<u8> {
    let Some(spec) = signature.spec() else {
        return crate::stamp::sender_packet(
            0,
            crate::stamp::NtpTimestamp::default(),
            crate::stamp::STAMP_MIN_PAYLOAD + trailer_len,
        );
    };
    let mut payload = vec![0; spec.min_payload() + trailer_len];
    if spec.offset == ITO_VENDOR_HEADER_LEN {
        // Vendor header: a version byte and a 32-bit sequence slot, as seen on the wire.
        payload[0] = 0x01;
    }
    payload[spec.offset..spec.min_payload()].copy_from_slice(spec.bytes);
    payload
}

/// 2001:db8::`host`, an address from the IPv6 documentation prefix.
pub fn doc_ipv6(host: u8) -> [u8; 16] {
    let mut addr = [0; 16];
    addr[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    addr[15] = host;
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{HEAD_MAC, NETALLY_PROBEOT_FRAME, REFLECTOR_MAC};

    #[test]
    fn builds_the_spec_frame_byte_for_byte() {
        let mut builder = FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::ProbeOt);
        // The spec frame's payload: vendor header with sequence 42, PROBEOT, trailer.
        builder.payload = NETALLY_PROBEOT_FRAME[42..].to_vec();
        assert_eq!(builder.build(), NETALLY_PROBEOT_FRAME);
    }
}
