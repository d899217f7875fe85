//! The reflector's XDP program: load it configured for a filter, attach it, register
//! AF_XDP sockets in its XSKMAP, read its verdict counters, and run it on test input.

use crate::attach::{AttachMode, XdpLink};
use crate::config::program_config;
use crate::{bpf_error, Error, Result, MAX_QUEUES};
use dataplane::{Filter, Reject};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, ProgramInput};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

#[allow(clippy::all, unused_imports, dead_code)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/reflector.skel.rs"));
}
use skel::{ReflectorSkel, ReflectorSkelBuilder};

/// The counter slots after the per-reason ones (see reflector.bpf.c).
const VERDICT_REDIRECTED: usize = Reject::COUNT;
const VERDICT_NO_SOCKET: usize = Reject::COUNT + 1;
const VERDICT_SLOTS: usize = Reject::COUNT + 2;

/// What the XDP program decided, summed over CPUs since it was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Frames passed to the kernel stack, by the first check they failed, indexed by
    /// [`Reject::index`]. The worker's policy reasons ([`Reject::is_policy`]) are
    /// decided after classification, in user space, so their entries stay 0.
    pub rejects: [u64; Reject::COUNT],
    /// Test frames handed to an AF_XDP socket.
    pub redirected: u64,
    /// Test frames that arrived on a queue without a socket (passed to the stack).
    pub no_socket: u64,
}

impl Verdicts {
    pub fn rejected(&self) -> u64 {
        self.rejects.iter().sum()
    }

    /// Every frame the program looked at.
    pub fn seen(&self) -> u64 {
        self.rejected() + self.redirected + self.no_socket
    }
}

/// The loaded (not yet attached) reflector XDP program.
pub struct XdpFilter {
    skel: ReflectorSkel<'static>,
}

impl XdpFilter {
    /// Load the program with `filter` compiled into its read-only configuration.
    pub fn load(filter: &Filter) -> Result<XdpFilter> {
        let cfg = program_config(filter)?;
        // The skeleton borrows this storage for as long as it lives. Leaking it (a few
        // words per load, a handful of loads per process) gives the skeleton a 'static
        // lifetime so it can be stored and moved without self-references.
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = ReflectorSkelBuilder::default()
            .open(storage)
            .map_err(bpf_error("open the XDP program"))?;
        open.maps
            .rodata_data
            .as_deref_mut()
            .expect("reflector.bpf.c has read-only data (cfg)")
            .cfg = cfg;
        let skel = open
            .load()
            .map_err(bpf_error("load the XDP program into the kernel"))?;
        Ok(XdpFilter { skel })
    }

    /// Attach to `ifindex`. The program stays attached while the returned link lives.
    pub fn attach(&self, ifindex: u32, mode: AttachMode) -> Result<XdpLink> {
        XdpLink::attach(self.skel.progs.xdp_reflector.as_fd(), ifindex, mode)
    }

    /// Send test frames that arrive on RX queue `queue` to the AF_XDP socket `socket`.
    pub fn register_socket(&self, queue: u32, socket: BorrowedFd<'_>) -> Result<()> {
        if queue >= MAX_QUEUES {
            return Err(Error::QueueOutOfRange {
                queue,
                max: MAX_QUEUES,
            });
        }
        let fd = socket.as_raw_fd() as u32;
        self.skel
            .maps
            .xsks_map
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_error("register the AF_XDP socket in the XSKMAP"))
    }

    /// The program's verdict counters, summed over CPUs.
    pub fn verdicts(&self) -> Result<Verdicts> {
        let mut slots = [0u64; VERDICT_SLOTS];
        for (slot, total) in slots.iter_mut().enumerate() {
            let per_cpu = self
                .skel
                .maps
                .verdicts
                .lookup_percpu(&(slot as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf_error("read the XDP verdict counters"))?
                .unwrap_or_default();
            *total = per_cpu.iter().map(|cpu| read_u64(cpu)).sum();
        }
        let mut verdicts = Verdicts {
            redirected: slots[VERDICT_REDIRECTED],
            no_socket: slots[VERDICT_NO_SOCKET],
            ..Verdicts::default()
        };
        verdicts.rejects.copy_from_slice(&slots[..Reject::COUNT]);
        Ok(verdicts)
    }

    /// Run the program once on `frame` in the kernel (BPF_PROG_TEST_RUN) and return the
    /// XDP action. The verdict counters record the decision as for a received frame.
    pub fn test_run(&self, frame: &[u8]) -> Result<u32> {
        let input = ProgramInput {
            data_in: Some(frame),
            ..ProgramInput::default()
        };
        let output = self
            .skel
            .progs
            .xdp_reflector
            .test_run(input)
            .map_err(bpf_error("test-run the XDP program"))?;
        Ok(output.return_value)
    }
}

pub(crate) fn read_u64(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    u64::from_ne_bytes(raw)
}
