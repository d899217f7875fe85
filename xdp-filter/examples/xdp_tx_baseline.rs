//! Attach the XDP_TX baseline to an interface until SIGINT/SIGTERM, then print how many
//! frames it bounced. Used by `scripts/bench-rig.sh` as the rig's upper bound.
//!
//! `xdp_tx_baseline IFACE [UDP_PORT]`
//!
//! A veth only delivers frames another veth sent with XDP_TX if the receiving end runs
//! an XDP program too. The rig attaches this program to the test head's end with a port
//! no test frame uses, which passes everything up the stack unchanged.

use settings::XdpMode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xdp_filter::XdpTxBaseline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ifname = args
        .next()
        .ok_or("usage: xdp_tx_baseline IFACE [UDP_PORT]")?;
    let port: u16 = args
        .next()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(dataplane::filter::DEFAULT_UDP_PORT);
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
        .map_err(|e| format!("no interface {ifname}: {e}"))?;
    let program = XdpTxBaseline::load(port)?;
    let link = program.attach(ifindex, XdpMode::Auto)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    println!("xdp_tx_baseline on {ifname} ({} mode)", link.mode());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("bounced {}", program.bounced()?);
    Ok(())
}
