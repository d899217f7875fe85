//! Command-line interface. The same reflection flags drive every back end (AF_XDP,
//! /dev/bpf, pcap files), so a rig's command line works unchanged on a laptop.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dataplane::filter::{DstMacFilter, DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT, NETALLY_OUI};
use dataplane::safety::{RateLimit, Safety};
use dataplane::stamp::StampMode;
use dataplane::streams::StreamLimits;
use dataplane::worker::StampConfig;
use dataplane::{Filter, MacAddr, Mode, Signature, SignatureSet, WorkerConfig};
use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// A high-performance reflector for NetAlly/Fluke ITO, RFC 2544 and Y.1564 test frames
/// and STAMP (RFC 8762) session-senders.
#[derive(Debug, Parser)]
#[command(name = "reflector", version, args_conflicts_with_subcommands = true)]
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
    #[arg(long, default_value = "all", value_parser = parse_mode)]
    pub mode: Mode,

    /// UDP destination port of test frames; 0 accepts any port.
    #[arg(long, default_value_t = DEFAULT_UDP_PORT)]
    pub port: u16,

    /// Only reflect frames whose source MAC starts with this OUI (default NetAlly 00:c0:17).
    #[arg(long, value_name = "XX:XX:XX", value_parser = parse_oui, conflicts_with = "no_oui_filter")]
    pub oui: Option<[u8; 3]>,

    /// Reflect frames from any vendor's MAC (RFC 2544 / Y.1564 testers of other makes).
    #[arg(long)]
    pub no_oui_filter: bool,

    /// Only reflect frames sent to this MAC (default: the interface's own MAC; with
    /// --read, any unicast MAC).
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
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
    #[arg(long, default_value = "stateless", value_parser = parse_stamp_mode, value_name = "MODE")]
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
    #[arg(long, value_delimiter = ',', value_name = "PREFIX")]
    pub allow: Vec<IpNet>,

    /// Reflect at most this many frames per second from each source IP (per queue).
    #[arg(long, value_name = "PPS")]
    pub rate_limit: Option<u64>,

    /// Frames a source may send back-to-back above --rate-limit.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "FRAMES",
        requires = "rate_limit"
    )]
    pub rate_burst: u32,

    /// Stop reflecting this many seconds after start (frames are then dropped and
    /// counted as loop_timeout), so a forgotten test cannot loop forever.
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    pub loop_timeout: Option<Duration>,
}

/// Live-interface tuning (ignored with --read).
#[derive(Debug, Args, Clone)]
pub struct LiveArgs {
    /// Packet I/O: AF_XDP behind the XDP filter, or plain AF_PACKET (slower; for
    /// comparison, and for kernels without AF_XDP). Linux only.
    #[arg(long, value_enum, default_value_t = Backend::Xdp)]
    pub backend: Backend,

    /// Number of RX queues to serve, one pinned worker each (default: all queues).
    #[arg(long, value_name = "N")]
    pub queues: Option<u32>,

    /// AF_XDP zero-copy: auto tries it and falls back to copy mode.
    #[arg(long, value_enum, default_value_t = Toggle::Auto)]
    pub zero_copy: Toggle,

    /// XDP attach mode: auto tries native (driver) first and falls back to generic.
    #[arg(long, value_enum, default_value_t = XdpAttach::Auto)]
    pub xdp_mode: XdpAttach,

    /// Busy-poll the AF_XDP sockets (lower latency, one core spinning per queue).
    #[arg(long)]
    pub busy_poll: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Xdp,
    AfPacket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpAttach {
    Auto,
    Native,
    Generic,
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

    /// Seconds between live statistics lines; 0 prints only the final totals.
    #[arg(long, default_value = "1", value_parser = parse_seconds, value_name = "SECS")]
    pub stats_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Human,
        }
    }
}

impl FilterArgs {
    /// The dataplane filter; `interface_mac` is the default destination MAC filter.
    pub fn to_filter(&self, interface_mac: Option<MacAddr>) -> Result<Filter> {
        let signatures = if self.signatures.is_empty() {
            SignatureSet::ALL
        } else {
            self.signatures.iter().copied().collect()
        };
        let dst_mac = match (self.dst_mac, interface_mac) {
            (Some(mac), _) | (None, Some(mac)) => DstMacFilter::Exact(mac),
            (None, None) => DstMacFilter::AnyUnicast,
        };
        if let DstMacFilter::Exact(mac) = dst_mac {
            if mac[0] & 1 != 0 {
                bail!(
                    "--dst-mac {} is a group address; a reflector needs a unicast MAC",
                    format_mac(&mac)
                );
            }
        }
        let src_oui = match (self.no_oui_filter, self.oui) {
            (true, _) => None,
            (false, oui) => Some(oui.unwrap_or(NETALLY_OUI)),
        };
        Ok(Filter {
            dst_mac,
            src_oui,
            udp_port: self.port,
            stamp_port: DEFAULT_STAMP_PORT,
            signatures,
            ipv6: !self.no_ipv6,
            vlan: !self.no_vlan,
        })
    }
}

impl ReflectArgs {
    /// Everything a worker needs; `interface_mac` is the default destination MAC.
    pub fn worker_config(&self, interface_mac: Option<MacAddr>) -> Result<WorkerConfig> {
        let mut filter = self.filter.to_filter(interface_mac)?;
        let stamp = &self.stamp;
        filter.stamp_port = stamp.stamp_port;
        if filter.signatures.contains(Signature::Stamp) {
            if stamp.stamp_port == 0 {
                bail!("--stamp-port 0 is not a port; give the port STAMP senders use (RFC 8762: 862), or leave STAMP out of --signatures");
            }
            if stamp.stamp_port == filter.udp_port {
                bail!(
                    "--stamp-port {} overlaps --port {}: test frames to it would be taken for STAMP packets; give them different ports",
                    stamp.stamp_port, filter.udp_port
                );
            }
        }
        if stamp.max_streams > MAX_STREAMS {
            bail!("--max-streams {} is more than {MAX_STREAMS}: each worker allocates its table at start; track fewer streams", stamp.max_streams);
        }
        if stamp.stream_idle.is_zero() {
            bail!("--stream-idle 0 would forget every stream at once; give the idle time in seconds (default 300)");
        }
        if stamp.stamp_mode == StampMode::Stateful && stamp.max_streams == 0 {
            bail!(
                "--stamp-mode stateful counts packets per stream; it needs --max-streams above 0"
            );
        }
        let safety = &self.safety;
        let rate_limit = match safety.rate_limit {
            Some(0) => bail!("--rate-limit 0 would drop everything; give frames per second per source, or omit it"),
            Some(pps) if safety.rate_burst == 0 => bail!("--rate-burst 0 would drop everything; use at least 1 (rate {pps} pps)"),
            Some(pps) => Some(RateLimit { per_source_pps: pps, burst: safety.rate_burst }),
            None => None,
        };
        Ok(WorkerConfig {
            filter,
            mode: self.filter.mode,
            stamp: StampConfig {
                mode: stamp.stamp_mode,
                ..StampConfig::default()
            },
            streams: StreamLimits {
                capacity: stamp.max_streams,
                idle_timeout: stamp.stream_idle,
            },
            safety: Safety {
                allow: safety.allow.clone(),
                rate_limit,
                loop_timeout: safety.loop_timeout,
            },
        })
    }
}

/// Most streams one worker may track (about 100 MB of table).
const MAX_STREAMS: usize = 1_000_000;

fn parse_stamp_mode(s: &str) -> Result<StampMode, String> {
    s.parse()
        .map_err(|e: dataplane::stamp::UnknownStampMode| e.to_string())
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=31_536_000.0).contains(&secs) {
        return Err(format!(
            "{secs} s is out of range: use 0 up to 31536000 (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
        .map_err(|e: dataplane::reflect::UnknownMode| e.to_string())
}

/// Parse `aa:bb:cc:dd:ee:ff` (also with `-` separators).
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    parse_hex_bytes::<6>(s)
        .map_err(|_| format!("{s:?} is not a MAC address like 00:c0:17:12:34:56"))
}

fn parse_oui(s: &str) -> Result<[u8; 3], String> {
    parse_hex_bytes::<3>(s).map_err(|_| format!("{s:?} is not an OUI like 00:c0:17"))
}

fn parse_hex_bytes<const N: usize>(s: &str) -> Result<[u8; N]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != N {
        bail!("expected {N} bytes");
    }
    let mut out = [0u8; N];
    for (byte, part) in out.iter_mut().zip(parts) {
        if part.len() != 2 {
            bail!("expected two hex digits");
        }
        *byte = u8::from_str_radix(part, 16).context("not hex")?;
    }
    Ok(out)
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("reflector").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cli = parse(&["eth0"]).unwrap();
        let filter = cli
            .reflect
            .filter
            .to_filter(Some([2, 0, 0, 0, 0, 1]))
            .unwrap();
        assert_eq!(filter.dst_mac, DstMacFilter::Exact([2, 0, 0, 0, 0, 1]));
        assert_eq!(filter.src_oui, Some(NETALLY_OUI));
        assert_eq!(filter.udp_port, 3842);
        assert_eq!(filter.signatures, SignatureSet::ALL);
        assert!(filter.ipv6 && filter.vlan);
        assert_eq!(cli.reflect.filter.mode, Mode::All);
        assert_eq!(cli.reflect.output.format(), Format::Human);
    }

    #[test]
    fn every_filter_flag_lands_in_the_filter() {
        let cli = parse(&[
            "eth0",
            "--mode",
            "mac-ip",
            "--port",
            "0",
            "--oui",
            "00:1b:21",
            "--dst-mac",
            "02:00:00:00:00:09",
            "--signatures",
            "rfc2544,y.1564",
            "--no-ipv6",
            "--no-vlan",
            "--json",
        ])
        .unwrap();
        let filter = cli
            .reflect
            .filter
            .to_filter(Some([2, 0, 0, 0, 0, 1]))
            .unwrap();
        assert_eq!(cli.reflect.filter.mode, Mode::MacIp);
        assert_eq!(filter.udp_port, 0);
        assert_eq!(filter.src_oui, Some([0x00, 0x1b, 0x21]));
        assert_eq!(filter.dst_mac, DstMacFilter::Exact([2, 0, 0, 0, 0, 9]));
        assert!(
            filter.signatures.contains(Signature::Y1564)
                && !filter.signatures.contains(Signature::ProbeOt)
        );
        assert!(!filter.ipv6 && !filter.vlan);
        assert_eq!(cli.reflect.output.format(), Format::Json);
    }

    #[test]
    fn stamp_stream_and_safety_flags_land_in_the_worker_config() {
        let cli = parse(&[
            "eth0",
            "--stamp-port",
            "8620",
            "--stamp-mode",
            "stateful",
            "--max-streams",
            "10",
            "--stream-idle",
            "30",
            "--allow",
            "192.0.2.0/24,2001:db8::/32",
            "--rate-limit",
            "1000",
            "--rate-burst",
            "5",
            "--loop-timeout",
            "60",
        ])
        .unwrap();
        let config = cli.reflect.worker_config(Some([2, 0, 0, 0, 0, 1])).unwrap();
        assert_eq!(config.filter.stamp_port, 8620);
        assert_eq!(config.stamp.mode, StampMode::Stateful);
        assert_eq!(config.streams.capacity, 10);
        assert_eq!(config.streams.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.safety.allow.len(), 2);
        assert_eq!(
            config.safety.rate_limit,
            Some(RateLimit {
                per_source_pps: 1000,
                burst: 5
            })
        );
        assert_eq!(config.safety.loop_timeout, Some(Duration::from_secs(60)));

        let defaults = parse(&["eth0"])
            .unwrap()
            .reflect
            .worker_config(None)
            .unwrap();
        assert_eq!(defaults.filter.stamp_port, 862);
        assert!(defaults.filter.signatures.contains(Signature::Stamp));
        assert_eq!(defaults.stamp.mode, StampMode::Stateless);
        assert_eq!(defaults.safety, Safety::default());
    }

    #[test]
    fn contradictory_stamp_and_safety_settings_are_refused() {
        let config_error = |args: &[&str]| {
            let mut all = vec!["eth0"];
            all.extend_from_slice(args);
            parse(&all)
                .unwrap()
                .reflect
                .worker_config(None)
                .unwrap_err()
                .to_string()
        };
        assert!(config_error(&["--stamp-port", "3842"]).contains("overlaps --port"));
        assert!(config_error(&["--stamp-port", "0"]).contains("not a port"));
        assert!(
            config_error(&["--stamp-mode", "stateful", "--max-streams", "0"])
                .contains("needs --max-streams")
        );
        assert!(config_error(&["--rate-limit", "0"]).contains("drop everything"));
        assert!(config_error(&["--max-streams", "1000001"]).contains("track fewer"));
        assert!(config_error(&["--stream-idle", "0"]).contains("forget every stream"));
        // Without STAMP, its port does not matter.
        let cli = parse(&["eth0", "--signatures", "rfc2544", "--stamp-port", "3842"]).unwrap();
        assert!(cli.reflect.worker_config(None).is_ok());

        let err = parse(&["eth0", "--allow", "192.0.2.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("192.0.2.0/33"), "{err}");
        let err = parse(&["eth0", "--stamp-mode", "both"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("stateless or stateful"), "{err}");
        let err = parse(&["eth0", "--rate-burst", "5"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--rate-limit"), "{err}");
    }

    #[test]
    fn offline_mode_accepts_any_unicast_destination() {
        let cli = parse(&[
            "--read",
            "in.pcap",
            "--write",
            "out.pcap",
            "--no-oui-filter",
        ])
        .unwrap();
        let filter = cli.reflect.filter.to_filter(None).unwrap();
        assert_eq!(filter.dst_mac, DstMacFilter::AnyUnicast);
        assert_eq!(filter.src_oui, None);
    }

    #[test]
    fn bad_input_gets_a_precise_message() {
        let err = parse(&["eth0", "--mode", "ports"]).unwrap_err().to_string();
        assert!(err.contains("expected mac, mac-ip or all"), "{err}");
        let err = parse(&["eth0", "--oui", "00:c0"]).unwrap_err().to_string();
        assert!(err.contains("not an OUI"), "{err}");
        let err = parse(&["eth0", "--signatures", "ping"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown signature"), "{err}");
        let err = parse(&["--read", "in.pcap"]).unwrap_err().to_string();
        assert!(err.contains("--write"), "{err}");
        let err = parse(&["eth0", "--stats-interval=-1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = parse(&[]).unwrap_err().to_string();
        assert!(err.contains("IFACE"), "{err}");
        let cli = parse(&["eth0", "--dst-mac", "01:00:5e:00:00:01"]).unwrap();
        let err = cli.reflect.filter.to_filter(None).unwrap_err().to_string();
        assert!(err.contains("group address"), "{err}");
    }
}
