//! The reflector's XDP program: load it configured for a filter and a [`Reflection`],
//! attach it, register AF_XDP sockets in its XSKMAP, read its verdict counters, and run
//! it on test input.

use crate::attach::XdpLink;
use crate::config::{broadcasts_value, program_config, Reflection};
use crate::skel::{self, per_cpu_total, ReflectorSkel, ReflectorSkelBuilder};
use crate::{bpf_error, Error, Result, MAX_QUEUES, MAX_SIGNATURES};
use dataplane::{Broadcasts, Counters, Filter, Reject, Signature};
use libbpf_rs::{MapCore, MapFlags, ProgramInput};
use settings::XdpMode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// The counter slots after the per-reason ones (see reflector.bpf.c).
const VERDICT_REDIRECTED: usize = Reject::COUNT;
const VERDICT_NO_SOCKET: usize = Reject::COUNT + 1;
const VERDICT_TX_BYTES: usize = Reject::COUNT + 2;
/// Frames returned with XDP_TX, from here on by [`Signature::index`]: room for every
/// row of the table and STAMP, the one signature without a row.
const VERDICT_TX: usize = Reject::COUNT + 3;
const SIGNATURE_SLOTS: usize = MAX_SIGNATURES + 1;
const VERDICT_SLOTS: usize = VERDICT_TX + SIGNATURE_SLOTS;
/// The most XDP metadata a frame can carry (the kernel's limit is below a byte's range).
const MAX_METADATA: usize = 256;

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
    /// Test frames reflected in the kernel ([`Reflection::InKernel`]) and returned with
    /// XDP_TX, by [`Signature::index`].
    pub transmitted: [u64; Signature::COUNT],
    /// Their bytes.
    pub transmitted_bytes: u64,
}

impl Verdicts {
    pub fn rejected(&self) -> u64 {
        self.rejects.iter().sum()
    }

    /// Frames returned with XDP_TX.
    pub fn transmitted(&self) -> u64 {
        self.transmitted.iter().sum()
    }

    /// Every frame the program looked at.
    pub fn seen(&self) -> u64 {
        self.rejected() + self.redirected + self.no_socket + self.transmitted()
    }

    /// Add what the kernel decided to the workers' `totals`, so they describe every
    /// frame that arrived: its rejections (which never reach a worker) and the frames
    /// it reflected itself (received and reflected at once, same length both ways).
    /// Redirected frames are the workers' own.
    pub fn add_to(&self, totals: &mut Counters) {
        for (total, kernel) in totals.per_reject.iter_mut().zip(self.rejects) {
            *total += kernel;
        }
        for (total, kernel) in totals.per_signature.iter_mut().zip(self.transmitted) {
            *total += kernel;
        }
        totals.received += self.rejected() + self.transmitted();
        totals.reflected += self.transmitted();
        totals.rx_bytes += self.transmitted_bytes;
        totals.tx_bytes += self.transmitted_bytes;
    }
}

/// One BPF_PROG_TEST_RUN of the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The XDP action it returned.
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
    /// The XDP metadata it put in front (the arrival stamp of a redirected frame).
    pub metadata: Vec<u8>,
}

/// The loaded (not yet attached) reflector XDP program.
pub struct XdpFilter {
    skel: ReflectorSkel<'static>,
}

impl XdpFilter {
    /// Load the program with `filter` and `reflection` compiled into its read-only
    /// configuration. Test frames longer than `max_frame_len`, the most the AF_XDP
    /// sockets take, are counted as [`Reject::TooLarge`] and passed to the stack.
    pub fn load(filter: &Filter, reflection: Reflection, max_frame_len: u32) -> Result<XdpFilter> {
        let cfg = program_config(filter, reflection, max_frame_len)?;
        let skel = skel::load::<ReflectorSkelBuilder>(|rodata| rodata.cfg = cfg)?;
        let program = XdpFilter { skel };
        program.set_broadcasts(&filter.broadcasts)?;
        Ok(program)
    }

    /// Refuse frames from or to these directed-broadcast addresses from now on (the
    /// interface's IPv4 prefixes changed). The program may see the old list or the new
    /// one for a frame or two while the kernel copies it in.
    pub fn set_broadcasts(&self, list: &Broadcasts) -> Result<()> {
        self.skel
            .maps
            .broadcasts
            .update(&0u32.to_ne_bytes(), &broadcasts_value(list), MapFlags::ANY)
            .map_err(bpf_error(
                "write the directed-broadcast addresses into their map",
            ))
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
            transmitted_bytes: slots[VERDICT_TX_BYTES],
            ..Verdicts::default()
        };
        verdicts.rejects.copy_from_slice(&slots[..Reject::COUNT]);
        verdicts
            .transmitted
            .copy_from_slice(&slots[VERDICT_TX..VERDICT_TX + Signature::COUNT]);
        Ok(verdicts)
    }

    /// Run the program once on `frame` in the kernel (BPF_PROG_TEST_RUN): the XDP action
    /// and the frame as the program left it. The verdict counters record the decision as
    /// for a received frame.
    pub fn test_run(&self, frame: &[u8]) -> Result<TestRun> {
        // The kernel returns the metadata and the frame together; room for both.
        let mut out = vec![0u8; MAX_METADATA + frame.len()];
        let input = ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..ProgramInput::default()
        };
        let output = self
            .skel
            .progs
            .xdp_reflector
            .test_run(input)
            .map_err(bpf_error("test-run the XDP program"))?;
        let action = output.return_value;
        let len = output.data.map_or(0, |data| data.len());
        out.truncate(len);
        // The program never resizes a frame, so whatever precedes it is metadata.
        let frame = out.split_off(len.saturating_sub(frame.len()));
        Ok(TestRun {
            action,
            frame,
            metadata: out,
        })
    }
}
