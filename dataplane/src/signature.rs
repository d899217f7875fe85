//! The signature table: the single source of truth for which UDP payloads are test
//! frames. The XDP program and the macOS classic-BPF filter are configured from
//! [`SIGNATURES`], so adding a row here teaches every platform the new signature.
//!
//! STAMP (RFC 8762) test packets carry no marker bytes; they are recognised by their UDP
//! port ([`crate::Filter::stamp_port`]) and length instead, so [`Signature::Stamp`] has
//! no row in the byte table.

use serde::{Deserialize, Serialize};
use std::str::FromStr;
use strum::{VariantArray, VariantNames};

/// A kind of test frame, recognised by a fixed byte string in the UDP payload. Its
/// name is printed in stats and accepted on the command line.
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
    strum::VariantNames,
)]
#[serde(into = "&'static str", try_from = "String")]
#[repr(u8)]
pub enum Signature {
    /// NetAlly/Fluke OneTouch and LinkRunner probe frames.
    #[strum(serialize = "PROBEOT")]
    ProbeOt = 0,
    /// NetAlly/Fluke data frames.
    #[strum(serialize = "DATA:OT")]
    DataOt = 1,
    /// NetAlly/Fluke latency frames.
    #[strum(serialize = "LATENCY")]
    Latency = 2,
    /// RFC 2544 testers.
    #[strum(serialize = "RFC2544")]
    Rfc2544 = 3,
    /// ITU-T Y.1564 testers.
    #[strum(serialize = "Y.1564")]
    Y1564 = 4,
    /// STAMP session-senders (RFC 8762), recognised by UDP port, answered by
    /// [`crate::stamp`].
    #[strum(serialize = "STAMP")]
    Stamp = 5,
}

/// In the API description: a string, one of the signatures' names.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Signature {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                <Signature as strum::VariantNames>::VARIANTS.iter().copied(),
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Signature {}

/// One row of the signature table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureSpec {
    pub signature: Signature,
    /// The bytes that must appear in the UDP payload.
    pub bytes: &'static [u8],
    /// Where in the UDP payload they must appear.
    pub offset: usize,
}

impl SignatureSpec {
    /// Smallest UDP payload that can carry this signature.
    pub const fn min_payload(&self) -> usize {
        self.offset + self.bytes.len()
    }

    /// Does this UDP payload carry the signature?
    #[inline(always)]
    pub fn matches(&self, payload: &[u8]) -> bool {
        payload.get(self.offset..self.offset + self.bytes.len()) == Some(self.bytes)
    }
}

/// Every signature recognised by payload bytes, in matching order (first match wins).
/// Facts from `shared/spec/PACKETS.md`.
pub const SIGNATURES: [SignatureSpec; Signature::BYTE_SIGNATURES] = [
    SignatureSpec {
        signature: Signature::ProbeOt,
        bytes: b"PROBEOT",
        offset: 5,
    },
    SignatureSpec {
        signature: Signature::DataOt,
        bytes: b"DATA:OT",
        offset: 5,
    },
    SignatureSpec {
        signature: Signature::Latency,
        bytes: b"LATENCY",
        offset: 5,
    },
    SignatureSpec {
        signature: Signature::Rfc2544,
        bytes: b"RFC2544",
        offset: 0,
    },
    SignatureSpec {
        signature: Signature::Y1564,
        bytes: b"Y.1564 ",
        offset: 0,
    },
];

/// The payload bytes that hold every row's signature: the largest
/// [`SignatureSpec::min_payload`].
pub const SIGNATURE_SPAN: usize = {
    let mut span = 0;
    let mut row = 0;
    while row < SIGNATURES.len() {
        if SIGNATURES[row].min_payload() > span {
            span = SIGNATURES[row].min_payload();
        }
        row += 1;
    }
    span
};

/// Length of the vendor header that precedes the NetAlly/Fluke (ITO) signatures.
pub const ITO_VENDOR_HEADER_LEN: usize = 5;

impl Signature {
    pub const COUNT: usize = <Signature as VariantArray>::VARIANTS.len();
    /// How many signatures have a row in [`SIGNATURES`] (all but STAMP).
    pub const BYTE_SIGNATURES: usize = Signature::COUNT - 1;
    /// Every signature, in index order.
    pub const ALL: [Signature; Signature::COUNT] =
        crate::variants::array(<Signature as VariantArray>::VARIANTS);

    /// Position in [`SIGNATURES`] and in per-signature counter arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The byte-table row, or `None` for STAMP, which is recognised by port.
    pub const fn spec(self) -> Option<&'static SignatureSpec> {
        match self {
            Signature::Stamp => None,
            _ => Some(&SIGNATURES[self as usize]),
        }
    }

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Smallest UDP payload a frame of this kind has.
    pub const fn min_payload(self) -> usize {
        match self.spec() {
            Some(spec) => spec.min_payload(),
            None => crate::stamp::STAMP_MIN_PAYLOAD,
        }
    }
}

/// A signature name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signature {0:?}: expected one of {names}",
    names = <Signature as VariantNames>::VARIANTS.join(", ")
)]
pub struct UnknownSignature(pub String);

impl FromStr for Signature {
    type Err = UnknownSignature;

    /// Accepts the table name in any case, with or without punctuation
    /// (`DATA:OT`, `dataot`, `y.1564`, `y1564`), so it is easy to type in a shell.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = normalise(s);
        Signature::ALL
            .into_iter()
            .find(|sig| normalise(sig.name()) == wanted)
            .ok_or_else(|| UnknownSignature(s.to_owned()))
    }
}

impl TryFrom<String> for Signature {
    type Error = UnknownSignature;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A set of signatures, as a bit mask indexed by [`Signature::index`]. Serialised as
/// a list of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<Signature>", from = "Vec<Signature>")]
pub struct SignatureSet(u8);

impl SignatureSet {
    pub const ALL: SignatureSet = SignatureSet((1 << Signature::COUNT) - 1);
    pub const EMPTY: SignatureSet = SignatureSet(0);

    pub const fn bits(self) -> u8 {
        self.0
    }

    #[inline(always)]
    pub const fn contains(self, signature: Signature) -> bool {
        self.0 & (1 << signature as u8) != 0
    }

    pub fn insert(&mut self, signature: Signature) {
        self.0 |= 1 << signature as u8;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Signature> {
        Signature::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

impl Default for SignatureSet {
    fn default() -> Self {
        SignatureSet::ALL
    }
}

impl From<SignatureSet> for Vec<Signature> {
    fn from(set: SignatureSet) -> Self {
        set.iter().collect()
    }
}

impl From<Vec<Signature>> for SignatureSet {
    fn from(list: Vec<Signature>) -> Self {
        list.into_iter().collect()
    }
}

impl FromIterator<Signature> for SignatureSet {
    fn from_iter<I: IntoIterator<Item = Signature>>(iter: I) -> Self {
        let mut set = SignatureSet::EMPTY;
        for signature in iter {
            set.insert(signature);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_in_index_order() {
        for (i, row) in SIGNATURES.iter().enumerate() {
            assert_eq!(row.signature.index(), i, "{}", row.signature);
        }
    }

    #[test]
    fn names_parse_in_any_spelling() {
        assert_eq!("DATA:OT".parse::<Signature>(), Ok(Signature::DataOt));
        assert_eq!("dataot".parse::<Signature>(), Ok(Signature::DataOt));
        assert_eq!("y.1564".parse::<Signature>(), Ok(Signature::Y1564));
        assert_eq!("Rfc2544".parse::<Signature>(), Ok(Signature::Rfc2544));
        assert_eq!("stamp".parse::<Signature>(), Ok(Signature::Stamp));
        assert_eq!(
            "ping".parse::<Signature>().unwrap_err().to_string(),
            "unknown signature \"ping\": expected one of \
             PROBEOT, DATA:OT, LATENCY, RFC2544, Y.1564, STAMP"
        );
        for signature in Signature::ALL {
            assert_eq!(signature.name().parse(), Ok(signature));
            assert_eq!(signature.to_string(), signature.name());
        }
        assert_eq!(Signature::ALL.len(), 6);
        assert_eq!(Signature::BYTE_SIGNATURES, SIGNATURES.len());
    }

    #[test]
    fn the_span_holds_every_row_and_no_more() {
        assert!(SIGNATURES
            .iter()
            .all(|row| row.min_payload() <= SIGNATURE_SPAN));
        assert!(SIGNATURES
            .iter()
            .any(|row| row.min_payload() == SIGNATURE_SPAN));
    }

    #[test]
    fn y1564_signature_has_its_trailing_space() {
        assert_eq!(Signature::Y1564.spec().unwrap().bytes, b"Y.1564 ");
    }

    #[test]
    fn set_membership() {
        let set: SignatureSet = [Signature::Latency, Signature::Y1564].into_iter().collect();
        assert!(set.contains(Signature::Latency));
        assert!(!set.contains(Signature::ProbeOt));
        assert_eq!(set.iter().count(), 2);
        assert!(SignatureSet::ALL.iter().eq(Signature::ALL));
    }
}
