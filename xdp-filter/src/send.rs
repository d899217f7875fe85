//! Sending a worker's frames as XDP frames, through the reflector program itself.
//!
//! A copy-mode AF_XDP socket transmits each frame as an skb: an allocation and a copy
//! per frame in `sendto`, and on veth a second copy when the peer runs XDP (the AF_XDP
//! profile in docs/PERFORMANCE.md). An [`XdpSender`] instead copies a batch into its
//! queue's block of the program's memory-mapped `send_batches` map and runs the
//! attached program on it once, with the kernel's live-frames `BPF_PROG_RUN`: each run
//! writes the next frame of the block over the page the kernel gives it and returns
//! `XDP_TX`, so the batch leaves as XDP frames, like frames reflected in the kernel.
//! The runs carry [`SEND_META_LEN`] bytes of metadata with a secret chosen at load,
//! which no received frame can carry (reflector.bpf.c, `send_for_worker`). Each run of
//! a call gets a fresh page with that metadata copied in: a call of at most
//! [`SEND_BATCH`] frames is one kernel batch from a new page pool, so no page comes
//! back from the peer within the call, where the peer's XDP program may have written
//! its own metadata over ours (the fast head's long calls meet that: probe.bpf.c).
//!
//! A call costs about 20 µs whatever the batch (the kernel sets up a page pool for
//! it), against about 0.1 µs per frame, so it pays for full batches only; the caller
//! decides ([`XdpSender::worth_it`]).
//!
//! What the device refuses to send is freed by the kernel without a counter the worker
//! can read; [`SendDrops`] counts it from two `xdp` tracepoints, and each
//! [`XdpSender::send`] says how much of its batch was refused.

use crate::skel::{self, SendDropsSkel};
use crate::{bpf_error, Error, Result, SEND_BATCH, SEND_BATCH_SIZE, SEND_FRAME_MAX, SEND_META_LEN};
use libbpf_rs::{libbpf_sys, Link, MapCore, MapFlags};
use nix::sys::mman::{mmap, munmap, MapFlags as MmapFlags, ProtFlags};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// Offsets in one queue's block (struct send_batch).
const COUNT_AT: usize = 0;
const NEXT_AT: usize = 4;
const FRAMES_AT: usize = 8;
const FRAME_STRIDE: usize = 4 + SEND_FRAME_MAX;
/// The frame the kernel copies into each page before the program overwrites it: the
/// shortest Ethernet frame, so that copy stays cheap.
const TEMPLATE_FRAME_LEN: usize = 60;

/// Fewest frames in a batch for which [`XdpSender::send`] costs less than the socket.
pub const WORTH_IT_FROM: usize = SEND_BATCH / 2;

/// Where the refused-frame counter (send_drops.bpf.c) keeps its one entry.
const WATCHED_IFINDEX_AT: usize = 0;
const REFUSED_AT: usize = 8;

/// The counter of XDP frames an interface refused to send, attached while it lives.
pub struct SendDrops {
    skel: SendDropsSkel<'static>,
    _links: [Link; 2],
    ifindex: u32,
}

impl SendDrops {
    /// Load and attach the counter for the interface `ifindex`.
    pub fn watch(ifindex: u32) -> Result<SendDrops> {
        let skel = skel::load_send_drops()?;
        let mut value = [0u8; 16];
        value[WATCHED_IFINDEX_AT..WATCHED_IFINDEX_AT + 4].copy_from_slice(&ifindex.to_ne_bytes());
        skel.maps
            .send_drops
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(bpf_error(
                "name the interface whose refused XDP frames are counted",
            ))?;
        let attach = |program: &libbpf_rs::ProgramMut<'static>| {
            program.attach().map_err(bpf_error(
                "attach the counter of refused XDP frames to the xdp tracepoints",
            ))
        };
        let links = [
            attach(&skel.progs.count_xmit_drops)?,
            attach(&skel.progs.count_redirect_errors)?,
        ];
        Ok(SendDrops {
            skel,
            _links: links,
            ifindex,
        })
    }

    fn map(&self) -> BorrowedFd<'_> {
        self.skel.maps.send_drops.as_fd()
    }
}

/// What one [`XdpSender::send`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Frames the program returned with `XDP_TX`.
    pub transmitted: usize,
    /// Frames the interface refused while this batch was sent (at most `transmitted`).
    /// Another worker's refused frames at the same moment may be counted here too.
    pub refused: usize,
}

/// A shared, writable mapping of a BPF map's values (BPF_F_MMAPABLE), unmapped on drop.
struct Mapping {
    start: NonNull<u8>,
    len: NonZeroUsize,
}

impl Mapping {
    fn new(map: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        let len = NonZeroUsize::new(len.next_multiple_of(4096)).expect("a map is never empty");
        // SAFETY: a fresh shared mapping of the map's values, which the kernel keeps
        // alive for as long as it is mapped; it aliases no Rust memory.
        #[allow(unsafe_code)]
        let start = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MmapFlags::MAP_SHARED,
                map,
                0,
            )
        }?
        .cast();
        Ok(Mapping { start, len })
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= self.len.get());
        // SAFETY: in bounds (checked above) of a mapping this value owns. The kernel
        // writes to the same bytes only inside `XdpSender::send`'s BPF_PROG_RUN, or
        // (the refused counter) with whole aligned 8-byte stores, never to what is
        // written here.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.start.as_ptr().add(at), bytes.len());
        }
    }

    fn read_u64(&self, at: usize) -> u64 {
        assert!(at % 8 == 0 && at + 8 <= self.len.get());
        // SAFETY: in bounds and aligned (checked above, the mapping is page-aligned);
        // a volatile load, as the kernel may update the value at any time.
        #[allow(unsafe_code)]
        unsafe {
            self.start.as_ptr().add(at).cast::<u64>().read_volatile()
        }
    }

    fn read_u32(&self, at: usize) -> u32 {
        assert!(at % 4 == 0 && at + 4 <= self.len.get());
        // SAFETY: as in `read_u64`.
        #[allow(unsafe_code)]
        unsafe {
            self.start.as_ptr().add(at).cast::<u32>().read_volatile()
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; nothing refers to it after.
        #[allow(unsafe_code)]
        let _ = unsafe { munmap(self.start.cast(), self.len.get()) };
    }
}

/// One worker's way to send through the XDP program. Not shared: each worker owns its
/// queue's block.
pub struct XdpSender {
    program: OwnedFd,
    batches: Mapping,
    refused: Mapping,
    /// Start of this queue's block in `batches`.
    block: usize,
    /// Metadata (secret, queue) and the template frame.
    input: Vec<u8>,
    ctx: libbpf_sys::xdp_md,
    queued: usize,
}

// SAFETY: the mappings are owned by this value alone (no other reference to this
// queue's block exists in the process; the counter is only read), so moving it to the
// worker's thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for XdpSender {}

impl XdpSender {
    /// Map the program's `send_batches` (whose `entries` blocks follow each other) and
    /// the refused-frame counter, and prepare runs of `program` for `queue` of the
    /// interface `drops` watches.
    pub(crate) fn new(
        program: BorrowedFd<'_>,
        map: BorrowedFd<'_>,
        entries: u32,
        secret: u64,
        drops: &SendDrops,
        queue: u32,
    ) -> Result<XdpSender> {
        if queue >= entries {
            return Err(Error::QueueOutOfRange {
                queue,
                max: entries,
            });
        }
        let send_error = |source: io::Error| Error::XdpSend { queue, source };
        let program = program.try_clone_to_owned().map_err(send_error)?;
        // The kernel lays array values out 8-byte aligned.
        let stride = SEND_BATCH_SIZE.next_multiple_of(8);
        let batches = Mapping::new(map, stride * entries as usize).map_err(send_error)?;
        let refused = Mapping::new(drops.map(), 16).map_err(send_error)?;
        let mut input = Vec::with_capacity(SEND_META_LEN + TEMPLATE_FRAME_LEN);
        input.extend_from_slice(&secret.to_ne_bytes());
        input.extend_from_slice(&queue.to_ne_bytes());
        input.extend_from_slice(&0u32.to_ne_bytes());
        input.resize(SEND_META_LEN + TEMPLATE_FRAME_LEN, 0);
        let ctx = libbpf_sys::xdp_md {
            // Where the frame starts in the input: the metadata comes before it.
            data: SEND_META_LEN as u32,
            data_end: input.len() as u32,
            ingress_ifindex: drops.ifindex,
            rx_queue_index: queue,
            ..Default::default()
        };
        Ok(XdpSender {
            program,
            batches,
            refused,
            block: stride * queue as usize,
            input,
            ctx,
            queued: 0,
        })
    }

    /// Whether a batch of `frames` frames is cheaper sent this way than by the socket.
    pub fn worth_it(frames: usize) -> bool {
        frames >= WORTH_IT_FROM
    }

    /// Whether a frame of `len` bytes can be sent this way.
    pub fn fits(len: usize) -> bool {
        len <= SEND_FRAME_MAX
    }

    /// Queue `frame` for the next [`XdpSender::send`]. False, and nothing queued, if the
    /// batch is full or the frame too long.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if self.queued == SEND_BATCH || !Self::fits(frame.len()) {
            return false;
        }
        let at = self.block + FRAMES_AT + self.queued * FRAME_STRIDE;
        self.batches.write(at, &(frame.len() as u32).to_ne_bytes());
        self.batches.write(at + 4, frame);
        self.queued += 1;
        true
    }

    /// Send the queued frames.
    pub fn send(&mut self) -> io::Result<Sent> {
        let count = std::mem::take(&mut self.queued);
        if count == 0 {
            return Ok(Sent::default());
        }
        self.batches
            .write(self.block + COUNT_AT, &(count as u32).to_ne_bytes());
        self.batches
            .write(self.block + NEXT_AT, &0u32.to_ne_bytes());
        let refused_before = self.refused.read_u64(REFUSED_AT);
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: self.input.as_ptr().cast(),
            data_size_in: self.input.len() as u32,
            ctx_in: std::ptr::from_ref(&self.ctx).cast(),
            ctx_size_in: std::mem::size_of::<libbpf_sys::xdp_md>() as u32,
            repeat: count as i32,
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: count as u32,
            ..Default::default()
        };
        // SAFETY: `opts` points at `input` and `ctx`, which outlive the call, with
        // their true lengths; the kernel only reads them (no output buffers are given).
        #[allow(unsafe_code)]
        let ret =
            unsafe { libbpf_sys::bpf_prog_test_run_opts(self.program.as_raw_fd(), &mut opts) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(-ret));
        }
        // The device's refusals are counted when the run flushes each bulk, before
        // BPF_PROG_RUN returns.
        let refused = self.refused.read_u64(REFUSED_AT) - refused_before;
        let transmitted = (self.batches.read_u32(self.block + NEXT_AT) as usize).min(count);
        Ok(Sent {
            transmitted,
            refused: (refused as usize).min(transmitted),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reflection, XdpFilter};
    use dataplane::reference::{reference_filter, reference_frames};

    /// XDP_TX, as in <linux/bpf.h>.
    const XDP_TX: u32 = 3;

    /// One ordinary BPF_PROG_TEST_RUN (not live) of the sender's program on its input,
    /// with the metadata's secret replaced by `secret`: the action and what came out.
    fn run_once(sender: &mut XdpSender, secret: u64, queued: usize) -> (u32, Vec<u8>) {
        sender
            .batches
            .write(sender.block + COUNT_AT, &(queued as u32).to_ne_bytes());
        sender
            .batches
            .write(sender.block + NEXT_AT, &0u32.to_ne_bytes());
        let mut input = sender.input.clone();
        input[..8].copy_from_slice(&secret.to_ne_bytes());
        let mut out = vec![0u8; 4096];
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: input.as_ptr().cast(),
            data_size_in: input.len() as u32,
            data_out: out.as_mut_ptr().cast(),
            data_size_out: out.len() as u32,
            ctx_in: std::ptr::from_ref(&sender.ctx).cast(),
            ctx_size_in: std::mem::size_of::<libbpf_sys::xdp_md>() as u32,
            repeat: 1,
            ..Default::default()
        };
        // SAFETY: `opts` points at `input`, `ctx` and `out`, which outlive the call,
        // with their true lengths.
        #[allow(unsafe_code)]
        let ret =
            unsafe { libbpf_sys::bpf_prog_test_run_opts(sender.program.as_raw_fd(), &mut opts) };
        assert_eq!(ret, 0, "BPF_PROG_TEST_RUN");
        out.truncate(opts.data_size_out as usize);
        (opts.retval, out)
    }

    /// The program sends the queued frame, byte for byte and without the metadata,
    /// only for a run that carries the secret; with any other, the run's input is
    /// judged like a received frame and nothing queued leaves.
    #[test]
    fn only_a_run_with_the_secret_sends_the_queued_frame() {
        let program = XdpFilter::load(&reference_filter(), &Reflection::AfXdp, 4096)
            .expect("load the XDP program (are you root?)");
        let loopback = 1;
        let drops = SendDrops::watch(loopback).expect("attach the refused-frame counter");
        let mut sender = program.sender(&drops, 0).expect("a sender for queue 0");
        let frames: Vec<Vec<u8>> = reference_frames()
            .into_iter()
            .filter(|f| f.expected.is_ok() && XdpSender::fits(f.bytes.len()))
            .map(|f| f.bytes)
            .collect();
        assert!(frames.len() > 10);
        let secret = u64::from_ne_bytes(sender.input[..8].try_into().unwrap());

        for frame in &frames {
            assert!(sender.push(frame));
            assert_eq!(run_once(&mut sender, secret, 1), (XDP_TX, frame.clone()));
            sender.queued = 0;
        }
        assert!(sender.push(&frames[0]));
        for wrong in [0, !secret, secret ^ 1, secret.rotate_left(32)] {
            let (action, out) = run_once(&mut sender, wrong, 1);
            assert_ne!(action, XDP_TX, "{wrong:#x}");
            assert_ne!(out, frames[0], "{wrong:#x}");
        }
        // With the secret but nothing queued (or the batch used up), nothing is sent.
        assert_ne!(run_once(&mut sender, secret, 0).0, XDP_TX);
    }

    #[test]
    fn a_batch_holds_send_batch_frames_that_fit() {
        let program = XdpFilter::load(&reference_filter(), &Reflection::AfXdp, 4096)
            .expect("load the XDP program (are you root?)");
        let drops = SendDrops::watch(1).expect("attach the refused-frame counter");
        let mut sender = program.sender(&drops, 0).expect("a sender for queue 0");
        assert!(!sender.push(&[0; SEND_FRAME_MAX + 1]), "too long");
        for _ in 0..SEND_BATCH {
            assert!(sender.push(&[0; SEND_FRAME_MAX]));
        }
        assert!(!sender.push(&[0; 60]), "full");
        assert!(!XdpSender::worth_it(WORTH_IT_FROM - 1) && XdpSender::worth_it(WORTH_IT_FROM));
    }
}
