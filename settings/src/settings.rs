//! [`Settings`]: one reflector's configuration, its checks and the dataplane
//! configuration it becomes.

use crate::choice::{Backend, LiveBackend, WakeLatency, XdpMode, XdpSend, ZeroCopy};
use crate::error::SettingsError;
use crate::field::{Field, Naming};
use crate::limits::{
    DEFAULT_RATE_BURST, MAX_ALLOW_PREFIXES, MAX_RATE_LIMIT_PPS, MAX_SECONDS, MAX_STREAMS,
};
use dataplane::filter::{
    Broadcasts, DstMacFilter, DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT, NETALLY_OUI,
};
use dataplane::safety::{RateLimit, Safety};
use dataplane::streams::StreamLimits;
use dataplane::worker::StampConfig;
use dataplane::{Filter, MacAddr, Mode, Oui, Signature, SignatureSet, StampMode, WorkerConfig};
use ipnet::IpNet;
use std::time::Duration;

/// Everything that decides what one reflector reflects and how it drives its
/// interface. Field names are the worker's long options ([`Field`] has both names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    // What is reflected and how.
    /// Fields to swap.
    pub mode: Mode,
    /// UDP destination port of test frames; 0 accepts any port.
    pub port: u16,
    /// Source-MAC vendor filter; `None` is NetAlly's unless `no_oui_filter`.
    pub oui: Option<Oui>,
    pub no_oui_filter: bool,
    /// `None`: the interface's own MAC (any unicast MAC when reading a capture).
    pub dst_mac: Option<MacAddr>,
    /// Signatures reflected; empty reflects all of them.
    pub signatures: Vec<Signature>,
    pub no_ipv6: bool,
    pub no_vlan: bool,

    // The STAMP session-reflector and per-stream statistics.
    pub stamp_port: u16,
    pub stamp_mode: StampMode,
    /// Streams tracked per worker; 0 turns tracking off.
    pub max_streams: usize,
    /// A stream idle this long is forgotten.
    pub stream_idle: Duration,

    // Safety: whom and how much the reflector answers.
    /// Source prefixes answered; empty answers every source.
    pub allow: Vec<IpNet>,
    /// Frames per second reflected per source IP.
    pub rate_limit: Option<u64>,
    /// Back-to-back frames above `rate_limit` ([`DEFAULT_RATE_BURST`] if `None`).
    pub rate_burst: Option<u32>,
    /// Stop reflecting this long after the worker starts; zero starts a worker whose
    /// time is already up (a session that ran out, see [`check_requested_loop_timeout`]).
    pub loop_timeout: Option<Duration>,

    // The live interface (ignored when reading a capture).
    pub backend: Backend,
    /// RX queues served, one worker each; `None` serves all.
    pub queues: Option<u32>,
    pub zero_copy: ZeroCopy,
    pub xdp_mode: XdpMode,
    pub busy_poll: bool,
    pub wake_latency: WakeLatency,
    pub xdp_send: XdpSend,
}

impl Default for Settings {
    fn default() -> Self {
        let streams = StreamLimits::default();
        Settings {
            mode: Mode::All,
            port: DEFAULT_UDP_PORT,
            oui: None,
            no_oui_filter: false,
            dst_mac: None,
            signatures: Vec::new(),
            no_ipv6: false,
            no_vlan: false,
            stamp_port: DEFAULT_STAMP_PORT,
            stamp_mode: StampMode::Stateless,
            max_streams: streams.capacity,
            stream_idle: streams.idle_timeout,
            allow: Vec::new(),
            rate_limit: None,
            rate_burst: None,
            loop_timeout: None,
            backend: Backend::default(),
            queues: None,
            zero_copy: ZeroCopy::default(),
            xdp_mode: XdpMode::default(),
            busy_poll: false,
            wake_latency: WakeLatency::default(),
            xdp_send: XdpSend::default(),
        }
    }
}

impl Settings {
    /// Every rule across settings, for the worker's command line and the control
    /// plane alike: anything one accepts, the other does too.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.queues == Some(0) {
            return Err(SettingsError::QueuesZero);
        }
        if self.oui.is_some() && self.no_oui_filter {
            return Err(SettingsError::OuiWithNoOuiFilter);
        }
        if let Some(mac) = self.dst_mac.filter(MacAddr::is_group) {
            return Err(SettingsError::GroupDstMac(mac));
        }
        self.check_streams()?;
        self.check_safety()?;
        self.check_stamp()?;
        self.check_backend()
    }

    /// The first enabled feature that needs the worker in user space, which the
    /// in-kernel back end (`xdp-tx`) cannot run: per-stream tracking (and with it
    /// stateful STAMP, which needs it, and the per-stream table). STAMP itself is no
    /// obstacle (`xdp-tx` hands it to an AF_XDP worker), nor is the policy: the XDP
    /// program runs the allow-list, the rate limit and the loop timeout itself.
    pub fn needs_user_space(&self) -> Option<Field> {
        (self.max_streams > 0).then_some(Field::MaxStreams)
    }

    /// The back end a live Linux reflector runs, and why when `auto` chose it, worded
    /// for the worker's first line.
    pub fn backend_choice(&self) -> (LiveBackend, Option<String>) {
        match (self.backend, self.needs_user_space()) {
            (Backend::Xdp, _) => (LiveBackend::AfXdp, None),
            (Backend::XdpTx, _) => (LiveBackend::XdpTx, None),
            (Backend::AfPacket, _) => (LiveBackend::AfPacket, None),
            (Backend::Auto, None) => (
                LiveBackend::XdpTx,
                Some("auto: every enabled feature runs in the kernel".to_owned()),
            ),
            (Backend::Auto, Some(field)) => (
                LiveBackend::AfXdp,
                Some(format!(
                    "auto: {} needs user space; {} for in-kernel",
                    user_space_feature(field),
                    in_kernel_fix(field, Naming::Flag)
                )),
            ),
        }
    }

    fn check_backend(&self) -> Result<(), SettingsError> {
        match (self.backend, self.needs_user_space()) {
            (Backend::XdpTx, Some(field)) => Err(SettingsError::NeedsUserSpace(field)),
            _ => Ok(()),
        }
    }

    /// The signatures reflected.
    pub fn signature_set(&self) -> SignatureSet {
        if self.signatures.is_empty() {
            SignatureSet::ALL
        } else {
            self.signatures.iter().copied().collect()
        }
    }

    fn check_stamp(&self) -> Result<(), SettingsError> {
        if !self.signature_set().contains(Signature::Stamp) {
            // Without STAMP its port is never looked at.
            return Ok(());
        }
        match self.stamp_port {
            0 => Err(SettingsError::StampPortZero),
            port if port == self.port => Err(SettingsError::StampPortIsTestPort(port)),
            _ => Ok(()),
        }
    }

    fn check_streams(&self) -> Result<(), SettingsError> {
        if self.max_streams > MAX_STREAMS {
            return Err(SettingsError::TooManyStreams(self.max_streams));
        }
        if self.stamp_mode == StampMode::Stateful && self.max_streams == 0 {
            return Err(SettingsError::StatefulWithoutStreams);
        }
        if self.stream_idle.is_zero() {
            return Err(SettingsError::StreamIdleZero);
        }
        check_at_most_a_year(Field::StreamIdle, self.stream_idle)
    }

    fn check_safety(&self) -> Result<(), SettingsError> {
        if let Some(timeout) = self.loop_timeout {
            check_at_most_a_year(Field::LoopTimeout, timeout)?;
        }
        match (self.rate_limit, self.rate_burst) {
            (Some(0), _) => return Err(SettingsError::RateLimitZero),
            (Some(pps), _) if pps > MAX_RATE_LIMIT_PPS => {
                return Err(SettingsError::RateLimitTooHigh(pps))
            }
            (None, Some(_)) => return Err(SettingsError::RateBurstWithoutRateLimit),
            (Some(_), Some(0)) => return Err(SettingsError::RateBurstZero),
            _ => {}
        }
        if self.allow.len() > MAX_ALLOW_PREFIXES {
            return Err(SettingsError::TooManyPrefixes(self.allow.len()));
        }
        match self.allow.iter().position(|net| net.trunc() != *net) {
            Some(index) => Err(SettingsError::PrefixHostBits {
                index,
                prefix: self.allow[index],
            }),
            None => Ok(()),
        }
    }

    /// What a worker runs with, once the settings are valid. `interface_mac` is the
    /// default destination MAC; without it (reading a capture) any unicast MAC is.
    pub fn worker_config(
        &self,
        interface_mac: Option<MacAddr>,
    ) -> Result<WorkerConfig, SettingsError> {
        self.validate()?;
        let dst_mac = match self.dst_mac.or(interface_mac) {
            Some(mac) => DstMacFilter::Exact(mac),
            None => DstMacFilter::AnyUnicast,
        };
        let src_oui = match self.no_oui_filter {
            true => None,
            false => Some(self.oui.unwrap_or(NETALLY_OUI)),
        };
        Ok(WorkerConfig {
            filter: Filter {
                dst_mac,
                src_oui,
                udp_port: self.port,
                stamp_port: self.stamp_port,
                signatures: self.signature_set(),
                ipv6: !self.no_ipv6,
                vlan: !self.no_vlan,
                // Learned from the interface by the live runners.
                broadcasts: Broadcasts::NONE,
            },
            mode: self.mode,
            stamp: StampConfig {
                mode: self.stamp_mode,
                ..StampConfig::default()
            },
            streams: StreamLimits {
                capacity: self.max_streams,
                idle_timeout: self.stream_idle,
            },
            safety: Safety {
                allow: self.allow.clone(),
                rate_limit: self.rate_limit.map(|pps| RateLimit {
                    per_source_pps: pps,
                    burst: self.rate_burst.unwrap_or(DEFAULT_RATE_BURST),
                }),
                loop_timeout: self.loop_timeout,
            },
        })
    }
}

/// What a [`Settings::needs_user_space`] field turns on, for messages.
pub(crate) fn user_space_feature(field: Field) -> &'static str {
    match field {
        Field::MaxStreams => "stream tracking",
        _ => "this setting",
    }
}

/// How to turn a [`Settings::needs_user_space`] feature off.
pub(crate) fn in_kernel_fix(field: Field, naming: Naming) -> String {
    format!("{} 0", field.name(naming))
}

/// A loop timeout a user asks for (a setting of the control plane, or a session's):
/// unlike one the control plane hands a restarted worker, it must leave time to reflect.
pub fn check_requested_loop_timeout(timeout: Duration) -> Result<(), SettingsError> {
    if timeout.is_zero() {
        return Err(SettingsError::LoopTimeoutZero);
    }
    check_at_most_a_year(Field::LoopTimeout, timeout)
}

fn check_at_most_a_year(field: Field, seconds: Duration) -> Result<(), SettingsError> {
    if seconds > Duration::from_secs(MAX_SECONDS) {
        return Err(SettingsError::SecondsOutOfRange { field, seconds });
    }
    Ok(())
}
