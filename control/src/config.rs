//! Configuration: the TOML file and the per-reflector settings shared by the file,
//! the REST API and the worker command line.
//!
//! Settings the control plane has its own rules for (names, STAMP, streams, safety)
//! are checked first, with messages naming the setting; then the worker's own
//! command-line parser and configuration checks run over the resulting arguments, so
//! anything the control plane accepts is something a worker will accept too.

use clap::Parser;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Seconds between the statistics lines a worker prints; the dashboard plots per second.
pub const STATS_INTERVAL_S: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Which header fields a worker swaps: the dataplane's own type, so the names the
/// API and config accept are exactly the ones the worker parses.
pub use dataplane::Mode;

/// How the STAMP session-reflector numbers its answers: `stateless` or `stateful`.
pub use dataplane::StampMode;

/// Longest `stream_idle_s` and `loop_timeout_s` the worker accepts: a year.
pub const MAX_SECONDS: u64 = 31_536_000;

/// Most streams a worker may be asked to track. Each worker sizes its stream table
/// for `max_streams` up front (about 100 bytes a stream), so the bound keeps a typo
/// from costing gigabytes per queue.
pub const MAX_STREAMS: usize = 1_000_000;

/// Most prefixes in `allow`: every candidate frame is checked against each of them.
pub const MAX_ALLOW_PREFIXES: usize = 256;

/// Highest `rate_limit_pps`: the worker's token bucket counts in nanoseconds, so a
/// faster rate would be no limit at all.
pub const MAX_RATE_LIMIT_PPS: u64 = 1_000_000_000;

/// AF_XDP zero-copy: auto tries it and falls back to copy mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroCopy {
    #[default]
    Auto,
    On,
    Off,
}

/// XDP attach mode: auto tries native first and falls back to generic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    #[default]
    Auto,
    Native,
    Generic,
}

/// One reflector worker: its interface and every reflector flag. Field names follow the
/// reflector's long options so the CLI documentation applies unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReflectorSettings {
    pub interface: String,
    /// Network namespace the interface lives in; the worker is started inside it.
    pub netns: Option<String>,
    pub mode: Mode,
    pub port: u16,
    pub oui: Option<String>,
    pub no_oui_filter: bool,
    pub dst_mac: Option<String>,
    pub signatures: Vec<String>,
    pub no_ipv6: bool,
    pub no_vlan: bool,
    pub queues: Option<u32>,
    pub zero_copy: ZeroCopy,
    pub xdp_mode: XdpMode,
    pub busy_poll: bool,
    /// UDP port of the STAMP (RFC 8762) session-reflector.
    pub stamp_port: u16,
    pub stamp_mode: StampMode,
    /// Streams tracked per worker (per-stream statistics); 0 turns tracking off.
    pub max_streams: usize,
    /// A stream idle this many seconds is forgotten.
    pub stream_idle_s: u64,
    /// Source prefixes that are answered (CIDR, IPv4 or IPv6); empty answers any source.
    pub allow: Vec<String>,
    /// Frames per second reflected per source IP; `None` is no limit.
    pub rate_limit_pps: Option<u64>,
    /// Frames a source may send back-to-back above `rate_limit_pps` (worker default 64).
    pub rate_burst: Option<u32>,
    /// Stop reflecting this many seconds after a start; `None` reflects until stopped.
    pub loop_timeout_s: Option<u64>,
    /// Start the worker as soon as it is added (or the config is loaded).
    pub autostart: bool,
}

impl Default for ReflectorSettings {
    fn default() -> Self {
        ReflectorSettings {
            interface: String::new(),
            netns: None,
            mode: Mode::All,
            port: dataplane::filter::DEFAULT_UDP_PORT,
            oui: None,
            no_oui_filter: false,
            dst_mac: None,
            signatures: Vec::new(),
            no_ipv6: false,
            no_vlan: false,
            queues: None,
            zero_copy: ZeroCopy::Auto,
            xdp_mode: XdpMode::Auto,
            busy_poll: false,
            stamp_port: dataplane::filter::DEFAULT_STAMP_PORT,
            stamp_mode: StampMode::Stateless,
            max_streams: dataplane::streams::StreamLimits::default().capacity,
            stream_idle_s: dataplane::streams::StreamLimits::default()
                .idle_timeout
                .as_secs(),
            allow: Vec::new(),
            rate_limit_pps: None,
            rate_burst: None,
            loop_timeout_s: None,
            autostart: true,
        }
    }
}

impl ReflectorSettings {
    /// The reflector's id in the API: the interface, qualified by its namespace if any.
    pub fn id(&self) -> String {
        match &self.netns {
            Some(ns) => format!("{ns}:{}", self.interface),
            None => self.interface.clone(),
        }
    }

    /// The worker's arguments after the program name.
    pub fn worker_args(&self) -> Vec<String> {
        self.worker_args_with_loop_timeout(self.loop_timeout_s.map(Duration::from_secs))
    }

    /// The worker's arguments, with `loop_timeout` in place of `loop_timeout_s`: a
    /// worker restarted within a session gets only what is left of the session's time.
    pub fn worker_args_with_loop_timeout(&self, loop_timeout: Option<Duration>) -> Vec<String> {
        let mut args = vec![
            self.interface.clone(),
            "--json".into(),
            "--stats-interval".into(),
            STATS_INTERVAL_S.into(),
            "--mode".into(),
            self.mode.to_string(),
            "--port".into(),
            self.port.to_string(),
        ];
        let mut flag = |name: &str, value: Option<String>| {
            args.push(format!("--{name}"));
            args.extend(value);
        };
        if let Some(oui) = &self.oui {
            flag("oui", Some(oui.clone()));
        }
        if self.no_oui_filter {
            flag("no-oui-filter", None);
        }
        if let Some(mac) = &self.dst_mac {
            flag("dst-mac", Some(mac.clone()));
        }
        if !self.signatures.is_empty() {
            flag("signatures", Some(self.signatures.join(",")));
        }
        if self.no_ipv6 {
            flag("no-ipv6", None);
        }
        if self.no_vlan {
            flag("no-vlan", None);
        }
        if let Some(queues) = self.queues {
            flag("queues", Some(queues.to_string()));
        }
        flag(
            "zero-copy",
            Some(format!("{:?}", self.zero_copy).to_lowercase()),
        );
        flag(
            "xdp-mode",
            Some(format!("{:?}", self.xdp_mode).to_lowercase()),
        );
        if self.busy_poll {
            flag("busy-poll", None);
        }
        // Always given, so the settings shown are what the worker runs with even if
        // the reflector's own defaults change.
        flag("stamp-port", Some(self.stamp_port.to_string()));
        flag("stamp-mode", Some(self.stamp_mode.to_string()));
        flag("max-streams", Some(self.max_streams.to_string()));
        flag("stream-idle", Some(self.stream_idle_s.to_string()));
        if !self.allow.is_empty() {
            flag("allow", Some(self.allow.join(",")));
        }
        if let Some(pps) = self.rate_limit_pps {
            flag("rate-limit", Some(pps.to_string()));
            if let Some(burst) = self.rate_burst {
                flag("rate-burst", Some(burst.to_string()));
            }
        }
        if let Some(timeout) = loop_timeout {
            // Millisecond precision is plenty; the worker parses fractional seconds.
            flag(
                "loop-timeout",
                Some(format!("{:.3}", timeout.as_secs_f64())),
            );
        }
        args
    }

    /// Check names and run the worker's own parser over the arguments.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("interface", &self.interface, 15)?;
        if let Some(ns) = &self.netns {
            check_name("netns", ns, 64)?;
        }
        if self.queues == Some(0) {
            return Err(ConfigError::Invalid(
                "queues must be at least 1 (omit it to serve every queue)".into(),
            ));
        }
        self.check_streams_and_safety()?;
        let argv = std::iter::once("reflector".to_owned()).chain(self.worker_args());
        let cli = reflector::cli::Cli::try_parse_from(argv)
            .map_err(|e| ConfigError::Invalid(clap_message(&e)))?;
        // Checks that need the parsed signatures, in the settings' own terms.
        let stamp_on = cli.reflect.filter.signatures.is_empty()
            || cli
                .reflect
                .filter
                .signatures
                .contains(&dataplane::Signature::Stamp);
        if stamp_on && self.stamp_port == 0 {
            return invalid(
                "stamp_port 0 is not a port: give the port STAMP session-senders use \
                 (RFC 8762: 862), or leave STAMP out of signatures",
            );
        }
        if stamp_on && self.stamp_port == self.port {
            return invalid(format!(
                "stamp_port {} is also the test-frame port: test frames to it would be \
                 taken for STAMP packets; give port and stamp_port different values",
                self.stamp_port
            ));
        }
        // The worker's own checks last, so nothing it would refuse gets this far:
        // worker_config catches what clap cannot (a group address as --dst-mac...).
        cli.reflect
            .worker_config(None)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// The STAMP, stream and safety settings, each with a message naming the setting.
    fn check_streams_and_safety(&self) -> Result<(), ConfigError> {
        if self.max_streams > MAX_STREAMS {
            return invalid(format!(
                "max_streams {} is more than {MAX_STREAMS}: each worker reserves memory \
                 for all of them up front",
                self.max_streams
            ));
        }
        if self.stamp_mode == StampMode::Stateful && self.max_streams == 0 {
            return invalid(
                "stamp_mode stateful counts packets per stream: it needs max_streams \
                 above 0",
            );
        }
        check_seconds("stream_idle_s", self.stream_idle_s)?;
        if let Some(timeout) = self.loop_timeout_s {
            check_loop_timeout(timeout)?;
        }
        match (self.rate_limit_pps, self.rate_burst) {
            (Some(0), _) => {
                return invalid(
                    "rate_limit_pps 0 would drop everything: give frames per second per \
                     source IP, or omit it for no limit",
                )
            }
            (Some(pps), _) if pps > MAX_RATE_LIMIT_PPS => {
                return invalid(format!(
                    "rate_limit_pps {pps} is more than {MAX_RATE_LIMIT_PPS}, which \
                     would be no limit: omit it instead"
                ))
            }
            (None, Some(_)) => {
                return invalid(
                    "rate_burst only applies with rate_limit_pps: set rate_limit_pps \
                     too, or remove rate_burst",
                )
            }
            (Some(_), Some(0)) => {
                return invalid(
                    "rate_burst 0 would drop everything: use at least 1 (or omit it for \
                     the default of 64)",
                )
            }
            _ => {}
        }
        if self.allow.len() > MAX_ALLOW_PREFIXES {
            return invalid(format!(
                "allow lists {} prefixes; at most {MAX_ALLOW_PREFIXES} are supported \
                 (use wider prefixes)",
                self.allow.len()
            ));
        }
        for (index, prefix) in self.allow.iter().enumerate() {
            parse_prefix(prefix)
                .map_err(|why| ConfigError::Invalid(format!("allow[{index}]: {prefix:?} {why}")))?;
        }
        Ok(())
    }
}

/// A loop timeout, from the settings or a `start` request.
pub fn check_loop_timeout(seconds: u64) -> Result<(), ConfigError> {
    if seconds == 0 {
        return invalid(
            "loop_timeout_s 0 would never reflect: give the seconds to reflect for, or \
             omit it to reflect until stopped",
        );
    }
    check_seconds("loop_timeout_s", seconds)
}

fn invalid(message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid(message.into()))
}

fn check_seconds(what: &str, seconds: u64) -> Result<(), ConfigError> {
    if seconds == 0 || seconds > MAX_SECONDS {
        return invalid(format!(
            "{what} {seconds} is out of range: use 1 up to {MAX_SECONDS} seconds (a year)"
        ));
    }
    Ok(())
}

/// One `allow` entry: a CIDR prefix such as `192.0.2.0/24` or `2001:db8::/32`. Says
/// what is wrong in words that complete "allow[i]: \"...\" ".
fn parse_prefix(text: &str) -> Result<IpNet, String> {
    if text.contains(',') {
        return Err("holds several prefixes: give each as its own list item".into());
    }
    if text.is_empty() {
        return Err("is empty: give a prefix like 192.0.2.0/24".into());
    }
    if text.trim() != text {
        return Err("has spaces around it: remove them".into());
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Err(format!(
            "has no prefix length: write {ip}/{bits} for this address alone"
        ));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| "is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32".to_owned())?;
    if net.trunc() != net {
        return Err(format!(
            "has bits set after the prefix length: did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Interface and namespace names end up in paths and command lines: keep them plain.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), ConfigError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if name.is_empty() {
        return Err(ConfigError::Invalid(format!("{what} is required")));
    }
    if name.len() > max || !name.chars().all(plain) || name == "." || name == ".." {
        return Err(ConfigError::Invalid(format!(
            "{what} {name:?} is not a valid name: use at most {max} letters, digits or -_.@"
        )));
    }
    Ok(())
}

/// clap's first error line without its "error: " prefix; the usage block that follows
/// is about the worker's command line, which API users never type.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    pub reflector: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub reflectors: Vec<ReflectorSettings>,
}

/// The file as written: `[defaults]` holds settings every `[interfaces.NAME]` table
/// inherits, so a rig with many ports states the common part once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<SocketAddr>,
    token: Option<String>,
    reflector: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    interfaces: toml::Table,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if file.defaults.contains_key("interface") {
            return Err("[defaults] cannot name an interface; use [interfaces.NAME]".into());
        }
        let mut reflectors = Vec::new();
        for (name, value) in file.interfaces {
            let toml::Value::Table(table) = value else {
                return Err(format!("interfaces.{name} must be a table"));
            };
            if table.contains_key("interface") {
                return Err(format!(
                    "interfaces.{name}: the table name is the interface; remove `interface`"
                ));
            }
            let mut merged = file.defaults.clone();
            merged.extend(table);
            merged.insert("interface".into(), toml::Value::String(name.clone()));
            let settings: ReflectorSettings = toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| format!("interfaces.{name}: {}", e.message()))?;
            settings
                .validate()
                .map_err(|e| format!("interfaces.{name}: {e}"))?;
            reflectors.push(settings);
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = reflectors
            .iter()
            .map(ReflectorSettings::id)
            .find(|id| !seen.insert(id.clone()))
        {
            return Err(format!("{dup} is configured twice"));
        }
        Ok(Config {
            listen: file.listen,
            token: file.token,
            reflector: file.reflector,
            state_dir: file.state_dir,
            reflectors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(interface: &str) -> ReflectorSettings {
        ReflectorSettings {
            interface: interface.into(),
            ..ReflectorSettings::default()
        }
    }

    #[test]
    fn worker_args_carry_every_flag_and_parse_as_the_worker_would() {
        let s = ReflectorSettings {
            mode: Mode::MacIp,
            port: 0,
            oui: Some("00:1b:21".into()),
            dst_mac: Some("02:00:00:00:00:09".into()),
            signatures: vec!["RFC2544".into(), "Y.1564".into()],
            no_ipv6: true,
            no_vlan: true,
            queues: Some(2),
            zero_copy: ZeroCopy::Off,
            xdp_mode: XdpMode::Generic,
            busy_poll: true,
            stamp_port: 8620,
            stamp_mode: StampMode::Stateful,
            max_streams: 64,
            stream_idle_s: 30,
            allow: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
            rate_limit_pps: Some(1000),
            rate_burst: Some(8),
            loop_timeout_s: Some(600),
            ..settings("eth1")
        };
        s.validate().unwrap();
        let argv = std::iter::once("reflector".to_owned()).chain(s.worker_args());
        let cli = reflector::cli::Cli::try_parse_from(argv).unwrap();
        assert_eq!(cli.reflect.interface.as_deref(), Some("eth1"));
        assert_eq!(cli.reflect.filter.mode, dataplane::Mode::MacIp);
        assert_eq!(cli.reflect.filter.port, 0);
        assert_eq!(cli.reflect.filter.oui, Some([0x00, 0x1b, 0x21]));
        assert_eq!(cli.reflect.filter.signatures.len(), 2);
        assert!(cli.reflect.filter.no_ipv6 && cli.reflect.filter.no_vlan);
        assert_eq!(cli.reflect.live.queues, Some(2));
        assert_eq!(cli.reflect.live.zero_copy, reflector::cli::Toggle::Off);
        assert_eq!(
            cli.reflect.live.xdp_mode,
            reflector::cli::XdpAttach::Generic
        );
        assert!(cli.reflect.live.busy_poll);
        let config = cli.reflect.worker_config(None).unwrap();
        assert_eq!(config.filter.stamp_port, 8620);
        assert_eq!(config.stamp.mode, StampMode::Stateful);
        assert_eq!(config.streams.capacity, 64);
        assert_eq!(config.streams.idle_timeout, Duration::from_secs(30));
        assert_eq!(
            config.safety.allow,
            vec![
                "192.0.2.0/24".parse::<IpNet>().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ]
        );
        let limit = config.safety.rate_limit.unwrap();
        assert_eq!((limit.per_source_pps, limit.burst), (1000, 8));
        assert_eq!(config.safety.loop_timeout, Some(Duration::from_secs(600)));
        assert!(cli.reflect.output.json);
        assert_eq!(
            cli.reflect.output.stats_interval,
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn defaults_are_the_reflectors_own() {
        let s = settings("eth0");
        s.validate().unwrap();
        let args = s.worker_args();
        for absent in ["--allow", "--rate-limit", "--rate-burst", "--loop-timeout"] {
            assert!(!args.iter().any(|a| a == absent), "{args:?}");
        }
        let argv = std::iter::once("reflector".to_owned()).chain(args);
        let ours = reflector::cli::Cli::try_parse_from(argv).unwrap();
        let theirs = reflector::cli::Cli::try_parse_from(["reflector", "eth0"]).unwrap();
        let (ours, theirs) = (
            ours.reflect.worker_config(None).unwrap(),
            theirs.reflect.worker_config(None).unwrap(),
        );
        assert_eq!(ours.stamp.mode, theirs.stamp.mode);
        assert_eq!(ours.filter.stamp_port, theirs.filter.stamp_port);
        assert_eq!(ours.streams, theirs.streams);
        assert_eq!(ours.safety, theirs.safety);
    }

    #[test]
    fn a_rate_burst_goes_out_only_with_a_rate_limit_and_a_session_timeout_replaces_the_setting() {
        let s = ReflectorSettings {
            rate_limit_pps: Some(50),
            loop_timeout_s: Some(60),
            ..settings("eth0")
        };
        let args = s.worker_args().join(" ");
        assert!(
            args.contains("--rate-limit 50") && !args.contains("--rate-burst"),
            "{args}"
        );
        assert!(args.ends_with("--loop-timeout 60.000"), "{args}");
        let left = s
            .worker_args_with_loop_timeout(Some(Duration::from_millis(12_345)))
            .join(" ");
        assert!(left.ends_with("--loop-timeout 12.345"), "{left}");
    }

    #[test]
    fn stamp_stream_and_safety_settings_get_precise_messages() {
        let with = |change: fn(&mut ReflectorSettings)| {
            let mut s = settings("eth0");
            change(&mut s);
            s
        };
        let cases: Vec<(ReflectorSettings, &str)> = vec![
            (
                with(|s| s.stamp_port = 0),
                "stamp_port 0 is not a port: give the port STAMP session-senders use (RFC 8762: 862), or leave STAMP out of signatures",
            ),
            (
                with(|s| s.stamp_port = 3842),
                "stamp_port 3842 is also the test-frame port",
            ),
            (
                with(|s| {
                    s.stamp_mode = StampMode::Stateful;
                    s.max_streams = 0;
                }),
                "stamp_mode stateful counts packets per stream: it needs max_streams above 0",
            ),
            (
                with(|s| s.max_streams = 5_000_000),
                "max_streams 5000000 is more than 1000000",
            ),
            (
                with(|s| s.stream_idle_s = 0),
                "stream_idle_s 0 is out of range: use 1 up to 31536000 seconds (a year)",
            ),
            (
                with(|s| s.stream_idle_s = 40_000_000),
                "stream_idle_s 40000000 is out of range",
            ),
            (
                with(|s| s.loop_timeout_s = Some(0)),
                "loop_timeout_s 0 would never reflect",
            ),
            (
                with(|s| s.loop_timeout_s = Some(31_536_001)),
                "loop_timeout_s 31536001 is out of range",
            ),
            (
                with(|s| s.rate_limit_pps = Some(0)),
                "rate_limit_pps 0 would drop everything",
            ),
            (
                with(|s| s.rate_limit_pps = Some(2_000_000_000)),
                "rate_limit_pps 2000000000 is more than 1000000000",
            ),
            (
                with(|s| s.rate_burst = Some(10)),
                "rate_burst only applies with rate_limit_pps",
            ),
            (
                with(|s| {
                    s.rate_limit_pps = Some(10);
                    s.rate_burst = Some(0);
                }),
                "rate_burst 0 would drop everything",
            ),
            (
                with(|s| s.allow = vec!["192.0.2.0/24".into(), "10.0.0.0/33".into()]),
                "allow[1]: \"10.0.0.0/33\" is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32",
            ),
            (
                with(|s| s.allow = vec!["example.com".into()]),
                "allow[0]: \"example.com\" is not a CIDR prefix",
            ),
            (
                with(|s| s.allow = vec!["192.0.2.7".into()]),
                "allow[0]: \"192.0.2.7\" has no prefix length: write 192.0.2.7/32 for this address alone",
            ),
            (
                with(|s| s.allow = vec!["2001:db8::1".into()]),
                "write 2001:db8::1/128",
            ),
            (
                with(|s| s.allow = vec!["192.0.2.7/24".into()]),
                "allow[0]: \"192.0.2.7/24\" has bits set after the prefix length: did you mean 192.0.2.0/24?",
            ),
            (
                with(|s| s.allow = vec!["10.0.0.0/8,192.0.2.0/24".into()]),
                "holds several prefixes: give each as its own list item",
            ),
            (
                with(|s| s.allow = vec![String::new()]),
                "allow[0]: \"\" is empty",
            ),
            (
                with(|s| s.allow = vec![" 10.0.0.0/8".into()]),
                "has spaces around it",
            ),
            (
                with(|s| s.allow = vec!["10.0.0.0/8".into(); 257]),
                "allow lists 257 prefixes; at most 256",
            ),
        ];
        for (s, expected) in cases {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
            assert!(!err.contains("Usage") && !err.contains("--"), "{err}");
        }
        // Fine once STAMP is not reflected: the ports no longer matter.
        let no_stamp = ReflectorSettings {
            stamp_port: 3842,
            signatures: vec!["RFC2544".into()],
            ..settings("eth0")
        };
        no_stamp.validate().unwrap();
        let stamp_only = ReflectorSettings {
            stamp_port: 0,
            signatures: vec!["STAMP".into()],
            ..settings("eth0")
        };
        assert!(stamp_only
            .validate()
            .unwrap_err()
            .to_string()
            .contains("stamp_port 0"));
    }

    #[test]
    fn bad_settings_get_precise_messages() {
        let cases: [(ReflectorSettings, &str); 7] = [
            (settings(""), "interface is required"),
            (settings("eth0/../x"), "not a valid name"),
            (settings("averyveryverylongname"), "at most 15"),
            (
                ReflectorSettings {
                    oui: Some("00:c0".into()),
                    ..settings("eth0")
                },
                "not an OUI",
            ),
            (
                ReflectorSettings {
                    signatures: vec!["ping".into()],
                    ..settings("eth0")
                },
                "unknown signature",
            ),
            (
                ReflectorSettings {
                    dst_mac: Some("01:00:5e:00:00:01".into()),
                    ..settings("eth0")
                },
                "group address",
            ),
            (
                ReflectorSettings {
                    oui: Some("00:c0:17".into()),
                    no_oui_filter: true,
                    ..settings("eth0")
                },
                "cannot be used with",
            ),
        ];
        for (s, expected) in cases {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{s:?}: {err}");
            assert!(!err.contains("Usage"), "{err}");
        }
    }

    #[test]
    fn interfaces_inherit_defaults_and_override_them() {
        let config = Config::parse(
            r#"
            listen = "127.0.0.1:9090"
            token = "secret"
            reflector = "/opt/reflector"
            [defaults]
            mode = "mac"
            no_vlan = true
            [interfaces.eth0]
            [interfaces.eth1]
            mode = "all"
            port = 5000
            autostart = false
            "#,
        )
        .unwrap();
        assert_eq!(config.listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(config.token.as_deref(), Some("secret"));
        assert_eq!(config.reflector, Some(PathBuf::from("/opt/reflector")));
        let [eth0, eth1] = config.reflectors.as_slice() else {
            panic!("{:?}", config.reflectors)
        };
        assert_eq!(
            (
                eth0.interface.as_str(),
                eth0.mode,
                eth0.no_vlan,
                eth0.autostart
            ),
            ("eth0", Mode::Mac, true, true)
        );
        assert_eq!(
            (eth1.mode, eth1.port, eth1.no_vlan, eth1.autostart),
            (Mode::All, 5000, true, false)
        );
    }

    #[test]
    fn the_new_keys_read_from_a_file() {
        let config = Config::parse(
            r#"
            [defaults]
            allow = ["192.0.2.0/24"]
            rate_limit_pps = 1000
            [interfaces.eth0]
            stamp_port = 8620
            stamp_mode = "stateful"
            max_streams = 4096
            stream_idle_s = 60
            rate_burst = 16
            loop_timeout_s = 3600
            "#,
        )
        .unwrap();
        let eth0 = &config.reflectors[0];
        assert_eq!(eth0.stamp_port, 8620);
        assert_eq!(eth0.stamp_mode, StampMode::Stateful);
        assert_eq!((eth0.max_streams, eth0.stream_idle_s), (4096, 60));
        assert_eq!(eth0.allow, ["192.0.2.0/24"]);
        assert_eq!(
            (eth0.rate_limit_pps, eth0.rate_burst),
            (Some(1000), Some(16))
        );
        assert_eq!(eth0.loop_timeout_s, Some(3600));
        let cases = [
            (
                "[interfaces.eth0]\nstamp_mode = \"sometimes\"",
                "interfaces.eth0: unknown variant `sometimes`, expected `stateless` or `stateful`",
            ),
            (
                "[interfaces.eth0]\nallow = [\"10.0.0.0/40\"]",
                "interfaces.eth0: allow[0]: \"10.0.0.0/40\" is not a CIDR prefix",
            ),
            (
                "[interfaces.eth0]\nrate_burst = 5",
                "interfaces.eth0: rate_burst only applies with rate_limit_pps",
            ),
            (
                "[interfaces.eth0]\nloop_timeout_s = -1",
                "interfaces.eth0: invalid value: integer `-1`",
            ),
        ];
        for (text, expected) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn bad_files_name_the_problem() {
        let cases = [
            ("listen = 5", "invalid type"),
            ("colour = 1", "unknown field `colour`"),
            (
                "[interfaces.eth0]\nmode = \"ports\"",
                "interfaces.eth0: unknown variant `ports`",
            ),
            (
                "[interfaces.eth0]\nspeed = 1",
                "interfaces.eth0: unknown field `speed`",
            ),
            (
                "[interfaces.eth0]\ninterface = \"eth1\"",
                "remove `interface`",
            ),
            (
                "[defaults]\ninterface = \"eth1\"",
                "[defaults] cannot name an interface",
            ),
            (
                "[interfaces.eth0]\noui = \"zz:zz:zz\"",
                "interfaces.eth0: invalid value 'zz:zz:zz' for '--oui",
            ),
            ("interfaces = 3", "invalid type"),
        ];
        for (text, expected) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let config = Config::parse(include_str!("../../deploy/control.example.toml")).unwrap();
        let ids: Vec<String> = config
            .reflectors
            .iter()
            .map(ReflectorSettings::id)
            .collect();
        assert_eq!(ids, ["eth1", "eth2"]);
        assert!(!config.reflectors[1].autostart && config.reflectors[1].no_oui_filter);
    }

    #[test]
    fn namespaced_reflectors_get_qualified_ids() {
        let s = ReflectorSettings {
            netns: Some("lab-r".into()),
            ..settings("veth0")
        };
        assert_eq!(s.id(), "lab-r:veth0");
        assert_eq!(settings("eth0").id(), "eth0");
    }
}
