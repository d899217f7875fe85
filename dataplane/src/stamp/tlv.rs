//! The session-reflector's side of RFC 8972 section 4, in place: the answer carries
//! every TLV of the sender's packet, at the same place, with the reflector's flags and
//! values.
//!
//! The reflector clears U (unrecognized) and M (malformed) on TLVs it implements and
//! fills them; sets U on types it does not implement and copies their Value untouched;
//! sets M on a TLV whose Length is wrong for its type or runs past the packet and stops
//! there, copying the rest unprocessed. Flag bits it does not set (I, reserved) go out
//! as 0. Implemented: Extra Padding (echoed), Timestamp Information (the reflector's
//! clock source and timestamping method), Class of Service (received DSCP/ECN; the
//! requested DSCP is applied to the answer), Direct Measurement (the session's receive
//! and transmit counts) and Access Report (echoed). Bytes after the base packet that
//! are all zero are padding from a sender that does not use TLVs, not a run of empty
//! reserved-type TLVs, and stay as they are.

use crate::streams::SessionCounts;
use crate::wire::stamp::tlv::*;

/// What the reflector writes into the TLVs it implements.
#[derive(Clone, Copy, Debug)]
pub struct TlvContext {
    /// RFC 8972 section 5.4 source of the clock behind T2 and T3.
    pub sync_source: u8,
    /// DSCP (upper 6 bits) and ECN (lower 2) of the received packet's IP header.
    pub received_tos: u8,
    /// The session's counts; `None` when the stream table does not track it (full or
    /// off), and then a Direct Measurement TLV comes back with U set.
    pub session: Option<SessionCounts>,
}

/// Process the TLVs that follow the base packet (`tlvs` ends where the UDP datagram
/// ends). Returns the DSCP a Class of Service TLV asks the answer to carry, if any.
pub fn process(tlvs: &mut [u8], context: &TlvContext) -> Option<u8> {
    let end = tlvs
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let mut dscp = None;
    let mut at = 0;
    while at < end {
        let rest = &mut tlvs[at..];
        if rest.len() < HEADER_LEN {
            // Not even a TLV header before the end of the packet.
            rest[FLAGS] = MALFORMED;
            break;
        }
        let (header, body) = rest.split_at_mut(HEADER_LEN);
        let kind = header[TYPE];
        let len = usize::from(u16::from_be_bytes([header[LENGTH], header[LENGTH + 1]]));
        let Some(value) = body.get_mut(..len) else {
            header[FLAGS] = MALFORMED | if implements(kind) { 0 } else { UNRECOGNIZED };
            break;
        };
        match fill(kind, value, context) {
            Filled::Done { requested_dscp } => {
                header[FLAGS] = 0;
                dscp = requested_dscp.or(dscp);
            }
            Filled::NotUnderstood => header[FLAGS] = UNRECOGNIZED,
            Filled::WrongLength => {
                header[FLAGS] = MALFORMED;
                break;
            }
        }
        at += HEADER_LEN + len;
    }
    dscp
}

enum Filled {
    Done { requested_dscp: Option<u8> },
    NotUnderstood,
    WrongLength,
}

const DONE: Filled = Filled::Done {
    requested_dscp: None,
};

fn implements(kind: u8) -> bool {
    matches!(
        kind,
        EXTRA_PADDING | TIMESTAMP_INFO | CLASS_OF_SERVICE | DIRECT_MEASUREMENT | ACCESS_REPORT
    )
}

fn fill(kind: u8, value: &mut [u8], context: &TlvContext) -> Filled {
    match kind {
        EXTRA_PADDING => DONE,
        // Sub-TLVs may follow the four fields.
        TIMESTAMP_INFO if value.len() >= TIMESTAMP_INFO_LEN => {
            value[..TIMESTAMP_INFO_LEN].copy_from_slice(&[
                context.sync_source,
                TIMESTAMP_SW_LOCAL,
                context.sync_source,
                TIMESTAMP_SW_LOCAL,
            ]);
            DONE
        }
        CLASS_OF_SERVICE if value.len() == CLASS_OF_SERVICE_LEN => {
            let requested = value[0] >> 2;
            let (dscp, ecn) = (context.received_tos >> 2, context.received_tos & 0x03);
            // DSCP1 stays; DSCP2 and ECN are what arrived (RFC 8972 4.4 with erratum
            // 8199); RP 0: the answer carries DSCP1; Reserved zeroed on transmission.
            value.copy_from_slice(&[
                requested << 2 | dscp >> 4,
                (dscp & 0x0F) << 4 | ecn << 2,
                0,
                0,
            ]);
            Filled::Done {
                requested_dscp: Some(requested),
            }
        }
        DIRECT_MEASUREMENT if value.len() == DIRECT_MEASUREMENT_LEN => match context.session {
            Some(session) => {
                value[4..8].copy_from_slice(&session.received.to_be_bytes());
                value[8..12].copy_from_slice(&session.answered.to_be_bytes());
                DONE
            }
            None => Filled::NotUnderstood,
        },
        // Echoed as received; an Access ID other than 1 (3GPP) or 2 (non-3GPP) makes
        // the TLV invalid, to be discarded (section 4.6).
        ACCESS_REPORT if value.len() == ACCESS_REPORT_LEN => match value[0] >> 4 {
            1 | 2 => DONE,
            _ => Filled::NotUnderstood,
        },
        TIMESTAMP_INFO | CLASS_OF_SERVICE | DIRECT_MEASUREMENT | ACCESS_REPORT => {
            Filled::WrongLength
        }
        _ => Filled::NotUnderstood,
    }
}
