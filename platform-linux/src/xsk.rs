//! One AF_XDP socket, its UMEM and its four rings, as a [`Platform`].
//!
//! Frame ownership moves between user space and the kernel through the rings:
//!
//! ```text
//!   free list ──fill──▶ kernel RX ──rx──▶ worker ──tx──▶ kernel TX ──completion──▶ free list
//!                                           └──────── release (rejected) ─────────────┘
//! ```
//!
//! Every frame is always in exactly one place, so none is ever lost or handed out twice.
//! The worker reflects frames inside the UMEM, so a received frame goes back out without
//! a copy; in zero-copy mode the NIC DMAs straight into and out of it.
//!
//! Jumbo frames: the socket is bound with `XDP_USE_SG` where the kernel (6.6+) and the
//! driver allow it, and a frame longer than a chunk arrives as a chain of buffers
//! ([`chain`]). Where they do not, the socket takes frames of one chunk and the XDP
//! program counts longer ones as `too_large` ([`AfXdpPlatform::max_frame_len`]).

mod chain;

use crate::rx_stamp::StampClock;
use crate::wake_latency::WakeLatency;
use crate::{Error, Result};
use chain::{continued, Chains};
use dataplane::{Flow, KernelDrops, Platform};
use settings::ZeroCopy;
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, BorrowedFd};
use xdp_filter::{Sent, XdpSender, RX_META_LEN};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Entries per ring (fill, completion, RX, TX).
const RING_SIZE: u32 = 2048;
/// Frames per UMEM: enough for all four rings at once, so the fill ring stays full
/// however many frames wait on the TX and completion rings. With half as many (two
/// rings' worth), frames in flight on the TX side left the fill ring short whenever the
/// RX ring filled up, and the kernel dropped frames for want of a buffer before the RX
/// ring was full (`kernel_fill_ring_empty`, docs/PERFORMANCE.md).
const FRAME_COUNT: u32 = 4 * RING_SIZE;
/// UMEM chunk size: a page, the most the kernel takes without huge pages. Longer
/// frames are chained over several chunks.
const FRAME_SIZE: u32 = 4096;
/// The longest frame a multi-buffer socket takes: every jumbo MTU in common use (9000
/// to 9216 bytes, some NICs up to about 16 000) with Ethernet and VLAN headers. The
/// worker assembles a chained frame in a buffer this long.
pub const MULTI_BUFFER_MAX_FRAME_LEN: u32 = 16 * 1024;
/// Frames per `recv_batch`.
const BATCH: usize = 64;
/// How long `recv_batch` sleeps in poll(2) when no frame is waiting. Short enough for a
/// prompt shutdown, long enough that an idle reflector uses no CPU.
const IDLE_POLL_MS: i32 = 100;
/// Upper bound on TX wake-ups per batch, so a stalled device cannot hold the worker.
const MAX_TX_KICKS: usize = 4;
/// SO_BUSY_POLL time budget in microseconds when busy polling is on.
const BUSY_POLL_USECS: libc::c_int = 20;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+, not yet in libc): how many frames one
/// sendto(2) transmits in copy mode, 32 by default.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// How one socket is opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketOptions {
    /// Copy or zero-copy: `Auto` lets the kernel use zero-copy if the driver supports it.
    pub zero_copy: ZeroCopy,
    /// Poll the NIC from the worker's thread (SO_PREFER_BUSY_POLL) instead of waiting
    /// for interrupts: lower latency at the price of a busy core.
    pub busy_poll: bool,
    /// Hold a CPU latency request while frames flow ([`WakeLatency`]); never while
    /// busy polling, which never sleeps.
    pub wake_latency: bool,
    /// In copy mode, send full batches as XDP frames through the XDP program
    /// ([`xdp_filter::XdpSender`]) rather than through the socket.
    pub xdp_send: bool,
}

impl SocketOptions {
    /// Whether the socket's worker holds the CPU latency request while frames flow.
    pub fn holds_wake_latency(&self) -> bool {
        self.wake_latency && !self.busy_poll
    }
}

/// An AF_XDP socket bound to one RX queue.
pub struct AfXdpPlatform {
    umem: Umem,
    fill: FillQueue,
    completion: CompQueue,
    tx: TxQueue,
    rx: RxQueue,
    /// Frames user space owns and no ring holds.
    free: Vec<FrameDesc>,
    /// Landing area for completion-ring reads.
    completed: Vec<FrameDesc>,
    /// The clocks at the last non-empty receive, for the XDP program's timestamps.
    stamp_clock: StampClock,
    /// Keeps idle CPUs quick to wake while frames flow (not for busy polling, which
    /// never sleeps).
    wake: WakeLatency,
    /// The kernel's counters at the last successful read.
    kernel: KernelDrops,
    /// Multi-buffer frames; without `XDP_USE_SG`, only the length limit.
    chains: Chains,
    multi_buffer: bool,
    /// Sends full batches as XDP frames instead of through the socket, in copy mode.
    xdp_sender: Option<XdpSender>,
    zero_copy: bool,
    busy_poll: bool,
    ifname: String,
    queue: u32,
}

impl AfXdpPlatform {
    /// Create a UMEM and a socket bound to `ifname` queue `queue`, with multi-buffer
    /// support if the kernel and driver grant it. No XDP program is loaded by this: the
    /// caller registers [`AfXdpPlatform::fd`] in its own XSKMAP.
    pub fn open(ifname: &str, queue: u32, options: SocketOptions) -> Result<AfXdpPlatform> {
        Self::open_with(ifname, queue, options, true).or_else(|multi_buffer| {
            // Before Linux 6.6 the flag is unknown (EINVAL); in zero-copy mode a driver
            // without multi-buffer support refuses it (EOPNOTSUPP).
            let platform = Self::open_with(ifname, queue, options, false)?;
            tracing::info!(
                ifname,
                queue,
                error = %multi_buffer,
                max_frame_len = platform.max_frame_len(),
                "AF_XDP multi-buffer (XDP_USE_SG) refused: longer frames are counted as too_large"
            );
            Ok(platform)
        })
    }

    fn open_with(
        ifname: &str,
        queue: u32,
        options: SocketOptions,
        multi_buffer: bool,
    ) -> Result<AfXdpPlatform> {
        let error = |what: &'static str| {
            let ifname = ifname.to_owned();
            move |source: io::Error| Error::Socket {
                ifname,
                queue,
                what,
                source,
            }
        };
        let ring = QueueSize::new(RING_SIZE).expect("RING_SIZE is a power of two");
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE).expect("FRAME_SIZE is a valid frame size"))
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .expect("the UMEM configuration is valid");
        let frame_count = NonZeroU32::new(FRAME_COUNT).expect("FRAME_COUNT is not zero");
        let (umem, frames) = Umem::new(umem_config, frame_count, false).map_err(|e| {
            error("create the UMEM (is RLIMIT_MEMLOCK high enough?)")(io::Error::other(e))
        })?;

        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        if multi_buffer {
            bind |= BindFlags::XDP_USE_SG;
        }
        match options.zero_copy {
            // Neither flag: the kernel tries zero-copy and falls back to copy mode.
            ZeroCopy::Auto => {}
            ZeroCopy::On => bind |= BindFlags::XDP_ZEROCOPY,
            ZeroCopy::Off => bind |= BindFlags::XDP_COPY,
        }
        let socket_config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            // Our own XDP program (xdp-filter) steers frames; libxdp must not load its own.
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let name = CString::new(ifname).map_err(|_| Error::NoInterface(ifname.to_owned()))?;
        // SAFETY: the UMEM is not shared with another socket, so none of the rings
        // handed back can alias another socket's.
        let (tx, rx, rings) = unsafe { Socket::new(socket_config, &umem, &Interface::new(name), queue) }
            .map_err(|e| {
                let hint = if options.zero_copy == ZeroCopy::On {
                    "bind the AF_XDP socket in zero-copy mode (the driver may not support it; try --zero-copy auto)"
                } else {
                    "bind the AF_XDP socket"
                };
                error(hint)(io::Error::other(e))
            })?;
        let (fill, completion) =
            rings.expect("a fresh UMEM's first socket gets the fill and completion rings");
        let chains = if multi_buffer {
            Chains::new(
                FRAME_COUNT as usize,
                FRAME_SIZE as usize,
                MULTI_BUFFER_MAX_FRAME_LEN as usize,
            )
        } else {
            // What a chunk holds after the headroom the kernel keeps for XDP.
            Chains::none(FRAME_SIZE as usize, umem_config.mtu() as usize)
        };

        let mut platform = AfXdpPlatform {
            umem,
            fill,
            completion,
            tx,
            rx,
            free: frames,
            completed: vec![FrameDesc::default(); RING_SIZE as usize],
            stamp_clock: StampClock::default(),
            wake: WakeLatency::new(options.holds_wake_latency()),
            kernel: KernelDrops::default(),
            chains,
            multi_buffer,
            xdp_sender: None,
            zero_copy: false,
            busy_poll: options.busy_poll,
            ifname: ifname.to_owned(),
            queue,
        };
        platform.zero_copy = platform
            .query_zero_copy()
            .map_err(error("read the socket options"))?;
        if options.busy_poll {
            platform
                .enable_busy_poll()
                .map_err(error("enable busy polling"))?;
        }
        platform.raise_tx_budget();
        platform.refill();
        Ok(platform)
    }

    /// The socket, for registration in the XDP program's XSKMAP.
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open for as long as `self.rx` lives, which
        // outlives the returned borrow.
        unsafe { BorrowedFd::borrow_raw(self.rx.fd().as_raw_fd()) }
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether the socket takes frames longer than a UMEM chunk as chains of buffers.
    pub fn is_multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// The longest frame this socket takes: the XDP program counts longer test frames
    /// as too large instead of redirecting them.
    pub fn max_frame_len(&self) -> u32 {
        self.chains.max_frame_len() as u32
    }

    /// Whether the kernel granted zero-copy (XDP_OPTIONS_ZEROCOPY), not just whether it
    /// was asked for.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The socket's XDP_STATISTICS (cumulative since it was bound).
    fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        crate::iface::get_option(self.fd(), libc::SOL_XDP, libc::XDP_STATISTICS)
    }

    fn query_zero_copy(&self) -> io::Result<bool> {
        // struct xdp_options is a single u32 of flags.
        let flags: u32 = crate::iface::get_option(self.fd(), libc::SOL_XDP, libc::XDP_OPTIONS)?;
        Ok(flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    fn enable_busy_poll(&self) -> io::Result<()> {
        let set = |option, value| {
            crate::iface::set_int_option(self.fd(), libc::SOL_SOCKET, option, value)
        };
        set(libc::SO_PREFER_BUSY_POLL, 1)?;
        set(libc::SO_BUSY_POLL, BUSY_POLL_USECS)?;
        set(libc::SO_BUSY_POLL_BUDGET, BATCH as libc::c_int)
    }

    /// Let one TX kick send everything on the TX ring. In copy mode the kernel sends at
    /// most 32 frames per sendto(2) by default, so a 64-frame batch took two kicks at
    /// full rate (docs/PERFORMANCE.md, AF_XDP profile). Kernels before 6.17 do not know
    /// the option and keep 32: `kick_tx` then kicks again, as before.
    fn raise_tx_budget(&self) {
        let set = crate::iface::set_int_option(
            self.fd(),
            libc::SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            RING_SIZE as libc::c_int,
        );
        if let Err(e) = set {
            tracing::debug!(
                ifname = self.ifname,
                queue = self.queue,
                "XDP_MAX_TX_SKB_BUDGET refused ({e}): each TX kick sends 32 frames"
            );
        }
    }

    /// Send full batches through the XDP program from now on ([`XdpSender`]): in copy
    /// mode that saves the skb the socket builds per frame.
    pub fn send_through_xdp(&mut self, sender: XdpSender) {
        self.xdp_sender = Some(sender);
    }

    /// Whether full batches go out through the XDP program.
    pub fn sends_through_xdp(&self) -> bool {
        self.xdp_sender.is_some()
    }

    /// `send_batch` through the XDP program, if it has one and the batch is worth it:
    /// how many frames went out. The frames are copied, so they return to the free
    /// list at once; frames the device refused count as not sent. If it refused them
    /// all, or the run failed (never expected), the socket sends this batch and every
    /// later one: the device cannot take XDP frames (on veth, the peer runs no XDP
    /// program and has GRO off).
    fn send_through_program(&mut self, frames: &mut Vec<FrameDesc>) -> Option<usize> {
        let sender = self.xdp_sender.as_mut()?;
        if !XdpSender::worth_it(frames.len())
            || !frames
                .iter()
                .all(|f| !continued(f) && XdpSender::fits(f.lengths().data()))
        {
            return None;
        }
        for frame in frames.iter() {
            // SAFETY: the frame came from this socket's RX ring and is the worker's
            // until sent or released; it is only read here.
            let data = unsafe { self.umem.data(frame) };
            sender.push(data.contents());
        }
        let why_not = match sender.send() {
            Ok(Sent { transmitted, refused }) if refused < transmitted || transmitted == 0 => {
                self.free.append(frames);
                return Some(transmitted - refused);
            }
            Ok(Sent { refused, .. }) => format!("the interface refused all {refused} XDP frames of a batch (on veth: the peer runs no XDP program and has GRO off)"),
            Err(e) => format!("sending through the XDP program failed ({e})"),
        };
        tracing::warn!(
            ifname = self.ifname,
            queue = self.queue,
            "{why_not}; this queue sends through the socket from now on"
        );
        self.xdp_sender = None;
        None
    }

    /// Move transmitted frames from the completion ring to the free list.
    fn reclaim_completed(&mut self) {
        // SAFETY: the completion ring belongs to this socket's UMEM.
        let n = unsafe { self.completion.consume(&mut self.completed) };
        self.free.extend_from_slice(&self.completed[..n]);
    }

    /// Hand free frames to the kernel for reception, as many as the fill ring takes.
    fn refill(&mut self) {
        let n = (self.fill.nb_free(self.free.len() as u32) as usize).min(self.free.len());
        if n == 0 {
            return;
        }
        let start = self.free.len() - n;
        // SAFETY: the frames come from the free list, so no ring and no worker holds
        // them, and they belong to this socket's UMEM.
        let produced = unsafe { self.fill.produce(&self.free[start..]) };
        if produced == n {
            self.free.truncate(start);
        }
        if self.fill.needs_wakeup() {
            // Non-blocking poll: tells the driver the fill ring has frames again.
            let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
        }
    }

    /// Make the kernel transmit what is on the TX ring. In copy mode each sendto(2)
    /// sends a bounded number of frames (the whole ring where `raise_tx_budget` took,
    /// else 32), so kick until the ring is empty or the kernel stops taking frames.
    fn kick_tx(&mut self) -> io::Result<()> {
        for _ in 0..MAX_TX_KICKS {
            let pending = RING_SIZE - self.tx.nb_free_exact();
            if pending == 0 || !self.tx.needs_wakeup() {
                return Ok(());
            }
            match self.tx.wakeup() {
                // The device queue is full or busy: the frames stay on the ring and go
                // out with the next kick.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN)
                    ) =>
                {
                    return Ok(())
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Read up to a batch of descriptors; returns how many frames they made.
    fn consume_rx(&mut self, frames: &mut Vec<FrameDesc>) -> usize {
        let start = frames.len();
        // The rest of a chain the last batch ended in comes first.
        self.chains.take_partial(frames);
        let read_from = frames.len();
        let room = BATCH.saturating_sub(read_from - start).max(1);
        frames.resize(read_from + room, FrameDesc::default());
        // SAFETY: the RX ring belongs to this socket's UMEM; the descriptors it yields
        // are owned by the worker until handed to send_batch or release_batch.
        let n = unsafe { self.rx.consume(&mut frames[read_from..]) };
        frames.truncate(read_from + n);
        for frame in &frames[read_from..] {
            self.prefetch(frame);
        }
        if self.multi_buffer {
            self.chains.link(frames, start, &mut self.free);
        }
        frames.len() - start
    }

    /// Start loading a received frame's first bytes and the arrival stamp before them.
    /// The kernel wrote them on another CPU (on veth, in the sender's softirq), so the
    /// worker's first read of each frame missed the cache: 87% of the worker's own time
    /// in a profile at saturation sat on that one load. Issued for the whole batch at
    /// once, the misses overlap instead of following one another.
    #[inline]
    fn prefetch(&self, frame: &FrameDesc) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: the frame came from this socket's RX ring, so it lies in this
            // UMEM; the bytes are only located here, not read or written.
            let data = unsafe { self.umem.data(frame) }.contents().as_ptr();
            // SAFETY: SSE is part of every x86_64 CPU, and a prefetch never faults,
            // whatever the address; it reads nothing into the program.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(data.wrapping_sub(RX_META_LEN).cast());
                _mm_prefetch::<_MM_HINT_T0>(data.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = frame;
    }

    /// `send_batch` for a batch with chained frames: each frame's buffers go on the TX
    /// ring together or not at all.
    fn send_chained(&mut self, frames: &[FrameDesc]) -> io::Result<usize> {
        let mut sent = 0;
        'frames: for first in frames {
            for _ in 0..MAX_TX_KICKS {
                self.reclaim_completed();
                let buffers = self.chains.outgoing(first);
                // SAFETY: as in `send_batch`; the frame's buffers are the worker's and
                // go to the kernel together.
                if unsafe { self.tx.produce(buffers) } == buffers.len() {
                    sent += 1;
                    continue 'frames;
                }
                self.kick_tx()?;
            }
            break;
        }
        self.kick_tx()?;
        Ok(sent)
    }
}

impl Platform for AfXdpPlatform {
    type Frame = FrameDesc;
    type Error = io::Error;

    fn batch_size(&self) -> usize {
        BATCH
    }

    fn recv_batch(&mut self, frames: &mut Vec<FrameDesc>) -> io::Result<Flow> {
        self.reclaim_completed();
        self.refill();
        if self.consume_rx(frames) == 0 {
            let wait = if self.busy_poll { 0 } else { IDLE_POLL_MS };
            // With busy polling this poll(2) is what drives the NIC's receive path.
            if self.rx.poll(wait)? {
                self.consume_rx(frames);
            }
        }
        if !frames.is_empty() {
            self.stamp_clock = StampClock::read();
            self.wake.frames_at(self.stamp_clock.monotonic());
        } else {
            // Only after poll(2) slept in vain: never while frames flow.
            self.wake.idle();
        }
        Ok(Flow::Open)
    }

    fn received_at(&mut self, frame: &mut FrameDesc) -> Option<u64> {
        // SAFETY: as in `with_frame`: the frame is the worker's until sent or released.
        let mut data = unsafe { self.umem.data_mut(frame) };
        let start = data.contents_mut().as_mut_ptr();
        // SAFETY: the kernel puts received data at least XDP_PACKET_HEADROOM (256) bytes
        // into its UMEM chunk, with the XDP metadata right before it, so these bytes
        // lie in this frame's chunk of the mapping and are owned with the frame.
        let meta = unsafe { &mut *start.sub(RX_META_LEN).cast::<[u8; RX_META_LEN]>() };
        let received = self.stamp_clock.decode(meta);
        // The chunk will be reused; its next frame must not show this stamp again.
        meta.fill(0);
        received
    }

    fn with_frame<R>(&mut self, frame: &mut FrameDesc, f: impl FnOnce(&mut [u8]) -> R) -> R {
        if continued(frame) {
            return self.chains.with_frame(&self.umem, frame, f);
        }
        // SAFETY: `frame` came from this socket's RX ring and is owned by the worker
        // until it is sent or released, so no other reference to its bytes exists.
        let mut data = unsafe { self.umem.data_mut(frame) };
        f(data.contents_mut())
    }

    fn send_batch(&mut self, frames: &mut Vec<FrameDesc>) -> io::Result<usize> {
        if let Some(sent) = self.send_through_program(frames) {
            return Ok(sent);
        }
        if frames.iter().any(continued) {
            let sent = self.send_chained(frames)?;
            // Frames the TX ring had no room for go back to the free list, all buffers.
            let unsent = &frames[sent..];
            self.chains.release_continued(unsent, &mut self.free);
            self.free.extend_from_slice(unsent);
            frames.clear();
            return Ok(sent);
        }
        let mut sent = 0;
        for _ in 0..MAX_TX_KICKS {
            self.reclaim_completed();
            let want = frames.len() - sent;
            let room = (self.tx.nb_free(want as u32) as usize).min(want);
            // SAFETY: the frames came from this socket's RX ring and the worker gives
            // up ownership here; they return through the completion ring.
            sent += unsafe { self.tx.produce(&frames[sent..sent + room]) };
            self.kick_tx()?;
            if sent == frames.len() {
                break;
            }
        }
        // Frames the TX ring still had no room for go back to the free list, not astray.
        self.free.extend_from_slice(&frames[sent..]);
        frames.clear();
        Ok(sent)
    }

    fn release_batch(&mut self, frames: &mut Vec<FrameDesc>) {
        self.chains.release_continued(frames, &mut self.free);
        self.free.append(frames);
    }

    fn take_too_large(&mut self) -> u64 {
        self.chains.take_too_large()
    }

    fn kernel_drops(&mut self) -> KernelDrops {
        match self.statistics() {
            Ok(s) => {
                self.kernel = KernelDrops {
                    rx_dropped: s.rx_dropped,
                    rx_ring_full: s.rx_ring_full,
                    fill_ring_empty: s.rx_fill_ring_empty_descs,
                    tx_invalid: s.tx_invalid_descs,
                    // The XDP program's count, not the socket's.
                    unserved_queue: 0,
                }
            }
            // Keep the last reading: counters must not go backwards.
            Err(e) => tracing::warn!(
                "cannot read XDP_STATISTICS of {} queue {}: {e}; its kernel drops stay at the last reading",
                self.ifname,
                self.queue
            ),
        }
        self.kernel
    }
}
