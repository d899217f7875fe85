//! The names of the settings: each is a command-line flag of the worker and a key of
//! the control plane's files and API. Messages and the worker's command line take the
//! names from here, so the two spellings cannot drift apart.

/// How a message names a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// As the worker's command-line flag: `--stamp-port`.
    Flag,
    /// As the key of the control plane's config file and API: `stamp_port`.
    Key,
}

/// One setting of [`crate::Settings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Mode,
    Port,
    Oui,
    NoOuiFilter,
    DstMac,
    Signatures,
    NoIpv6,
    NoVlan,
    StampPort,
    StampMode,
    MaxStreams,
    StreamIdle,
    Allow,
    RateLimit,
    RateBurst,
    LoopTimeout,
    Backend,
    Queues,
    ZeroCopy,
    XdpMode,
    BusyPoll,
    WakeLatency,
    XdpSend,
}

impl Field {
    pub const ALL: [Field; 23] = [
        Field::Mode,
        Field::Port,
        Field::Oui,
        Field::NoOuiFilter,
        Field::DstMac,
        Field::Signatures,
        Field::NoIpv6,
        Field::NoVlan,
        Field::StampPort,
        Field::StampMode,
        Field::MaxStreams,
        Field::StreamIdle,
        Field::Allow,
        Field::RateLimit,
        Field::RateBurst,
        Field::LoopTimeout,
        Field::Backend,
        Field::Queues,
        Field::ZeroCopy,
        Field::XdpMode,
        Field::BusyPoll,
        Field::WakeLatency,
        Field::XdpSend,
    ];

    /// The worker's flag, e.g. `--stream-idle`.
    pub const fn flag(self) -> &'static str {
        match self {
            Field::Mode => "--mode",
            Field::Port => "--port",
            Field::Oui => "--oui",
            Field::NoOuiFilter => "--no-oui-filter",
            Field::DstMac => "--dst-mac",
            Field::Signatures => "--signatures",
            Field::NoIpv6 => "--no-ipv6",
            Field::NoVlan => "--no-vlan",
            Field::StampPort => "--stamp-port",
            Field::StampMode => "--stamp-mode",
            Field::MaxStreams => "--max-streams",
            Field::StreamIdle => "--stream-idle",
            Field::Allow => "--allow",
            Field::RateLimit => "--rate-limit",
            Field::RateBurst => "--rate-burst",
            Field::LoopTimeout => "--loop-timeout",
            Field::Backend => "--backend",
            Field::Queues => "--queues",
            Field::ZeroCopy => "--zero-copy",
            Field::XdpMode => "--xdp-mode",
            Field::BusyPoll => "--busy-poll",
            Field::WakeLatency => "--wake-latency",
            Field::XdpSend => "--xdp-send",
        }
    }

    /// The settings key, e.g. `stream_idle_s`: the flag's name in snake case, with
    /// the unit appended where the key's value is a plain number of seconds or pps.
    pub const fn key(self) -> &'static str {
        match self {
            Field::Mode => "mode",
            Field::Port => "port",
            Field::Oui => "oui",
            Field::NoOuiFilter => "no_oui_filter",
            Field::DstMac => "dst_mac",
            Field::Signatures => "signatures",
            Field::NoIpv6 => "no_ipv6",
            Field::NoVlan => "no_vlan",
            Field::StampPort => "stamp_port",
            Field::StampMode => "stamp_mode",
            Field::MaxStreams => "max_streams",
            Field::StreamIdle => "stream_idle_s",
            Field::Allow => "allow",
            Field::RateLimit => "rate_limit_pps",
            Field::RateBurst => "rate_burst",
            Field::LoopTimeout => "loop_timeout_s",
            Field::Backend => "backend",
            Field::Queues => "queues",
            Field::ZeroCopy => "zero_copy",
            Field::XdpMode => "xdp_mode",
            Field::BusyPoll => "busy_poll",
            Field::WakeLatency => "wake_latency",
            Field::XdpSend => "xdp_send",
        }
    }

    pub const fn name(self, naming: Naming) -> &'static str {
        match naming {
            Naming::Flag => self.flag(),
            Naming::Key => self.key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_flags_in_snake_case_plus_units() {
        for field in Field::ALL {
            let snake = field.flag().trim_start_matches("--").replace('-', "_");
            let key = field.key();
            assert!(
                key == snake
                    || [format!("{snake}_s"), format!("{snake}_pps")].contains(&key.into()),
                "{field:?}: {key} for {}",
                field.flag()
            );
        }
        assert_eq!(Field::StreamIdle.name(Naming::Key), "stream_idle_s");
        assert_eq!(Field::StreamIdle.name(Naming::Flag), "--stream-idle");
    }
}
