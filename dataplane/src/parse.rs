//! Header layouts: the offsets, protocol numbers and limits the typed views in
//! [`crate::wire`] read frames with, and the [`Layout`] of an accepted frame.
//!
//! These constants are the single source of truth: `xdp-filter/build.rs` writes them
//! into the XDP program's C header, and the classic-BPF filter is assembled from them,
//! so every filter reads the same bytes [`crate::classify()`] does.

/// Ethernet II header length.
pub const ETH_HEADER_LEN: usize = 14;
/// Offsets inside the Ethernet header.
pub const ETH_DST: usize = 0;
pub const ETH_SRC: usize = 6;
pub const ETH_TYPE: usize = 12;
/// The shortest Ethernet payload (60-byte minimum frame less the 14-byte header):
/// senders pad shorter datagrams up to it. Bytes after an IP datagram beyond this
/// padding make a frame a length mismatch. Counted from the IP header, so a bridge
/// that tags an already padded frame (adding 4 bytes per tag) keeps it valid.
pub const ETH_MIN_PAYLOAD: usize = 46;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// 802.1ad service tag (QinQ outer tag).
pub const TPID_8021AD: u16 = 0x88A8;
/// Length of one VLAN tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// How many stacked VLAN tags the reflector walks (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

pub const IPV4_MIN_HEADER_LEN: usize = 20;
pub const IPV4_TOTAL_LEN: usize = 2;
pub const IPV4_IDENT: usize = 4;
pub const IPV4_FRAG: usize = 6;
pub const IPV4_TTL: usize = 8;
pub const IPV4_PROTOCOL: usize = 9;
pub const IPV4_CHECKSUM: usize = 10;
pub const IPV4_SRC: usize = 12;
pub const IPV4_DST: usize = 16;
/// More-fragments flag and fragment-offset mask of the flags/offset word.
pub const IPV4_MF_AND_OFFSET: u16 = 0x3FFF;

pub const IPV6_HEADER_LEN: usize = 40;
pub const IPV6_PAYLOAD_LEN: usize = 4;
pub const IPV6_NEXT_HEADER: usize = 6;
pub const IPV6_HOP_LIMIT: usize = 7;
pub const IPV6_SRC: usize = 8;
pub const IPV6_DST: usize = 24;
/// Extension headers the reflector skips on the way to UDP.
pub const IPV6_EXT_HOP_BY_HOP: u8 = 0;
pub const IPV6_EXT_ROUTING: u8 = 43;
pub const IPV6_EXT_FRAGMENT: u8 = 44;
pub const IPV6_EXT_DEST_OPTIONS: u8 = 60;
/// How many skippable extension headers are walked before giving up; bounded so the
/// XDP program can mirror the walk with a fixed loop.
pub const MAX_IPV6_EXT_HEADERS: usize = 4;

pub const IP_PROTO_UDP: u8 = 17;

pub const UDP_HEADER_LEN: usize = 8;
pub const UDP_SRC_PORT: usize = 0;
pub const UDP_DST_PORT: usize = 2;
pub const UDP_LENGTH: usize = 4;
pub const UDP_CHECKSUM: usize = 6;

/// Where UDP starts in an untagged IPv4 frame without IP options, the layout nearly
/// every test frame has.
pub const PLAIN_IPV4_UDP: usize = ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN;
/// The headers of such a frame: Ethernet, IPv4 and UDP.
pub const PLAIN_IPV4_HEADERS_LEN: usize = PLAIN_IPV4_UDP + UDP_HEADER_LEN;

/// Big-endian u16 at `at`. The caller guarantees `at + 2 <= frame.len()`.
#[inline(always)]
pub fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// IP version of the network layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IpVersion {
    V4,
    V6,
}

/// Where each layer of an accepted frame starts. Produced by [`crate::classify()`] and
/// consumed by [`crate::reflect()`], so reflection never re-parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Number of VLAN tags between the MAC addresses and the IP EtherType.
    pub vlan_tags: u8,
    pub ip: IpVersion,
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the UDP header.
    pub l4: usize,
    /// UDP payload length according to the UDP header (frame padding excluded).
    pub payload_len: usize,
}

impl Layout {
    /// Offset of the UDP payload.
    pub const fn payload(&self) -> usize {
        self.l4 + UDP_HEADER_LEN
    }

    /// Offset just past the UDP datagram; anything after it is Ethernet padding.
    pub const fn end(&self) -> usize {
        self.payload() + self.payload_len
    }

    /// Untagged IPv4 without options: the headers at [`PLAIN_IPV4_UDP`]'s fixed offsets.
    /// UDP at that offset means it, as an IPv4 header of at least 20 bytes ending there
    /// starts right after an untagged Ethernet header, so `l3` needs no test.
    #[inline(always)]
    pub fn is_plain_ipv4(&self) -> bool {
        (self.ip == IpVersion::V4) & (self.l4 == PLAIN_IPV4_UDP)
    }
}
