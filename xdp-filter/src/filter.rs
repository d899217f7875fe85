//! The reflector's XDP program: load it configured for a filter and a [`Reflection`],
//! attach it, register AF_XDP sockets in its XSKMAP, read its verdict counters, and run
//! it on test input.

use crate::attach::XdpLink;
use crate::config::{allow_key, broadcasts_value, policed, program_config, Reflection};
use crate::skel::{self, per_cpu_total, ReflectorSkel, ReflectorSkelBuilder};
use crate::test_run::{self, ProgramSize};
use crate::{bpf_error, Error, Result, SendDrops, XdpSender, MAX_QUEUES, MAX_SIGNATURES};
use dataplane::safety::RATE_LIMIT_SOURCES;
use dataplane::{Broadcasts, Counters, Filter, Reject, Signature};
use ipnet::IpNet;
use libbpf_rs::{MapCore, MapFlags};
use settings::XdpMode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// The counter slots after the per-reason ones (see reflector.bpf.c).
const VERDICT_REDIRECTED: usize = Reject::COUNT;
const VERDICT_NO_SOCKET: usize = Reject::COUNT + 1;
const VERDICT_TX_BYTES: usize = Reject::COUNT + 2;
/// Frames returned with XDP_TX, from here on by [`Signature::index`]: room for every
/// row of the table and STAMP, the one signature without a row.
const VERDICT_TX: usize = Reject::COUNT + 3;
const SIGNATURE_SLOTS: usize = MAX_SIGNATURES + 1;
const VERDICT_SLOTS: usize = VERDICT_TX + SIGNATURE_SLOTS;

/// What the XDP program decided, summed over CPUs since it was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Frames passed to the kernel stack, by the first check they failed, indexed by
    /// [`Reject::index`]; the policy reasons ([`Reject::is_policy`]) only when the
    /// program reflects in the kernel (its frames are then dropped, not passed).
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
    /// frame that arrived: its rejections (which never reach a worker), the frames
    /// it reflected itself (received and reflected at once, same length both ways),
    /// and test frames on a queue without a worker (lost to the reflector). Redirected
    /// frames are the workers' own.
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
        totals.kernel.unserved_queue += self.no_socket;
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
    /// Whether the loaded entry point is `xdp_reflector_policed` (the program applies
    /// the policy) rather than `xdp_reflector`.
    policed: bool,
    /// What marks a worker's run of the program ([`XdpSender`]).
    send_secret: u64,
}

/// Queues whose workers can send through the program: one block of `send_batches`
/// each, as many as CPUs (a worker per CPU at most is useful; the blocks are 128 KiB).
fn send_queues(cpus: usize) -> u32 {
    cpus.clamp(1, MAX_QUEUES as usize) as u32
}

impl XdpFilter {
    /// Load the program with `filter` and `reflection` compiled into its read-only
    /// configuration. Test frames longer than `max_frame_len`, the most the AF_XDP
    /// sockets take, are counted as [`Reject::TooLarge`] and passed to the stack.
    pub fn load(filter: &Filter, reflection: &Reflection, max_frame_len: u32) -> Result<XdpFilter> {
        let cfg = program_config(filter, reflection, max_frame_len);
        let policy = reflection.policy().cloned().unwrap_or_default();
        let policed = policed(&cfg);
        let skel = skel::load_with::<ReflectorSkelBuilder>(
            |open| {
                // One entry point or the other; the kernel verifies only that one.
                open.progs.xdp_reflector.set_autoload(!policed);
                open.progs.xdp_reflector_policed.set_autoload(policed);
                // Room for RATE_LIMIT_SOURCES per queue, as many queues at once as CPUs
                // (the map's bucket array is allocated whole, so not MAX_QUEUES' worth);
                // sources that find it full share their queue's overflow bucket.
                let cpus = libbpf_rs::num_possible_cpus().map_err(bpf_error("count the CPUs"))?;
                let sources = match policy.rate_limit {
                    Some(_) => RATE_LIMIT_SOURCES * cpus.min(MAX_QUEUES as usize),
                    None => 1,
                };
                open.maps
                    .rate_sources
                    .set_max_entries(sources as u32)
                    .map_err(bpf_error("size the rate limiter's map"))?;
                open.maps
                    .send_batches
                    .set_max_entries(send_queues(cpus))
                    .map_err(bpf_error("size the map workers send from"))
            },
            |rodata| rodata.cfg = cfg,
        )?;
        let program = XdpFilter {
            skel,
            policed,
            send_secret: cfg.send_secret,
        };
        program.set_broadcasts(&filter.broadcasts)?;
        program.set_allow_list(&policy.allow)?;
        Ok(program)
    }

    /// Run the program `repeat` times on `frame` in the kernel (BPF_PROG_TEST_RUN; each
    /// run sees the frame as the previous one left it) and return the kernel's mean time
    /// per run. For benchmarks; the verdict counters count every run.
    pub fn time_test_run(&self, frame: &[u8], repeat: u32) -> Result<Duration> {
        Ok(test_run::test_run(self.program(), frame, repeat)?.per_run)
    }

    /// The loaded program's length after the verifier removed what its configuration
    /// never runs.
    pub fn size(&self) -> Result<ProgramSize> {
        test_run::program_size(self.program())
    }

    /// The entry point that was loaded.
    fn program(&self) -> &libbpf_rs::ProgramMut<'static> {
        match self.policed {
            true => &self.skel.progs.xdp_reflector_policed,
            false => &self.skel.progs.xdp_reflector,
        }
    }

    /// Write the allow-list's prefixes into their tries (read only when the program
    /// was loaded with an allow-list).
    fn set_allow_list(&self, prefixes: &[IpNet]) -> Result<()> {
        let maps = &self.skel.maps;
        for prefix in prefixes {
            let (v6, key) = allow_key(prefix);
            let map = if v6 { &maps.allow_v6 } else { &maps.allow_v4 };
            map.update(&key, &[1], MapFlags::ANY)
                .map_err(bpf_error("write the allow-list into its map"))?;
        }
        Ok(())
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
        XdpLink::attach(self.program().as_fd(), ifindex, mode)
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

    /// A way for the worker of `queue` to send its frames as XDP frames out of the
    /// interface the program is attached to, which `drops` watches ([`XdpSender`]).
    /// Queues beyond the CPU count have none ([`Error::QueueOutOfRange`]).
    pub fn sender(&self, drops: &SendDrops, queue: u32) -> Result<XdpSender> {
        let map = &self.skel.maps.send_batches;
        XdpSender::new(
            self.program().as_fd(),
            map.as_fd(),
            map.max_entries(),
            self.send_secret,
            drops,
            queue,
        )
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
        let ran = test_run::test_run(self.program(), frame, 1)?;
        let mut out = ran.out;
        // The program never resizes a frame, so whatever precedes it is metadata.
        let frame = out.split_off(out.len().saturating_sub(frame.len()));
        Ok(TestRun {
            action: ran.action,
            frame,
            metadata: out,
        })
    }
}
