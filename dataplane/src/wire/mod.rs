//! Typed views over frame bytes, in the style of smoltcp's `wire` module: each header
//! is a struct wrapping a buffer (`&[u8]` to read, `&mut [u8]` to write) with one
//! getter and one setter per field, so code names fields instead of offsets.
//!
//! `new_checked` refuses a buffer shorter than the fixed header; `new_unchecked` trusts
//! the caller, which is how the per-frame path uses them: [`crate::classify()`] checks
//! every length once, and the views over an accepted frame's [`crate::Layout`] then
//! compile to the same loads and stores as indexing by hand. The offsets come from
//! [`crate::parse`], the single source the XDP program's C header is generated from.

#[macro_use]
mod view;

pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod stamp;
pub mod udp;

pub use ethernet::{EthernetFrame, VlanTag};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6ExtHeader, Ipv6Packet};
pub use stamp::{NtpTimestamp, StampPacket};
pub use udp::UdpDatagram;

use std::ops::Range;

/// A buffer too short for the header a view was asked to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{header} needs at least {needed} bytes, the buffer has {len}")]
pub struct ShortBuffer {
    pub header: &'static str,
    pub needed: usize,
    pub len: usize,
}

/// `Ok` if `buffer` holds at least `needed` bytes of `header`.
#[inline(always)]
fn check_len(header: &'static str, buffer: &[u8], needed: usize) -> Result<(), ShortBuffer> {
    if buffer.len() < needed {
        return Err(ShortBuffer {
            header,
            needed,
            len: buffer.len(),
        });
    }
    Ok(())
}

/// The `N` bytes at `at`.
#[inline(always)]
fn read<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&data[at..at + N]);
    bytes
}

#[inline(always)]
fn write(data: &mut [u8], at: usize, bytes: &[u8]) {
    data[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Swap two equally long fields of `data`, `a` wholly before `b`.
#[inline(always)]
fn swap_fields(data: &mut [u8], a: Range<usize>, b: Range<usize>) {
    let (head, tail) = data.split_at_mut(b.start);
    head[a].swap_with_slice(&mut tail[..b.end - b.start]);
}
