//! AF_XDP multi-buffer frames (`XDP_USE_SG`): a frame longer than one UMEM chunk arrives
//! as several RX descriptors, each but the last flagged `XDP_PKT_CONTD` in its
//! `options`, and goes out the same way.
//!
//! The worker sees one handle per frame, its first descriptor; the others hang off it in
//! a table indexed by UMEM chunk, so a handle stays a plain [`FrameDesc`] and frames
//! that fit one chunk cost nothing extra. The worker's view of a chained frame is a
//! contiguous copy ([`Chains::with_frame`]): its edits are scattered back into the same
//! buffers, which then go back out with the same chaining. Frames longer than the copy
//! holds are released at once and counted as too large.

use xsk_rs::{FrameDesc, Umem};

/// Whether more buffers of the same frame follow `desc`.
pub(super) fn continued(desc: &FrameDesc) -> bool {
    desc.has_more_frames()
}

pub(super) struct Chains {
    /// The buffer after the one in each UMEM chunk, for chunks whose buffer is continued.
    next: Vec<FrameDesc>,
    chunk_size: usize,
    /// The first buffers of a frame whose last ones the RX ring has not handed over yet
    /// (a batch ended inside the chain).
    partial: Vec<FrameDesc>,
    /// The longest frame taken.
    max_frame_len: usize,
    /// Where a chained frame is assembled for the worker (`max_frame_len` bytes).
    scratch: Vec<u8>,
    /// The buffers of one frame on its way to the TX ring.
    outgoing: Vec<FrameDesc>,
    /// Frames longer than `max_frame_len` since the last `take_too_large`.
    too_large: u64,
}

impl Chains {
    /// For a socket bound with `XDP_USE_SG`: frames up to `max_frame_len` bytes in a UMEM
    /// of `chunk_count` chunks of `chunk_size` bytes.
    pub(super) fn new(chunk_count: usize, chunk_size: usize, max_frame_len: usize) -> Chains {
        // Room for chains of half-full chunks: copy mode fills each chunk but the last,
        // drivers in zero-copy mode may not.
        let max_buffers = max_frame_len.div_ceil(chunk_size / 2);
        Chains {
            next: vec![FrameDesc::default(); chunk_count],
            chunk_size,
            partial: Vec::with_capacity(max_buffers),
            max_frame_len,
            scratch: vec![0; max_frame_len],
            outgoing: Vec::with_capacity(max_buffers),
            too_large: 0,
        }
    }

    /// For a socket without multi-buffer support, whose frames are at most one chunk's
    /// `chunk_data_len` bytes and never chained.
    pub(super) fn none(chunk_size: usize, chunk_data_len: usize) -> Chains {
        Chains {
            next: Vec::new(),
            chunk_size,
            partial: Vec::new(),
            max_frame_len: chunk_data_len,
            scratch: Vec::new(),
            outgoing: Vec::new(),
            too_large: 0,
        }
    }

    /// The longest frame taken.
    pub(super) fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn chunk(&self, desc: &FrameDesc) -> usize {
        desc.addr() / self.chunk_size
    }

    /// Buffers of an unfinished chain from the previous batch, to go in front of the
    /// descriptors read next.
    pub(super) fn take_partial(&mut self, frames: &mut Vec<FrameDesc>) {
        frames.append(&mut self.partial);
    }

    /// Turn the descriptors `frames[start..]` just read from the RX ring into one handle
    /// per frame: continued buffers are linked to their first one and leave the list; a
    /// chain the ring has not finished waits in `partial`; a frame longer than
    /// `max_frame_len` goes to `free` and is counted.
    pub(super) fn link(
        &mut self,
        frames: &mut Vec<FrameDesc>,
        start: usize,
        free: &mut Vec<FrameDesc>,
    ) {
        if !frames[start..].iter().any(continued) {
            return;
        }
        let (mut read, mut write) = (start, start);
        while read < frames.len() {
            let first = read;
            let mut len = frames[read].lengths().data();
            while continued(&frames[read]) && read + 1 < frames.len() {
                let chunk = self.chunk(&frames[read]);
                self.next[chunk] = frames[read + 1];
                read += 1;
                len += frames[read].lengths().data();
            }
            let last = read;
            read += 1;
            if continued(&frames[last]) {
                self.partial.extend_from_slice(&frames[first..]);
                break;
            }
            if len > self.max_frame_len {
                free.extend_from_slice(&frames[first..=last]);
                self.too_large += 1;
                continue;
            }
            frames[write] = frames[first];
            write += 1;
        }
        frames.truncate(write);
    }

    /// The buffers after `first` of the frame it starts, in order, into `out`.
    fn collect_continued(&self, first: &FrameDesc, out: &mut Vec<FrameDesc>) {
        let mut desc = *first;
        while continued(&desc) {
            desc = self.next[self.chunk(&desc)];
            out.push(desc);
        }
    }

    /// Put the buffers after the first of every chained frame in `frames` on `free`
    /// (the first ones are the caller's to move).
    pub(super) fn release_continued(&self, frames: &[FrameDesc], free: &mut Vec<FrameDesc>) {
        for first in frames {
            self.collect_continued(first, free);
        }
    }

    /// All buffers of the frame `first` starts, chained as received, for the TX ring.
    pub(super) fn outgoing(&mut self, first: &FrameDesc) -> &[FrameDesc] {
        let mut out = std::mem::take(&mut self.outgoing);
        out.clear();
        out.push(*first);
        self.collect_continued(first, &mut out);
        self.outgoing = out;
        &self.outgoing
    }

    /// Run `f` on a contiguous copy of the chained frame `first` starts, then copy the
    /// bytes back into its buffers.
    pub(super) fn with_frame<R>(
        &mut self,
        umem: &Umem,
        first: &FrameDesc,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let mut len = 0;
        self.for_each_buffer(first, |desc, scratch| {
            // SAFETY: the buffers of a frame the worker holds are the worker's alone
            // (received, not yet sent or released), and lie in this socket's UMEM.
            let data = unsafe { umem.data(desc) };
            let part = data.contents();
            scratch[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        });
        let result = f(&mut self.scratch[..len]);
        let mut at = 0;
        self.for_each_buffer(first, |desc, scratch| {
            let mut desc = *desc;
            // SAFETY: as above; no other reference to these bytes exists meanwhile.
            let mut data = unsafe { umem.data_mut(&mut desc) };
            let part = data.contents_mut();
            part.copy_from_slice(&scratch[at..at + part.len()]);
            at += part.len();
        });
        result
    }

    fn for_each_buffer(&mut self, first: &FrameDesc, mut f: impl FnMut(&FrameDesc, &mut [u8])) {
        let mut desc = *first;
        loop {
            f(&desc, &mut self.scratch);
            if !continued(&desc) {
                return;
            }
            desc = self.next[self.chunk(&desc)];
        }
    }

    pub(super) fn take_too_large(&mut self) -> u64 {
        std::mem::take(&mut self.too_large)
    }
}
