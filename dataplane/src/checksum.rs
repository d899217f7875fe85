//! Internet checksums (RFC 1071) and their incremental update (RFC 1624).
//!
//! Reflection itself never needs these (swaps keep sums intact); they build test
//! frames, verify reflected ones, and patch checksums after writing a field.

/// One's-complement sum of `data` as big-endian 16-bit words, folded to 16 bits, added
/// to `initial` (an unfolded partial sum).
pub fn ones_complement_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial as u64;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// The checksum field value for `data` whose checksum field is zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data, 0)
}

/// UDP checksum over the pseudo-header (`src`, `dst` are 4 or 16 bytes) and the
/// datagram `udp` (its checksum field zero). A computed 0 is sent as 0xFFFF.
pub fn udp_checksum(src: &[u8], dst: &[u8], udp: &[u8]) -> u16 {
    let mut pseudo = ones_complement_sum(src, 0) as u32;
    pseudo += ones_complement_sum(dst, 0) as u32;
    pseudo += 17;
    pseudo += udp.len() as u32;
    match !ones_complement_sum(udp, pseudo) {
        0 => 0xFFFF,
        sum => sum,
    }
}

/// Does `data` (including its checksum field) sum to all-ones?
pub fn verifies(data: &[u8], initial: u32) -> bool {
    ones_complement_sum(data, initial) == 0xFFFF
}

/// Pseudo-header partial sum for verifying a UDP datagram in place.
pub fn udp_pseudo_header_sum(src: &[u8], dst: &[u8], udp_len: usize) -> u32 {
    ones_complement_sum(src, 0) as u32 + ones_complement_sum(dst, 0) as u32 + 17 + udp_len as u32
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changes from `old` to `new`.
pub fn update_word(checksum: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m')
    let sum = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    !ones_complement_sum(&[], sum)
}

/// The UDP checksum after a run of bytes whose [`ones_complement_sum`] was `before`
/// now sums to `after` (RFC 1624 eqn. 3 over many words). The run must start at an
/// even offset from the UDP header. A result of 0 is sent as 0xFFFF. With `before`
/// 0 this stamps bytes into zeros of a template frame without re-summing it.
pub fn replace_in_udp_checksum(checksum: u16, before: u16, after: u16) -> u16 {
    let sum = u32::from(!checksum) + u32::from(!before) + u32::from(after);
    match !ones_complement_sum(&[], sum) {
        0 => 0xFFFF,
        sum => sum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_complement_sum(&data, 0), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut header = [
            0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0x00,
            0x02, 0x01, 0xc6, 0x33, 0x64, 0x02,
        ];
        let before = internet_checksum(&header);
        header[10..12].copy_from_slice(&before.to_be_bytes());
        assert!(verifies(&header, 0));
        // Decrement TTL (the high byte of word 4) and patch incrementally.
        let old = u16::from_be_bytes([header[8], header[9]]);
        header[8] -= 1;
        let new = u16::from_be_bytes([header[8], header[9]]);
        let patched = update_word(before, old, new);
        header[10..12].copy_from_slice(&patched.to_be_bytes());
        assert!(verifies(&header, 0));
    }

    #[test]
    fn stamping_zeroed_bytes_matches_full_recompute() {
        let src = [192, 0, 2, 1];
        let dst = [192, 0, 2, 2];
        let mut udp = vec![
            0xC0, 0x00, 0x0F, 0x02, 0x00, 0x14, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let template = udp_checksum(&src, &dst, &udp);
        let stamp = [0xA5, 0x5A, 0xDE, 0xAD, 0xBE, 0xEF];
        udp[12..18].copy_from_slice(&stamp);
        let stamped = replace_in_udp_checksum(template, 0, ones_complement_sum(&stamp, 0));
        assert_eq!(stamped, udp_checksum(&src, &dst, &udp));
    }
}
