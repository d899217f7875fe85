//! Linux packet I/O for the reflector.
//!
//! - [`xsk`]: the fast path, one AF_XDP socket per RX queue fed by the XDP filter,
//!   implementing [`dataplane::Platform`] without copying frames (zero-copy where the
//!   driver allows it, copy mode otherwise).
//! - [`session`]: everything a live reflector sets up on an interface — the XDP program,
//!   its link, and the sockets — and reports the modes the kernel actually granted.
//! - [`packet`]: AF_PACKET sockets, for the test head and the benchmark's AF_PACKET
//!   reflector baseline.
//! - [`timestamps`]: kernel software timestamps (SO_TIMESTAMPING) for those sockets.
//! - [`iface`]: interface lookups, CPU pinning, bpffs, memlock and privilege checks.
//! - [`wake_latency`]: keeps idle CPUs quick to wake while frames flow.
//!
//! Unsafe code is confined to the modules that call the kernel or map the UMEM.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod clock;
#[allow(unsafe_code)]
pub mod iface;
#[allow(unsafe_code)]
pub mod packet;
mod rx_stamp;
pub mod session;
pub mod timestamps;
pub mod wake_latency;
#[allow(unsafe_code)]
pub mod xsk;

use std::io;

/// Errors from setting up or running Linux packet I/O. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no interface named {0:?} in this network namespace (list them with `ip link`)")]
    NoInterface(String),
    #[error("cannot read the {what} of interface {ifname}: {source}")]
    Interface {
        ifname: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot pin a worker to CPU {cpu:?}: {source} (check --queues against the CPUs this process may use)")]
    Affinity {
        cpu: Option<usize>,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot mount bpffs on /sys/fs/bpf: {0} (run as root, or mount it: mount -t bpf bpf /sys/fs/bpf)")]
    Bpffs(#[source] io::Error),
    #[error("cannot raise RLIMIT_MEMLOCK for the UMEM: {0} (run as root, or raise `ulimit -l`)")]
    Memlock(#[source] io::Error),
    #[error("missing capabilities: {missing}; run as root (sudo) or grant CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF")]
    NotPrivileged { missing: String },
    #[error(transparent)]
    Xdp(#[from] xdp_filter::Error),
    #[error("cannot {what} for {ifname} queue {queue}: {source}")]
    Socket {
        ifname: String,
        queue: u32,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("queue {queue} does not exist on {ifname}, which has {available} RX queue(s); lower --queues")]
    NoSuchQueue {
        ifname: String,
        queue: u32,
        available: u32,
    },
    #[error("AF_PACKET socket on {ifname}: cannot {what}: {source}")]
    Packet {
        ifname: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
