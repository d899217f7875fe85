//! Attaching an XDP program to an interface through a BPF link.
//!
//! A link, unlike the legacy netlink attachment, belongs to the file descriptors that
//! refer to it: when the process exits for any reason, including SIGKILL, the kernel
//! closes them and detaches the program. That is what keeps a crashed reflector from
//! leaving the interface black-holing test traffic.

use crate::{Error, Result};
use libbpf_rs::libbpf_sys;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// How the program runs, as granted by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before an skb is allocated: the fast path.
    Native,
    /// After the skb is built (`generic`/SKB mode): works on every interface, slower.
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native if the driver supports it, generic otherwise.
    #[default]
    Auto,
    /// Exactly this mode, or an error.
    Only(XdpMode),
}

/// An XDP program attached to an interface; dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    fd: OwnedFd,
    mode: XdpMode,
    ifindex: u32,
}

impl XdpLink {
    /// Attach `program` to `ifindex` as `requested` allows.
    pub fn attach(program: BorrowedFd<'_>, ifindex: u32, requested: AttachMode) -> Result<XdpLink> {
        match requested {
            AttachMode::Only(mode) => Self::attach_in(program, ifindex, mode),
            AttachMode::Auto => Self::attach_in(program, ifindex, XdpMode::Native).or_else(|native| {
                tracing::info!(ifindex, error = %native, "native XDP refused, falling back to generic");
                Self::attach_in(program, ifindex, XdpMode::Generic)
            }),
        }
    }

    fn attach_in(program: BorrowedFd<'_>, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
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
    pub fn mode(&self) -> XdpMode {
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
