//! Configuration: the TOML file and the per-reflector settings shared by the file,
//! the REST API and the worker command line.
//!
//! Settings are validated by the reflector's own command-line parser, so anything the
//! control plane accepts is something a worker will accept too, and the error text is
//! the one the worker would have printed.

use clap::Parser;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
        let argv = std::iter::once("reflector".to_owned()).chain(self.worker_args());
        let cli = reflector::cli::Cli::try_parse_from(argv)
            .map_err(|e| ConfigError::Invalid(clap_message(&e)))?;
        // to_filter catches what clap cannot: a group address as --dst-mac.
        cli.reflect
            .filter
            .to_filter(None)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }
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
        assert!(cli.reflect.output.json);
        assert_eq!(
            cli.reflect.output.stats_interval,
            std::time::Duration::from_secs(1)
        );
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
