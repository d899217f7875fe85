//! In-place reflection: swap addresses so the frame goes back where it came from.
//!
//! Swapping two 16-bit-aligned fields never changes a one's-complement sum, so neither
//! the IPv4 header checksum nor the UDP checksum (whose pseudo-header covers both IP
//! addresses) needs touching.

use crate::parse::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which address pairs are swapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    pub const ALL: [Mode; 3] = [Mode::Mac, Mode::MacIp, Mode::All];

    pub const fn name(self) -> &'static str {
        match self {
            Mode::Mac => "mac",
            Mode::MacIp => "mac-ip",
            Mode::All => "all",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A reflection mode name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reflection mode {0:?}: expected mac, mac-ip or all")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// Swap the fields `mode` names, in place. `layout` must come from
/// [`crate::classify`] on this same frame.
#[inline(always)]
pub fn reflect(frame: &mut [u8], layout: &Layout, mode: Mode) {
    swap_fields(frame, ETH_DST, ETH_SRC, 6);
    if mode == Mode::Mac {
        return;
    }
    match layout.ip {
        IpVersion::V4 => swap_fields(frame, layout.l3 + IPV4_SRC, layout.l3 + IPV4_DST, 4),
        IpVersion::V6 => swap_fields(frame, layout.l3 + IPV6_SRC, layout.l3 + IPV6_DST, 16),
    }
    if mode == Mode::All {
        swap_fields(frame, layout.l4 + UDP_SRC_PORT, layout.l4 + UDP_DST_PORT, 2);
    }
}

/// Swap two non-overlapping runs of `len` bytes, `a < b`.
#[inline(always)]
fn swap_fields(frame: &mut [u8], a: usize, b: usize, len: usize) {
    let (head, tail) = frame.split_at_mut(b);
    head[a..a + len].swap_with_slice(&mut tail[..len]);
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
        assert!("ports".parse::<Mode>().is_err());
        assert_eq!(Mode::default(), Mode::All);
    }
}
