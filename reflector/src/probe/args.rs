//! `reflector probe`'s command line.

use dataplane::frame::FCS_LEN;
use dataplane::{MacAddr, Mode, Signature};
use std::net::IpAddr;

/// How the probe puts frames on the wire and counts the returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// An AF_PACKET socket and a user-space receiver (up to ~0.3 Mpps).
    #[default]
    Socket,
    /// The kernel's live-frames BPF_PROG_RUN sends, an XDP program on IFACE counts the
    /// returns (several Mpps; Linux 5.18+, root).
    Fast,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ProbeArgs {
    /// Interface to send from.
    #[arg(value_name = "IFACE")]
    pub interface: String,

    /// MAC address of the reflector.
    #[arg(long, value_name = "MAC")]
    pub to: MacAddr,

    /// Source MAC (default: the interface's). Must be in the reflector's OUI filter.
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<MacAddr>,

    /// Signature to send: PROBEOT, DATA:OT, LATENCY, RFC2544 or Y.1564 (for STAMP, use a
    /// STAMP session-sender).
    #[arg(long, default_value = "PROBEOT")]
    pub signature: Signature,

    /// Frame size on the wire in bytes, FCS included (64 to 9018). Default: 64, or the
    /// smallest size that fits (IPv6 and VLAN tags need more).
    #[arg(long, value_parser = clap::value_parser!(u16).range(64..=9018))]
    pub size: Option<u16>,

    /// Frames per second; 0 sends as fast as the interface takes them.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,

    /// Frames to send (default: rate x duration).
    #[arg(long)]
    pub count: Option<u32>,

    /// Seconds to send for, when --count is not given.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,

    /// Seconds to wait for late reflections after the last frame.
    #[arg(long, default_value_t = 1.0)]
    pub wait: f64,

    /// Source IP (IPv4 or IPv6; the destination must be the same family).
    #[arg(long, default_value = "192.0.2.1")]
    pub src_ip: IpAddr,

    /// Destination IP.
    #[arg(long, default_value = "192.0.2.2")]
    pub dst_ip: IpAddr,

    /// VLAN IDs, outermost first (two for QinQ: the outer tag is sent as 802.1ad).
    #[arg(long, value_delimiter = ',', value_name = "ID[,ID]")]
    pub vlan: Vec<u16>,

    /// UDP destination port.
    #[arg(long, default_value_t = dataplane::filter::DEFAULT_UDP_PORT)]
    pub port: u16,

    /// Reflection mode the reflector is expected to use; other reflections count as malformed.
    #[arg(long, default_value = "all", value_parser = |s: &str| s.parse::<Mode>().map_err(|e| e.to_string()))]
    pub mode: Mode,

    /// Sending and counting engine.
    #[arg(long, value_enum, default_value_t = Engine::Socket)]
    pub engine: Engine,

    /// Fast engine: generator threads, each pinned to its own CPU with its share of the
    /// frames and the rate (default at --rate 0 or above 1 Mpps: one per CPU the probe
    /// may run on, at most one per queue of IFACE; one otherwise).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub generators: Option<u32>,

    /// RFC 2544 throughput search (fast engine): per frame size, binary-search the
    /// highest rate with zero loss, one trial of --duration seconds per step.
    #[arg(long)]
    pub search: bool,

    /// Frame sizes for --search (default: --size).
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]", value_parser = clap::value_parser!(u16).range(64..=9018))]
    pub sizes: Vec<u16>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Watch the run on a live terminal dashboard (q stops it early); the report is
    /// printed as usual when you quit. Without a terminal on stdout, just the report.
    #[arg(long, conflicts_with_all = ["json", "search"])]
    pub tui: bool,

    /// With --json: also print the report so far every SECONDS (cumulative, one JSON
    /// line each) before the final one, for a program watching the run
    /// (reflector-control's probes).
    #[arg(long, value_name = "SECONDS", requires = "json", conflicts_with = "search",
          value_parser = parse_interval)]
    pub interval: Option<f64>,
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.1..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0.1 to 3600"
        )),
    }
}

impl ProbeArgs {
    /// What to check when not one frame came back: each likely cause with the
    /// reflector counter that shows it.
    pub fn nothing_came_back_hint(&self) -> String {
        format!(
            "nothing came back. Check: --to {to} is the MAC of the reflector's interface \
             (its `dst_mac_mismatch` counter grows if not); the source MAC is inside the \
             reflector's OUI filter (`src_oui_mismatch`; send with --src-mac 00:c0:17:.. or \
             run the reflector with --no-oui-filter); the reflector listens on UDP port \
             {port} (`port_mismatch`); the reflector accepts {signature} (`no_signature`); \
             the reflector is running and the link between them is up",
            to = self.to,
            port = self.port,
            signature = self.signature,
        )
    }

    /// One line for logs: who the probe talks to.
    pub fn describe(&self, src_mac: &MacAddr, frame_len: usize) -> String {
        format!(
            "probe {} -> {} on {}: {} frames of {} bytes on the wire, {}",
            src_mac,
            self.to,
            self.interface,
            self.signature,
            frame_len + FCS_LEN,
            if self.rate == 0 {
                "as fast as possible".to_owned()
            } else {
                format!("{} pps", self.rate)
            }
        )
    }
}
