//! Kernel software timestamps (SO_TIMESTAMPING) for AF_PACKET sockets.
//!
//! A user-space clock read stamps a frame when the program gets round to it: after a
//! wake-up, after a whole batch. The kernel stamps a received frame when the driver
//! hands it to the stack, and a sent one when the driver takes it (`skb_tx_timestamp`),
//! so a round trip from the two leaves out the socket layer and scheduling. Both
//! stamps are CLOCK_REALTIME nanoseconds; a received frame's comes with it as an
//! `SCM_TIMESTAMPING` control message, a sent frame's comes back on the socket's
//! error queue with a copy of the frame.

/// The software stamps a socket asks for: generated on receive, and reported
/// (SOF_TIMESTAMPING_SOFTWARE).
pub(crate) const RECEIVE_FLAGS: u32 =
    libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
/// And on transmit: the error queue gets the stamp alone (TSONLY, no copy of the frame,
/// so it costs the socket's receive buffer little) with a key (OPT_ID) that each send
/// sets to the frame's own number ([`SCM_TS_OPT_ID`]), so stamps are matched to
/// frames exactly, whatever the driver refuses.
pub(crate) const SEND_FLAGS: u32 = RECEIVE_FLAGS
    | libc::SOF_TIMESTAMPING_TX_SOFTWARE
    | libc::SOF_TIMESTAMPING_OPT_ID
    | libc::SOF_TIMESTAMPING_OPT_TSONLY;

/// The control message that sets one send's OPT_ID key (Linux 6.13+; asm-generic
/// value, which x86 and arm use; not yet in the libc crate).
pub(crate) const SCM_TS_OPT_ID: libc::c_int = 81;
/// AF_PACKET's level-SOL_PACKET type for the error queue's `sock_extended_err`
/// (linux/if_packet.h; not in the libc crate).
pub(crate) const PACKET_TX_TIMESTAMP: libc::c_int = 16;

/// A frame's kernel stamp as a receive call reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// CLOCK_REALTIME ns; 0: the kernel gave none.
    pub ns: u64,
    /// A transmit stamp's key: the number the frame was sent with.
    pub key: Option<u32>,
}

/// Which kernel stamps a socket was granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Granted {
    /// Received frames carry their software receive stamp.
    pub receive: bool,
    /// Sent frames come back on the error queue with their software transmit stamp
    /// (only if the driver stamps them too: veth and most drivers do).
    pub send: bool,
}

/// Bytes of one `struct scm_timestamping`: software, (deprecated), hardware timespecs.
pub(crate) const SCM_TIMESTAMPING_LEN: usize = 3 * std::mem::size_of::<libc::timespec>();

/// The software stamp (CLOCK_REALTIME ns) in an `SCM_TIMESTAMPING` message's data, if
/// the kernel filled it in (a zero timespec means it did not).
pub(crate) fn software_stamp(data: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<libc::time_t>();
    if data.len() < SCM_TIMESTAMPING_LEN {
        return None;
    }
    let secs = libc::time_t::from_ne_bytes(data[..WORD].try_into().ok()?);
    let nanos = libc::c_long::from_ne_bytes(data[WORD..2 * WORD].try_into().ok()?);
    let ns = u64::try_from(secs).ok()? * 1_000_000_000 + u64::try_from(nanos).ok()?;
    (ns != 0).then_some(ns)
}

/// The key of a transmit stamp from the `sock_extended_err` the error queue gives with
/// it: `ee_data`, if the message is a timestamp's (origin TIMESTAMPING, errno ENOMSG).
pub(crate) fn sent_key(data: &[u8]) -> Option<u32> {
    // struct sock_extended_err: ee_errno u32, ee_origin u8, type, code, pad, ee_info u32,
    // ee_data u32.
    if data.len() < std::mem::size_of::<libc::sock_extended_err>() {
        return None;
    }
    let word = |at: usize| u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    (data[4] == libc::SO_EE_ORIGIN_TIMESTAMPING && word(0) == libc::ENOMSG as u32).then(|| word(12))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scm_timestamping(secs: i64, nanos: i64) -> Vec<u8> {
        let mut data = vec![0u8; SCM_TIMESTAMPING_LEN];
        data[..8].copy_from_slice(&secs.to_ne_bytes());
        data[8..16].copy_from_slice(&nanos.to_ne_bytes());
        // A hardware stamp, which software timestamping never reads.
        data[32..40].copy_from_slice(&7i64.to_ne_bytes());
        data
    }

    pub(crate) fn extended_err(origin: u8, errno: i32, key: u32) -> Vec<u8> {
        let mut data = vec![0u8; std::mem::size_of::<libc::sock_extended_err>()];
        data[..4].copy_from_slice(&(errno as u32).to_ne_bytes());
        data[4] = origin;
        data[12..16].copy_from_slice(&key.to_ne_bytes());
        data
    }

    #[test]
    fn a_transmit_stamps_key_is_its_ee_data() {
        let stamp = extended_err(libc::SO_EE_ORIGIN_TIMESTAMPING, libc::ENOMSG, 77);
        assert_eq!(sent_key(&stamp), Some(77));
        // An ICMP error or a zero-copy completion is not a stamp; a cut one neither.
        let icmp = extended_err(libc::SO_EE_ORIGIN_ICMP, libc::EHOSTUNREACH, 77);
        assert_eq!(sent_key(&icmp), None);
        assert_eq!(sent_key(&stamp[..12]), None);
    }

    #[test]
    fn the_software_timespec_becomes_nanoseconds() {
        let data = scm_timestamping(1_795_000_000, 123_456_789);
        assert_eq!(software_stamp(&data), Some(1_795_000_000_123_456_789));
    }

    #[test]
    fn empty_or_short_messages_carry_no_stamp() {
        assert_eq!(software_stamp(&scm_timestamping(0, 0)), None);
        assert_eq!(software_stamp(&scm_timestamping(5, 1)[..40]), None);
        assert_eq!(software_stamp(&scm_timestamping(-1, 0)), None);
    }
}
