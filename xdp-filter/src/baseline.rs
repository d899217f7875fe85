//! The XDP_TX baseline: the fastest possible reflector on a rig, for benchmarks only.

use crate::attach::XdpLink;
use crate::skel::{self, per_cpu_total, XdpTxBaselineSkel, XdpTxBaselineSkelBuilder};
use crate::test_run::{self, ProgramSize};
use crate::Result;
use settings::XdpMode;
use std::os::fd::AsFd;
use std::time::Duration;

/// A loaded `xdp_tx_baseline` program.
pub struct XdpTxBaseline {
    skel: XdpTxBaselineSkel<'static>,
}

impl XdpTxBaseline {
    /// Load the program bouncing UDP frames to `udp_port` (0: every UDP frame).
    pub fn load(udp_port: u16) -> Result<XdpTxBaseline> {
        let skel = skel::load::<XdpTxBaselineSkelBuilder>(|rodata| rodata.udp_port = udp_port)?;
        Ok(XdpTxBaseline { skel })
    }

    pub fn attach(&self, ifindex: u32, mode: XdpMode) -> Result<XdpLink> {
        XdpLink::attach(self.skel.progs.xdp_tx_baseline.as_fd(), ifindex, mode)
    }

    /// Frames bounced since loading, summed over CPUs.
    pub fn bounced(&self) -> Result<u64> {
        per_cpu_total(
            &self.skel.maps.bounced,
            0,
            "read the XDP_TX baseline counter",
        )
    }

    /// Run the program `repeat` times on `frame` in the kernel, as
    /// [`XdpFilter::time_test_run`](crate::XdpFilter::time_test_run) runs the reflector's,
    /// and return the kernel's mean time per run. For benchmarks.
    pub fn time_test_run(&self, frame: &[u8], repeat: u32) -> Result<Duration> {
        Ok(test_run::test_run(&self.skel.progs.xdp_tx_baseline, frame, repeat)?.per_run)
    }

    /// The loaded program's length after the verifier.
    pub fn size(&self) -> Result<ProgramSize> {
        test_run::program_size(&self.skel.progs.xdp_tx_baseline)
    }
}
