//! AF_PACKET: raw Ethernet frames through the kernel's socket layer.
//!
//! Used where AF_XDP is not the point: the test head (`reflector probe`) sends and
//! receives through a [`PacketSocket`], and [`AfPacketPlatform`] is the classic
//! reflector design the rig benchmark measures AF_XDP against. Frames are moved in
//! batches with recvmmsg/sendmmsg; each is copied once in and once out by the kernel.
//! The test head also asks for the kernel's software timestamps ([`crate::timestamps`]),
//! which come with each received frame and, for sent ones, on the error queue.

use crate::clock::nanos;
use crate::timestamps::{
    sent_key, software_stamp, Granted, Stamp, PACKET_TX_TIMESTAMP, RECEIVE_FLAGS, SCM_TS_OPT_ID,
    SEND_FLAGS,
};
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

    /// Ask the kernel for software timestamps ([`crate::timestamps`]): receive and
    /// transmit if it takes both, else receive only. What it granted is returned; a
    /// socket it refused keeps working without them.
    pub fn enable_timestamps(&self) -> Granted {
        if self.set_timestamping(SEND_FLAGS).is_ok() {
            return Granted {
                receive: true,
                send: true,
            };
        }
        Granted {
            receive: self.set_timestamping(RECEIVE_FLAGS).is_ok(),
            send: false,
        }
    }

    fn set_timestamping(&self, flags: u32) -> io::Result<()> {
        self.set_option(
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            flags as libc::c_int,
        )
    }

    /// Receive up to `lens.len()` (at most [`BATCH`]) waiting frames without blocking:
    /// frame `i` lands in `slots[i * SLOT_LEN..]` and its length in `lens[i]`, with
    /// the VLAN tag the kernel stripped put back, as it was on the wire.
    pub fn recv_many(&self, slots: &mut [u8], lens: &mut [usize]) -> io::Result<usize> {
        self.receive(0, slots, lens, None)
    }

    /// Stop transmit stamps, keeping receive stamps: for a kernel that refuses keyed
    /// sends ([`Self::send_many_keyed`]).
    pub fn receive_timestamps_only(&self) -> io::Result<()> {
        self.set_timestamping(RECEIVE_FLAGS)
    }

    /// [`Self::recv_many`], also writing each frame's kernel receive stamp to
    /// `stamps[i]`: timestamps must be enabled ([`Self::enable_timestamps`]).
    pub fn recv_stamped(
        &self,
        slots: &mut [u8],
        lens: &mut [usize],
        stamps: &mut [Stamp],
    ) -> io::Result<usize> {
        self.receive(0, slots, lens, Some(stamps))
    }

    /// Take up to `stamps.len()` transmit stamps of frames sent with
    /// [`Self::send_many_keyed`] from the error queue, without blocking; each carries
    /// its frame's key. `slots` receives nothing (the kernel sends the stamp alone)
    /// but must be as for [`Self::recv_many`].
    pub fn recv_sent_stamps(
        &self,
        slots: &mut [u8],
        lens: &mut [usize],
        stamps: &mut [Stamp],
    ) -> io::Result<usize> {
        self.receive(libc::MSG_ERRQUEUE, slots, lens, Some(stamps))
    }

    /// One recvmmsg(2) with `flags` for the three receive calls above.
    fn receive(
        &self,
        flags: libc::c_int,
        slots: &mut [u8],
        lens: &mut [usize],
        mut stamps: Option<&mut [Stamp]>,
    ) -> io::Result<usize> {
        let count = lens.len().min(BATCH).min(slots.len() / SLOT_LEN);
        let count = stamps.as_ref().map_or(count, |s| count.min(s.len()));
        // SAFETY: all-zero iovec/mmsghdr values are valid (null pointers, zero lengths);
        // the used entries are filled in below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut controls = [ControlBuffer([0; CONTROL_SPACE]); BATCH];
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
            header.msg_hdr.msg_controllen = CONTROL_SPACE as _;
        }
        // SAFETY: every header points at one iovec covering a distinct region of `slots`
        // and at its own control buffer, all of which outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                flags | libc::MSG_DONTWAIT,
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
            let control = Control::parse(&header.msg_hdr);
            if let Some(stamps) = stamps.as_deref_mut() {
                stamps[i] = Stamp {
                    ns: control.stamp.unwrap_or(0),
                    key: control.key,
                };
            }
            // A frame larger than a slot is cut; length 0 marks it (never a real length)
            // so that nobody reflects it and a reflector counts it as too large.
            *len = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                restore_frame(slot, header.msg_len as usize, control.vlan)
            };
        }
        Ok(n)
    }

    /// Transmit `frames` with one sendmmsg(2). Returns how many the kernel took; a full
    /// device queue (ENOBUFS/EAGAIN) takes none and is not an error.
    pub fn send_many<'a>(&self, frames: impl IntoIterator<Item = &'a [u8]>) -> io::Result<usize> {
        self.send(frames, None)
    }

    /// [`Self::send_many`], keying frame `i`'s transmit stamp `first_key + i` (with
    /// transmit stamps enabled). A kernel older than 6.13 refuses it (EINVAL).
    pub fn send_many_keyed<'a>(
        &self,
        frames: impl IntoIterator<Item = &'a [u8]>,
        first_key: u32,
    ) -> io::Result<usize> {
        self.send(frames, Some(first_key))
    }

    fn send<'a>(
        &self,
        frames: impl IntoIterator<Item = &'a [u8]>,
        first_key: Option<u32>,
    ) -> io::Result<usize> {
        // SAFETY: all-zero iovec/mmsghdr values are valid; used entries are set below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut keys = [KeyBuffer([0; KEY_SPACE]); BATCH];
        let mut count = 0;
        for (((frame, iov), header), key) in frames
            .into_iter()
            .zip(iovecs.iter_mut())
            .zip(headers.iter_mut())
            .zip(keys.iter_mut())
        {
            iov.iov_base = frame.as_ptr() as *mut libc::c_void;
            iov.iov_len = frame.len();
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            if let Some(first) = first_key {
                key.set(&mut header.msg_hdr, first.wrapping_add(count as u32));
            }
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

/// Room for the control messages of one frame: a `tpacket_auxdata` (CMSG_SPACE 40)
/// and an `scm_timestamping` (CMSG_SPACE 64), 8-byte aligned.
const CONTROL_SPACE: usize = 128;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuffer([u8; CONTROL_SPACE]);

/// Room for one SCM_TS_OPT_ID message (CMSG_SPACE of a u32).
const KEY_SPACE: usize = 24;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct KeyBuffer([u8; KEY_SPACE]);

impl KeyBuffer {
    /// Fill in an SCM_TS_OPT_ID message carrying `key` and attach it to `header`.
    fn set(&mut self, header: &mut libc::msghdr, key: u32) {
        header.msg_control = self.0.as_mut_ptr().cast();
        header.msg_controllen = KEY_SPACE as _;
        // SAFETY: the header now describes this buffer, which has room for one message
        // with a u32 (KEY_SPACE = CMSG_SPACE(4)), so CMSG_FIRSTHDR is non-null and its
        // data lies inside the buffer.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = SCM_TS_OPT_ID;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>(), key);
        }
    }
}

/// What a received frame's control messages say.
#[derive(Debug, Default, PartialEq, Eq)]
struct Control {
    /// The (TPID, TCI) of the tag the kernel stripped, if any.
    vlan: Option<(u16, u16)>,
    /// The kernel's software stamp, CLOCK_REALTIME ns.
    stamp: Option<u64>,
    /// A transmit stamp's key (error queue only).
    key: Option<u32>,
}

impl Control {
    fn parse(header: &libc::msghdr) -> Control {
        let mut control = Control::default();
        // SAFETY: `header` was filled by recvmmsg (or built over a buffer by a test), so
        // its control pointer and length describe control messages inside that buffer.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside the buffer.
            let c = unsafe { &*cmsg };
            // SAFETY: the data of a message inside the buffer starts at CMSG_DATA and
            // runs to the message's own length, which the kernel bounded by the buffer.
            let data = unsafe {
                let start = libc::CMSG_DATA(cmsg);
                let header_len = start.offset_from(cmsg.cast::<u8>()) as usize;
                std::slice::from_raw_parts(start, (c.cmsg_len as usize).saturating_sub(header_len))
            };
            match (c.cmsg_level, c.cmsg_type) {
                (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                    control.vlan = stripped_vlan_tag(data);
                }
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => {
                    control.stamp = software_stamp(data);
                }
                (libc::SOL_PACKET, PACKET_TX_TIMESTAMP) => control.key = sent_key(data),
                _ => {}
            }
            // SAFETY: as above.
            cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
        }
        control
    }
}

/// The (TPID, TCI) of the tag a PACKET_AUXDATA message says the kernel stripped.
fn stripped_vlan_tag(data: &[u8]) -> Option<(u16, u16)> {
    if data.len() < std::mem::size_of::<libc::tpacket_auxdata>() {
        return None;
    }
    // SAFETY: `data` holds a whole tpacket_auxdata (checked above), maybe unaligned.
    let aux: libc::tpacket_auxdata = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
        return None;
    }
    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
        aux.tp_vlan_tpid
    } else {
        TPID_8021Q
    };
    Some((tpid, aux.tp_vlan_tci))
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

    /// A control buffer as recvmmsg fills it, holding `messages` (level, type, data),
    /// parsed as one received frame's.
    fn parse_crafted(messages: &[(libc::c_int, libc::c_int, &[u8])]) -> Control {
        let mut buffer = ControlBuffer([0; CONTROL_SPACE]);
        // SAFETY: all-zero is a valid msghdr.
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_control = buffer.0.as_mut_ptr().cast();
        header.msg_controllen = CONTROL_SPACE as _;
        // SAFETY: the header describes `buffer`; each message is written only where
        // CMSG_FIRSTHDR/CMSG_NXTHDR say it fits, within CMSG_SPACE of its data.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&header);
            let mut used = 0;
            for &(level, kind, data) in messages {
                assert!(!cmsg.is_null(), "crafted messages overflow the buffer");
                (*cmsg).cmsg_level = level;
                (*cmsg).cmsg_type = kind;
                (*cmsg).cmsg_len = libc::CMSG_LEN(data.len() as u32) as _;
                std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(cmsg), data.len());
                used += libc::CMSG_SPACE(data.len() as u32) as usize;
                cmsg = libc::CMSG_NXTHDR(&header, cmsg);
            }
            header.msg_controllen = used as _;
        }
        Control::parse(&header)
    }

    fn auxdata(status: u32, tci: u16, tpid: u16) -> Vec<u8> {
        // SAFETY: all-zero is a valid tpacket_auxdata.
        let mut aux: libc::tpacket_auxdata = unsafe { std::mem::zeroed() };
        aux.tp_status = status;
        aux.tp_vlan_tci = tci;
        aux.tp_vlan_tpid = tpid;
        // SAFETY: reading the bytes of a plain C struct.
        unsafe {
            std::slice::from_raw_parts(
                (&aux as *const libc::tpacket_auxdata).cast::<u8>(),
                std::mem::size_of_val(&aux),
            )
        }
        .to_vec()
    }

    #[test]
    fn control_messages_give_the_stripped_tag_and_the_kernel_stamp() {
        let stamp = crate::timestamps::tests::scm_timestamping(1_795_000_000, 42);
        let vlan = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        let aux = auxdata(vlan, 0x200a, 0x88a8);
        let both = parse_crafted(&[
            (libc::SOL_PACKET, libc::PACKET_AUXDATA, &aux),
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamp),
        ]);
        assert_eq!(
            both,
            Control {
                vlan: Some((0x88a8, 0x200a)),
                stamp: Some(1_795_000_000_000_000_042),
                key: None,
            }
        );
        // Order does not matter; no tag, or a tag without its TPID (802.1Q then).
        let untagged = auxdata(0, 0, 0);
        let reversed = parse_crafted(&[
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamp),
            (libc::SOL_PACKET, libc::PACKET_AUXDATA, &untagged),
        ]);
        assert_eq!(reversed.vlan, None);
        assert_eq!(reversed.stamp, Some(1_795_000_000_000_000_042));
        let q = auxdata(libc::TP_STATUS_VLAN_VALID, 5, 0);
        assert_eq!(
            parse_crafted(&[(libc::SOL_PACKET, libc::PACKET_AUXDATA, &q)]),
            Control {
                vlan: Some((TPID_8021Q, 5)),
                stamp: None,
                key: None,
            }
        );
    }

    #[test]
    fn an_error_queue_message_gives_the_transmit_stamp_and_its_key() {
        let stamp = crate::timestamps::tests::scm_timestamping(1_795_000_000, 9);
        let key = crate::timestamps::tests::extended_err(
            libc::SO_EE_ORIGIN_TIMESTAMPING,
            libc::ENOMSG,
            0xDEAD_BEEF,
        );
        assert_eq!(
            parse_crafted(&[
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamp),
                (libc::SOL_PACKET, PACKET_TX_TIMESTAMP, &key),
            ]),
            Control {
                vlan: None,
                stamp: Some(1_795_000_000_000_000_009),
                key: Some(0xDEAD_BEEF),
            }
        );
    }

    #[test]
    fn foreign_short_or_missing_messages_give_nothing() {
        assert_eq!(parse_crafted(&[]), Control::default());
        let stamp = crate::timestamps::tests::scm_timestamping(1_795_000_000, 42);
        // The same payload at another level (an IP_RECVERR-like message) is not ours.
        assert_eq!(
            parse_crafted(&[(libc::SOL_IP, libc::SCM_TIMESTAMPING, &stamp)]),
            Control::default()
        );
        // A cut timestamping message, and an auxdata message too short to hold one.
        assert_eq!(
            parse_crafted(&[
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamp[..16]),
                (libc::SOL_PACKET, libc::PACKET_AUXDATA, &[1, 0, 0, 0]),
            ]),
            Control::default()
        );
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
