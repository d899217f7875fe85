//! How a live interface is driven: the packet back end, AF_XDP zero-copy, the XDP
//! attach mode, the CPU latency request while frames flow and sending through the XDP
//! program. Each choice has one spelling everywhere: the command line, the settings
//! files and API, and `Display`.

use serde::{Deserialize, Serialize};

/// A name that is none of a choice's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}: expected {}", expected(.names))]
pub struct UnknownChoice {
    /// What was being chosen, e.g. "XDP mode".
    pub what: &'static str,
    pub given: String,
    /// Every accepted name.
    pub names: &'static [&'static str],
}

/// `a, b or c`.
fn expected(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// A choice: one name per variant, in kebab case, for serde, clap (with the `clap`
/// feature), `Display` and `FromStr` alike.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) { $($(#[$variant_meta:meta])* $variant:ident,)+ }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            Default,
            PartialEq,
            Eq,
            Hash,
            Serialize,
            Deserialize,
            strum::Display,
            strum::EnumString,
            strum::IntoStaticStr,
            strum::VariantArray,
            strum::VariantNames,
        )]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "kebab-case")]
        #[strum(
            serialize_all = "kebab-case",
            parse_err_ty = UnknownChoice,
            parse_err_fn = $name::unknown
        )]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = <$name as strum::VariantArray>::VARIANTS;

            pub fn name(self) -> &'static str {
                self.into()
            }

            fn unknown(given: &str) -> UnknownChoice {
                UnknownChoice {
                    what: $what,
                    given: given.to_owned(),
                    names: <$name as strum::VariantNames>::VARIANTS,
                }
            }
        }
    };
}

choice! {
    /// Packet I/O on Linux: `xdp` is AF_XDP behind the XDP filter (also spelt `af-xdp`);
    /// `xdp-tx` reflects in the XDP program itself, with STAMP still answered through
    /// AF_XDP; `auto` runs `xdp-tx` when every enabled feature runs in the kernel
    /// ([`crate::Settings::backend_choice`]) and `xdp` otherwise; `af-packet` is plain
    /// AF_PACKET (slower; for comparison, and for kernels without AF_XDP).
    Backend("back end") {
        #[default]
        Auto,
        #[serde(alias = "af-xdp")]
        #[strum(to_string = "xdp", serialize = "af-xdp")]
        #[cfg_attr(feature = "clap", value(alias = "af-xdp"))]
        Xdp,
        XdpTx,
        AfPacket,
    }
}

/// The back end that runs on Linux: a [`Backend`] with `auto` decided
/// ([`crate::Settings::backend_choice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveBackend {
    AfXdp,
    XdpTx,
    AfPacket,
}

impl LiveBackend {
    /// Its name in the `started` event's `PlatformInfo::backend` and the first line.
    pub fn name(self) -> &'static str {
        match self {
            LiveBackend::AfXdp => "af_xdp",
            LiveBackend::XdpTx => "xdp_tx",
            LiveBackend::AfPacket => "af_packet",
        }
    }
}

choice! {
    /// AF_XDP zero-copy: `auto` tries it and falls back to copy mode.
    ZeroCopy("zero-copy setting") {
        #[default]
        Auto,
        On,
        Off,
    }
}

choice! {
    /// Whether a worker that sleeps between frames holds a CPU latency request while
    /// frames flow (`/dev/cpu_dma_latency` at 0 µs, dropped a second after the last
    /// frame), so idle CPUs wake at once for the next frame; `off` lets them sleep
    /// deeply, at the price of wake-up delays at low rates. AF_XDP workers that busy-poll
    /// never sleep and never hold it.
    WakeLatency("wake-latency setting") {
        #[default]
        On,
        Off,
    }
}

choice! {
    /// Whether an AF_XDP socket in copy mode (no zero-copy: veth, and drivers without
    /// AF_XDP zero-copy) sends batches of 32 frames or more as XDP frames through the
    /// XDP program rather than through the socket, which builds an skb per frame.
    /// Smaller batches, frames over 2044 bytes and multi-buffer frames still go
    /// through the socket, and so does everything once the device refuses XDP frames
    /// (a veth whose peer runs no XDP program and has GRO off). Zero-copy sockets and
    /// AF_PACKET always use the socket; `off`: always the socket.
    XdpSend("xdp-send setting") {
        #[default]
        On,
        Off,
    }
}

choice! {
    /// XDP attach mode: `auto` tries native (driver) first and falls back to generic.
    XdpMode("XDP mode") {
        #[default]
        Auto,
        Native,
        Generic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;
    use std::str::FromStr;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Display + FromStr<Err = UnknownChoice> + PartialEq + fmt::Debug,
        T: Serialize + for<'de> Deserialize<'de>,
    {
        for &choice in all {
            let name = choice.to_string();
            assert_eq!(name.parse::<T>(), Ok(choice));
            let json = serde_json::to_string(&choice).unwrap();
            assert_eq!(json, format!("{name:?}"));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), choice);
        }
    }

    #[test]
    fn names_round_trip_through_display_parse_and_serde() {
        round_trips(Backend::ALL);
        assert_eq!("af-xdp".parse::<Backend>(), Ok(Backend::Xdp));
        assert_eq!(
            serde_json::from_str::<Backend>("\"af-xdp\"").unwrap(),
            Backend::Xdp
        );
        round_trips(ZeroCopy::ALL);
        round_trips(XdpMode::ALL);
        round_trips(WakeLatency::ALL);
        round_trips(XdpSend::ALL);
    }

    #[test]
    fn the_names_are_the_documented_ones() {
        let names = |all: &[&str]| all.join(" ");
        assert_eq!(
            names(&Backend::ALL.iter().map(|b| b.name()).collect::<Vec<_>>()),
            "auto xdp xdp-tx af-packet"
        );
        assert_eq!(
            names(&ZeroCopy::ALL.iter().map(|z| z.name()).collect::<Vec<_>>()),
            "auto on off"
        );
        assert_eq!(
            names(&XdpMode::ALL.iter().map(|m| m.name()).collect::<Vec<_>>()),
            "auto native generic"
        );
        assert_eq!(
            names(
                &WakeLatency::ALL
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
            ),
            "on off"
        );
        assert_eq!(
            names(&XdpSend::ALL.iter().map(|x| x.name()).collect::<Vec<_>>()),
            "on off"
        );
        assert_eq!(
            (
                Backend::default(),
                ZeroCopy::default(),
                XdpMode::default(),
                WakeLatency::default(),
                XdpSend::default()
            ),
            (
                Backend::Auto,
                ZeroCopy::Auto,
                XdpMode::Auto,
                WakeLatency::On,
                XdpSend::On
            )
        );
    }

    #[test]
    fn unknown_names_list_the_choices() {
        assert_eq!(
            "maybe".parse::<ZeroCopy>().unwrap_err().to_string(),
            "unknown zero-copy setting \"maybe\": expected auto, on or off"
        );
        assert_eq!(
            "driver".parse::<XdpMode>().unwrap_err().to_string(),
            "unknown XDP mode \"driver\": expected auto, native or generic"
        );
        assert_eq!(
            "auto".parse::<WakeLatency>().unwrap_err().to_string(),
            "unknown wake-latency setting \"auto\": expected on or off"
        );
        assert_eq!(
            "yes".parse::<XdpSend>().unwrap_err().to_string(),
            "unknown xdp-send setting \"yes\": expected on or off"
        );
        assert_eq!(
            "af_packet".parse::<Backend>().unwrap_err().to_string(),
            "unknown back end \"af_packet\": expected auto, xdp, xdp-tx or af-packet"
        );
        // Serde names are the same (the control plane's files and API).
        let err = serde_json::from_str::<XdpMode>("\"Native\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant `Native`, expected one of `auto`, `native`, `generic`"),
            "{err}"
        );
    }
}
