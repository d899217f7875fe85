//! In-place reflection: swap addresses so the frame goes back where it came from.
//!
//! Swapping two 16-bit-aligned fields never changes a one's-complement sum, so neither
//! the IPv4 header checksum nor the UDP checksum (whose pseudo-header covers both IP
//! addresses) needs touching.

use crate::parse::{IpVersion, Layout, ETH_HEADER_LEN, PLAIN_IPV4_HEADERS_LEN, PLAIN_IPV4_UDP};
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, UdpDatagram};
use serde::{Deserialize, Serialize};

/// Which address pairs are swapped. Named `mac`, `mac-ip` and `all` on the command
/// line, in settings and in JSON.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
#[strum(
    serialize_all = "kebab-case",
    ascii_case_insensitive,
    parse_err_ty = UnknownMode,
    parse_err_fn = UnknownMode::new
)]
pub enum Mode {
    /// Ethernet source and destination.
    Mac,
    /// Ethernet and IP.
    MacIp,
    /// Ethernet, IP and UDP ports.
    #[default]
    All,
}

impl Mode {
    pub const ALL: [Mode; 3] = crate::variants::array(<Mode as strum::VariantArray>::VARIANTS);

    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A reflection mode name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reflection mode {0:?}: expected mac, mac-ip or all")]
pub struct UnknownMode(pub String);

impl UnknownMode {
    fn new(name: &str) -> Self {
        UnknownMode(name.to_owned())
    }
}

/// Swap the fields `mode` names, in place. `layout` must come from
/// [`crate::classify()`] on this same frame.
#[inline(always)]
pub fn reflect(frame: &mut [u8], layout: &Layout, mode: Mode) {
    // Untagged IPv4 without options, nearly every frame: through a fixed-size view of
    // its headers, with the offsets as constants, no swap needs a bounds check.
    if layout.is_plain_ipv4() {
        if let Some(headers) = frame.first_chunk_mut::<PLAIN_IPV4_HEADERS_LEN>() {
            return swap(headers, IpVersion::V4, ETH_HEADER_LEN, PLAIN_IPV4_UDP, mode);
        }
    }
    swap(frame, layout.ip, layout.l3, layout.l4, mode);
}

/// [`reflect`] with the layout's fields: the IP version and where IP and UDP start.
#[inline(always)]
fn swap(frame: &mut [u8], ip: IpVersion, l3: usize, l4: usize, mode: Mode) {
    EthernetFrame::new_unchecked(&mut *frame).swap_addrs();
    if mode == Mode::Mac {
        return;
    }
    match ip {
        IpVersion::V4 => Ipv4Packet::new_unchecked(&mut frame[l3..]).swap_addrs(),
        IpVersion::V6 => Ipv6Packet::new_unchecked(&mut frame[l3..]).swap_addrs(),
    }
    if mode == Mode::All {
        UdpDatagram::new_unchecked(&mut frame[l4..]).swap_ports();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
        }
        assert_eq!("MAC-IP".parse::<Mode>(), Ok(Mode::MacIp));
        assert_eq!(Mode::MacIp.to_string(), "mac-ip");
        assert_eq!(
            "ports".parse::<Mode>().unwrap_err().to_string(),
            "unknown reflection mode \"ports\": expected mac, mac-ip or all"
        );
        assert_eq!(Mode::ALL, [Mode::Mac, Mode::MacIp, Mode::All]);
        assert_eq!(Mode::default(), Mode::All);
    }
}
