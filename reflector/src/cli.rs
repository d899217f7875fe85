//! Command-line interface. The same reflection flags drive every back end (AF_XDP,
//! /dev/bpf, pcap files), so a rig's command line works unchanged on a laptop.
//!
//! The flags are the fields of [`settings::Settings`] (the control plane generates
//! them with [`Settings::worker_args`]); their checks are [`Settings::validate`].

use crate::report::Format;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use dataplane::filter::{DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT};
use dataplane::streams::StreamLimits;
use dataplane::{MacAddr, Mode, Oui, Signature, StampMode, WorkerConfig};
use ipnet::IpNet;
use settings::{
    parse_prefix, Backend, Naming, Settings, WakeLatency, XdpMode, XdpSend, ZeroCopy,
    DEFAULT_RATE_BURST, MAX_SECONDS,
};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

/// `--version`: version, git commit and back ends (the same text as reflector-control's).
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    settings::build_info::long_version(env!("CARGO_PKG_VERSION"), env!("REFLECTOR_GIT_COMMIT"))
});

/// A high-performance reflector for NetAlly/Fluke ITO, RFC 2544 and Y.1564 test frames
/// and STAMP (RFC 8762) session-senders.
#[derive(Debug, Parser)]
#[command(
    name = "reflector",
    version,
    long_version = LONG_VERSION.as_str(),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub reflect: ReflectArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test head: send test frames out of an interface and measure the reflections.
    Probe(crate::probe::ProbeArgs),
}

/// Where frames come from and go to.
#[derive(Debug, Args)]
pub struct ReflectArgs {
    /// Interface to reflect on (e.g. eth0, en0). Omit when using --read/--write.
    #[arg(
        value_name = "IFACE",
        required_unless_present = "read",
        conflicts_with = "read"
    )]
    pub interface: Option<String>,

    /// Reflect the frames of this pcap file instead of a live interface.
    #[arg(long, value_name = "IN.pcap", requires = "write")]
    pub read: Option<PathBuf>,

    /// Write the reflected frames here (with --read).
    #[arg(long, value_name = "OUT.pcap", requires = "read")]
    pub write: Option<PathBuf>,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub stamp: StampArgs,

    #[command(flatten)]
    pub safety: SafetyArgs,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// What is reflected and how.
#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Fields to swap: mac, mac-ip or all (MACs, IPs and UDP ports).
    #[arg(long, default_value = "all")]
    pub mode: Mode,

    /// UDP destination port of test frames; 0 accepts any port.
    #[arg(long, default_value_t = DEFAULT_UDP_PORT)]
    pub port: u16,

    /// Only reflect frames whose source MAC starts with this OUI (default NetAlly 00:c0:17).
    #[arg(long, value_name = "XX:XX:XX", conflicts_with = "no_oui_filter")]
    pub oui: Option<Oui>,

    /// Reflect frames from any vendor's MAC (RFC 2544 / Y.1564 testers of other makes).
    #[arg(long)]
    pub no_oui_filter: bool,

    /// Only reflect frames sent to this MAC (default: the interface's own MAC; with
    /// --read, any unicast MAC).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: Option<MacAddr>,

    /// Comma-separated signatures to reflect (PROBEOT, DATA:OT, LATENCY, RFC2544, Y.1564,
    /// STAMP); default all.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub signatures: Vec<Signature>,

    /// Do not reflect IPv6 test frames.
    #[arg(long)]
    pub no_ipv6: bool,

    /// Do not reflect VLAN-tagged frames.
    #[arg(long)]
    pub no_vlan: bool,
}

/// The STAMP session-reflector and per-stream statistics.
#[derive(Debug, Args, Clone)]
pub struct StampArgs {
    /// UDP port STAMP session-senders send to (STAMP is answered unless --signatures
    /// leaves it out). STAMP packets skip the OUI filter.
    #[arg(long, default_value_t = DEFAULT_STAMP_PORT, value_name = "PORT")]
    pub stamp_port: u16,

    /// stateless: answer with the sender's sequence number; stateful: count each
    /// session's packets, so the sender can tell forward from return loss.
    #[arg(long, default_value = "stateless", value_name = "MODE")]
    pub stamp_mode: StampMode,

    /// Streams tracked per worker (per-stream frames, bytes, loss); 0 turns tracking off.
    #[arg(long, default_value_t = StreamLimits::default().capacity, value_name = "N")]
    pub max_streams: usize,

    /// Forget a stream after this many idle seconds.
    #[arg(long, default_value = "300", value_parser = parse_seconds, value_name = "SECS")]
    pub stream_idle: Duration,
}

/// Limits on whom and how much the reflector answers. The spec's never-reflect rules
/// always apply.
#[derive(Debug, Args, Clone)]
pub struct SafetyArgs {
    /// Only answer sources in these prefixes (comma-separated or repeated), e.g.
    /// 192.0.2.0/24,2001:db8::/32.
    #[arg(long, value_delimiter = ',', value_parser = parse_prefix, value_name = "PREFIX")]
    pub allow: Vec<IpNet>,

    /// Reflect at most this many frames per second from each source IP (per queue).
    #[arg(long, value_name = "PPS")]
    pub rate_limit: Option<u64>,

    // The default is applied by `Settings`, not clap, so that "unset" (the only thing
    // allowed without --rate-limit) stays distinguishable from an explicit 64.
    #[arg(
        long,
        value_name = "FRAMES",
        requires = "rate_limit",
        help = format!(
            "Frames a source may send back-to-back above --rate-limit [default: {DEFAULT_RATE_BURST}]"
        )
    )]
    pub rate_burst: Option<u32>,

    /// Stop reflecting this many seconds after start (frames are then dropped and
    /// counted as loop_timeout), so a forgotten test cannot loop forever.
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    pub loop_timeout: Option<Duration>,
}

/// Live-interface tuning (ignored with --read).
#[derive(Debug, Args, Clone)]
pub struct LiveArgs {
    /// Packet I/O (Linux only): xdp (alias af-xdp) is AF_XDP behind the XDP filter;
    /// xdp-tx reflects in the XDP program (STAMP through AF_XDP; --allow, --rate-limit
    /// and --loop-timeout run there too; needs --max-streams 0); auto runs xdp-tx when
    /// every enabled feature allows it, else xdp; af-packet is plain AF_PACKET (slower).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Number of RX queues to serve, one pinned worker each (default: all queues).
    #[arg(long, value_name = "N")]
    pub queues: Option<u32>,

    /// AF_XDP zero-copy: auto tries it and falls back to copy mode.
    #[arg(long, value_enum, default_value_t = ZeroCopy::Auto)]
    pub zero_copy: ZeroCopy,

    /// XDP attach mode: auto tries native (driver) first and falls back to generic.
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    pub xdp_mode: XdpMode,

    /// Busy-poll the AF_XDP sockets (lower latency, one core spinning per queue).
    #[arg(long)]
    pub busy_poll: bool,

    /// While frames flow, hold a CPU latency request (/dev/cpu_dma_latency at 0 µs,
    /// dropped a second after the last frame) so idle CPUs wake at once for the next
    /// frame; off lets them sleep deeply, adding wake-up delays at low rates (Linux;
    /// not with --busy-poll, whose workers never sleep).
    #[arg(long, value_enum, default_value_t = WakeLatency::On)]
    pub wake_latency: WakeLatency,

    /// An AF_XDP socket in copy mode (no zero-copy: veth, drivers without it) sends
    /// batches of 32 frames or more as XDP frames through the XDP program instead of
    /// building an skb per frame; smaller batches, frames over 2044 bytes and
    /// multi-buffer frames still go through the socket, and so does everything once
    /// the device refuses XDP frames. off: always the socket (Linux; not for
    /// af-packet; with xdp-tx, the STAMP workers).
    #[arg(long, value_enum, default_value_t = XdpSend::On)]
    pub xdp_send: XdpSend,
}

/// How statistics are printed.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// One JSON object per line (for scripts and the control plane).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// CSV with a header line.
    #[arg(long)]
    pub csv: bool,

    /// A live terminal dashboard (keys: q quit, p pause, r reset deltas, s sort
    /// streams); the final totals are printed as usual. Without a terminal on stdout,
    /// the usual lines.
    #[arg(long, conflicts_with_all = ["json", "csv", "read"])]
    pub tui: bool,

    /// Seconds between live statistics lines; 0 prints only the final totals.
    #[arg(long, default_value = "1", value_parser = parse_seconds, value_name = "SECS")]
    pub stats_interval: Duration,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        match (self.json, self.csv, self.tui) {
            (true, _, _) => Format::Json,
            (_, true, _) => Format::Csv,
            (_, _, true) if crate::tui::available() => Format::Tui,
            _ => Format::Human,
        }
    }
}

impl ReflectArgs {
    /// The reflector's settings, as the flags give them.
    pub fn settings(&self) -> Settings {
        let (filter, stamp, safety, live) = (&self.filter, &self.stamp, &self.safety, &self.live);
        Settings {
            mode: filter.mode,
            port: filter.port,
            oui: filter.oui,
            no_oui_filter: filter.no_oui_filter,
            dst_mac: filter.dst_mac,
            signatures: filter.signatures.clone(),
            no_ipv6: filter.no_ipv6,
            no_vlan: filter.no_vlan,
            stamp_port: stamp.stamp_port,
            stamp_mode: stamp.stamp_mode,
            max_streams: stamp.max_streams,
            stream_idle: stamp.stream_idle,
            allow: safety.allow.clone(),
            rate_limit: safety.rate_limit,
            rate_burst: safety.rate_burst,
            loop_timeout: safety.loop_timeout,
            backend: live.backend,
            queues: live.queues,
            zero_copy: live.zero_copy,
            xdp_mode: live.xdp_mode,
            busy_poll: live.busy_poll,
            wake_latency: live.wake_latency,
            xdp_send: live.xdp_send,
        }
    }

    /// Everything a worker needs, checked; `interface_mac` is the default destination
    /// MAC. Refusals name the flags.
    pub fn worker_config(&self, interface_mac: Option<MacAddr>) -> Result<WorkerConfig> {
        Ok(self
            .settings()
            .worker_config(interface_mac)
            .map_err(|e| e.named(Naming::Flag))?)
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS as f64).contains(&secs) {
        return Err(format!(
            "{secs} s is out of range: use 0 up to {MAX_SECONDS} (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests;
