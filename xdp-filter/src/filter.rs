//! The reflector's XDP program: load it configured for a filter, attach it, register
//! AF_XDP sockets in its XSKMAP, read its verdict counters, and run it on test input.

use crate::attach::XdpLink;
use crate::config::program_config;
use crate::skel::{self, per_cpu_total, ReflectorSkel, ReflectorSkelBuilder};
use crate::{bpf_error, Error, Result, MAX_QUEUES};
use dataplane::{Filter, Reject};
use libbpf_rs::{MapCore, MapFlags, ProgramInput};
use settings::XdpMode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

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
        let skel = skel::load::<ReflectorSkelBuilder>(|rodata| rodata.cfg = cfg)?;
        Ok(XdpFilter { skel })
    }

    /// Attach to `ifindex`. The program stays attached while the returned link lives.
    pub fn attach(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
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
        for (slot, total) in (0..).zip(slots.iter_mut()) {
            *total = per_cpu_total(
                &self.skel.maps.verdicts,
                slot,
                "read the XDP verdict counters",
            )?;
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
