//! macOS packet I/O for the reflector: `/dev/bpf`.
//!
//! macOS has no AF_XDP or AF_PACKET; the only way to read and write raw Ethernet
//! frames without a kernel extension is the BPF device. This crate implements
//! [`dataplane::Platform`] on it:
//!
//! - [`cbpf`]: a classic-BPF program, generated from the same [`dataplane::Filter`] and
//!   signature table as the shared classifier, so the kernel only copies test frames
//!   to user space. OS-independent; verified on the Linux kernel (`tests/cbpf_kernel.rs`).
//! - [`walker`]: walks the `bpf_hdr` records of one read buffer. OS-independent.
//! - `device` (macOS only): opens the first free `/dev/bpfN`, configures it with
//!   ioctls, waits with kqueue and writes one reflected frame per `write()`.
//!
//! Frames are reflected in place inside the read buffer; the platform copies nothing
//! beyond what the kernel copies into that buffer.
//!
//! Unsafe code is confined to `device`, the ioctls on the BPF device.
#![deny(unsafe_code)]

pub mod cbpf;
#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
pub mod device;
pub mod walker;

use std::io;

/// Errors opening or driving a BPF device. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no free /dev/bpf device (all {tried} tried are busy): close other capture programs \
         (Wireshark, tcpdump) or run as root (sudo)"
    )]
    NoFreeDevice { tried: u32 },
    #[error(
        "cannot open {path}: permission denied: run the reflector as root (sudo), or give \
         your user access to /dev/bpf* (Wireshark's ChmodBPF does this)"
    )]
    Permission { path: String, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("interface name {0:?} is too long: macOS interface names have at most 15 bytes")]
    InterfaceName(String),
    #[error(
        "interface {0} does not exist: list interfaces with `ifconfig -l` or \
         `networksetup -listallhardwareports`"
    )]
    NoSuchInterface(String),
    #[error("interface {0} is down: bring it up with `sudo ifconfig {0} up`")]
    InterfaceDown(String),
    #[error(
        "{interface} is not an Ethernet interface (BPF data link type {dlt}); use an en* interface"
    )]
    NotEthernet { interface: String, dlt: u32 },
    #[error(
        "cannot read the MAC address of {0}: check the name with `ifconfig {0}`, or pass \
         --dst-mac"
    )]
    NoMacAddress(String),
    #[error("{request} on {interface} failed: {source}")]
    Ioctl {
        request: &'static str,
        interface: String,
        source: io::Error,
    },
    #[error("building the classic-BPF filter: {0}")]
    Filter(#[from] cbpf::CompileError),
    #[error("creating the kqueue that waits for /dev/bpf: {0} (raise the open-file limit with `ulimit -n`)")]
    Kqueue(io::Error),
    #[error("reading /dev/bpf on {interface}: {source}")]
    Read {
        interface: String,
        source: io::Error,
    },
    #[error("writing a frame to /dev/bpf on {interface}: {source}; is the interface still up?")]
    Write {
        interface: String,
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let busy = Error::NoFreeDevice { tried: 256 }.to_string();
        assert!(
            busy.contains("close other capture programs") && busy.contains("sudo"),
            "{busy}"
        );
        let denied = Error::Permission {
            path: "/dev/bpf0".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .to_string();
        assert!(
            denied.starts_with("cannot open /dev/bpf0") && denied.contains("sudo"),
            "{denied}"
        );
        let missing = Error::NoSuchInterface("en9".into()).to_string();
        assert!(
            missing.contains("en9") && missing.contains("ifconfig -l"),
            "{missing}"
        );
        let down = Error::InterfaceDown("en1".into()).to_string();
        assert!(down.contains("sudo ifconfig en1 up"), "{down}");
    }
}
