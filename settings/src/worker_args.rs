//! The worker's command line, generated from [`Settings`]: the one place that turns
//! settings into `reflector` flags (the reflector's tests parse it back).

use crate::field::Field;
use crate::settings::Settings;
use std::time::Duration;

/// Seconds between the statistics lines a supervised worker prints; the dashboard
/// plots per second.
const STATS_INTERVAL_S: &str = "1";

/// The environment variable through which a supervising control plane tells a worker
/// its pid. The worker asks the kernel to SIGTERM it when that process dies, and exits
/// at once if it already has, so a crashed or SIGKILLed control plane never leaves XDP
/// programs attached by orphans.
pub const PARENT_PID_ENV: &str = "REFLECTOR_PARENT_PID";

impl Settings {
    /// The command line, after the program name, of a worker reflecting on
    /// `interface` and printing [`crate::events`] as JSON lines every second.
    pub fn worker_args(&self, interface: &str) -> Vec<String> {
        let mut args: Vec<String> = [interface, "--json", "--stats-interval", STATS_INTERVAL_S]
            .map(String::from)
            .to_vec();
        let mut flag = |field: Field, value: Option<String>| {
            args.push(field.flag().to_owned());
            args.extend(value);
        };
        flag(Field::Mode, Some(self.mode.to_string()));
        flag(Field::Port, Some(self.port.to_string()));
        if let Some(oui) = self.oui {
            flag(Field::Oui, Some(oui.to_string()));
        }
        if self.no_oui_filter {
            flag(Field::NoOuiFilter, None);
        }
        if let Some(mac) = self.dst_mac {
            flag(Field::DstMac, Some(mac.to_string()));
        }
        if !self.signatures.is_empty() {
            flag(Field::Signatures, Some(comma_separated(&self.signatures)));
        }
        if self.no_ipv6 {
            flag(Field::NoIpv6, None);
        }
        if self.no_vlan {
            flag(Field::NoVlan, None);
        }
        // The rest is always given, so what the control plane shows is what the worker
        // runs with even if the worker's own defaults change.
        flag(Field::Backend, Some(self.backend.to_string()));
        if let Some(queues) = self.queues {
            flag(Field::Queues, Some(queues.to_string()));
        }
        flag(Field::ZeroCopy, Some(self.zero_copy.to_string()));
        flag(Field::XdpMode, Some(self.xdp_mode.to_string()));
        if self.busy_poll {
            flag(Field::BusyPoll, None);
        }
        flag(Field::WakeLatency, Some(self.wake_latency.to_string()));
        flag(Field::XdpSend, Some(self.xdp_send.to_string()));
        flag(Field::StampPort, Some(self.stamp_port.to_string()));
        flag(Field::StampMode, Some(self.stamp_mode.to_string()));
        flag(Field::MaxStreams, Some(self.max_streams.to_string()));
        flag(Field::StreamIdle, Some(seconds(self.stream_idle)));
        if !self.allow.is_empty() {
            flag(Field::Allow, Some(comma_separated(&self.allow)));
        }
        if let Some(pps) = self.rate_limit {
            flag(Field::RateLimit, Some(pps.to_string()));
        }
        if let Some(burst) = self.rate_burst {
            flag(Field::RateBurst, Some(burst.to_string()));
        }
        if let Some(timeout) = self.loop_timeout {
            flag(Field::LoopTimeout, Some(seconds(timeout)));
        }
        args
    }
}

/// Millisecond precision is plenty (the worker parses fractional seconds).
fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

fn comma_separated<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}
