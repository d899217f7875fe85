//! Hardware addresses: [`MacAddr`] and its first three bytes, the vendor's [`Oui`].
//!
//! Both print as lower-case hex pairs joined by `:` and parse with `:` or `-`
//! separators, so the command line, the settings files and the stats output agree on
//! one spelling. Serialised as that string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A six-byte hardware address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// An organisationally unique identifier: the first three bytes of a vendor's MACs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oui(pub [u8; 3]);

/// A string that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address like 00:c0:17:12:34:56")]
pub struct BadMacAddr(pub String);

/// A string that is not an OUI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an OUI like 00:c0:17")]
pub struct BadOui(pub String);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xFF; 6]);

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// The vendor part.
    pub const fn oui(&self) -> Oui {
        Oui([self.0[0], self.0[1], self.0[2]])
    }

    /// Group bit: set for multicast and broadcast addresses.
    #[inline(always)]
    pub const fn is_group(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl Oui {
    pub const fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }
}

/// Conversions, `Display`, `FromStr` and serde for a hex-pairs address type.
macro_rules! hex_pairs {
    ($name:ident, $len:literal, $error:ident) => {
        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(address: $name) -> Self {
                address.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex_pairs(f, &self.0)
            }
        }

        impl FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex_pairs(s)
                    .map($name)
                    .ok_or_else(|| $error(s.to_owned()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_pairs!(MacAddr, 6, BadMacAddr);
hex_pairs!(Oui, 3, BadOui);

fn write_hex_pairs(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

/// `N` two-digit hex bytes separated by `:` or `-`.
fn parse_hex_pairs<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let mut parts = s.split([':', '-']);
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_prints_and_parses_both_separators() {
        let mac = MacAddr([0x00, 0xC0, 0x17, 0x12, 0x34, 0x56]);
        assert_eq!(mac.to_string(), "00:c0:17:12:34:56");
        assert_eq!("00:c0:17:12:34:56".parse(), Ok(mac));
        assert_eq!("00-C0-17-12-34-56".parse(), Ok(mac));
        assert_eq!(mac.oui(), Oui([0x00, 0xC0, 0x17]));
    }

    #[test]
    fn malformed_macs_are_refused_with_an_example() {
        for bad in [
            "",
            "00:c0:17:12:34",
            "00:c0:17:12:34:56:78",
            "0:c0:17:12:34:56",
            "zz:c0:17:12:34:56",
            "+0:c0:17:12:34:56",
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{bad:?} is not a MAC address like 00:c0:17:12:34:56")
            );
        }
    }

    #[test]
    fn oui_prints_and_parses() {
        let oui: Oui = "00:1b:21".parse().unwrap();
        assert_eq!(oui, Oui([0x00, 0x1B, 0x21]));
        assert_eq!(oui.to_string(), "00:1b:21");
        assert_eq!(
            "00:c0".parse::<Oui>().unwrap_err().to_string(),
            "\"00:c0\" is not an OUI like 00:c0:17"
        );
    }

    #[test]
    fn group_bit() {
        assert!(MacAddr::BROADCAST.is_group());
        assert!(MacAddr([0x01, 0x00, 0x5E, 0, 0, 1]).is_group());
        assert!(!MacAddr([0x00, 0xC0, 0x17, 1, 2, 3]).is_group());
    }

    #[test]
    fn serialised_as_the_string() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:00:00:00:00:09\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).unwrap(), mac);
        let oui = serde_json::to_string(&Oui([0, 0xc0, 0x17])).unwrap();
        assert_eq!(oui, "\"00:c0:17\"");
        assert!(serde_json::from_str::<MacAddr>("\"nope\"").is_err());
    }
}
