//! The boundary between the shared worker loop and an operating system's packet I/O.
//!
//! The contract is shaped by AF_XDP zero-copy: a frame is a *handle* to a buffer the
//! platform owns (a UMEM descriptor, a slot in a BPF read buffer, a pcap record). The
//! worker borrows the bytes through [`Platform::with_frame`], edits them in place and
//! hands every handle back, either to [`Platform::send_batch`] or to
//! [`Platform::release_batch`]. Nothing is copied between receive and transmit unless
//! the platform itself has to.

use crate::stats::KernelDrops;

/// Whether more frames can come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep polling; the batch may have been empty.
    Open,
    /// The source is finished (end of a capture file). Frames appended in the same call
    /// are still valid and must be processed.
    Exhausted,
}

/// Packet I/O for one worker (one RX queue).
pub trait Platform {
    /// A handle to one received frame's buffer.
    type Frame;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The most frames one [`Platform::recv_batch`] call appends; the worker reserves
    /// this much room once, so the hot loop never allocates.
    fn batch_size(&self) -> usize;

    /// Append up to [`Platform::batch_size`] received frames to `frames`. May wait a
    /// short, bounded time for traffic so callers can check for shutdown between calls.
    fn recv_batch(&mut self, frames: &mut Vec<Self::Frame>) -> Result<Flow, Self::Error>;

    /// When `frame` reached this machine, as wall-clock nanoseconds since the Unix
    /// epoch, if the platform stamped it earlier than the worker can (the XDP program
    /// at driver entry, the BPF capture header). `None` makes the worker use the time
    /// the batch reached it. STAMP's receive timestamp T2 and the dwell time start here.
    fn received_at(&mut self, _frame: &mut Self::Frame) -> Option<u64> {
        None
    }

    /// Run `f` on the bytes of `frame`, which it may modify in place.
    fn with_frame<R>(&mut self, frame: &mut Self::Frame, f: impl FnOnce(&mut [u8]) -> R) -> R;

    /// Transmit every frame in `frames` and drain it. Returns how many were queued;
    /// frames the platform could not queue are recycled by it, not lost.
    fn send_batch(&mut self, frames: &mut Vec<Self::Frame>) -> Result<usize, Self::Error>;

    /// Return frames that will not be sent to the platform's free pool, and drain it.
    fn release_batch(&mut self, frames: &mut Vec<Self::Frame>);

    /// Frames that arrived since the last call but were longer than the platform's
    /// buffers hold, so never became a [`Platform::Frame`]. The worker counts them as
    /// received and refused as [`crate::Reject::TooLarge`]: valid frames too long for
    /// the path are counted, never lost silently. Read once per batch.
    fn take_too_large(&mut self) -> u64 {
        0
    }

    /// The kernel's drop counters for this socket since it was opened. A system call:
    /// the worker reads it about once a second and when it stops, never per batch.
    fn kernel_drops(&mut self) -> KernelDrops {
        KernelDrops::default()
    }
}

/// An in-memory platform: frames are queued by the caller and reflected ones collected.
/// It backs the worker's unit tests and anything that reflects frames already in
/// memory; it is a real `Platform`, not a mock of an OS one.
pub mod memory {
    use super::{Flow, KernelDrops, Platform};
    use std::collections::VecDeque;
    use std::convert::Infallible;

    #[derive(Debug, Default)]
    pub struct MemoryPlatform {
        pending: VecDeque<Vec<u8>>,
        /// Frames passed to `send_batch`, in order.
        pub sent: Vec<Vec<u8>>,
        /// How many frames were released unsent.
        pub released: usize,
        batch_size: usize,
        /// Accept only this many frames per `send_batch`, to exercise TX-full handling.
        pub tx_capacity: Option<usize>,
        /// Report this receive time for every frame, as a platform that stamps frames
        /// at arrival (XDP, BPF) does.
        pub receive_stamp: Option<u64>,
        /// What [`Platform::kernel_drops`] reports, as a kernel socket's counters would.
        pub kernel: KernelDrops,
        /// Frames too long for its buffers, handed to the worker by the next
        /// [`Platform::take_too_large`] (as a socket with fixed-size buffers reports them).
        pub too_large: u64,
    }

    impl MemoryPlatform {
        pub fn new(batch_size: usize, frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
            MemoryPlatform {
                pending: frames.into_iter().collect(),
                batch_size,
                ..Default::default()
            }
        }
    }

    impl Platform for MemoryPlatform {
        type Frame = Vec<u8>;
        type Error = Infallible;

        fn batch_size(&self) -> usize {
            self.batch_size
        }

        fn recv_batch(&mut self, frames: &mut Vec<Vec<u8>>) -> Result<Flow, Infallible> {
            let take = self.batch_size.min(self.pending.len());
            frames.extend(self.pending.drain(..take));
            Ok(if self.pending.is_empty() {
                Flow::Exhausted
            } else {
                Flow::Open
            })
        }

        fn received_at(&mut self, _frame: &mut Vec<u8>) -> Option<u64> {
            self.receive_stamp
        }

        fn with_frame<R>(&mut self, frame: &mut Vec<u8>, f: impl FnOnce(&mut [u8]) -> R) -> R {
            f(frame)
        }

        fn send_batch(&mut self, frames: &mut Vec<Vec<u8>>) -> Result<usize, Infallible> {
            let room = self.tx_capacity.unwrap_or(usize::MAX).min(frames.len());
            let dropped = frames.len() - room;
            self.sent.extend(frames.drain(..room));
            self.released += dropped;
            frames.clear();
            Ok(room)
        }

        fn release_batch(&mut self, frames: &mut Vec<Vec<u8>>) {
            self.released += frames.len();
            frames.clear();
        }

        fn kernel_drops(&mut self) -> KernelDrops {
            self.kernel
        }

        fn take_too_large(&mut self) -> u64 {
            std::mem::take(&mut self.too_large)
        }
    }
}
