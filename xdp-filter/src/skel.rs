//! The libbpf skeletons `build.rs` generates, and the one way this crate loads them
//! and reads their per-CPU counters.
//!
//! Each program is opened, its read-only data (the configuration the verifier then
//! treats as constants) is written, and only then is it loaded into the kernel.

use crate::{bpf_error, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};
use std::mem::MaybeUninit;

// Generated code: libbpf-cargo writes its own unsafe blocks and does not aim to be
// clean under this workspace's lints.
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    unused_imports,
    dead_code
)]
mod generated {
    pub mod reflector {
        include!(concat!(env!("OUT_DIR"), "/reflector.skel.rs"));
    }
    pub mod xdp_tx_baseline {
        include!(concat!(env!("OUT_DIR"), "/xdp_tx_baseline.skel.rs"));
    }
    pub mod probe {
        include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
    }
    pub mod send_drops {
        include!(concat!(env!("OUT_DIR"), "/send_drops.skel.rs"));
    }
}

pub(crate) use generated::probe::{types as probe_types, ProbeSkel, ProbeSkelBuilder};
pub(crate) use generated::reflector::{
    types as reflector_types, ReflectorSkel, ReflectorSkelBuilder,
};
pub(crate) use generated::send_drops::{SendDropsSkel, SendDropsSkelBuilder};
pub(crate) use generated::xdp_tx_baseline::{XdpTxBaselineSkel, XdpTxBaselineSkelBuilder};

/// A BPF program this crate loads: its skeleton builder, what to call it in errors,
/// and where its read-only data is.
pub(crate) trait Program: SkelBuilder<'static> + Default {
    /// The source file, for the message if its read-only data went missing.
    const SOURCE: &'static str;
    /// The step that failed, as in "cannot {OPEN}: ...".
    const OPEN: &'static str;
    const LOAD: &'static str;
    /// The program's `const volatile` globals.
    type Rodata;

    fn rodata(open: &mut Self::Output) -> Option<&mut Self::Rodata>;
}

/// The loaded skeleton of program `P`.
pub(crate) type Loaded<P> = <<P as SkelBuilder<'static>>::Output as OpenSkel<'static>>::Output;

/// Open program `P`, let `configure` fill in its read-only data, and load it.
pub(crate) fn load<P: Program>(configure: impl FnOnce(&mut P::Rodata)) -> Result<Loaded<P>> {
    load_with::<P>(|_| Ok(()), configure)
}

/// [`load`], letting `prepare` change the open program first (a map's size).
pub(crate) fn load_with<P: Program>(
    prepare: impl FnOnce(&mut P::Output) -> Result<()>,
    configure: impl FnOnce(&mut P::Rodata),
) -> Result<Loaded<P>> {
    let mut open = open::<P>(P::OPEN)?;
    prepare(&mut open)?;
    let rodata = P::rodata(&mut open)
        .unwrap_or_else(|| panic!("{} declares its configuration as read-only data", P::SOURCE));
    configure(rodata);
    open.load().map_err(bpf_error(P::LOAD))
}

/// Open program `P` (not yet loaded); `what` names the step in errors, as
/// [`Program::OPEN`] does.
fn open<P: SkelBuilder<'static> + Default>(what: &'static str) -> Result<P::Output> {
    // The skeleton borrows this storage for as long as it lives. Leaking it (a few
    // words per load, a handful of loads per process) gives the skeleton a 'static
    // lifetime so it can be stored and moved without self-references.
    let storage = Box::leak(Box::new(MaybeUninit::uninit()));
    P::default().open(storage).map_err(bpf_error(what))
}

/// Open and load the counter of XDP frames a device refused (send_drops.bpf.c).
pub(crate) fn load_send_drops() -> Result<SendDropsSkel<'static>> {
    open::<SendDropsSkelBuilder>("open the counter of refused XDP frames")?
        .load()
        .map_err(bpf_error(
            "load the counter of refused XDP frames (a tp_btf program: needs kernel BTF)",
        ))
}

impl Program for ReflectorSkelBuilder {
    const SOURCE: &'static str = "reflector.bpf.c";
    const OPEN: &'static str = "open the XDP program";
    const LOAD: &'static str = "load the XDP program into the kernel";
    type Rodata = reflector_types::rodata;

    fn rodata(open: &mut Self::Output) -> Option<&mut Self::Rodata> {
        open.maps.rodata_data.as_deref_mut()
    }
}

impl Program for XdpTxBaselineSkelBuilder {
    const SOURCE: &'static str = "xdp_tx_baseline.bpf.c";
    const OPEN: &'static str = "open the XDP_TX baseline";
    const LOAD: &'static str = "load the XDP_TX baseline";
    type Rodata = generated::xdp_tx_baseline::types::rodata;

    fn rodata(open: &mut Self::Output) -> Option<&mut Self::Rodata> {
        open.maps.rodata_data.as_deref_mut()
    }
}

impl Program for ProbeSkelBuilder {
    const SOURCE: &'static str = "probe.bpf.c";
    const OPEN: &'static str = "open the probe head's XDP programs";
    const LOAD: &'static str = "load the probe head's XDP programs";
    type Rodata = probe_types::rodata;

    fn rodata(open: &mut Self::Output) -> Option<&mut Self::Rodata> {
        open.maps.rodata_data.as_deref_mut()
    }
}

/// A value no one outside this process can guess, to mark a program's own runs
/// (BPF_PROG_RUN with it in the run's input) apart from received frames: the OS-seeded
/// keys of std's SipHash, hashed over nothing.
pub(crate) fn random_secret() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Entry `key` of a per-CPU array of `u64` counters, summed over CPUs.
pub(crate) fn per_cpu_total(map: &impl MapCore, key: u32, what: &'static str) -> Result<u64> {
    let per_cpu = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf_error(what))?
        .unwrap_or_default();
    Ok(per_cpu.iter().map(|cpu| read_u64(cpu)).sum())
}

pub(crate) fn read_u64(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    u64::from_ne_bytes(raw)
}
