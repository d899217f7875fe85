//! Attaching an XDP program to an interface through a BPF link.
//!
//! A link, unlike the legacy netlink attachment, belongs to the file descriptors that
//! refer to it: when the process exits for any reason, including SIGKILL, the kernel
//! closes them and detaches the program. That is what keeps a crashed reflector from
//! leaving the interface black-holing test traffic.

use crate::{Error, Result};
use libbpf_rs::libbpf_sys;
use settings::XdpMode;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The mode the kernel attached a program in: what an [`XdpMode`] request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    /// In the driver, before an skb is allocated: the fast path.
    Native,
    /// After the skb is built (`generic`/SKB mode): works on every interface, slower.
    Generic,
}

impl AttachedMode {
    fn flags(self) -> u32 {
        match self {
            AttachedMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            AttachedMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }

    /// The same name as the request that asks for exactly this mode.
    pub fn name(self) -> &'static str {
        XdpMode::from(self).name()
    }
}

impl From<AttachedMode> for XdpMode {
    fn from(mode: AttachedMode) -> XdpMode {
        match mode {
            AttachedMode::Native => XdpMode::Native,
            AttachedMode::Generic => XdpMode::Generic,
        }
    }
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An XDP program attached to an interface; dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    fd: OwnedFd,
    mode: AttachedMode,
    ifindex: u32,
}

impl XdpLink {
    /// Attach `program` to `ifindex` in the `requested` mode; `Auto` is native if the
    /// driver supports it, generic otherwise.
    pub fn attach(program: BorrowedFd<'_>, ifindex: u32, requested: XdpMode) -> Result<XdpLink> {
        let attach = |mode| Self::attach_in(program, ifindex, mode);
        match requested {
            XdpMode::Native => attach(AttachedMode::Native),
            XdpMode::Generic => attach(AttachedMode::Generic),
            XdpMode::Auto => attach(AttachedMode::Native).or_else(|native| {
                tracing::info!(ifindex, error = %native, "native XDP refused, falling back to generic");
                attach(AttachedMode::Generic)
            }),
        }
    }

    fn attach_in(program: BorrowedFd<'_>, ifindex: u32, mode: AttachedMode) -> Result<XdpLink> {
        // SAFETY: all-zero is the documented "no options" value of this C struct, and
        // `sz` is set as libbpf's versioning requires.
        let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
        opts.flags = mode.flags();
        // SAFETY: `program` is a valid BPF program fd for the duration of the call, and
        // `opts` a fully initialised options struct.
        let fd = unsafe {
            libbpf_sys::bpf_link_create(
                program.as_raw_fd(),
                ifindex as i32,
                libbpf_sys::BPF_XDP,
                &opts,
            )
        };
        if fd < 0 {
            return Err(Error::Attach {
                ifindex,
                mode,
                source: io::Error::from_raw_os_error(-fd),
            });
        }
        // SAFETY: bpf_link_create returned a new file descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(XdpLink { fd, mode, ifindex })
    }

    /// The mode the kernel granted.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The link's file descriptor (for pinning or inspection).
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}
