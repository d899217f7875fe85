//! The `/dev/bpf` device and [`BpfPlatform`], the macOS [`Platform`].
//!
//! Set-up, in the order the kernel requires:
//! 1. open the first free `/dev/bpfN` (busy ones answer `EBUSY`);
//! 2. `BIOCSBLEN` then `BIOCSETIF`: the buffer size must be set before attaching, and
//!    attaching fails with `ENOBUFS` if the kernel cannot allocate it, so we start at
//!    1 MiB and halve until it succeeds (what libpcap does), then read the granted size
//!    back with `BIOCGBLEN` (reads must use exactly that size);
//! 3. `BIOCIMMEDIATE` (deliver each frame as it arrives instead of when the buffer is
//!    full), `BIOCSHDRCMPLT` (we write complete frames: keep our source MAC),
//!    `BIOCSSEESENT` off (do not capture our own reflections);
//! 4. check the link type is Ethernet, install the classic-BPF filter (`BIOCSETF`
//!    also flushes anything captured before it), switch to non-blocking mode and
//!    register the descriptor with a kqueue.
//!
//! Receive: wait on the kqueue for at most [`WAIT`], read one buffer and hand out its
//! records in batches. Frames are reflected in place inside that buffer. Transmit:
//! `/dev/bpf` takes one frame per `write()`, so a batch is one write per frame; the
//! batching is in draining a whole read buffer per wake-up.

use crate::cbpf::{self, Insn};
use crate::walker::Cursor;
use crate::Error;
use dataplane::{Filter, Flow, MacAddr, Platform};
use nix::errno::Errno;
use nix::sys::event::{EventFilter, EventFlag, FilterFlag, KEvent, Kqueue};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// Longest a [`Platform::recv_batch`] call waits for traffic, so the worker can check
/// for shutdown.
pub const WAIT: Duration = Duration::from_millis(100);

/// Most frames handed to the worker per call.
pub const BATCH_SIZE: usize = 512;

/// Largest read buffer requested; the kernel may grant less.
const LARGEST_BUFFER: u32 = 1 << 20;
/// Below this, stepping down stops and the failure is reported.
const SMALLEST_BUFFER: u32 = 1 << 12;
/// `/dev/bpf0` .. `/dev/bpf255`: macOS's default `debug.bpf_maxdevices`.
const MAX_DEVICES: u32 = 256;

/// `struct bpf_stat` from `<net/bpf.h>`, which the libc crate does not carry.
#[repr(C)]
#[derive(Default)]
struct BpfStat {
    bs_recv: libc::c_uint,
    bs_drop: libc::c_uint,
}

// The request number encodes the size of its argument: `_IOR('B', 111, struct bpf_stat)`.
const _: () = assert!(libc::BIOCGSTATS == libc::_IOR::<BpfStat>(b'B' as libc::c_ulong, 111));
// The OS-independent `cbpf::Insn` is handed to the kernel as a `struct bpf_insn`.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Insn>() == size_of::<libc::bpf_insn>());
    assert!(align_of::<Insn>() == align_of::<libc::bpf_insn>());
    assert!(offset_of!(Insn, code) == offset_of!(libc::bpf_insn, code));
    assert!(offset_of!(Insn, jt) == offset_of!(libc::bpf_insn, jt));
    assert!(offset_of!(Insn, jf) == offset_of!(libc::bpf_insn, jf));
    assert!(offset_of!(Insn, k) == offset_of!(libc::bpf_insn, k));
};

/// The BPF ioctls, as thin `unsafe` wrappers (nix's `*_bad` macros take the request
/// numbers from libc as they are).
mod ioctl {
    use super::BpfStat;
    nix::ioctl_readwrite_bad!(set_buffer_len, libc::BIOCSBLEN, libc::c_uint);
    nix::ioctl_read_bad!(get_buffer_len, libc::BIOCGBLEN, libc::c_uint);
    nix::ioctl_write_ptr_bad!(set_interface, libc::BIOCSETIF, libc::ifreq);
    nix::ioctl_write_ptr_bad!(set_immediate, libc::BIOCIMMEDIATE, libc::c_uint);
    nix::ioctl_write_ptr_bad!(set_header_complete, libc::BIOCSHDRCMPLT, libc::c_uint);
    nix::ioctl_write_ptr_bad!(set_see_sent, libc::BIOCSSEESENT, libc::c_uint);
    nix::ioctl_read_bad!(get_link_type, libc::BIOCGDLT, libc::c_uint);
    nix::ioctl_write_ptr_bad!(set_filter, libc::BIOCSETF, libc::bpf_program);
    nix::ioctl_read_bad!(get_stats, libc::BIOCGSTATS, BpfStat);
}

/// A received frame: where it lies in the platform's read buffer.
#[derive(Debug)]
pub struct BpfFrame {
    offset: usize,
    len: usize,
    captured_at: u64,
}

/// The kernel's counters for one BPF device (`BIOCGSTATS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the filter admitted.
    pub received: u64,
    /// Admitted frames lost because the read buffer was full: the worker fell behind.
    pub dropped: u64,
}

/// Reads a device's [`KernelStats`] from another thread while the worker owns the
/// platform (it holds a duplicate of the descriptor).
#[derive(Debug)]
pub struct KernelCounters {
    fd: OwnedFd,
}

impl KernelCounters {
    /// The current counters, or `None` if the device no longer answers.
    pub fn read(&self) -> Option<KernelStats> {
        let mut kernel = BpfStat::default();
        // SAFETY: `fd` is an open BPF descriptor and `kernel` a live struct bpf_stat.
        unsafe { ioctl::get_stats(self.fd.as_raw_fd(), &mut kernel) }.ok()?;
        Some(KernelStats {
            received: u64::from(kernel.bs_recv),
            dropped: u64::from(kernel.bs_drop),
        })
    }
}

/// `/dev/bpf` bound to one Ethernet interface, behind the reflector's filter.
pub struct BpfPlatform {
    fd: OwnedFd,
    kqueue: Kqueue,
    interface: String,
    /// One read's worth of records; frames are edited in place here.
    buf: Box<[u8]>,
    /// Bytes of `buf` filled by the last read; 0 once every record is handed out.
    filled: usize,
    cursor: Cursor,
    /// Frames captured shorter than they were on the wire (never reflected).
    cut: u64,
    /// Of those, the ones the worker has not yet counted as `too_large`.
    cut_uncounted: u64,
    /// Read buffers abandoned part-way because a record header was inconsistent.
    malformed_buffers: u64,
}

impl BpfPlatform {
    /// Open a free BPF device on `interface` and install `filter`'s classic-BPF
    /// program. Needs root (or read-write access to `/dev/bpf*`).
    pub fn open(interface: &str, filter: &Filter) -> Result<Self, Error> {
        let program = cbpf::compile(filter)?;
        let request = interface_request(interface)?;
        let fd = open_free_device()?;
        let raw = fd.as_raw_fd();
        let ioctl_error = |request: &'static str| {
            let interface = interface.to_owned();
            move |errno: Errno| Error::Ioctl {
                request,
                interface,
                source: io::Error::from(errno),
            }
        };

        let mut size = LARGEST_BUFFER;
        loop {
            let mut asked: libc::c_uint = size;
            // SAFETY: `raw` is an open BPF descriptor and `asked` a live c_uint.
            unsafe { ioctl::set_buffer_len(raw, &mut asked) }.map_err(ioctl_error("BIOCSBLEN"))?;
            // SAFETY: `request` is a zero-initialised ifreq holding a NUL-terminated name.
            match unsafe { ioctl::set_interface(raw, &request) } {
                Ok(_) => break,
                Err(Errno::ENOBUFS) if size > SMALLEST_BUFFER => size /= 2,
                Err(Errno::ENXIO) => return Err(Error::NoSuchInterface(interface.to_owned())),
                Err(Errno::ENETDOWN) => return Err(Error::InterfaceDown(interface.to_owned())),
                Err(errno) => return Err(ioctl_error("BIOCSETIF")(errno)),
            }
        }
        let mut granted: libc::c_uint = 0;
        // SAFETY: `granted` is a live c_uint the kernel writes.
        unsafe { ioctl::get_buffer_len(raw, &mut granted) }.map_err(ioctl_error("BIOCGBLEN"))?;

        let on: libc::c_uint = 1;
        let off: libc::c_uint = 0;
        // SAFETY: `raw` is an open BPF descriptor and `on` a live c_uint.
        unsafe { ioctl::set_immediate(raw, &on) }.map_err(ioctl_error("BIOCIMMEDIATE"))?;
        // SAFETY: `raw` is an open BPF descriptor and `on` a live c_uint.
        unsafe { ioctl::set_header_complete(raw, &on) }.map_err(ioctl_error("BIOCSHDRCMPLT"))?;
        // SAFETY: `raw` is an open BPF descriptor and `off` a live c_uint.
        unsafe { ioctl::set_see_sent(raw, &off) }.map_err(ioctl_error("BIOCSSEESENT"))?;

        let mut dlt: libc::c_uint = 0;
        // SAFETY: `dlt` is a live c_uint the kernel writes.
        unsafe { ioctl::get_link_type(raw, &mut dlt) }.map_err(ioctl_error("BIOCGDLT"))?;
        if dlt != libc::DLT_EN10MB {
            return Err(Error::NotEthernet {
                interface: interface.to_owned(),
                dlt,
            });
        }

        let bpf_program = libc::bpf_program {
            bf_len: program.len() as libc::c_uint,
            // The kernel only reads (copies) the instructions.
            bf_insns: program.as_ptr().cast_mut().cast(),
        };
        // SAFETY: `bpf_program` points at `program` (same layout as struct bpf_insn, checked
        // above), which outlives the call; the kernel copies it.
        unsafe { ioctl::set_filter(raw, &bpf_program) }.map_err(ioctl_error("BIOCSETF"))?;

        // Non-blocking, so a read after a spurious wake-up returns EAGAIN, not a hang.
        nix::fcntl::fcntl(
            raw,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(ioctl_error("fcntl(O_NONBLOCK)"))?;
        let kqueue = Kqueue::new().map_err(|e| Error::Kqueue(e.into()))?;
        let register = KEvent::new(
            raw as usize,
            EventFilter::EVFILT_READ,
            EventFlag::EV_ADD,
            FilterFlag::empty(),
            0,
            0,
        );
        kqueue
            .kevent(&[register], &mut [], None)
            .map_err(|e| Error::Kqueue(e.into()))?;

        tracing::debug!(
            interface,
            buffer = granted,
            instructions = program.len(),
            "bpf device ready"
        );
        Ok(BpfPlatform {
            fd,
            kqueue,
            interface: interface.to_owned(),
            buf: vec![0; granted as usize].into_boxed_slice(),
            filled: 0,
            cursor: Cursor::new(),
            cut: 0,
            cut_uncounted: 0,
            malformed_buffers: 0,
        })
    }

    /// The interface this device is bound to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Size of the read buffer the kernel granted.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// A handle that reads this device's kernel counters from another thread.
    pub fn kernel_counters(&self) -> Result<KernelCounters, Error> {
        let fd = self.fd.try_clone().map_err(|source| Error::Ioctl {
            request: "dup",
            interface: self.interface.clone(),
            source,
        })?;
        Ok(KernelCounters { fd })
    }

    /// Wait up to [`WAIT`] and read one buffer. `Ok(false)` when nothing arrived.
    fn fill(&mut self) -> Result<bool, Error> {
        let mut events = [KEvent::new(
            0,
            EventFilter::EVFILT_READ,
            EventFlag::empty(),
            FilterFlag::empty(),
            0,
            0,
        )];
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: WAIT.as_nanos() as libc::c_long,
        };
        match self.kqueue.kevent(&[], &mut events, Some(timeout)) {
            Ok(0) | Err(Errno::EINTR) => return Ok(false),
            Ok(_) => {}
            Err(errno) => return Err(self.read_error(errno)),
        }
        // The kernel insists on reads of exactly the buffer size.
        match nix::unistd::read(self.fd.as_raw_fd(), &mut self.buf) {
            Ok(n) => {
                self.filled = n;
                self.cursor = Cursor::new();
                Ok(n > 0)
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(false),
            Err(errno) => Err(self.read_error(errno)),
        }
    }

    fn read_error(&self, errno: Errno) -> Error {
        Error::Read {
            interface: self.interface.clone(),
            source: errno.into(),
        }
    }

    /// Hand out whole frames from the current buffer until the batch is full or the
    /// buffer is used up.
    fn walk(&mut self, frames: &mut Vec<BpfFrame>) {
        while frames.len() < BATCH_SIZE {
            match self.cursor.next(&self.buf[..self.filled]) {
                None => {
                    self.filled = 0;
                    return;
                }
                Some(Ok(record)) if record.is_whole() => frames.push(BpfFrame {
                    offset: record.data,
                    len: record.caplen,
                    captured_at: record.captured_at,
                }),
                // Cut short by the buffer size: its tail is gone, so it must not be sent;
                // the worker counts it as too large for this path.
                Some(Ok(_)) => {
                    self.cut += 1;
                    self.cut_uncounted += 1;
                }
                Some(Err(malformed)) => {
                    tracing::warn!(interface = %self.interface, "discarding the rest of a read: {malformed}");
                    self.malformed_buffers += 1;
                    self.filled = 0;
                    return;
                }
            }
        }
    }
}

impl Platform for BpfPlatform {
    type Frame = BpfFrame;
    type Error = Error;

    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }

    fn recv_batch(&mut self, frames: &mut Vec<BpfFrame>) -> Result<Flow, Error> {
        // Frames of the previous batch all came back (sent or released) before this
        // call, so the buffer may be overwritten once it has been walked to the end.
        if self.filled > 0 {
            self.walk(frames);
        }
        if frames.is_empty() && self.fill()? {
            self.walk(frames);
        }
        Ok(Flow::Open)
    }

    fn take_too_large(&mut self) -> u64 {
        std::mem::take(&mut self.cut_uncounted)
    }

    fn received_at(&mut self, frame: &mut BpfFrame) -> Option<u64> {
        Some(frame.captured_at)
    }

    fn with_frame<R>(&mut self, frame: &mut BpfFrame, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.buf[frame.offset..frame.offset + frame.len])
    }

    fn send_batch(&mut self, frames: &mut Vec<BpfFrame>) -> Result<usize, Error> {
        let mut sent = 0;
        for frame in frames.drain(..) {
            let bytes = &self.buf[frame.offset..frame.offset + frame.len];
            match nix::unistd::write(&self.fd, bytes) {
                Ok(n) if n == bytes.len() => sent += 1,
                // A short write never happens on BPF, but would not be a sent frame.
                Ok(_) => {}
                // Interface queue full: the frame is lost, the worker counts a tx error.
                Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::EINTR) => {}
                Err(errno) => {
                    return Err(Error::Write {
                        interface: self.interface.clone(),
                        source: errno.into(),
                    })
                }
            }
        }
        Ok(sent)
    }

    fn release_batch(&mut self, frames: &mut Vec<BpfFrame>) {
        // The slots are reused by the next read; nothing to give back.
        frames.clear();
    }
}

impl Drop for BpfPlatform {
    fn drop(&mut self) {
        if self.cut > 0 || self.malformed_buffers > 0 {
            tracing::warn!(
                interface = %self.interface,
                cut = self.cut,
                malformed_buffers = self.malformed_buffers,
                "frames withheld from the worker: cut ones exceeded the {}-byte read buffer",
                self.buf.len()
            );
        }
    }
}

/// The hardware address of `interface`, from its `AF_LINK` entry in `getifaddrs`.
pub fn interface_mac(interface: &str) -> Result<MacAddr, Error> {
    let addresses =
        nix::ifaddrs::getifaddrs().map_err(|_| Error::NoMacAddress(interface.to_owned()))?;
    addresses
        .filter(|entry| entry.interface_name == interface)
        .filter_map(|entry| entry.address?.as_link_addr()?.addr())
        .find(|mac| *mac != [0; 6])
        .map(MacAddr)
        .ok_or_else(|| Error::NoMacAddress(interface.to_owned()))
}

/// A `struct ifreq` naming `interface`, for `BIOCSETIF`.
fn interface_request(interface: &str) -> Result<libc::ifreq, Error> {
    let name = interface.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(Error::InterfaceName(interface.to_owned()));
    }
    // SAFETY: ifreq is plain C data (a name and a union of integers and sockaddrs);
    // all-zero is a valid value and leaves the name NUL-terminated.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// The first `/dev/bpfN` nobody else has open.
fn open_free_device() -> Result<OwnedFd, Error> {
    for n in 0..MAX_DEVICES {
        let path = format!("/dev/bpf{n}");
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => return Ok(file.into()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
            // macOS creates nodes on demand up to its limit; a missing one is the end.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoFreeDevice { tried: n })
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Error::Permission { path, source: e })
            }
            Err(source) => return Err(Error::Open { path, source }),
        }
    }
    Err(Error::NoFreeDevice { tried: MAX_DEVICES })
}
