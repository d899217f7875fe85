//! The XDP_TX baseline: the fastest possible reflector on a rig, for benchmarks only.

use crate::attach::{AttachMode, XdpLink};
use crate::filter::read_u64;
use crate::{bpf_error, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

#[allow(clippy::all, unused_imports, dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xdp_tx_baseline.skel.rs"));
}
use skel::{XdpTxBaselineSkel, XdpTxBaselineSkelBuilder};

/// A loaded `xdp_tx_baseline` program.
pub struct XdpTxBaseline {
    skel: XdpTxBaselineSkel<'static>,
}

impl XdpTxBaseline {
    /// Load the program bouncing UDP frames to `udp_port` (0: every UDP frame).
    pub fn load(udp_port: u16) -> Result<XdpTxBaseline> {
        // Leaked for a 'static skeleton, as in `XdpFilter::load`.
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = XdpTxBaselineSkelBuilder::default()
            .open(storage)
            .map_err(bpf_error("open the XDP_TX baseline"))?;
        open.maps
            .rodata_data
            .as_deref_mut()
            .expect("xdp_tx_baseline.bpf.c has read-only data (udp_port)")
            .udp_port = udp_port;
        let skel = open.load().map_err(bpf_error("load the XDP_TX baseline"))?;
        Ok(XdpTxBaseline { skel })
    }

    pub fn attach(&self, ifindex: u32, mode: AttachMode) -> Result<XdpLink> {
        XdpLink::attach(self.skel.progs.xdp_tx_baseline.as_fd(), ifindex, mode)
    }

    /// Frames bounced since loading, summed over CPUs.
    pub fn bounced(&self) -> Result<u64> {
        let per_cpu = self
            .skel
            .maps
            .bounced
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf_error("read the XDP_TX baseline counter"))?
            .unwrap_or_default();
        Ok(per_cpu.iter().map(|cpu| read_u64(cpu)).sum())
    }
}
