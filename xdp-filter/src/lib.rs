//! The reflector's XDP programs and their loader.
//!
//! - [`XdpFilter`] loads `bpf/reflector.bpf.c`, the kernel-side twin of
//!   `dataplane::classify`: test frames are redirected to the AF_XDP socket of the queue
//!   they arrived on, everything else goes on to the kernel stack (`XDP_PASS`). Each
//!   redirected frame carries its arrival time in [`RX_META_LEN`] bytes of XDP metadata.
//!   With [`Reflection::InKernel`] it reflects test frames itself (`XDP_TX`) and only
//!   STAMP packets go to the sockets; the worker's policy (allow-list, rate limit, loop
//!   timeout), if any, then runs in the program too, in a second entry point.
//! - [`XdpTxBaseline`] loads `bpf/xdp_tx_baseline.bpf.c`, which bounces UDP frames with
//!   `XDP_TX`: the upper bound the rig benchmark compares the reflector against.
//! - [`ProbeHead`] loads `bpf/probe.bpf.c`, the fast test head: a generator driven by
//!   the kernel's live-frames `BPF_PROG_RUN` and a counter of returned frames.
//!
//! All are attached through a BPF link ([`attach::XdpLink`]): the kernel detaches the
//! program when the last reference to the link goes away, so even a reflector killed with
//! SIGKILL leaves no program on the interface.
//!
//! Like xdp-tools, the C stays free of policy: offsets, limits and reject indices come
//! from the `dataplane` crate through a generated header (see `build.rs`), and the filter
//! is written into the program's read-only data by [`config`] before it is loaded.
//! The generated skeletons and their one loader live in `skel`.
//!
//! Unsafe code is confined to the kernel boundary: the BPF link syscall in [`attach`],
//! the mapped map and `BPF_PROG_RUN` of [`XdpSender`], and the generated skeletons.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod attach;
mod baseline;
pub mod config;
mod filter;
mod probe_head;
#[allow(unsafe_code)]
mod send;
mod skel;
mod test_run;

pub use attach::{AttachedMode, XdpLink};
pub use baseline::XdpTxBaseline;
pub use config::Reflection;
pub use filter::{TestRun, Verdicts, XdpFilter};
pub use probe_head::{Generated, Generator, ProbeCounts, ProbeHead, ProbeTemplate};
pub use send::{SendDrops, Sent, XdpSender};
pub use test_run::ProgramSize;

use std::io;

// The RX_META_* layout, MAX_SIGNATURES and MAX_QUEUES: defined once
// in build.rs, which writes them into the C programs' header too.
include!(concat!(env!("OUT_DIR"), "/program_constants.rs"));

/// Everything that can go wrong loading or driving an XDP program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {what}: {source} (XDP needs root or CAP_BPF + CAP_NET_ADMIN, and a kernel with BTF)")]
    Bpf {
        what: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("cannot attach the XDP program to interface index {ifindex} in {mode} mode: {source}")]
    Attach {
        ifindex: u32,
        mode: AttachedMode,
        #[source]
        source: io::Error,
    },
    #[error("the probe frame has no room for its 6-byte stamp after the UDP checksum within its first {} bytes, or its expected reflection differs in length; use fewer VLAN tags or IPv4", PROBE_HEADER_WORDS * 8)]
    ProbeTemplate,
    #[error("the fast probe runs 1 to {max} generators, one per CPU; {asked} asked for: lower --generators")]
    ProbeGenerators { asked: usize, max: u32 },
    #[error("CPU {cpu} is not one of the {possible} CPUs the kernel knows: pick generator CPUs among them")]
    ProbeCpu { cpu: usize, possible: usize },
    #[error("cannot send {len}-byte frames with BPF_PROG_RUN live frames: {source} (needs Linux 5.18+; frames must fit a page with XDP headroom, about 3.5 KB)")]
    LiveFrames {
        len: usize,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("cannot prepare queue {queue} to send through the XDP program: {source}")]
    XdpSend {
        queue: u32,
        #[source]
        source: io::Error,
    },
    #[error("queue {queue} is beyond the XSKMAP ({max} entries)")]
    QueueOutOfRange { queue: u32, max: u32 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn bpf_error(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |source| Error::Bpf { what, source }
}
