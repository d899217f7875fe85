//! A live reflector's kernel state on one interface: the XDP filter, its link and one
//! AF_XDP socket per RX queue. Dropping the session detaches the program (and the
//! kernel does the same if the process dies). With [`Reflection::InKernel`] the program
//! reflects test frames itself and the sockets carry only STAMP packets.

use crate::iface;
use crate::xsk::{AfXdpPlatform, SocketOptions};
use crate::{Error, Result};
use dataplane::{Broadcasts, Filter};
use settings::XdpMode;
use xdp_filter::{AttachedMode, SendDrops, Verdicts, XdpFilter, XdpLink};

pub use xdp_filter::Reflection;

/// What to set up.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Queues to serve, starting at 0; `None`: every RX queue of the interface.
    pub queues: Option<u32>,
    pub xdp_mode: XdpMode,
    pub socket: SocketOptions,
    /// Where the program sends test frames.
    pub reflection: Reflection,
}

/// The modes the kernel granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub ifname: String,
    pub xdp_mode: AttachedMode,
    pub zero_copy: bool,
    pub busy_poll: bool,
    pub queues: u32,
    /// Whether the sockets take frames longer than a UMEM chunk (AF_XDP multi-buffer).
    pub multi_buffer: bool,
    /// The longest test frame the sockets take; the XDP program counts longer ones as
    /// `too_large` (frames it reflects itself have no such limit).
    pub max_frame_len: u32,
    /// Whether copy-mode sockets send full batches as XDP frames through the program.
    pub xdp_send: bool,
}

/// The XDP program attached to an interface, steering test frames to the sockets.
pub struct XdpSession {
    program: XdpFilter,
    /// Held, never read: dropping it detaches the program.
    _link: XdpLink,
    /// Held, never read: counts what the interface refuses of the XDP frames the
    /// workers send, while the sockets that send them live.
    _send_drops: Option<SendDrops>,
    info: SessionInfo,
}

/// Let each copy-mode socket send full batches through the program
/// ([`AfXdpPlatform::send_through_xdp`]), with the counter that tells its worker what
/// the interface refused. Zero-copy sockets keep their own transmit, the faster one.
/// If the counter cannot be attached (no kernel BTF, or no CAP_PERFMON), no socket
/// sends this way: refused frames would go uncounted.
fn send_through_xdp(
    program: &XdpFilter,
    sockets: &mut [AfXdpPlatform],
    ifname: &str,
    ifindex: u32,
) -> Option<SendDrops> {
    if sockets.iter().all(AfXdpPlatform::is_zero_copy) {
        return None;
    }
    let drops = SendDrops::watch(ifindex)
        .inspect_err(|e| {
            tracing::warn!("{ifname}: the sockets send through AF_XDP's copy-mode transmit: {e}")
        })
        .ok()?;
    for socket in sockets.iter_mut().filter(|s| !s.is_zero_copy()) {
        match program.sender(&drops, socket.queue()) {
            Ok(sender) => socket.send_through_xdp(sender),
            Err(e) => tracing::info!(
                "{ifname} queue {}: sends through the socket: {e}",
                socket.queue()
            ),
        }
    }
    Some(drops)
}

impl XdpSession {
    /// Prepare the process (privileges, memlock, bpffs), load and attach the filter,
    /// and open one socket per queue. The sockets are returned for the workers.
    pub fn open(
        ifname: &str,
        filter: &Filter,
        options: &SessionOptions,
    ) -> Result<(XdpSession, Vec<AfXdpPlatform>)> {
        iface::check_af_xdp_privileges()?;
        iface::raise_memlock_limit()?;
        iface::ensure_bpffs()?;
        let ifindex = iface::ifindex(ifname)?;
        let available = iface::rx_queue_count(ifname)?;
        let queues = options.queues.unwrap_or(available);
        if queues == 0 || queues > available {
            return Err(Error::NoSuchQueue {
                ifname: ifname.to_owned(),
                queue: queues.saturating_sub(1),
                available,
            });
        }
        if queues < available {
            tracing::warn!(
                "reflecting on {queues} of the {available} receive queues of {ifname}: test \
                 frames arriving on the others go to the host stack unanswered (counted as \
                 kernel_unserved_queue); leave out --queues to serve them all, or steer the \
                 test traffic to the first {queues} (ethtool -N / -X)"
            );
        }

        // Sockets first, program second: a test frame that arrives in between finds no
        // socket and goes to the stack instead of being dropped. The program also needs
        // to know the longest frame the sockets take.
        let mut sockets = (0..queues)
            .map(|queue| AfXdpPlatform::open(ifname, queue, options.socket))
            .collect::<Result<Vec<_>>>()?;
        let max_frame_len = sockets
            .iter()
            .map(AfXdpPlatform::max_frame_len)
            .min()
            .expect("at least one queue");
        let program = XdpFilter::load(filter, &options.reflection, max_frame_len)?;
        for socket in &sockets {
            program.register_socket(socket.queue(), socket.fd())?;
        }
        let send_drops = match options.socket.xdp_send {
            true => send_through_xdp(&program, &mut sockets, ifname, ifindex),
            false => None,
        };
        let link = program.attach(ifindex, options.xdp_mode)?;
        let info = SessionInfo {
            ifname: ifname.to_owned(),
            xdp_mode: link.mode(),
            zero_copy: sockets.iter().all(AfXdpPlatform::is_zero_copy),
            busy_poll: options.socket.busy_poll,
            queues,
            multi_buffer: sockets.iter().all(AfXdpPlatform::is_multi_buffer),
            max_frame_len,
            xdp_send: sockets.iter().any(AfXdpPlatform::sends_through_xdp),
        };
        tracing::info!(?info, "XDP session open");
        Ok((
            XdpSession {
                program,
                _link: link,
                _send_drops: send_drops,
                info,
            },
            sockets,
        ))
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Refuse frames from or to these directed broadcasts in the kernel from now on.
    pub fn set_broadcasts(&self, list: &Broadcasts) -> Result<()> {
        Ok(self.program.set_broadcasts(list)?)
    }

    /// The XDP program's verdicts: the frames it rejected never reach a worker, so
    /// these are part of the reflector's statistics.
    pub fn verdicts(&self) -> Result<Verdicts> {
        Ok(self.program.verdicts()?)
    }
}
