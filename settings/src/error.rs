//! What [`crate::Settings::validate`] refuses, and how each refusal reads on the
//! command line and in the control plane's files and API.

use crate::field::{Field, Naming};
use crate::limits::{
    DEFAULT_RATE_BURST, MAX_ALLOW_PREFIXES, MAX_RATE_LIMIT_PPS, MAX_SECONDS, MAX_STREAMS,
};
use crate::settings::{in_kernel_fix, user_space_feature};
use dataplane::MacAddr;
use ipnet::IpNet;
use std::fmt;
use std::time::Duration;

/// Settings that contradict each other or cannot work. Turn it into a message with
/// [`SettingsError::named`], in the terms of whoever wrote the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    QueuesZero,
    OuiWithNoOuiFilter,
    GroupDstMac(MacAddr),
    StampPortZero,
    /// STAMP's port is also the test frames' port.
    StampPortIsTestPort(u16),
    TooManyStreams(usize),
    StatefulWithoutStreams,
    StreamIdleZero,
    /// More than [`MAX_SECONDS`]; `field` is [`Field::StreamIdle`] or [`Field::LoopTimeout`].
    SecondsOutOfRange {
        field: Field,
        seconds: Duration,
    },
    /// A loop timeout of 0 asked for by a user (see [`crate::check_requested_loop_timeout`]).
    LoopTimeoutZero,
    RateLimitZero,
    RateLimitTooHigh(u64),
    RateBurstWithoutRateLimit,
    RateBurstZero,
    TooManyPrefixes(usize),
    /// `allow[index]` has bits set after its prefix length.
    PrefixHostBits {
        index: usize,
        prefix: IpNet,
    },
    /// `backend` is `xdp-tx` but this feature ([`crate::Settings::needs_user_space`])
    /// runs only in the user-space worker.
    NeedsUserSpace(Field),
}

/// A [`SettingsError`] worded for the command line or for the settings keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NamedSettingsError {
    pub error: SettingsError,
    pub naming: Naming,
    message: String,
}

impl SettingsError {
    /// The setting to change.
    pub fn field(&self) -> Field {
        match self {
            SettingsError::QueuesZero => Field::Queues,
            SettingsError::OuiWithNoOuiFilter => Field::Oui,
            SettingsError::GroupDstMac(_) => Field::DstMac,
            SettingsError::StampPortZero | SettingsError::StampPortIsTestPort(_) => {
                Field::StampPort
            }
            SettingsError::TooManyStreams(_) => Field::MaxStreams,
            SettingsError::StatefulWithoutStreams => Field::StampMode,
            SettingsError::StreamIdleZero => Field::StreamIdle,
            SettingsError::SecondsOutOfRange { field, .. } => *field,
            SettingsError::LoopTimeoutZero => Field::LoopTimeout,
            SettingsError::RateLimitZero | SettingsError::RateLimitTooHigh(_) => Field::RateLimit,
            SettingsError::RateBurstWithoutRateLimit | SettingsError::RateBurstZero => {
                Field::RateBurst
            }
            SettingsError::TooManyPrefixes(_) | SettingsError::PrefixHostBits { .. } => {
                Field::Allow
            }
            SettingsError::NeedsUserSpace(_) => Field::Backend,
        }
    }

    /// The message, naming settings as `naming` says.
    pub fn named(self, naming: Naming) -> NamedSettingsError {
        let message = Message(&self, naming).to_string();
        NamedSettingsError {
            error: self,
            naming,
            message,
        }
    }
}

struct Message<'a>(&'a SettingsError, Naming);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Message(error, naming) = *self;
        let n = |field: Field| field.name(naming);
        match error {
            SettingsError::QueuesZero => write!(
                f,
                "{} must be at least 1 (omit it to serve every queue)",
                n(Field::Queues)
            ),
            SettingsError::OuiWithNoOuiFilter => write!(
                f,
                "{} cannot be used with {}: give an OUI to filter on, or no filter",
                n(Field::Oui),
                n(Field::NoOuiFilter)
            ),
            SettingsError::GroupDstMac(mac) => write!(
                f,
                "{} {mac} is a group address; a reflector needs a unicast MAC",
                n(Field::DstMac)
            ),
            SettingsError::StampPortZero => write!(
                f,
                "{} 0 is not a port: give the port STAMP session-senders use (RFC 8762: 862), \
                 or leave STAMP out of {}",
                n(Field::StampPort),
                n(Field::Signatures)
            ),
            SettingsError::StampPortIsTestPort(port) => write!(
                f,
                "{stamp_port} {port} is also the test-frame port: test frames to it would be \
                 taken for STAMP packets; give {} and {stamp_port} different values",
                n(Field::Port),
                stamp_port = n(Field::StampPort),
            ),
            SettingsError::TooManyStreams(streams) => write!(
                f,
                "{} {streams} is more than {MAX_STREAMS}: each worker reserves memory for all \
                 of them up front; track fewer streams",
                n(Field::MaxStreams)
            ),
            SettingsError::StatefulWithoutStreams => write!(
                f,
                "{} stateful counts packets per stream: it needs {} above 0",
                n(Field::StampMode),
                n(Field::MaxStreams)
            ),
            SettingsError::StreamIdleZero => write!(
                f,
                "{} 0 is out of range: use 1 up to {MAX_SECONDS} seconds (a year); 0 would \
                 forget every stream at once",
                n(Field::StreamIdle)
            ),
            SettingsError::SecondsOutOfRange { field, seconds } => write!(
                f,
                "{} {} is out of range: use 1 up to {MAX_SECONDS} seconds (a year)",
                n(*field),
                seconds.as_secs_f64()
            ),
            SettingsError::LoopTimeoutZero => write!(
                f,
                "{} 0 would never reflect: give the seconds to reflect for, or omit it to \
                 reflect until stopped",
                n(Field::LoopTimeout)
            ),
            SettingsError::RateLimitZero => write!(
                f,
                "{} 0 would drop everything: give frames per second per source IP, or omit it \
                 for no limit",
                n(Field::RateLimit)
            ),
            SettingsError::RateLimitTooHigh(pps) => write!(
                f,
                "{} {pps} is more than {MAX_RATE_LIMIT_PPS}, which would be no limit: omit it \
                 instead",
                n(Field::RateLimit)
            ),
            SettingsError::RateBurstWithoutRateLimit => write!(
                f,
                "{burst} only applies with {limit}: set {limit} too, or remove {burst}",
                burst = n(Field::RateBurst),
                limit = n(Field::RateLimit)
            ),
            SettingsError::RateBurstZero => write!(
                f,
                "{} 0 would drop everything: use at least 1 (or omit it for the default of \
                 {DEFAULT_RATE_BURST})",
                n(Field::RateBurst)
            ),
            SettingsError::TooManyPrefixes(count) => write!(
                f,
                "{} lists {count} prefixes; at most {MAX_ALLOW_PREFIXES} are supported (use \
                 wider prefixes)",
                n(Field::Allow)
            ),
            SettingsError::PrefixHostBits { index, prefix } => {
                match naming {
                    Naming::Flag => write!(f, "{} ", n(Field::Allow))?,
                    Naming::Key => write!(f, "{}[{index}]: ", n(Field::Allow))?,
                }
                write!(
                    f,
                    "\"{prefix}\" has bits set after the prefix length: did you mean {}?",
                    prefix.trunc()
                )
            }
            SettingsError::NeedsUserSpace(field) => write!(
                f,
                "{backend} xdp-tx reflects in the kernel, where {} cannot run: set {}, or \
                 use {backend} auto (which then runs AF_XDP)",
                user_space_feature(*field),
                in_kernel_fix(*field, naming),
                backend = n(Field::Backend),
            ),
        }
    }
}
