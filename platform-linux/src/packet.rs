//! AF_PACKET: raw Ethernet frames through the kernel's socket layer.
//!
//! Used where AF_XDP is not the point: the test head (`reflector probe`) sends and
//! receives through a [`PacketSocket`], and [`AfPacketPlatform`] is the classic
//! reflector design the rig benchmark measures AF_XDP against. Frames are moved in
//! batches with recvmmsg/sendmmsg; each is copied once in and once out by the kernel.

use crate::clock::nanos;
use crate::wake_latency::WakeLatency;
use crate::{iface, Error, Result};
use dataplane::parse::{ETH_TYPE, TPID_8021Q, VLAN_TAG_LEN};
use dataplane::{Flow, KernelDrops, Platform};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Frames per recvmmsg/sendmmsg call.
pub const BATCH: usize = 64;
/// Room per frame: any Ethernet frame up to a 9000-byte jumbo with VLAN tags (the 9018
/// bytes of a 9000-byte MTU plus Ethernet and one tag, with room to spare).
pub const SLOT_LEN: usize = 9216;
/// The longest untagged frame a slot holds: the kernel hands over the frame without its
/// outer VLAN tag, and the tag's room is kept free to put it back.
pub const MAX_FRAME_LEN: usize = SLOT_LEN - VLAN_TAG_LEN;

/// A raw socket bound to one interface, seeing every EtherType.
pub struct PacketSocket {
    fd: OwnedFd,
    ifname: String,
}

impl PacketSocket {
    /// Open and bind. Frames this socket sends are not received back by it.
    pub fn open(ifname: &str) -> Result<PacketSocket> {
        let error = |what: &'static str| {
            let ifname = ifname.to_owned();
            move |source: io::Error| Error::Packet {
                ifname,
                what,
                source,
            }
        };
        let ifindex = iface::ifindex(ifname)?;
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                protocol.into(),
            )
        };
        if fd < 0 {
            return Err(error("open it (needs root or CAP_NET_RAW)")(
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let socket = PacketSocket {
            fd,
            ifname: ifname.to_owned(),
        };
        // Our own transmissions would otherwise come back as received frames.
        socket
            .set_option(libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)
            .map_err(error("ignore outgoing frames"))?;
        // Skip the qdisc layer: frames go straight to the driver, as a reflector wants.
        socket
            .set_option(libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)
            .map_err(error("bypass the qdisc"))?;
        socket
            .set_option(libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20)
            .map_err(error("size the receive buffer"))?;
        // The stack strips the outer VLAN tag before packet sockets see a frame; the
        // auxiliary data carries it so `recv_many` can put it back.
        socket
            .set_option(libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)
            .map_err(error("request VLAN auxiliary data"))?;

        // SAFETY: all-zero is a valid sockaddr_ll; the fields that matter are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(error("bind it to the interface")(io::Error::last_os_error()));
        }
        Ok(socket)
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The kernel's PACKET_STATISTICS since the previous call (reading resets them):
    /// frames that reached the socket, and those dropped because its receive buffer
    /// was full.
    pub fn statistics(&self) -> io::Result<libc::tpacket_stats> {
        use std::os::fd::AsFd;
        iface::get_option(self.fd.as_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS)
    }

    fn set_option(
        &self,
        level: libc::c_int,
        option: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        use std::os::fd::AsFd;
        iface::set_int_option(self.fd.as_fd(), level, option, value)
    }

    /// Wait up to `timeout_ms` for a frame to arrive. Returns whether one is waiting.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        match unsafe { libc::poll(&mut pollfd, 1, timeout_ms) } {
            n if n > 0 => Ok(true),
            0 => Ok(false),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Receive up to `lens.len()` (at most [`BATCH`]) waiting frames without blocking:
    /// frame `i` lands in `slots[i * SLOT_LEN..]` and its length in `lens[i]`, with
    /// the VLAN tag the kernel stripped put back, as it was on the wire.
    pub fn recv_many(&self, slots: &mut [u8], lens: &mut [usize]) -> io::Result<usize> {
        let count = lens.len().min(BATCH).min(slots.len() / SLOT_LEN);
        // SAFETY: all-zero iovec/mmsghdr values are valid (null pointers, zero lengths);
        // the used entries are filled in below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut controls = [AuxBuffer([0; AUX_SPACE]); BATCH];
        for (i, ((iov, header), control)) in iovecs
            .iter_mut()
            .zip(headers.iter_mut())
            .zip(controls.iter_mut())
            .take(count)
            .enumerate()
        {
            // The first VLAN_TAG_LEN bytes stay free for a tag to be put back.
            iov.iov_base = slots[i * SLOT_LEN + VLAN_TAG_LEN..].as_mut_ptr().cast();
            iov.iov_len = SLOT_LEN - VLAN_TAG_LEN;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = AUX_SPACE as _;
        }
        // SAFETY: every header points at one iovec covering a distinct region of `slots`
        // and at its own control buffer, all of which outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, (len, header)) in lens.iter_mut().zip(&headers[..n]).enumerate() {
            let slot = &mut slots[i * SLOT_LEN..(i + 1) * SLOT_LEN];
            // A frame larger than a slot is cut; length 0 marks it (never a real length)
            // so that nobody reflects it and a reflector counts it as too large.
            *len = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                restore_frame(
                    slot,
                    header.msg_len as usize,
                    stripped_vlan_tag(&header.msg_hdr),
                )
            };
        }
        Ok(n)
    }

    /// Transmit `frames` with one sendmmsg(2). Returns how many the kernel took; a full
    /// device queue (ENOBUFS/EAGAIN) takes none and is not an error.
    pub fn send_many<'a>(&self, frames: impl IntoIterator<Item = &'a [u8]>) -> io::Result<usize> {
        // SAFETY: all-zero iovec/mmsghdr values are valid; used entries are set below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut count = 0;
        for ((frame, iov), header) in frames
            .into_iter()
            .zip(iovecs.iter_mut())
            .zip(headers.iter_mut())
        {
            iov.iov_base = frame.as_ptr() as *mut libc::c_void;
            iov.iov_len = frame.len();
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        // SAFETY: each header points at one iovec over a live frame; the kernel only
        // reads through them.
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }
}

/// Room for one `tpacket_auxdata` control message (CMSG_SPACE, 8-byte aligned).
const AUX_SPACE: usize = 64;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct AuxBuffer([u8; AUX_SPACE]);

/// The (TPID, TCI) of the tag the kernel stripped from a received frame, if any.
fn stripped_vlan_tag(header: &libc::msghdr) -> Option<(u16, u16)> {
    // SAFETY: `header` was filled by recvmmsg, so its control pointer and length
    // describe the received control messages inside our AuxBuffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside the buffer.
        let c = unsafe { &*cmsg };
        if c.cmsg_level == libc::SOL_PACKET && c.cmsg_type == libc::PACKET_AUXDATA {
            // SAFETY: a PACKET_AUXDATA message carries one tpacket_auxdata; the data
            // may be unaligned, hence read_unaligned.
            let aux: libc::tpacket_auxdata =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                aux.tp_vlan_tpid
            } else {
                TPID_8021Q
            };
            return Some((tpid, aux.tp_vlan_tci));
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}

/// Move the frame received at `slot[VLAN_TAG_LEN..][..len]` to the start of the slot,
/// re-inserting a stripped tag after the MAC addresses. Returns the frame length.
fn restore_frame(slot: &mut [u8], len: usize, tag: Option<(u16, u16)>) -> usize {
    match tag {
        // The tag goes where the EtherType was, right after the two MAC addresses.
        Some((tpid, tci)) if len >= ETH_TYPE => {
            slot.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + ETH_TYPE, 0);
            slot[ETH_TYPE..ETH_TYPE + 2].copy_from_slice(&tpid.to_be_bytes());
            slot[ETH_TYPE + 2..ETH_TYPE + VLAN_TAG_LEN].copy_from_slice(&tci.to_be_bytes());
            len + VLAN_TAG_LEN
        }
        _ => {
            slot.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + len, 0);
            len
        }
    }
}

/// A reflector platform over one [`PacketSocket`]: the classic design, kept as the
/// benchmark's baseline and as a fallback where XDP is unavailable.
pub struct AfPacketPlatform {
    socket: PacketSocket,
    slots: Vec<u8>,
    lens: [usize; BATCH],
    /// The kernel's drops so far, summed: each read of PACKET_STATISTICS resets them.
    kernel: KernelDrops,
    /// Frames longer than a slot since the last `take_too_large`.
    too_large: u64,
    /// Keeps idle CPUs quick to wake while frames flow, as for AF_XDP.
    wake: WakeLatency,
}

impl AfPacketPlatform {
    /// Open the socket; `wake_latency`: hold a CPU latency request while frames flow.
    pub fn open(ifname: &str, wake_latency: bool) -> Result<AfPacketPlatform> {
        Ok(AfPacketPlatform {
            socket: PacketSocket::open(ifname)?,
            slots: vec![0; BATCH * SLOT_LEN],
            lens: [0; BATCH],
            kernel: KernelDrops::default(),
            too_large: 0,
            wake: WakeLatency::new(wake_latency),
        })
    }

    fn slot(&mut self, index: usize) -> &mut [u8] {
        let start = index * SLOT_LEN;
        &mut self.slots[start..start + self.lens[index]]
    }
}

/// Idle wait in `recv_batch`, as for AF_XDP.
const IDLE_POLL_MS: i32 = 100;

impl Platform for AfPacketPlatform {
    /// The slot index in this batch.
    type Frame = usize;
    type Error = io::Error;

    fn batch_size(&self) -> usize {
        BATCH
    }

    fn recv_batch(&mut self, frames: &mut Vec<usize>) -> io::Result<Flow> {
        let mut n = self.socket.recv_many(&mut self.slots, &mut self.lens)?;
        if n == 0 && self.socket.wait_readable(IDLE_POLL_MS)? {
            n = self.socket.recv_many(&mut self.slots, &mut self.lens)?;
        }
        if n > 0 {
            self.wake.frames_at(nanos(libc::CLOCK_MONOTONIC));
        } else {
            self.wake.idle();
        }
        let lens = &self.lens[..n];
        // Cut frames (length 0) are counted, not handed to the worker.
        frames.extend((0..n).filter(|&i| lens[i] != 0));
        self.too_large += lens.iter().filter(|&&len| len == 0).count() as u64;
        Ok(Flow::Open)
    }

    fn with_frame<R>(&mut self, frame: &mut usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(self.slot(*frame))
    }

    fn send_batch(&mut self, frames: &mut Vec<usize>) -> io::Result<usize> {
        let slots = &self.slots;
        let lens = &self.lens;
        let sent = self.socket.send_many(
            frames
                .iter()
                .map(|&i| &slots[i * SLOT_LEN..i * SLOT_LEN + lens[i]]),
        )?;
        frames.clear();
        Ok(sent)
    }

    fn release_batch(&mut self, frames: &mut Vec<usize>) {
        frames.clear();
    }

    fn take_too_large(&mut self) -> u64 {
        std::mem::take(&mut self.too_large)
    }

    fn kernel_drops(&mut self) -> KernelDrops {
        match self.socket.statistics() {
            // A full receive buffer is AF_PACKET's full RX ring: the worker was slow.
            Ok(s) => self.kernel.rx_ring_full += u64::from(s.tp_drops),
            Err(e) => tracing::warn!(
                "cannot read PACKET_STATISTICS of {}: {e}; its kernel drops are not counted",
                self.socket.ifname
            ),
        }
        self.kernel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_tag_goes_back_after_the_mac_addresses() {
        let wire: Vec<u8> = (0u8..12)
            .chain([0x81, 0x00, 0x20, 0x0a, 0x08, 0x00, 0xaa])
            .collect();
        let mut untagged = wire[..12].to_vec();
        untagged.extend_from_slice(&wire[16..]);
        let mut slot = vec![0u8; 64];
        slot[VLAN_TAG_LEN..VLAN_TAG_LEN + untagged.len()].copy_from_slice(&untagged);
        let len = restore_frame(&mut slot, untagged.len(), Some((0x8100, 0x200a)));
        assert_eq!(&slot[..len], &wire[..]);
    }

    #[test]
    fn an_untagged_frame_moves_to_the_slot_start() {
        let frame: Vec<u8> = (1u8..=20).collect();
        let mut slot = vec![0u8; 64];
        slot[VLAN_TAG_LEN..VLAN_TAG_LEN + 20].copy_from_slice(&frame);
        assert_eq!(restore_frame(&mut slot, 20, None), 20);
        assert_eq!(&slot[..20], &frame[..]);
    }
}
