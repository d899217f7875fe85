//! Configuration: the TOML file and the per-reflector settings, as the file and the
//! REST API write them.
//!
//! A [`ReflectorForm`] is what users write: plain strings and numbers, field names
//! the settings keys. [`ReflectorForm::validate`] reads it into [`ReflectorSettings`]
//! (the interface, its namespace and a typed [`Settings`]) and applies the same
//! [`Settings::validate`] the worker runs on its command line, with messages naming
//! the keys; anything the control plane accepts, a worker accepts too.

use serde::{Deserialize, Serialize};
use settings::{
    check_requested_loop_timeout, parse_prefix, Backend, Field, NamedSettingsError, Naming,
    Settings, WakeLatency, XdpMode, XdpSend, ZeroCopy,
};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

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
    #[error(transparent)]
    Settings(#[from] NamedSettingsError),
}

/// Which header fields a worker swaps: the dataplane's own type, so the names the
/// API and config accept are exactly the ones the worker parses.
pub use dataplane::Mode;

/// How the STAMP session-reflector numbers its answers: `stateless` or `stateful`.
pub use dataplane::StampMode;

/// One reflector worker, checked: its interface and everything it runs with.
/// Serialised as the [`ReflectorForm`] it reads from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "ReflectorForm")]
pub struct ReflectorSettings {
    pub interface: String,
    /// Network namespace the interface lives in; the worker is started inside it.
    pub netns: Option<String>,
    /// Start the worker as soon as it is added (or the config is loaded).
    pub autostart: bool,
    pub worker: Settings,
}

impl Default for ReflectorSettings {
    fn default() -> Self {
        ReflectorSettings {
            interface: String::new(),
            netns: None,
            autostart: true,
            worker: Settings::default(),
        }
    }
}

/// One reflector as the config file and the API write it. Field names are the
/// settings keys ([`Field::key`]: the reflector's long options, with units), so the
/// CLI documentation applies unchanged; absent fields take the worker's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Settings)]
pub struct ReflectorForm {
    pub interface: String,
    pub netns: Option<String>,
    pub mode: Mode,
    pub port: u16,
    pub oui: Option<String>,
    pub no_oui_filter: bool,
    pub dst_mac: Option<String>,
    pub signatures: Vec<String>,
    pub no_ipv6: bool,
    pub no_vlan: bool,
    pub backend: Backend,
    pub queues: Option<u32>,
    pub zero_copy: ZeroCopy,
    pub xdp_mode: XdpMode,
    pub busy_poll: bool,
    /// Hold a CPU latency request while frames flow (`on`, the default) or not (`off`).
    pub wake_latency: WakeLatency,
    /// In AF_XDP copy mode, send full batches through the XDP program (`on`, the
    /// default) or always through the socket (`off`).
    pub xdp_send: XdpSend,
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

impl Default for ReflectorForm {
    fn default() -> Self {
        ReflectorSettings::default().into()
    }
}

impl From<ReflectorSettings> for ReflectorForm {
    fn from(settings: ReflectorSettings) -> Self {
        let ReflectorSettings {
            interface,
            netns,
            autostart,
            worker: s,
        } = settings;
        ReflectorForm {
            interface,
            netns,
            mode: s.mode,
            port: s.port,
            oui: s.oui.map(|oui| oui.to_string()),
            no_oui_filter: s.no_oui_filter,
            dst_mac: s.dst_mac.map(|mac| mac.to_string()),
            signatures: strings(&s.signatures),
            no_ipv6: s.no_ipv6,
            no_vlan: s.no_vlan,
            backend: s.backend,
            queues: s.queues,
            zero_copy: s.zero_copy,
            xdp_mode: s.xdp_mode,
            busy_poll: s.busy_poll,
            wake_latency: s.wake_latency,
            xdp_send: s.xdp_send,
            stamp_port: s.stamp_port,
            stamp_mode: s.stamp_mode,
            max_streams: s.max_streams,
            // The form counts whole seconds; settings read from a form hold no more.
            stream_idle_s: s.stream_idle.as_secs(),
            allow: strings(&s.allow),
            rate_limit_pps: s.rate_limit,
            rate_burst: s.rate_burst,
            loop_timeout_s: s.loop_timeout.as_ref().map(Duration::as_secs),
            autostart,
        }
    }
}

impl ReflectorForm {
    /// The reflector's id in the API (see [`ReflectorSettings::id`]).
    pub fn id(&self) -> String {
        qualified_id(&self.interface, self.netns.as_deref())
    }

    /// Read and check every setting; messages name the keys.
    pub fn validate(self) -> Result<ReflectorSettings, ConfigError> {
        check_name("interface", &self.interface, 15)?;
        if let Some(ns) = &self.netns {
            check_name("netns", ns, 64)?;
        }
        if let Some(seconds) = self.loop_timeout_s {
            check_loop_timeout(seconds)?;
        }
        let worker = Settings {
            mode: self.mode,
            port: self.port,
            oui: self
                .oui
                .as_deref()
                .map(|oui| parse(Field::Oui, oui))
                .transpose()?,
            no_oui_filter: self.no_oui_filter,
            dst_mac: self
                .dst_mac
                .as_deref()
                .map(|mac| parse(Field::DstMac, mac))
                .transpose()?,
            signatures: parse_list(Field::Signatures, &self.signatures, str::parse)?,
            no_ipv6: self.no_ipv6,
            no_vlan: self.no_vlan,
            stamp_port: self.stamp_port,
            stamp_mode: self.stamp_mode,
            max_streams: self.max_streams,
            stream_idle: Duration::from_secs(self.stream_idle_s),
            allow: parse_list(Field::Allow, &self.allow, parse_prefix)?,
            rate_limit: self.rate_limit_pps,
            rate_burst: self.rate_burst,
            loop_timeout: self.loop_timeout_s.map(Duration::from_secs),
            backend: self.backend,
            queues: self.queues,
            zero_copy: self.zero_copy,
            xdp_mode: self.xdp_mode,
            busy_poll: self.busy_poll,
            wake_latency: self.wake_latency,
            xdp_send: self.xdp_send,
        };
        worker.validate().map_err(|e| e.named(Naming::Key))?;
        Ok(ReflectorSettings {
            interface: self.interface,
            netns: self.netns,
            autostart: self.autostart,
            worker,
        })
    }
}

impl ReflectorSettings {
    /// The reflector's id in the API: the interface, qualified by its namespace if any
    /// (`IFACE@NETNS`).
    pub fn id(&self) -> String {
        qualified_id(&self.interface, self.netns.as_deref())
    }

    /// The worker's arguments, with `loop_timeout` in place of the settings' own: a
    /// worker restarted within a session gets only what is left of the session's time.
    pub fn worker_args_with_loop_timeout(&self, loop_timeout: Option<Duration>) -> Vec<String> {
        Settings {
            loop_timeout,
            ..self.worker.clone()
        }
        .worker_args(&self.interface)
    }
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// `IFACE@NETNS`, or just `IFACE`: no character that needs escaping in a URL path
/// (names cannot contain `@`).
fn qualified_id(interface: &str, netns: Option<&str>) -> String {
    match netns {
        Some(ns) => format!("{interface}@{ns}"),
        None => interface.to_owned(),
    }
}

/// A reflector id as a request names it, in the current spelling: `NETNS:IFACE`, the
/// spelling ids had before they became colon-free, still names `IFACE@NETNS`.
pub fn canonical_id(id: &str) -> std::borrow::Cow<'_, str> {
    match id.split_once(':') {
        Some((ns, interface)) => qualified_id(interface, Some(ns)).into(),
        None => id.into(),
    }
}

/// One string setting, e.g. `oui: "00:c0" is not an OUI like 00:c0:17`.
fn parse<T>(field: Field, text: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse()
        .map_err(|e| ConfigError::Invalid(format!("{}: {e}", field.key())))
}

/// A list setting; an error names the entry, e.g. `allow[1]: ...`.
fn parse_list<T, E: Display>(
    field: Field,
    items: &[String],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, ConfigError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse(item).map_err(|e| ConfigError::Invalid(format!("{}[{index}]: {e}", field.key())))
        })
        .collect()
}

/// A loop timeout, from the settings or a `start` request.
pub fn check_loop_timeout(seconds: u64) -> Result<(), ConfigError> {
    check_requested_loop_timeout(Duration::from_secs(seconds))
        .map_err(|e| e.named(Naming::Key).into())
}

/// Interface and namespace names end up in paths and command lines: keep them plain.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), ConfigError> {
    // Not `@` or `:`, which separate the two in reflector ids.
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() {
        return Err(ConfigError::Invalid(format!("{what} is required")));
    }
    if name.len() > max || !name.chars().all(plain) || name == "." || name == ".." {
        return Err(ConfigError::Invalid(format!(
            "{what} {name:?} is not a valid name: use at most {max} letters, digits or -_."
        )));
    }
    Ok(())
}

/// A DNS name (no port, no scheme) a browser may use to reach the control plane.
fn check_host_name(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.len() > 253 || !trimmed.split('.').all(label_ok) {
        return Err(format!(
            "{name:?} is not a host name like rig1.example.net (no scheme, port or path; \
             IP addresses and localhost are always allowed)"
        ));
    }
    Ok(())
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    pub reflector: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Host names the dashboard and API answer to besides localhost and IP addresses
    /// (see [`crate::guard`]).
    pub allowed_hosts: Vec<String>,
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
    allowed_hosts: Vec<String>,
    #[serde(default)]
    defaults: toml::Table,
    /// Required: a file without it (an empty or truncated one above all) would stop
    /// every reflector on reload. `interfaces = {}` says that none is meant.
    interfaces: Option<toml::Table>,
}

/// How a file says on purpose that it configures no interface.
pub const NO_INTERFACES: &str = "interfaces = {}";

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
        if text.trim().is_empty() {
            return Err(format!(
                "the file is empty (truncated?), which would stop every reflector; \
                 to run with no interfaces on purpose, write `{NO_INTERFACES}`"
            ));
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if file.defaults.contains_key("interface") {
            return Err("[defaults] cannot name an interface; use [interfaces.NAME]".into());
        }
        let Some(interfaces) = file.interfaces else {
            return Err(format!(
                "the file names no interfaces ([interfaces.NAME] tables), which would stop \
                 every reflector; to run with none on purpose, write `{NO_INTERFACES}`"
            ));
        };
        for (index, name) in file.allowed_hosts.iter().enumerate() {
            check_host_name(name).map_err(|e| format!("allowed_hosts[{index}]: {e}"))?;
        }
        let mut reflectors = Vec::new();
        for (name, value) in interfaces {
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
            let form: ReflectorForm = toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| format!("interfaces.{name}: {}", e.message()))?;
            let settings = form
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
            allowed_hosts: file.allowed_hosts,
            reflectors,
        })
    }
}

#[cfg(test)]
mod tests;
