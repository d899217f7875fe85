//! Walking the records of one `/dev/bpf` read buffer.
//!
//! A read returns several captured frames back to back, each behind a `struct bpf_hdr`:
//!
//! ```text
//! offset  0  bh_tstamp   struct timeval32 (two i32)
//! offset  8  bh_caplen   u32  bytes of the frame present in the buffer
//! offset 12  bh_datalen  u32  length of the frame on the wire
//! offset 16  bh_hdrlen   u16  offset of the frame data from the start of the header
//! ```
//!
//! `sizeof(struct bpf_hdr)` is 20 because of tail padding, but the kernel stores only
//! the first 18 bytes' worth and sets `bh_hdrlen` so that the *network* header ends up
//! 4-byte aligned: for Ethernet it is 18, not 20. The data offset must therefore always
//! be taken from `bh_hdrlen`. The next record starts at
//! `BPF_WORDALIGN(bh_hdrlen + bh_caplen)` from this one.
//!
//! This module is pure and OS-independent (the header is in host byte order, which is
//! what the tests build on Linux), so it is unit-tested without a Mac.

use std::fmt;

/// Bytes of `struct bpf_hdr` the kernel fills in (up to and including `bh_hdrlen`).
pub const BPF_HDR_LEN: usize = 18;

const TSTAMP_SEC_AT: usize = 0;
const TSTAMP_USEC_AT: usize = 4;
const CAPLEN_AT: usize = 8;
const DATALEN_AT: usize = 12;
const HDRLEN_AT: usize = 16;

/// macOS aligns records to `sizeof(int32_t)`.
pub const BPF_ALIGNMENT: usize = 4;

/// `BPF_WORDALIGN(x)` of `<net/bpf.h>` on macOS.
pub const fn word_align(x: usize) -> usize {
    (x + (BPF_ALIGNMENT - 1)) & !(BPF_ALIGNMENT - 1)
}

// This module builds and is tested on every OS; on macOS, where libc has `<net/bpf.h>`,
// the layout above is checked against it.
#[cfg(target_os = "macos")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(BPF_ALIGNMENT == libc::BPF_ALIGNMENT);
    assert!(word_align(BPF_HDR_LEN + 3) == libc::BPF_WORDALIGN(BPF_HDR_LEN + 3));
    assert!(
        TSTAMP_SEC_AT == offset_of!(libc::bpf_hdr, bh_tstamp) + offset_of!(libc::timeval32, tv_sec)
    );
    assert!(
        TSTAMP_USEC_AT
            == offset_of!(libc::bpf_hdr, bh_tstamp) + offset_of!(libc::timeval32, tv_usec)
    );
    assert!(CAPLEN_AT == offset_of!(libc::bpf_hdr, bh_caplen));
    assert!(DATALEN_AT == offset_of!(libc::bpf_hdr, bh_datalen));
    assert!(HDRLEN_AT == offset_of!(libc::bpf_hdr, bh_hdrlen));
    assert!(BPF_HDR_LEN == HDRLEN_AT + size_of::<libc::c_ushort>());
};

/// One captured frame in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Offset of the first frame byte in the buffer.
    pub data: usize,
    /// Bytes of the frame present in the buffer.
    pub caplen: usize,
    /// Length of the frame as it was on the wire.
    pub datalen: usize,
    /// When the kernel captured it (`bh_tstamp`), nanoseconds since the Unix epoch:
    /// the earliest receive time the platform offers (STAMP T2, dwell time).
    pub captured_at: u64,
}

impl Record {
    /// `false` when the snap length or the buffer size cut the frame short. Such a
    /// frame must never be reflected: its tail is missing, so the copy sent back would
    /// be shorter than the original and its length fields would lie.
    pub const fn is_whole(&self) -> bool {
        self.caplen == self.datalen
    }
}

/// Why the rest of a buffer cannot be trusted. The walk stops at the first one; the
/// records before it are still valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than [`BPF_HDR_LEN`] bytes remain where a header should start.
    TruncatedHeader { at: usize, remaining: usize },
    /// `bh_hdrlen` would put the data inside the header itself.
    HeaderLenTooSmall { at: usize, hdrlen: usize },
    /// `bh_hdrlen + bh_caplen` runs past the end of the buffer.
    CaptureBeyondBuffer {
        at: usize,
        end: usize,
        buffer: usize,
    },
    /// More bytes captured than the frame had on the wire.
    CaplenExceedsDatalen {
        at: usize,
        caplen: usize,
        datalen: usize,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Malformed::TruncatedHeader { at, remaining } => write!(
                f,
                "bpf record at {at}: only {remaining} bytes left for a {BPF_HDR_LEN}-byte header"
            ),
            Malformed::HeaderLenTooSmall { at, hdrlen } => write!(
                f,
                "bpf record at {at}: bh_hdrlen {hdrlen} is shorter than the header ({BPF_HDR_LEN})"
            ),
            Malformed::CaptureBeyondBuffer { at, end, buffer } => write!(
                f,
                "bpf record at {at}: captured data ends at {end}, past the {buffer}-byte buffer"
            ),
            Malformed::CaplenExceedsDatalen {
                at,
                caplen,
                datalen,
            } => write!(
                f,
                "bpf record at {at}: bh_caplen {caplen} exceeds bh_datalen {datalen}"
            ),
        }
    }
}

/// A resumable position in a read buffer. It holds no borrow, so a platform can keep it
/// next to the buffer it walks and hand out a few records per call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pos: usize,
}

impl Cursor {
    /// A cursor at the start of a freshly read buffer.
    pub const fn new() -> Self {
        Cursor { pos: 0 }
    }

    /// The next record of `buf`, `None` at the end of the buffer, or the reason the
    /// rest of the buffer is unusable. Records with a zero `bh_caplen` carry no bytes
    /// and are skipped. After an error the cursor is left at the bad record, so calling
    /// again reports the same error; the caller discards the buffer.
    pub fn next(&mut self, buf: &[u8]) -> Option<Result<Record, Malformed>> {
        loop {
            let at = self.pos;
            let remaining = buf.len().checked_sub(at).filter(|r| *r > 0)?;
            if remaining < BPF_HDR_LEN {
                return Some(Err(Malformed::TruncatedHeader { at, remaining }));
            }
            let caplen = ne_u32(buf, at + CAPLEN_AT) as usize;
            let datalen = ne_u32(buf, at + DATALEN_AT) as usize;
            let hdrlen = usize::from(u16::from_ne_bytes([
                buf[at + HDRLEN_AT],
                buf[at + HDRLEN_AT + 1],
            ]));
            if hdrlen < BPF_HDR_LEN {
                return Some(Err(Malformed::HeaderLenTooSmall { at, hdrlen }));
            }
            let end = at + hdrlen + caplen;
            if end > buf.len() {
                return Some(Err(Malformed::CaptureBeyondBuffer {
                    at,
                    end,
                    buffer: buf.len(),
                }));
            }
            if caplen > datalen {
                return Some(Err(Malformed::CaplenExceedsDatalen {
                    at,
                    caplen,
                    datalen,
                }));
            }
            // The last record is not padded, so the aligned end may pass the buffer end.
            self.pos = word_align(end).min(buf.len());
            if caplen == 0 {
                continue;
            }
            // timeval32 seconds are read unsigned: past 2038 they wrap the i32 but
            // still count up from 1970 (until 2106).
            let secs = u64::from(ne_u32(buf, at + TSTAMP_SEC_AT));
            let micros = u64::from(ne_u32(buf, at + TSTAMP_USEC_AT));
            return Some(Ok(Record {
                data: at + hdrlen,
                caplen,
                datalen,
                captured_at: secs * 1_000_000_000 + micros * 1_000,
            }));
        }
    }
}

fn ne_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Append one record as the kernel lays it out (hdrlen 18, as for Ethernet), with
    /// the padding that precedes the next record.
    fn push_record(buf: &mut Vec<u8>, frame: &[u8], datalen: usize) {
        push_raw(buf, frame.len() as u32, datalen as u32, 18, frame);
    }

    fn push_raw(buf: &mut Vec<u8>, caplen: u32, datalen: u32, hdrlen: u16, data: &[u8]) {
        buf.resize(word_align(buf.len()), 0);
        let start = buf.len();
        buf.extend_from_slice(&1_700_000_000i32.to_ne_bytes());
        buf.extend_from_slice(&123_456i32.to_ne_bytes());
        buf.extend_from_slice(&caplen.to_ne_bytes());
        buf.extend_from_slice(&datalen.to_ne_bytes());
        buf.extend_from_slice(&hdrlen.to_ne_bytes());
        buf.resize(buf.len().max(start + usize::from(hdrlen)), 0xEE);
        buf.extend_from_slice(data);
    }

    fn walk(buf: &[u8]) -> (Vec<Record>, Option<Malformed>) {
        let mut cursor = Cursor::new();
        let mut records = Vec::new();
        while let Some(step) = cursor.next(buf) {
            match step {
                Ok(record) => records.push(record),
                Err(malformed) => return (records, Some(malformed)),
            }
        }
        (records, None)
    }

    fn frame(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn word_align_rounds_up_to_four() {
        assert_eq!(word_align(0), 0);
        assert_eq!(word_align(1), 4);
        assert_eq!(word_align(18 + 60), 80);
        assert_eq!(word_align(80), 80);
    }

    #[test]
    fn several_frames_with_padding_between_them() {
        let mut buf = Vec::new();
        // 60 + 18 = 78: two padding bytes follow. 61 + 18 = 79: one. 64 + 18 = 82: two.
        for (len, fill) in [(60, 0xA1), (61, 0xB2), (64, 0xC3)] {
            push_record(&mut buf, &frame(len, fill), len);
        }
        let (records, malformed) = walk(&buf);
        assert_eq!(malformed, None);
        let got: Vec<(usize, usize)> = records.iter().map(|r| (r.data, r.caplen)).collect();
        assert_eq!(got, vec![(18, 60), (80 + 18, 61), (160 + 18, 64)]);
        // bh_tstamp 1 700 000 000 s + 123 456 µs, as push_raw writes it.
        assert!(records
            .iter()
            .all(|r| r.captured_at == 1_700_000_000_123_456_000));
        for (record, fill) in records.iter().zip([0xA1, 0xB2, 0xC3]) {
            let bytes = &buf[record.data..record.data + record.caplen];
            assert!(bytes.iter().all(|b| *b == fill), "record {record:?}");
            assert!(record.is_whole());
        }
    }

    #[test]
    fn data_offset_comes_from_hdrlen_not_sizeof() {
        let mut buf = Vec::new();
        push_raw(&mut buf, 4, 4, 20, &[1, 2, 3, 4]);
        push_raw(&mut buf, 4, 4, 18, &[5, 6, 7, 8]);
        let (records, malformed) = walk(&buf);
        assert_eq!(malformed, None);
        assert_eq!(&buf[records[0].data..records[0].data + 4], &[1, 2, 3, 4]);
        assert_eq!(records[1].data, 24 + 18);
        assert_eq!(&buf[records[1].data..records[1].data + 4], &[5, 6, 7, 8]);
    }

    #[test]
    fn truncated_last_header_keeps_earlier_records() {
        let mut buf = Vec::new();
        push_record(&mut buf, &frame(60, 1), 60);
        buf.resize(80, 0);
        buf.extend_from_slice(&[0; 10]);
        let (records, malformed) = walk(&buf);
        assert_eq!(records.len(), 1);
        assert_eq!(
            malformed,
            Some(Malformed::TruncatedHeader {
                at: 80,
                remaining: 10
            })
        );
    }

    #[test]
    fn caplen_beyond_buffer_stops_the_walk() {
        let mut buf = Vec::new();
        push_record(&mut buf, &frame(60, 1), 60);
        push_raw(&mut buf, 1000, 1000, 18, &frame(100, 2));
        let (records, malformed) = walk(&buf);
        assert_eq!(records.len(), 1);
        assert_eq!(
            malformed,
            Some(Malformed::CaptureBeyondBuffer {
                at: 80,
                end: 80 + 18 + 1000,
                buffer: buf.len()
            })
        );
    }

    #[test]
    fn zero_caplen_is_skipped() {
        let mut buf = Vec::new();
        push_raw(&mut buf, 0, 60, 18, &[]);
        push_record(&mut buf, &frame(60, 7), 60);
        let (records, malformed) = walk(&buf);
        assert_eq!(malformed, None);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, 20 + 18);
        assert_eq!(buf[records[0].data], 7);
    }

    #[test]
    fn hdrlen_inside_the_header_is_malformed() {
        let mut buf = Vec::new();
        push_record(&mut buf, &frame(60, 1), 60);
        push_raw(&mut buf, 60, 60, 8, &frame(60, 2));
        let (records, malformed) = walk(&buf);
        assert_eq!(records.len(), 1);
        assert_eq!(
            malformed,
            Some(Malformed::HeaderLenTooSmall { at: 80, hdrlen: 8 })
        );
        // The cursor stays on the bad record: the caller must discard the buffer.
        let mut cursor = Cursor { pos: 80 };
        assert!(matches!(cursor.next(&buf), Some(Err(_))));
        assert!(matches!(cursor.next(&buf), Some(Err(_))));
    }

    #[test]
    fn frame_cut_by_snaplen_is_reported_as_not_whole() {
        let mut buf = Vec::new();
        push_record(&mut buf, &frame(128, 3), 1514);
        push_record(&mut buf, &frame(60, 4), 60);
        let (records, malformed) = walk(&buf);
        assert_eq!(malformed, None);
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].caplen, records[0].datalen), (128, 1514));
        assert!(!records[0].is_whole());
        assert!(records[1].is_whole());
    }

    #[test]
    fn caplen_above_datalen_is_malformed() {
        let mut buf = Vec::new();
        push_raw(&mut buf, 64, 60, 18, &frame(64, 1));
        let (records, malformed) = walk(&buf);
        assert!(records.is_empty());
        assert_eq!(
            malformed,
            Some(Malformed::CaplenExceedsDatalen {
                at: 0,
                caplen: 64,
                datalen: 60
            })
        );
    }

    #[test]
    fn empty_buffer_has_no_records() {
        assert_eq!(walk(&[]), (Vec::new(), None));
    }

    #[test]
    fn cursor_resumes_where_it_stopped() {
        let mut buf = Vec::new();
        for fill in 1..=3u8 {
            push_record(&mut buf, &frame(60, fill), 60);
        }
        let mut cursor = Cursor::new();
        let first = cursor.next(&buf).unwrap().unwrap();
        let saved = cursor;
        let second = cursor.next(&buf).unwrap().unwrap();
        let mut resumed = saved;
        assert_eq!(resumed.next(&buf).unwrap().unwrap(), second);
        assert_eq!(buf[first.data], 1);
        assert_eq!(buf[second.data], 2);
        assert_eq!(buf[cursor.next(&buf).unwrap().unwrap().data], 3);
        assert!(cursor.next(&buf).is_none());
    }
}
